"""The on-disk window format: one ``tf.train.Example`` per window in TFRecord shards.

Frames are stored losslessly (detection cues are compression-sensitive) as raw uint8 RGB compressed with zlib
(``frame_format`` ``zlib``, the default since it decodes about twice as fast as PNG for 1.45x the frame
bytes: ``bench/frame_format.py``) or, in shards written before the format was recorded, as PNG (read as ``png``);
``jpeg`` (quality 95, lossy) can be written on request. The waveform is stored as raw float32 bytes, the mask and mouth track as small lists, labels as int64 (``-1`` = unknown, which the training loss
turns into zero weight); ``frame_labels`` holds one label per time step for each of ``FRAME_MODALITIES``
(``frame_labels``), so the frame-level heads learn *where* inside a window the fake is. ``FEATURES`` is the parsing spec ``dfdetect.pipeline`` uses; ``read_windows`` reads
a shard back into numpy for tests and notebooks.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfdetect.records import UNKNOWN, VideoRecord
from dfdetect.windows import Window

LABEL_KEYS = ("fake", "video_fake", "audio_fake", "av_mismatch", "window_fake")
FRAME_MODALITIES = ("any", "video", "audio")  # order of the rows of ``frame_labels``
STRING_KEYS = ("path", "video_id", "group", "dataset", "category", "method", "split")


# A window of a partial fake counts as fake when its fake segments cover at least this long: about one frame
# at 12-15 fps with margin. A segment that merely grazes a window (1 ms, say) puts no fake frame in it, and
# calling such a window fake would teach the model that original footage is fake.
MIN_FAKE_OVERLAP_S = 0.1
_EPS_S = 1e-6  # window starts are k / fps and segments come from JSON: 0.3 - 0.2 must count as 0.1


def fake_overlap(segments: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of ``[start, end)`` covered by the union of ``segments`` (overlapping segments count once)."""
    total, reach = 0.0, start  # reach: where the time already counted ends
    for a, b in sorted(segments):
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


def window_fake(record: VideoRecord, start: float, seconds: float) -> int:
    """The label of the window ``[start, start + seconds)``: the video's own label unless it is a partial fake
    (it has ``fake_segments``); then 1 when the segments cover at least ``MIN_FAKE_OVERLAP_S`` of the window
    or a whole segment (however short) lies inside it, else 0."""
    segs = record.fake_segments
    if not segs:
        return record.fake
    end = start + seconds
    if fake_overlap(segs, start, end) >= MIN_FAKE_OVERLAP_S - _EPS_S:
        return 1
    # a fake shorter than the minimum still is one where the window holds all of it (zero-length: nothing)
    return int(any(b > a and a >= start - _EPS_S and b <= end + _EPS_S for a, b in segs))


def frame_labels(record: VideoRecord, first_frame: int, frames: int, fps: float) -> np.ndarray:
    """Per-step labels of a window, ``(len(FRAME_MODALITIES), frames)`` int64: 1 where the step's video frame
    lies in a fake segment of that modality, 0 where it does not, ``UNKNOWN`` where the dataset does not say.

    Step ``j`` shows frame ``first_frame + j`` of the video's grid at ``fps``, which spans
    ``[k / fps, (k + 1) / fps)``; it is fake when its centre lies inside a segment, so a segment covering half a
    frame or more marks it. A wholly fake modality (a fake label without segments) is fake at every step."""
    centres = (first_frame + np.arange(frames) + 0.5) / fps
    out = np.full((len(FRAME_MODALITIES), frames), UNKNOWN, np.int64)
    for i, modality in enumerate(FRAME_MODALITIES):
        segs = record.modality_segments(modality)
        if segs is None:
            continue
        label = record.fake if modality == "any" else (record.video_fake if modality == "video" else record.audio_fake)
        if not segs:
            out[i] = 1 if label == 1 else 0
            continue
        inside = np.zeros(frames, bool)
        for a, b in segs:
            inside |= (centres >= a - _EPS_S) & (centres < b + _EPS_S)
        out[i] = inside.astype(np.int64)
    return out


