"""Decoding tests on clips encoded here: the sampled frames are the right ones (their content encodes the
source frame index), audio comes out 16 kHz mono, rotation is applied, odd inputs get clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import index_frame, read_index

from dfdetect.media import MediaError, MediaReader, probe, read_all, write_video


def _wave(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    w = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([w] * channels, 1) if channels > 1 else w


FORMATS = [
    ("mp4", "libx264", "aac", 16000, 1),
    ("webm", "libvpx-vp9", "libopus", 48000, 1),
    ("mkv", "libx264", "aac", 44100, 2),
    ("mov", "libx264", "aac", 48000, 2),
]


@pytest.mark.parametrize("ext,vcodec,acodec,sr,channels", FORMATS)
def test_containers_and_codecs(tmp_path, ext, vcodec, acodec, sr, channels):
    src_fps, seconds = 25, 2.0
    path = tmp_path / f"clip.{ext}"
    write_video(path, [index_frame(i) for i in range(int(src_fps * seconds))], fps=src_fps,
                audio=_wave(seconds, sr, channels), sample_rate=sr, audio_channels=channels,
                video_codec=vcodec, audio_codec=acodec)
    info = probe(path)
    assert (info.width, info.height) == (160, 96) and info.has_audio and info.sample_rate == sr
    frames, wave, _ = read_all(path, fps=15, sample_rate=16000)
    assert abs(len(frames) - 30) <= 1
    for k, img in enumerate(frames):
        expected = int(np.floor(k / 15 * src_fps + 1e-6))
        assert abs(read_index(img) - expected) <= 1, (k, read_index(img), expected)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) / 16000 - seconds) < 0.15  # 16 kHz mono, the whole track
    # the tone survives: energy at 440 Hz dominates
    spec = np.abs(np.fft.rfft(wave[:16000]))
    assert abs(np.argmax(spec) * 16000 / 16000 - 440) < 5
    reader = MediaReader(path)
    list(reader)
    assert reader.truncated is None and reader.notes() == []  # a whole file: nothing to say


def test_no_audio(tmp_path):
    path = tmp_path / "silent.mp4"
    write_video(path, [index_frame(i) for i in range(20)], fps=20)
    assert not probe(path).has_audio
    frames, wave, _ = read_all(path, fps=10)
    assert len(frames) == 10 and wave.size == 0


def test_variable_frame_rate(tmp_path):
    rng = np.random.default_rng(0)
    durations = rng.choice([0.02, 0.04, 0.07], size=60)
    times = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    times = np.round(times, 3)
    path = tmp_path / "vfr.mkv"
    write_video(path, [index_frame(i) for i in range(len(times))], fps=25, frame_times=list(times))
    frames, _, _ = read_all(path, fps=15)
    end = times[-1] + durations[-1]
    assert abs(len(frames) - int(np.ceil(end * 15))) <= 1
    for k, img in enumerate(frames):
        t = k / 15
        expected = int(np.searchsorted(times, t + 1e-4, side="right") - 1)
        assert abs(read_index(img) - expected) <= 1, (k, read_index(img), expected)


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_display_rotation_is_applied(tmp_path, rotation):
    upright = np.zeros((120, 80, 3), np.uint8)  # portrait: a white block at the top
    upright[:30] = 255
    # Store the frame the way a phone does: turned, with a display matrix that turns it back.
    stored = np.ascontiguousarray(np.rot90(upright, k=-rotation // 90))
    path = tmp_path / "phone.mp4"
    write_video(path, [stored] * 10, fps=10, rotation=rotation)
    info = probe(path)
    assert (info.width, info.height) == (80, 120), info
    frames, _, _ = read_all(path, fps=10)
    img = frames[0]
    assert img.shape[:2] == (120, 80)
    assert img[:30].mean() > 200 and img[40:].mean() < 50


def test_resampled_audio_and_video_line_up(tmp_path):
    """A flash and a click at known times land at the same place in the decoded streams (<= 40 ms)."""
    fps, sr = 25, 48000
    flash_t, click_t = 1.2, 1.2
    frames = []
    for i in range(75):
        img = np.zeros((96, 160, 3), np.uint8)
        if abs(i / fps - flash_t) < 1e-6:
            img[:] = 255
        frames.append(img)
    wave = np.zeros((3 * sr, 2), np.float32)
    n0 = int(click_t * sr)
    wave[n0:n0 + 240] = 0.9
    path = tmp_path / "sync.mp4"
    write_video(path, frames, fps=fps, audio=wave, sample_rate=sr, audio_channels=2)
    out_fps = 25
    vf, wav, _ = read_all(path, fps=out_fps)
    t_flash = int(np.argmax([f.mean() for f in vf])) / out_fps
    t_click = int(np.argmax(np.abs(wav))) / 16000
    assert abs(t_flash - flash_t) <= 0.04
    assert abs(t_click - t_flash) <= 0.04, (t_click, t_flash)


def test_downscale_large_frames(tmp_path):
    path = tmp_path / "big.mp4"
    write_video(path, [np.zeros((720, 1280, 3), np.uint8)] * 4, fps=4)
    frames, _, _ = read_all(path, fps=4, max_side=640)
    assert frames.shape[1:3] == (360, 640)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (bytes(np.random.default_rng(1).integers(0, 256, 40000, dtype=np.uint8)), "not a readable media file"),
])
def test_unreadable_files(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=reason):
        probe(path)
    with pytest.raises(MediaError, match=reason):
        list(MediaReader(path))


def test_audio_only_and_missing(tmp_path):
    import av

    path = tmp_path / "voice.m4a"
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(20):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    with pytest.raises(MediaError, match="audio-only"):
        list(MediaReader(path))
    with pytest.raises(MediaError, match="not found"):
        probe(tmp_path / "nope.mp4")


def test_truncated_stream_stops_cleanly(tmp_path):
    path = tmp_path / "clip.mkv"  # matroska streams: a cut file still opens
    write_video(path, [index_frame(i) for i in range(100)], fps=25)
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    reader = MediaReader(cut, fps=25)
    frames = [x for x in reader]
    # the first part of the clip, in order: output frame k shows source frame k, or k - 1 where the cut took a
    # B-frame away (timestamp resampling keeps the frame then on screen), never a frame from elsewhere
    assert 10 < len(frames) < 100 and [f.index for f in frames] == list(range(len(frames)))
    shown = [read_index(f.image) for f in frames]
    assert shown[:10] == list(range(10)) and all(k - 1 <= x <= k for k, x in enumerate(shown)), shown


# ---------------------------------------------------------------------------------------------------------
# Files cut short (issue #17): scored on what decodes, and said so
# ---------------------------------------------------------------------------------------------------------

def _clip20(folder, ext: str) -> tuple:
    """A 20 s 10 fps clip with a tone, and its bytes; mp4 written with its index first (``faststart``, as
    web uploads are), so that a cut one still opens."""
    import av

    from dfdetect.media import write_video

    kw = dict(video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48000) if ext == "webm" else {}
    sr = kw.get("sample_rate", 16000)
    path = folder / f"whole.{ext}"
    write_video(path, [index_frame(i, (64, 48)) for i in range(200)], fps=10, audio=_wave(20.0, sr),
                **{"sample_rate": sr, **kw})
    if ext == "mp4":
        src = av.open(str(path))
        fast = folder / "fast.mp4"
        with av.open(str(fast), "w", options={"movflags": "+faststart"}) as out:
            streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
            for packet in src.demux():
                if packet.dts is not None:
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
        src.close()
        path = fast
    return path, path.read_bytes()


@pytest.mark.parametrize("ext", ["mkv", "webm", "mp4"])
def test_truncated_file_is_scored_with_a_note(tmp_path, detector, ext):
    import re

    from dfdetect.config import get_config
    from dfdetect.windows import VideoSummary, extract_windows

    config = get_config("smoke")
    path, data = _clip20(tmp_path, ext)
    whole = VideoSummary()
    n_whole = sum(1 for _ in extract_windows(str(path), config, detector, whole))
    assert not [w for w in whole.warnings if "truncated" in w], whole.warnings  # a whole file is not "cut"
    for frac in (0.3, 0.6):
        cut = tmp_path / f"cut{frac}.{ext}"
        cut.write_bytes(data[: int(len(data) * frac)])
        summary = VideoSummary()
        windows = list(extract_windows(str(cut), config, detector, summary))
        notes = [w for w in summary.warnings if w.startswith("truncated:")]
        assert len(notes) == 1, summary.warnings
        m = re.fullmatch(r"truncated: decoded (\d+\.\d) s of (\d+\.\d) s", notes[0])
        assert m, notes[0]
        decoded, expected = float(m.group(1)), float(m.group(2))
        assert expected == pytest.approx(20.0, abs=0.2)
        assert decoded == pytest.approx(summary.duration, abs=0.05) and 1.0 < decoded < 0.85 * 20
        assert 0 < len(windows) < n_whole


@pytest.mark.parametrize("ext,frac,reason", [
    ("mp4", 0.3, r"not a readable media file \(Invalid data"),  # the index written last: a cut loses it
    ("mp4", 0.002, r"^no video stream \(no audio or video stream: a file cut inside its header\?\)$"),  # index first
    ("mkv", 0.004, r"not a readable media file \(Input/output error\)"),  # inside the EBML header
    # the headers whole (they declare 20 s), cut in the first cluster of frames
    ("mkv", "cluster", r"^no decodable video frames \(truncated: decoded 0\.0 s of 20\.\d s\)$"),
])
def test_file_cut_in_its_header_fails_with_a_reason(tmp_path, detector, ext, frac, reason):
    import av

    from dfdetect.config import get_config
    from dfdetect.windows import extract_windows

    path, data = _clip20(tmp_path, ext)
    if frac == 0.3:  # the plain (index-last) mp4
        path = tmp_path / "whole.mp4"
        data = path.read_bytes()
        assert av.open(str(path)).format.name.startswith("mov")
    cut = tmp_path / f"cut.{ext}"
    end = data.index(bytes.fromhex("1F43B675")) + 40 if frac == "cluster" else int(len(data) * frac)
    cut.write_bytes(data[:end])
    with pytest.raises(MediaError, match=reason):
        list(extract_windows(str(cut), get_config("smoke"), detector))


def test_truncated_note_reaches_the_reason_of_an_ok_verdict(tmp_path, detector):
    """The note goes through ``VideoSummary.warnings``, which the verdict's reason is made of."""
    from dfdetect.config import get_config
    from dfdetect.windows import VideoSummary, extract_windows

    path, data = _clip20(tmp_path, "mkv")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    reader = MediaReader(cut, fps=10)
    list(reader)
    assert reader.truncated and reader.truncated in reader.notes()
    summary = VideoSummary()
    list(extract_windows(str(cut), get_config("smoke"), detector, summary))
    assert summary.warnings[0] == reader.truncated


def test_truncated_note_reaches_the_verdict_json_and_csv(tmp_path, smoke_export):
    """End to end: a talking-face clip cut short is scored (``ok``), and its verdict's reason, which the JSON,
    the CSV row and the web page show, says how much was decoded of how much."""
    import cv2

    from dfdetect.predict import Detector, verdict_row
    from dfdetect.sample_media import face_photo

    face = cv2.resize(face_photo("astronaut")[20:260, 140:380], (96, 96), interpolation=cv2.INTER_AREA)
    path = tmp_path / "talk.mkv"
    write_video(path, [np.roll(face, i % 4, axis=1) for i in range(120)], fps=12, audio=_wave(10.0, 16000))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.5)])
    with Detector(smoke_export) as det:
        v = det.predict_video(cut)
    assert v.status == "ok" and v.windows > 0, v.reason
    import re

    note = next(n for n in v.reason.split("; ") if n.startswith("truncated: decoded "))
    decoded, expected = map(float, re.fullmatch(r"truncated: decoded (\d+\.\d) s of (\d+\.\d) s", note).groups())
    assert 3.0 < decoded < 7.0 and expected == pytest.approx(10.0, abs=0.2)
    assert note in v.to_dict()["reason"] and note in verdict_row(v)["reason"]
