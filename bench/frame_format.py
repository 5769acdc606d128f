"""How should shards store face crops? Bytes per window and decode windows/s on one core, per format.

    python bench/frame_format.py --data data/processed/synth [--windows 200]

Takes the face crops of ``--windows`` training windows of a preprocessed folder (without --data it builds a
20-clip benchmark with the ``cpu-small`` preset first), re-encodes every frame in each format and prints, per
format: the frames' bytes per window (the waveform adds the same for all: float32, 128 KB at 2 s and 16 kHz),
encode frames/s, decode windows/s with the pipeline's own TensorFlow ops on one thread (best of --rounds),
and the PSNR of the decoded frames against the stored ones (inf: lossless). Formats: PNG as written before
(deflate level 1, Huffman only), PNG with default deflate, JPEG quality 95 and 90, raw uint8 frames compressed
with zlib at levels 1 (what shards store now) and 6. Any folder will do: its frames are decoded, whatever
their format, then re-encoded.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)


def load_frames(data: Path, n: int) -> list[np.ndarray]:
    """The (T, C, C, 3) RGB frames of the first ``n`` training windows."""
    from dfdetect.pipeline import shard_files
    from dfdetect.shards import decode_example, iter_records

    out = []
    for f in shard_files(data):
        for rec in iter_records(f):
            ex = decode_example(rec)
            if ex["split"] == "train":
                out.append(ex["frames"])
            if len(out) >= n:
                return out
    return out


def encoders() -> dict:
    def png(img: np.ndarray, params: list[int]) -> bytes:
        return cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)[1].tobytes()

    def jpeg(img: np.ndarray, q: int) -> bytes:
        return cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes()

    huffman = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
    return {
        "png (before: level 1, Huffman only)": ("png", lambda x: png(x, huffman)),
        "png (default deflate)": ("png", lambda x: png(x, [])),
        "jpeg q95": ("jpeg", lambda x: jpeg(x, 95)),
        "jpeg q90": ("jpeg", lambda x: jpeg(x, 90)),
        "raw uint8 + zlib 1 (the default)": ("zlib", lambda x: zlib.compress(np.ascontiguousarray(x).tobytes(), 1)),
        "raw uint8 + zlib 6": ("zlib", lambda x: zlib.compress(np.ascontiguousarray(x).tobytes(), 6)),
    }


def decode_rate(blobs: list[list[bytes]], kind: str, shape: tuple[int, int, int, int], repeats: int) -> float:
    """Windows/s of decoding every frame with TensorFlow ops in a tf.data map on one thread."""
    import tensorflow as tf

    T, H, W, C = shape

    def window(x):
        if kind == "zlib":  # one vectorised op for the T frames, as the pipeline does it
            return tf.reshape(tf.io.decode_raw(tf.io.decode_compressed(x, "ZLIB"), tf.uint8), (T, H, W, C))
        one = (lambda b: tf.io.decode_png(b, channels=3)) if kind == "png" else (
            lambda b: tf.io.decode_jpeg(b, channels=3))
        return tf.map_fn(one, x, fn_output_signature=tf.uint8)

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(blobs)).repeat(repeats)
    ds = ds.map(window, num_parallel_calls=1)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(options)
    for _ in ds.take(2):  # trace
        pass
    t = time.perf_counter()
    n = sum(1 for _ in ds)
    return n / (time.perf_counter() - t)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="preprocessed folder (default: build a 20-clip cpu-small benchmark)")
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=1, help="decode passes over the windows per round")
    ap.add_argument("--rounds", type=int, default=3, help="decode rounds per format (the best is printed)")
    args = ap.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else None
        if data is None:
            from dfdetect.config import get_config
            from dfdetect.preprocess import preprocess
            from dfdetect.synth import synthesize

            print("building a 20-clip benchmark ...", flush=True)
            synthesize(Path(tmp) / "raw", n=20, seed=0, progress=False)
            preprocess([Path(tmp) / "raw"], Path(tmp) / "processed", config=get_config("cpu-small"), progress=False)
            data = Path(tmp) / "processed"
        windows = load_frames(data, args.windows)
    shape = windows[0].shape
    print(f"{len(windows)} windows of {shape[0]} frames of {shape[1]}x{shape[2]} px from {data}; "
          f"raw {int(np.prod(shape)) / 1e3:.0f} KB per window; 1 thread; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    encoded = {}
    for name, (kind, enc) in encoders().items():
        t = time.perf_counter()
        blobs = [[enc(f) for f in w] for w in windows]
        encoded[name] = (kind, blobs, sum(len(b) for b in blobs) / (time.perf_counter() - t))
    # decode rounds in turn, best of --rounds: other jobs on a shared machine slow a round, never speed one up
    rates: dict[str, list[float]] = {name: [] for name in encoded}
    for _ in range(args.rounds):
        for name, (kind, blobs, _) in encoded.items():
            rates[name].append(decode_rate(blobs, kind, shape, args.repeats))
    print(f"{'format':36s} {'KB/window':>9s} {'vs png':>7s} {'encode fr/s':>11s} {'decode win/s':>12s} "
          f"{'PSNR dB mean (min)':>19s}")
    base = None
    for name, (kind, blobs, enc_rate) in encoded.items():
        size = float(np.mean([sum(len(x) for x in b) for b in blobs]))
        base = base or size
        quality = "inf (lossless)"
        if kind == "jpeg":
            q = [psnr(cv2.cvtColor(cv2.imdecode(np.frombuffer(x, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), f)
                 for b, w in zip(blobs, windows) for x, f in zip(b, w)]
            quality = f"{np.mean(q):.1f} ({min(q):.1f})"
        print(f"{name:36s} {size / 1e3:9.1f} {size / base:7.2f} {enc_rate:11.0f} {max(rates[name]):12.1f} "
              f"{quality:>19s}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")

if __name__ == "__main__":
    main()