FRAME_FORMATS = ("zlib", "png", "jpeg")
# Raw uint8 frames + zlib level 1: lossless like PNG, so a model sees the same pixels, and the tf.data pipeline
# decodes a window's frames in one vectorised op 1.9-2.3x faster than PNG on one core (205 vs 106 windows/s
# for 30 crops of 112 px; bench/frame_format.py), which keeps training on data that does not fit in memory
# ahead of the model on 2 cores. Level 6 saves 3% of the bytes at half the encoding speed. JPEG q95 decodes
# 3.7x faster at a quarter of the bytes, but is lossy (PSNR 47 dB), and detection cues (blending seams,
# double compression) are what a lossy re-encoding blurs: unmeasured for AUC, so not the default.
FRAME_FORMAT = "zlib"
ZLIB_LEVEL = 1
JPEG_QUALITY = 95


def encode_frame(img: np.ndarray, frame_format: str = FRAME_FORMAT) -> bytes:
    """One (H, W, 3) uint8 RGB frame in ``frame_format``."""
    if frame_format == "zlib":
        return zlib.compress(np.ascontiguousarray(img, np.uint8).tobytes(), ZLIB_LEVEL)
    if frame_format == "png":
        return encode_png(img)
    if frame_format == "jpeg":
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return buf.tobytes()
    raise ValueError(f"unknown frame format {frame_format!r}; formats: {', '.join(FRAME_FORMATS)}")


