"""The TensorFlow-free window writer (issue #14): ``serialize_window`` writes protobuf's wire format by hand and
``record_writer`` frames TFRecords with google-crc32c, so a preprocessing worker never imports TensorFlow. Both
must give what ``tf.train.Example`` and ``tf.io.TFRecordWriter`` give: every feature equal, the same file bytes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from dfdetect import shards
from dfdetect.config import get_config
from dfdetect.records import VideoRecord
from dfdetect.shards import FRAME_FORMATS, frame_labels, record_writer, serialize_window, window_fake
from dfdetect.windows import Window

CFG = get_config("smoke")


def _window(index: int = 3, first_frame: int = 140, start: float = 9.3333) -> Window:
    T, C, S = CFG.frames_per_window, CFG.faces.crop_size, CFG.samples_per_window
    rng = np.random.default_rng(index)
    frames = rng.integers(0, 256, (T, C, C, 3), dtype=np.uint8)
    mask = (rng.random(T) > 0.3).astype(np.uint8)
    mouth = np.where(mask[:, None] > 0, rng.random((T, 2)), -1.0).astype(np.float32)
    audio = rng.normal(0, 0.3, S).astype(np.float32)
    return Window(index=index, start=start, frames=frames, mask=mask, audio=audio, mouth=mouth,
                  audio_ratio=0.8125, first_frame=first_frame)


def _reference(window: Window, record: VideoRecord, vid: str, seconds: float, frame_format: str) -> bytes:
    """A window serialized the way dfdetect did before #14: through ``tf.train.Example``."""
    T = len(window.frames)

    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def f(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    labels = {"fake": record.fake, "video_fake": record.video_fake, "audio_fake": record.audio_fake,
              "av_mismatch": record.av_mismatch, "window_fake": window_fake(record, window.start, seconds)}
    feats = {
        "frames": b([shards.encode_frame(x, frame_format) for x in window.frames]),
        "frame_format": b([frame_format.encode()]),
        "mask": i(window.mask.astype(np.int64).tolist()),
        "mouth": f(window.mouth.reshape(-1).tolist()),
        "audio": b([np.asarray(window.audio, "<f4").tobytes()]),
        "audio_ratio": f([float(window.audio_ratio)]),
        "start": f([float(window.start)]),
        "index": i([int(window.index)]),
        "first_frame": i([int(window.first_frame)]),
        "frame_labels": i(frame_labels(record, window.first_frame, T, T / seconds).reshape(-1).tolist()),
        "path": b([record.path.encode()]),
        "video_id": b([vid.encode()]),
        "group": b([record.group.encode()]),
        "dataset": b([record.dataset.encode()]),
        "category": b([record.category.encode()]),
        "method": b([record.method.encode()]),
        "split": b([record.split.encode()]),
    }
    feats.update({k: i([int(v)]) for k, v in labels.items()})
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


RECORDS = [
    VideoRecord("clip.mp4", label="real"),
    VideoRecord("clips/fake é.mp4", label="fake", group="id 7", dataset="lavdf", category="C", method="wav2lip",
                split="val", video_fake=1, audio_fake=0, av_mismatch=1, fake_segments=((9.5, 9.9), (10.2, 30.0))),
    VideoRecord("unlabelled.mp4"),  # every label UNKNOWN (-1): ten-byte varints
]


@pytest.mark.parametrize("record", RECORDS, ids=["real", "partial-fake", "unknown"])
@pytest.mark.parametrize("frame_format", FRAME_FORMATS)
def test_serialized_window_equals_tf_train_example(record, frame_format):
    seconds = CFG.window.seconds
    for w in (_window(), _window(index=0, first_frame=0, start=0.0), _window(index=200, first_frame=40000)):
        ours = tf.train.Example.FromString(serialize_window(w, record, "vid-0123456789", seconds,
                                                            frame_format=frame_format))
        ref = tf.train.Example.FromString(_reference(w, record, "vid-0123456789", seconds, frame_format))
        assert ours == ref
        assert ours.SerializeToString(deterministic=True) == ref.SerializeToString(deterministic=True)


def test_overlapping_windows_share_encoded_frames():
    a, b = _window(index=0, first_frame=0), _window(index=1, first_frame=5)
    b.frames[: len(b.frames) - 5] = a.frames[5:]
    cache: dict[int, bytes] = {}
    rec = RECORDS[0]
    for w in (a, b):
        ref = tf.train.Example.FromString(_reference(w, rec, "v", CFG.window.seconds, "zlib"))
        assert tf.train.Example.FromString(serialize_window(w, rec, "v", CFG.window.seconds, cache)) == ref


def _write(path, records, writer) -> bytes:
    with writer(str(path)) as w:
        for r in records:
            w.write(r)
    return path.read_bytes()


def test_record_writer_writes_tensorflows_bytes(tmp_path, monkeypatch):
    records = [serialize_window(_window(index=i), RECORDS[1], "v", CFG.window.seconds) for i in range(3)]
    records.append(b"")  # an empty record too
    ref = _write(tmp_path / "ref.tfrecord", records, tf.io.TFRecordWriter)
    assert shards.native_crc32c() is not None  # google-crc32c is installed here: the fast path is tested
    assert _write(tmp_path / "ours.tfrecord", records, record_writer) == ref
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.tfrecord"))] == records
    monkeypatch.setattr(shards, "native_crc32c", lambda: None)  # without google-crc32c: TensorFlow's writer
    assert _write(tmp_path / "fallback.tfrecord", records, record_writer) == ref


def test_varints():
    for n in (0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -2, -(2**63)):
        msg = tf.train.Int64List(value=[n]).SerializeToString()
        assert shards._int64_feature([n])[2:] == msg, n  # Feature header (tag, length) then the Int64List


# --- Frames left undecoded (media._Skipper) -------------------------------------------------------------------

def _clip(path, seconds: float, fps: float, codec: str = "libx264"):
    from dfdetect.media import write_video

    n = int(seconds * fps)
    yy, xx = np.mgrid[0:120, 0:160]
    # smooth motion, which x264 codes with B-frames (on noise it picks almost none)
    frames = [np.stack([(xx + 2 * i) % 256, (yy + i) % 256, (xx + yy + 3 * i) % 256], -1).astype(np.uint8)
              for i in range(n)]
    audio = (0.2 * np.sin(np.arange(int(seconds * 16000)) * 0.05)).astype(np.float32)
    write_video(path, frames, fps=fps, audio=audio, video_codec=codec, reproducible=True,
                audio_codec="libopus" if codec.startswith("libvpx") else "aac")
    return path


def _read(path, fps: float, skip: bool):
    from dfdetect.media import AudioChunk, MediaReader, VideoSample

    reader = MediaReader(path, fps=fps, skip_unused=skip)
    video, audio = [], []
    for item in reader:
        if isinstance(item, VideoSample):
            video.append((item.index, item.time, item.image.copy()))
        elif isinstance(item, AudioChunk):
            audio.append((item.time, item.samples.copy()))
    return video, audio, reader


@pytest.mark.parametrize("source_fps,fps", [(25, 15.0), (30, 12.0), (25, 25.0), (60, 15.0)])
def test_skipping_unused_frames_changes_nothing(tmp_path, source_fps, fps):
    clip = _clip(tmp_path / "c.mp4", 4.0, source_fps)
    v0, a0, r0 = _read(clip, fps, skip=False)
    v1, a1, r1 = _read(clip, fps, skip=True)
    assert [(k, t) for k, t, _ in v0] == [(k, t) for k, t, _ in v1]
    for (_, _, x), (_, _, y) in zip(v0, v1):
        np.testing.assert_array_equal(x, y)
    assert [t for t, _ in a0] == [t for t, _ in a1]
    np.testing.assert_array_equal(np.concatenate([s for _, s in a0]), np.concatenate([s for _, s in a1]))
    assert (r0.video_end, r0.audio_end, r0.frames_out, r0.notes()) == (r1.video_end, r1.audio_end, r1.frames_out,
                                                                       r1.notes())
    assert r0.frames_skipped == 0 and r0.frames_decoded == int(4.0 * source_fps)
    if source_fps > fps:  # x264's B-frames that no output time shows were left undecoded
        assert r1.frames_decoded < r0.frames_decoded
    else:  # every frame is shown: none may be skipped
        assert r1.frames_decoded == r0.frames_decoded


def test_no_skipping_where_the_codec_is_not_known_to_allow_it(tmp_path):
    clip = _clip(tmp_path / "c.webm", 2.0, 25, codec="libvpx-vp9")
    v0, _, r0 = _read(clip, 15.0, skip=False)
    v1, _, r1 = _read(clip, 15.0, skip=True)
    assert r1.frames_skipped == 0 and r1.frames_decoded == r0.frames_decoded == 50
    assert all(np.array_equal(x[2], y[2]) for x, y in zip(v0, v1)) and len(v0) == len(v1)


def test_one_decoder_thread_per_worker_changes_nothing(tmp_path, monkeypatch):
    from dfdetect import media
    from dfdetect.preprocess import _decode_threads

    assert _decode_threads(1) == 0  # a single worker: FFmpeg's own choice
    monkeypatch.setattr(media, "_cores", lambda: 2)
    assert _decode_threads(2) == 1 and _decode_threads(8) == 1
    monkeypatch.setattr(media, "_cores", lambda: 16)
    assert _decode_threads(4) == 4
    clip = _clip(tmp_path / "c.mp4", 2.0, 25)
    v0, a0, _ = _read(clip, 15.0, skip=True)
    monkeypatch.setattr(media, "_DECODE_THREADS", 0)
    media.set_decoder_threads(1)
    v1, a1, _ = _read(clip, 15.0, skip=True)
    assert media._DECODE_THREADS == 1
    assert len(v0) == len(v1) and all(x[:2] == y[:2] and np.array_equal(x[2], y[2]) for x, y in zip(v0, v1))
    np.testing.assert_array_equal(np.concatenate([s for _, s in a0]), np.concatenate([s for _, s in a1]))
