"""The learning check over several seeds: where tests/test_learning.py's floors come from.

    python bench/learning.py [--seeds 0 1 2] [--data-seeds 5 7] [--root /tmp/dfdetect-learning]

For each benchmark seed (``--data-seeds``: which clips) and training seed (``--seeds``) it trains the smoke
model on the labels and on the inverted labels and prints each head's held-out video AUC, then the lowest and
highest per head. A pipeline check on the built-in benchmark, never a claim about real-world deepfakes.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HEADS = ("fake", "video_fake", "audio_fake", "av_mismatch")


def main() -> None:
    from dfdetect.selfcheck import CONFIG, EPOCHS, build_data, train_and_score

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--data-seeds", type=int, nargs="+", default=[5], help="benchmark seeds (5 is the test's)")
    p.add_argument("--n", type=int, default=128, help="clips per benchmark (128, the test's)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS}, the test's)")
    p.add_argument("--root", default="/tmp/dfdetect-learning")
    args = p.parse_args()
    config = CONFIG.override(train={"epochs": args.epochs, "patience": args.epochs})
    rows = []
    print(f"{'data':>4} {'seed':>4} {'labels':>8} " + " ".join(f"{h:>11}" for h in HEADS) + "  videos  s")
    for ds in args.data_seeds:
        data = build_data(Path(args.root) / f"data{ds}", n=args.n, seed=ds)
        for seed in args.seeds:
            for invert in (False, True):
                t = time.time()
                m = train_and_score(data, Path(args.root) / f"data{ds}-e{args.epochs}-seed{seed}-{'inv' if invert else 'ok'}",
                                    invert=invert, seed=seed, config=config)
                aucs = {h: m["heads"].get(h, {}).get("auc", float("nan")) for h in HEADS}
                rows.append((ds, seed, invert, aucs))
                print(f"{ds:>4} {seed:>4} {'inverted' if invert else 'as is':>8} "
                      + " ".join(f"{aucs[h]:>11.3f}" for h in HEADS)
                      + f"  {m['videos']:>6} {time.time() - t:.0f}", flush=True)
    for invert in (False, True):
        sel = [r[3] for r in rows if r[2] == invert]
        print(f"{'inverted' if invert else 'as is':>8}: " + ", ".join(
            f"{h} {min(a[h] for a in sel):.3f}-{max(a[h] for a in sel):.3f}" for h in HEADS)
            + f"  ({len(sel)} runs, {args.epochs} epochs)")


if __name__ == "__main__":
    main()
