"""How shards store frames: the recorded ``frame_format`` (zlib by default), PNG shards of older versions, JPEG
on request, and a clear refusal of a format this version does not know."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from dfdetect.config import get_config
from dfdetect.pipeline import _parse
from dfdetect.records import VideoRecord
from dfdetect.shards import FRAME_FORMAT, decode_example, serialize_window
from dfdetect.windows import Window

CFG = get_config("smoke")
REC = VideoRecord("clip.mp4", label="real")


def _window() -> Window:
    # photograph-like content (smooth gradients plus noise), different in every frame
    T, C, S = CFG.frames_per_window, CFG.faces.crop_size, CFG.samples_per_window
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, C)[None, :, None] + np.linspace(0, 50, C)[:, None, None]
    frames = np.clip(ramp[None] + rng.normal(0, 3, (T, C, C, 3)), 0, 255).astype(np.uint8)
    return Window(index=0, start=0.0, frames=frames, mask=np.ones(T, np.uint8), audio=np.zeros(S, np.float32),
                  mouth=np.full((T, 2), -1.0, np.float32), audio_ratio=1.0)


def _without(serialized: bytes, feature: str) -> bytes:
    ex = tf.train.Example.FromString(serialized)
    del ex.features.feature[feature]
    return ex.SerializeToString()


def _with_format(serialized: bytes, name: bytes) -> bytes:
    ex = tf.train.Example.FromString(serialized)
    ex.features.feature["frame_format"].bytes_list.value[:] = [name]
    return ex.SerializeToString()


def _both_readers(serialized: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The frames as the training pipeline (TensorFlow) and ``decode_example`` (numpy) read them."""
    return _parse(CFG, tf.constant(serialized))[0]["frames"].numpy(), decode_example(serialized)["frames"]


def test_default_format_is_lossless_and_recorded():
    w = _window()
    s = serialize_window(w, REC, "v", CFG.window.seconds)
    assert FRAME_FORMAT == "zlib" and decode_example(s)["frame_format"] == "zlib"
    for frames in _both_readers(s):
        np.testing.assert_array_equal(frames, w.frames)


def test_png_shards_of_older_versions_stay_readable():
    w = _window()
    # a PNG window as older versions wrote it: no frame_format feature at all
    old = _without(serialize_window(w, REC, "v", CFG.window.seconds, frame_format="png"), "frame_format")
    assert "frame_format" not in tf.train.Example.FromString(old).features.feature
    for frames in _both_readers(old):
        np.testing.assert_array_equal(frames, w.frames)
    # both formats in one dataset (an old folder resumed by this version): each window by its own format
    new = serialize_window(w, REC, "v", CFG.window.seconds)
    ds = tf.data.Dataset.from_tensor_slices([old, new]).map(lambda x: _parse(CFG, x)[0]["frames"])
    for frames in ds:
        np.testing.assert_array_equal(frames.numpy(), w.frames)


def test_jpeg_on_request_is_close_and_smaller():
    w = _window()
    jpeg = serialize_window(w, REC, "v", CFG.window.seconds, frame_format="jpeg")
    assert len(jpeg) < len(serialize_window(w, REC, "v", CFG.window.seconds))
    for frames in _both_readers(jpeg):
        assert np.abs(frames.astype(int) - w.frames).mean() < 4


def test_unknown_format_is_refused_with_what_to_do():
    s = _with_format(serialize_window(_window(), REC, "v", CFG.window.seconds), b"webp")
    with pytest.raises(tf.errors.InvalidArgumentError, match="newer dfdetect"):
        _parse(CFG, tf.constant(s))
    with pytest.raises(ValueError, match="'webp'.*newer dfdetect"):
        decode_example(s)
    with pytest.raises(ValueError, match="unknown frame format"):
        serialize_window(_window(), REC, "v", CFG.window.seconds, frame_format="webp")
