"""Is training ever input-bound? Windows/s the tf.data pipeline delivers vs windows/s the model trains at.

    python bench/train_throughput.py --data data/processed/synth [--config cpu-small] [--batches 40]
    python bench/train_throughput.py --data DIR --cache none       # the path for data that does not fit in memory
    python bench/train_throughput.py --data DIR --cache none --input-only --set train.sync_negatives=0

Without --data it builds a small benchmark (60 clips) in a temporary folder first. Prints both rates, their
ratio (target: input >= 2x model, so the accelerator or CPU never waits for data) and the process's peak
resident memory after each phase. With a caching mode, one pass fills the cache before the input is timed, as
in every epoch after the first; with ``--cache none`` only the shuffle buffer is filled first.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def input_rate(data: Path, config, batches: int, warm_pass: bool) -> float:
    from dfdetect.pipeline import make_dataset, window_table

    ds = make_dataset(data, config, "train", training=True, repeat=True)
    it = iter(ds)
    # a caching mode: one pass fills the cache, as in every epoch after the first; no cache: a few batches
    # fill the shuffle buffer and start the parallel maps
    n_warm = len(window_table(data, "train")) // config.train.batch_size + 1 if warm_pass else 5
    for _ in range(n_warm):
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
    ap.add_argument("--cache", choices=("auto", "decoded", "serialized", "none"),
                    help="train.cache (default: the config's)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="config override, repeatable (e.g. train.sync_negatives=0)")
    ap.add_argument("--input-only", action="store_true", help="time the input pipeline alone")
    args = ap.parse_args()

    from dfdetect.config import load_config

    overrides = list(args.set) + ([f"train.cache={args.cache}"] if args.cache else [])
    config = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else None
        if data is None:
            from dfdetect.preprocess import preprocess
            from dfdetect.synth import synthesize

            print("building a 60-clip benchmark ...", flush=True)
            synthesize(Path(tmp) / "raw", n=60, seed=0, progress=False)
            preprocess([Path(tmp) / "raw"], Path(tmp) / "processed", config=config, progress=False)
            data = Path(tmp) / "processed"
        inp = input_rate(data, config, args.batches, warm_pass=config.train.cache != "none")
        rss_input = peak_rss_gb()
        mod = None if args.input_only else model_rate(data, config, args.batches)
    import keras

    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (1 min, at the end), "
          f"backend {keras.backend.backend()}, preset {config.name}, batch {config.train.batch_size}, "
          f"cache {config.train.cache}, sync_negatives {config.train.sync_negatives}")
    print(f"input pipeline (parse, decode, augment):       {inp:8.1f} windows/s   peak RSS {rss_input:.2f} GB")
    if mod is not None:
        print(f"model training step (fixed batch):             {mod:8.1f} windows/s   peak RSS {peak_rss_gb():.2f} GB")
        print(f"ratio input / model:                           {inp / mod:8.2f}   (target >= 2)")


if __name__ == "__main__":
    main()
