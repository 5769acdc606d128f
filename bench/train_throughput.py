"""Is training ever input-bound? Windows/s the tf.data pipeline delivers vs windows/s the model trains at.

    python bench/train_throughput.py --data data/processed/synth [--config cpu-small] [--batches 40]

Without --data it builds a small benchmark (60 clips) in a temporary folder first. Prints both rates and
their ratio (target: input >= 2x model, so the accelerator or CPU never waits for data).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")


def input_rate(data: Path, config, batches: int) -> float:
    from dfdetect.pipeline import make_dataset, window_table

    ds = make_dataset(data, config, "train", training=True, repeat=True)
    it = iter(ds)
    n_warm = len(window_table(data, "train")) // config.train.batch_size + 1
    for _ in range(n_warm):  # one pass fills the cache, as in every epoch after the first
        next(it)
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        inputs, _, _ = next(it)
        n += int(inputs["frames"].shape[0])
    return n / (time.perf_counter() - t)


def model_rate(data: Path, config, batches: int) -> float:
    import tensorflow as tf

    from dfdetect.model import build_model
    from dfdetect.pipeline import make_dataset
    from dfdetect.train import compile_model

    batch = next(iter(make_dataset(data, config, "train", training=True, repeat=True)))
    fixed = tf.data.Dataset.from_tensors(batch).repeat()  # no input cost at all
    model = compile_model(build_model(config), config)
    model.fit(fixed, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    t = time.perf_counter()
    model.fit(fixed, steps_per_epoch=batches, epochs=1, verbose=0)
    return batches * config.train.batch_size / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="preprocessed folder (default: build a small benchmark)")
    ap.add_argument("--config", default="cpu-small")
    ap.add_argument("--batches", type=int, default=40)
    args = ap.parse_args()

    from dfdetect.config import load_config

    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else None
        if data is None:
            from dfdetect.preprocess import preprocess
            from dfdetect.synth import synthesize

            print("building a 60-clip benchmark ...", flush=True)
            synthesize(Path(tmp) / "raw", n=60, seed=0, progress=False)
            preprocess([Path(tmp) / "raw"], Path(tmp) / "processed", config=config, progress=False)
            data = Path(tmp) / "processed"
        inp = input_rate(data, config, args.batches)
        mod = model_rate(data, config, args.batches)
    import keras

    print(f"\nmachine: {os.cpu_count()} cores, backend {keras.backend.backend()}, preset {config.name}, "
          f"batch {config.train.batch_size}")
    print(f"input pipeline (parse + PNG decode + augment): {inp:8.1f} windows/s")
    print(f"model training step (fixed batch):             {mod:8.1f} windows/s")
    print(f"ratio input / model:                           {inp / mod:8.2f}   (target >= 2)")


if __name__ == "__main__":
    main()