def decode_frame(data: bytes, frame_format: str) -> np.ndarray:
    """One stored frame back to (H, W, 3) uint8 RGB (a zlib frame is square: its side follows from its size)."""
    if frame_format == "zlib":
        raw = np.frombuffer(zlib.decompress(data), np.uint8)
        side = int(round((raw.size // 3) ** 0.5))
        return raw.reshape(side, side, 3).copy()
    if frame_format in ("png", "jpeg"):
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    raise ValueError(unknown_format_message(frame_format))


def unknown_format_message(frame_format: str) -> str:
    return (f"unknown frame_format {frame_format!r} in a shard (this version reads {', '.join(FRAME_FORMATS)}): "
            "it was written by a newer dfdetect; upgrade, or preprocess the videos again with this one")


def encode_png(img: np.ndarray) -> bytes:
    # Huffman-only deflate: a quarter faster than the default strategy for 5% larger files (measured on
    # 112 px face crops); still lossless.
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _encoded_frames(window: Window, cache: dict[int, bytes] | None, frame_format: str) -> list[bytes]:
    if cache is None:
        return [encode_frame(x, frame_format) for x in window.frames]
    out = []
    for j, img in enumerate(window.frames):
        k = window.first_frame + j
        # a frame without a face is all zeros in every window; one with a face is the same crop everywhere
        if k not in cache:
            cache[k] = encode_frame(img, frame_format)
        out.append(cache[k])
    for k in [k for k in cache if k < window.first_frame]:
        del cache[k]
    return out


def serialize_window(window: Window, record: VideoRecord, video_id: str, seconds: float,
                     png_cache: dict[int, bytes] | None = None, frame_format: str = FRAME_FORMAT) -> bytes:
    """One window as a serialized ``tf.train.Example``. ``png_cache`` (frame index -> encoded frame, whatever
    the format: the name predates formats) lets overlapping windows encode each frame once; entries before
    this window are dropped. One video's windows must share one cache and one ``frame_format``.

    Written straight in protobuf's wire format (``_example``), without TensorFlow: the same message
    ``tf.train.Example`` would serialize (every feature parses back equal), at a fraction of the cost, and a
    preprocessing worker need not import TensorFlow at all (seconds of its start-up)."""
    T = len(window.frames)
    per_frame = frame_labels(record, window.first_frame, T, T / seconds)
    feats: list[tuple[str, bytes]] = [
        ("frames", _bytes_feature(_encoded_frames(window, png_cache, frame_format))),
        ("frame_format", _bytes_feature([frame_format.encode()])),
        ("mask", _int64_feature(np.asarray(window.mask).reshape(-1))),
        ("mouth", _float_feature(window.mouth)),
        ("audio", _bytes_feature([np.asarray(window.audio, "<f4").tobytes()])),
        ("audio_ratio", _float_feature(window.audio_ratio)),
        ("start", _float_feature(window.start)),
        ("index", _int64_feature([int(window.index)])),
        ("first_frame", _int64_feature([int(window.first_frame)])),
        ("frame_labels", _int64_feature(per_frame.reshape(-1))),
        ("path", _bytes_feature([record.path.encode()])),
        ("video_id", _bytes_feature([video_id.encode()])),
        ("group", _bytes_feature([record.group.encode()])),
        ("dataset", _bytes_feature([record.dataset.encode()])),
        ("category", _bytes_feature([record.category.encode()])),
        ("method", _bytes_feature([record.method.encode()])),
        ("split", _bytes_feature([record.split.encode()])),
        ("fake", _int64_feature([int(record.fake)])),
        ("video_fake", _int64_feature([int(record.video_fake)])),
        ("audio_fake", _int64_feature([int(record.audio_fake)])),
        ("av_mismatch", _int64_feature([int(record.av_mismatch)])),
        ("window_fake", _int64_feature([int(window_fake(record, window.start, seconds))])),
    ]
    return _example(feats)


# --- tf.train.Example in protobuf's wire format (tensorflow/core/example/{example,feature}.proto) -----------
# Example { Features features = 1; }  Features { map<string, Feature> feature = 1; }
# Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
# BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed = true]; }
# Int64List { repeated int64 value = 1 [packed = true]; }
# A map is a repeated message of (key = 1, value = 2) entries, in any order (protobuf itself fixes none).

def _varint(n: int) -> bytes:
    """A protobuf varint; a negative int64 as its 64-bit two's complement (ten bytes), as protobuf writes it."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_VARINTS = [_varint(n) for n in range(128)] + [_varint(-1)]  # index -1: UNKNOWN


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) with a one-byte tag."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def _bytes_feature(values: list[bytes]) -> bytes:
    parts = []
    for v in values:
        parts += (b"\x0a", _varint(len(v)), v)
    return _field(0x0A, b"".join(parts))  # Feature.bytes_list holding BytesList.value entries


def _float_feature(values) -> bytes:
    data = np.asarray(values, "<f4").reshape(-1).tobytes()  # protobuf stores a float as float32 too
    return _field(0x12, _field(0x0A, data) if data else b"")


def _int64_feature(values) -> bytes:
    small = _SMALL_VARINTS
    data = b"".join(small[v] if -1 <= v < 128 else _varint(v) for v in (int(x) for x in values))
    return _field(0x1A, _field(0x0A, data) if data else b"")


def _example(features: list[tuple[str, bytes]]) -> bytes:
    entries = b"".join(_field(0x0A, _field(0x0A, name.encode()) + _field(0x12, feature))
                       for name, feature in features)
    return _field(0x0A, entries)


# --- TFRecord files without TensorFlow ------------------------------------------------------------------
# A record: uint64 length, uint32 masked CRC-32C of those 8 bytes, the data, uint32 masked CRC-32C of the data
# (little-endian): the bytes tf.io.TFRecordWriter writes (uncompressed). CRC-32C comes from google-crc32c (C);
# where it is not installed, ``record_writer`` falls back on TensorFlow's writer.

def _masked_crc(crc32c, data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


class _TFRecordFile:
    def __init__(self, path: str, crc32c) -> None:
        self._f = open(path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        self._crc = crc32c

    def write(self, record: bytes) -> None:
        head = struct.pack("<Q", len(record))
        self._f.write(head + _masked_crc(self._crc, head))
        self._f.write(record)
        self._f.write(_masked_crc(self._crc, record))

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _TFRecordFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def native_crc32c():
    """google-crc32c's ``value`` function, or None where it is not installed."""
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c.value


def record_writer(path: str | Path):
    """A TFRecord writer (``write(bytes)``, a context manager) for ``path``: in Python with google-crc32c's
    CRC-32C where it is installed (no TensorFlow import), else ``tf.io.TFRecordWriter``. Same bytes either way."""
    crc = native_crc32c()
    if crc is not None:
        return _TFRecordFile(str(path), crc)
    import tensorflow as tf

    return tf.io.TFRecordWriter(str(path))


def feature_spec(frames: int) -> dict[str, Any]:
    """The ``tf.io.parse_single_example`` spec for windows of ``frames`` frames."""
    import tensorflow as tf

    spec = {
        "frames": tf.io.FixedLenFeature([frames], tf.string),
        # shards written before the format was recorded hold PNG frames
        "frame_format": tf.io.FixedLenFeature([], tf.string, default_value="png"),
        "mask": tf.io.FixedLenFeature([frames], tf.int64),
        "mouth": tf.io.FixedLenFeature([frames * 2], tf.float32),
        "audio": tf.io.FixedLenFeature([], tf.string),
        "audio_ratio": tf.io.FixedLenFeature([], tf.float32),
        "start": tf.io.FixedLenFeature([], tf.float32),
        "index": tf.io.FixedLenFeature([], tf.int64),
        # shards written before frame labels existed read as unknown: their frame heads get no weight
        "first_frame": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "frame_labels": tf.io.FixedLenFeature([len(FRAME_MODALITIES) * frames], tf.int64,
                                              default_value=[UNKNOWN] * (len(FRAME_MODALITIES) * frames)),
    }
    spec.update({k: tf.io.FixedLenFeature([], tf.string, default_value="") for k in STRING_KEYS})
    spec.update({k: tf.io.FixedLenFeature([], tf.int64, default_value=UNKNOWN) for k in LABEL_KEYS})
    return spec


def decode_example(serialized: bytes) -> dict[str, Any]:
    """A serialized window back to numpy arrays and Python values (no TensorFlow graph needed)."""
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    fm = ex.features.feature
    fmt = fm["frame_format"].bytes_list.value[0].decode() if "frame_format" in fm else "png"
    frames = np.stack([decode_frame(x, fmt) for x in fm["frames"].bytes_list.value])
    out: dict[str, Any] = {
        "frames": frames,
        "frame_format": fmt,
        "mask": np.array(fm["mask"].int64_list.value, np.uint8),
        "mouth": np.array(fm["mouth"].float_list.value, np.float32).reshape(-1, 2),
        "audio": np.frombuffer(fm["audio"].bytes_list.value[0], "<f4").copy(),
        "audio_ratio": float(fm["audio_ratio"].float_list.value[0]),
        "start": float(fm["start"].float_list.value[0]),
        "index": int(fm["index"].int64_list.value[0]),
        "first_frame": int(fm["first_frame"].int64_list.value[0]) if "first_frame" in fm else -1,
        "frame_labels": (np.array(fm["frame_labels"].int64_list.value, np.int64).reshape(len(FRAME_MODALITIES), -1)
                         if "frame_labels" in fm else np.full((len(FRAME_MODALITIES), len(frames)), UNKNOWN)),
    }
    for k in STRING_KEYS:
        out[k] = fm[k].bytes_list.value[0].decode() if k in fm else ""
    for k in LABEL_KEYS:
        out[k] = int(fm[k].int64_list.value[0]) if k in fm else UNKNOWN
    return out


def iter_records(path: str | Path) -> Iterator[bytes]:
    """Raw serialized records of one TFRecord file (raises on a corrupt or truncated file)."""
    import tensorflow as tf

    for rec in tf.data.TFRecordDataset(str(path)):
        yield rec.numpy()


def read_windows(path: str | Path) -> list[dict[str, Any]]:
    """Every window of a shard, decoded (small shards: tests, notebooks)."""
    return [decode_example(r) for r in iter_records(path)]
