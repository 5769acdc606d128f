"""Preprocessing end to end: real decoding, real MediaPipe, real TFRecords; bad inputs; a crash mid-commit rolled
back (kill -9 at random moments with two workers, and a full disk: tests/test_chaos.py)."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdetect.config import get_config
from dfdetect.media import write_video
from dfdetect.preprocess import load_manifest, load_windows, preprocess
from dfdetect.sample_media import face_photo, moving_face_frames, talking_clip, tone
from dfdetect.shards import read_windows

CFG = get_config("smoke")  # 12 fps, 1 s windows, 64 px crops


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    good = [talking_clip(d / f"talk{i}.mp4", photo=p, seed=i, lead_silence=0.4 * i)
            for i, p in enumerate(["astronaut", "grace_hopper"])]
    (d / "empty.mp4").write_bytes(b"")
    data = good[0].read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (d / "random.mp4").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 30000, dtype=np.uint8)))
    ok, png = cv2.imencode(".png", face_photo("astronaut"))
    (d / "image.mp4").write_bytes(png.tobytes())  # an image renamed as a video
    write_video(d / "oneframe.mp4", [face_photo("astronaut")[:240, :320]], fps=25)
    write_video(d / "noface.mp4", [np.full((240, 320, 3), 30 + i, np.uint8) for i in range(50)], fps=25,
                audio=tone(2.0))
    write_video(d / "mute.mp4", moving_face_frames("astronaut", n=50, size=(320, 240), scale=0.5)[0], fps=25)
    import av

    with av.open(str(d / "audioonly.mp4"), "w") as out:
        s = out.add_stream("aac", rate=16000, layout="mono")
        wave = tone(1.0)
        for i in range(0, wave.size, 1024):
            f = av.AudioFrame.from_ndarray(wave[None, i:i + 1024].copy(), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return d


def test_bad_inputs_get_reasons_and_the_run_goes_on(corpus, tmp_path):
    summary = preprocess([corpus], tmp_path / "out", config=CFG, workers=1, progress=False)
    m = load_manifest(tmp_path / "out")
    m.index = [Path(p).name for p in m.path]
    assert summary.exit_code == 3 and summary.errors == 0  # bad files, and no bug passing as one
    assert not (m.status == "error").any() and not m.reason.str.contains("internal error").any()
    for name in ["empty.mp4", "truncated.mp4", "random.mp4", "image.mp4", "oneframe.mp4", "audioonly.mp4"]:
        assert m.loc[name, "status"] == "failed", name
        assert "\n" not in m.loc[name, "reason"]
    # each bad file fails for its own reason
    assert m.loc["empty.mp4", "reason"] == "empty file (0 bytes)"
    assert m.loc["truncated.mp4", "reason"].startswith("not a readable media file (")
    assert m.loc["random.mp4", "reason"].startswith("not a readable media file (")
    assert m.loc["image.mp4", "reason"] == "a still image (png), not a video"
    assert m.loc["oneframe.mp4", "reason"].startswith("too short: 1 frame(s), ")
    assert m.loc["audioonly.mp4", "reason"] == "no video stream (audio-only file)"
    # valid but faceless: ok, no windows, says why
    assert m.loc["noface.mp4", "status"] == "ok" and m.loc["noface.mp4", "windows"] == 0
    assert m.loc["noface.mp4", "face_ratio"] == 0 and "no face" in m.loc["noface.mp4", "reason"]
    # valid but silent: windows, and says there was no audio
    assert m.loc["mute.mp4", "status"] == "ok" and m.loc["mute.mp4", "windows"] >= 1
    assert m.loc["mute.mp4", "has_audio"] == 0 and "no audio" in m.loc["mute.mp4", "reason"]
    for name in ["talk0.mp4", "talk1.mp4"]:
        assert m.loc[name, "status"] == "ok" and m.loc[name, "windows"] >= 2
        assert m.loc[name, "face_ratio"] >= 0.95 and m.loc[name, "has_audio"] == 1
    # leading silence was trimmed (talk1 starts with 0.4 s of silence)
    assert abs(m.loc["talk1.mp4", "trimmed_s"] - 0.4) <= 1 / 12 + 0.03
    assert m.loc["talk0.mp4", "trimmed_s"] < 0.1


def test_windows_content(corpus, tmp_path):
    preprocess([corpus / "talk0.mp4", corpus / "mute.mp4"], tmp_path / "out", config=CFG, workers=1,
               progress=False)
    m = load_manifest(tmp_path / "out")
    windows = load_windows(tmp_path / "out")
    shard = tmp_path / "out" / m.loc[m.path.str.endswith("talk0.mp4"), "shard"].iloc[0]
    decoded = [w for w in read_windows(shard) if w["path"].endswith("talk0.mp4")]
    assert len(decoded) == int(m.loc[m.path.str.endswith("talk0.mp4"), "windows"].iloc[0])
    assert len(decoded) == (windows.path.str.endswith("talk0.mp4")).sum()
    w = decoded[0]
    assert w["frames"].shape == (CFG.frames_per_window, 64, 64, 3) and w["frames"].dtype == np.uint8
    assert w["audio"].shape == (CFG.samples_per_window,) and w["audio"].dtype == np.float32
    assert w["mask"].sum() == CFG.frames_per_window and w["audio_ratio"] > 0.99
    assert np.abs(w["audio"]).max() > 0.05  # the voice is there
    assert w["fake"] == -1 and w["video_fake"] == -1  # unlabelled input: unknown, not "real"
    assert [d["index"] for d in decoded] == list(range(len(decoded)))
    starts = [d["start"] for d in decoded]
    assert np.allclose(np.diff(starts), CFG.window.hop_seconds, atol=1e-3)
    mute = [x for x in read_windows(shard) if x["path"].endswith("mute.mp4")]
    assert mute and all(x["audio_ratio"] == 0 and np.abs(x["audio"]).max() == 0 for x in mute)


def test_csv_input_labels_and_shard_split(corpus, tmp_path):
    lst = tmp_path / "list.csv"
    pd.DataFrame({"path": [str(corpus / "talk0.mp4"), str(corpus / "talk1.mp4"), str(corpus / "empty.mp4")],
                  "label": ["real", "fake", "fake"], "group": ["a", "b", "b"]}).to_csv(lst, index=False)
    out = tmp_path / "out"
    s0 = preprocess([lst], out, config=CFG, workers=1, progress=False, shard_index=0, num_shards=2)
    s1 = preprocess([lst], out, config=CFG, workers=1, progress=False, shard_index=1, num_shards=2)
    assert s0.total + s1.total == 3
    assert sorted(p.name for p in out.glob("manifest*.csv")) == ["manifest-000-of-002.csv",
                                                                 "manifest-001-of-002.csv"]
    m = load_manifest(out)
    assert len(m) == 3 and set(m.label) == {"real", "fake"}
    fake_windows = [w for s in sorted((out / "shards").glob("*.tfrecord")) for w in read_windows(s)
                    if w["path"].endswith("talk1.mp4")]
    assert fake_windows and all(w["fake"] == 1 and w["group"] == "b" for w in fake_windows)


def test_size_limit_is_a_clear_failure(corpus, tmp_path):
    cfg = CFG.override(preprocess={"max_file_gb": 1e-6})
    s = preprocess([corpus / "talk0.mp4"], tmp_path / "out", config=cfg, workers=1, progress=False)
    assert s.failed == 1 and s.exit_code == 3
    assert re.fullmatch(r"file is 0\.\d GB, over the 1e-06 GB limit \(preprocess\.max_file_gb\)", s.failures[0][1])


def test_parallel_workers(corpus, tmp_path):
    s = preprocess([corpus / "talk0.mp4", corpus / "talk1.mp4", corpus / "random.mp4"], tmp_path / "out",
                   config=CFG, workers=2, progress=False)
    assert (s.ok, s.failed, s.errors) == (2, 1, 0)
    assert s.failures[0][1].startswith("not a readable media file (")  # its reason crossed the process boundary
    for shard in (tmp_path / "out" / "shards").glob("*.tfrecord"):
        assert len(read_windows(shard)) == s.windows


def _window_keys(out: Path) -> list[tuple[str, int, bytes]]:
    keys = []
    for shard in sorted((out / "shards").glob("*.tfrecord")):
        for w in read_windows(shard):
            keys.append((Path(w["path"]).name, w["index"], w["frames"].tobytes()[:4096] + w["audio"].tobytes()[:64]))
    return sorted(keys)


def test_crash_between_shard_append_and_commit_is_rolled_back(corpus, tmp_path):
    """The worst moment to die: records appended to the shard, manifest row half written."""
    out = tmp_path / "out"
    preprocess([corpus / "talk0.mp4"], out, config=CFG, workers=1, progress=False)
    before = _window_keys(out)
    shard = next((out / "shards").glob("*.tfrecord"))
    size = shard.stat().st_size
    with open(shard, "ab") as f:
        f.write(b"\x00" * 1000)  # a half-appended video
    with open(out / "manifest.csv", "a") as f:
        f.write("/some/video.mp4,ok,,3")  # a row cut off mid-write (no newline)
    with open(out / "windows.csv", "a") as f:
        f.write("orphan-123,/some/video.mp4,0,0.0,1.0,1.0,-1,shards/x,,,,\n")
    s = preprocess([corpus / "talk0.mp4", corpus / "talk1.mp4"], out, config=CFG, workers=1, progress=False)
    assert s.skipped == 1 and s.ok == 2
    assert shard.stat().st_size > size  # truncated back, then talk1 appended
    keys = _window_keys(out)
    assert [k for k in keys if k[0] == "talk0.mp4"] == before
    assert "orphan-123" not in (out / "windows.csv").read_text()
    assert "/some/video.mp4" not in (out / "manifest.csv").read_text()


def test_changed_settings_refuse_the_same_folder(corpus, tmp_path):
    preprocess([corpus / "talk0.mp4"], tmp_path / "out", config=CFG, workers=1, progress=False)
    with pytest.raises(ValueError, match="different settings"):
        preprocess([corpus / "talk0.mp4"], tmp_path / "out", config=CFG.override(media={"fps": 20}),
                   workers=1, progress=False)


def test_no_padded_tail_unless_the_clip_is_shorter_than_a_window(detector, tmp_path):
    from dfdetect.windows import extract_windows

    cfg = CFG.override(window={"trim_leading_silence": False})
    long = talking_clip(tmp_path / "long.mp4", seconds=3.5)
    wins = list(extract_windows(str(long), cfg, detector))
    # 42 frames at 12 fps: windows at frames 0, 12, 24 leave 36..41 unscored; the last window (cover_end) ends
    # at frame 41, overlapping the one before: every frame is scored and nothing is padded
    assert [w.first_frame for w in wins] == [0, 12, 24, 30]
    assert all(w.audio_ratio > 0.99 and w.mask.all() for w in wins)
    hopped = list(extract_windows(str(long), cfg.override(window={"cover_end": False}), detector))
    assert [w.first_frame for w in hopped] == [0, 12, 24]
    short = talking_clip(tmp_path / "short.mp4", seconds=0.7)
    only = list(extract_windows(str(short), cfg, detector))
    assert len(only) == 1 and not only[0].mask.all() and only[0].audio_ratio < 0.9


def test_overlapping_windows_share_frames(corpus, tmp_path):
    cfg = CFG.override(window={"hop_seconds": 0.5})
    preprocess([corpus / "talk0.mp4"], tmp_path / "out", config=cfg, workers=1, progress=False)
    shard = next((tmp_path / "out" / "shards").glob("*.tfrecord"))
    wins = read_windows(shard)
    hop = int(round(0.5 * cfg.media.fps))
    assert len(wins) >= 3
    for a, b in zip(wins, wins[1:]):
        np.testing.assert_array_equal(a["frames"][hop:], b["frames"][:-hop])  # the same frames, encoded once


def test_a_failing_window_writer_is_an_internal_error_not_a_hang(corpus, tmp_path, monkeypatch):
    # Windows are serialised in a thread of their own (preprocess._WindowWriter): an exception there must reach
    # the video's result as an internal error, and a producer with more windows to give must not block on it.
    import dfdetect.shards
    from dfdetect.preprocess import _close_worker, process_video
    from dfdetect.records import VideoRecord

    def broken(*args, **kwargs):
        raise RuntimeError("serialiser broke")

    monkeypatch.setattr(dfdetect.shards, "serialize_window", broken)
    cfg = CFG.override(window={"hop_seconds": 0.25})  # many windows: more than the writer's queue holds
    try:
        res = process_video(VideoRecord(path=str(corpus / "talk0.mp4")), cfg, str(tmp_path / "w.tfrecord"))
    finally:
        _close_worker()
    assert (res["status"], res["reason"]) == ("error", "internal error: RuntimeError: serialiser broke")
    assert res["windows"] == 0 and res["window_rows"] == []
