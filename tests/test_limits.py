"""Resource limits (issue #17): bombs are refused from their headers with a reason naming the setting, or
decoded within bounds; the limits are configurable with ``--set media.x=...``.

The bombs come from ``bench/bombs.py`` (which also prints time and peak RSS for each); they are small on disk.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dfdetect.config import get_config, load_config
from dfdetect.media import Limits, MediaError, MediaReader
from dfdetect.windows import VideoSummary, extract_windows


def _load_bombs():
    # by path, not through sys.path: bench/ also holds modules named predict and preprocess
    spec = importlib.util.spec_from_file_location(
        "dfdetect_bench_bombs", Path(__file__).resolve().parent.parent / "bench" / "bombs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bombs = _load_bombs()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    root = tmp_path_factory.mktemp("bombs")
    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            made[kind] = bombs.make(kind, root)
        return made[kind]

    return get


def _run(path, config, detector) -> tuple[list, VideoSummary]:
    summary = VideoSummary()
    return list(extract_windows(str(path), config, detector, summary)), summary


@pytest.mark.parametrize("kind,reason", [
    ("huge_frame", r"^frames of 8192x8192 \(67\.1 MP\), over the 33\.2 MP limit \(media\.max_frame_pixels\)$"),
    ("long_duration", r"^10:01:00 long by its header, over the 3:00:00 limit \(media\.max_duration\)$"),
    ("many_streams", r"^201 streams, over the limit of 32 \(media\.max_streams\)$"),
    ("big_file", r"^file is 9\.0 GB, over the 8 GB limit \(preprocess\.max_file_gb\)$"),
])
def test_bombs_are_refused_from_the_header(bomb, detector, kind, reason):
    path = bomb(kind)
    reader = MediaReader(path, limits=Limits.from_config(get_config("smoke")))
    t = time.monotonic()
    with pytest.raises(MediaError, match=reason):
        list(reader)
    assert reader.frames_decoded == 0 and time.monotonic() - t < 10  # refused before decoding anything
    with pytest.raises(MediaError, match=reason):
        _run(path, get_config("smoke"), detector)


def test_limits_are_set_from_the_config(bomb, detector):
    """``--set media.x=...`` (``load_config``'s overrides) moves or turns off each limit."""
    cfg = load_config("smoke", ["media.max_streams=0", "media.max_duration=36500", "media.max_frame_pixels=4096"])
    assert Limits.from_config(cfg) == Limits(max_frame_pixels=4096, max_duration=36500.0, max_streams=0,
                                             max_sample_rate=384000, max_channels=16, max_file_bytes=8 * 10**9)
    windows, summary = _run(bomb("many_streams"), cfg, detector)  # 201 streams, now allowed; 64x64 frames too
    assert summary.frames == 24 and summary.has_audio  # 2 s of 5 fps video resampled to 12 fps
    with pytest.raises(MediaError, match=r"^frames of 64x64 \(0\.0 MP\), over the 0\.0 MP limit"):
        _run(bomb("hires_audio"), load_config("smoke", ["media.max_frame_pixels=4095"]), detector)


def test_decoding_stops_at_the_time_limit_and_says_so(bomb, detector):
    """Where the header's duration is allowed (or says nothing), decoding still stops at the limit, and the
    verdict's notes say where."""
    cfg = load_config("smoke", ["media.max_duration=0", "preprocess.max_seconds=150"])
    t = time.monotonic()
    windows, summary = _run(bomb("long_duration"), cfg, detector)
    assert time.monotonic() - t < 30
    assert summary.duration == pytest.approx(150, abs=1)
    assert "stopped at the 2:30 limit (preprocess.max_seconds): the rest of the file was not decoded" \
        in summary.warnings
    assert not any("truncated" in w for w in summary.warnings)  # stopped by us, not cut short


def test_hires_multichannel_audio_is_resampled(bomb, detector):
    windows, summary = _run(bomb("hires_audio"), get_config("smoke"), detector)
    assert summary.has_audio and len(windows) == 3 and not summary.warnings
    assert all(w.audio.shape == (16000,) and w.audio_ratio == pytest.approx(1.0) for w in windows)
    spectrum = np.abs(np.fft.rfft(windows[1].audio))
    assert np.argmax(spectrum) == 440  # the 440 Hz tone (1 s of 16 kHz: 1 Hz bins), resampled from 384 kHz
    # FFmpeg's downmix to mono adds 7.1's channels at 1, 0.707, ... without normalising: 4.4x one channel's
    # level. Left as it is: windows of valid input do not change (training/prediction parity).
    assert float(abs(windows[1].audio).max()) == pytest.approx(4.414 * 0.3, rel=0.02)
    for limit, reason in (("media.max_sample_rate=192000", r"^audio at 384000 Hz, over the 192000 Hz limit"),
                          ("media.max_channels=2", r"^audio with 8 channels, over the limit of 2")):
        with pytest.raises(MediaError, match=reason):
            _run(bomb("hires_audio"), load_config("smoke", [limit]), detector)


def test_peak_memory_of_a_worker_on_8k_frames_is_bounded(bomb):
    """The largest frames allowed by default (7680x4320), decoded and cut in a fresh process as a worker
    would: peak RSS (Python, MediaPipe and decoding together) under 2 GB, and quickly."""
    r = bombs.run_child(bomb("8k_frames"), "smoke")
    assert r["status"] == "ok", r
    assert r["frames"] == 24 and r["duration"] == pytest.approx(2.0, abs=0.01)
    assert r["peak_rss_mb"] < 2048, r
    assert r["seconds"] < 60, r


def test_huge_frame_is_refused_cheaply_in_a_worker(bomb):
    r = bombs.run_child(bomb("huge_frame"), "smoke")
    assert r["status"] == "failed" and "media.max_frame_pixels" in r["reason"], r
    assert r["peak_rss_mb"] < 2048 and r["seconds"] < 60, r


def test_fewer_decoder_threads_for_8k_frames(bomb, monkeypatch):
    """On 16 cores FFmpeg would run 16 frame threads, each holding 50 MB frames of 8K video (1.6 GB measured
    on 40 frames); the reader gives such a stream 3, and leaves ordinary streams to FFmpeg."""
    import av

    import dfdetect.media as media

    monkeypatch.setattr(media, "_cores", lambda: 16)
    reader = MediaReader(bomb("8k_frames"))
    for kind, threads in (("8k_frames", 3), ("hires_audio", 0)):
        with av.open(str(bomb(kind))) as c:
            reader._check(c, c.streams.video[0], None)
            assert c.streams.video[0].codec_context.thread_count == threads, kind


def test_timestamps_far_past_the_declared_duration_stop_decoding(bomb, tmp_path):
    """A header that declares 2 s over frames a minute apart for ten hours (a corrupt or crafted file): each
    frame would be repeated until the next, hours of output from a few KB; decoding stops 10 minutes past
    what the header declares, and says so."""
    import struct

    data = bytearray(bomb("long_duration").read_bytes())
    i = data.index(bytes.fromhex("4489"))  # Matroska's Segment Info Duration (milliseconds, a float)
    size = data[i + 2] & 0x7F
    data[i + 3:i + 3 + size] = struct.pack(">d" if size == 8 else ">f", 2000.0)
    path = tmp_path / "lying.mkv"
    path.write_bytes(bytes(data))
    reader = MediaReader(path, fps=1, audio=False)
    t = time.monotonic()
    frames = [x for x in reader]
    assert time.monotonic() - t < 10
    assert reader._declared_all == pytest.approx(2.0)
    assert reader.stopped_at == ("timestamps jump to 11:00, past the 2.0 s the header declares: the rest of the "
                                 "file was not decoded")
    assert len(frames) == 660 and reader.video_end == pytest.approx(660) and reader.truncated is None
    assert reader.notes() == [reader.stopped_at]
