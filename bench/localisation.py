"""Frame-level localisation over seeds, with and without boundary-aware training: where
tests/test_localisation.py's floors come from, and what ``train.boundary_weight`` buys.

    python bench/localisation.py [--seeds 0 1] [--boundary 1.0 0.0] [--n 48] [--root /tmp/dfdetect-localise]

Builds the localisation check's benchmark (``dfdetect.selfcheck``: real clips and 6-10 s partial fakes with 1-3
short segments, easy), trains the smoke model on it for each training seed and boundary weight, and prints the
held-out segment AP at IoU 0.5/0.75/0.95, AR@5 and the frame-level AUC, for any modality and for the voice
alone; then the lowest and highest of each. A pipeline check on the built-in benchmark, never a claim about
real-world deepfakes. The full-size figures (the default benchmark, cpu-small) come from ``dfdetect demo``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COLUMNS = (("any", "ap@0.5"), ("any", "ap@0.75"), ("any", "ap@0.95"), ("any", "ar@5"), ("any", "frame_auc"),
           ("audio", "ap@0.5"), ("audio", "frame_auc"))


def main() -> None:
    from dfdetect.selfcheck import EPOCHS, LOCALISE_CONFIG, LOCALISE_METHODS, build_data, train_and_score

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    p.add_argument("--boundary", type=float, nargs="+", default=[1.0, 0.0],
                   help="train.boundary_weight values to compare (0 = off)")
    p.add_argument("--n", type=int, default=48, help="clips (48, the test's)")
    p.add_argument("--data-seed", type=int, default=11, help="benchmark seed (11, the test's)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS}, the test's)")
    p.add_argument("--root", default="/tmp/dfdetect-localise")
    args = p.parse_args()
    data = build_data(Path(args.root) / f"data{args.data_seed}-n{args.n}", n=args.n, seed=args.data_seed,
                      methods=LOCALISE_METHODS)
    print(f"{'boundary':>8} {'seed':>4} " + " ".join(f"{m + ' ' + k:>15}" for m, k in COLUMNS) + "  videos  s")
    rows = []
    for bw in args.boundary:
        for seed in args.seeds:
            t = time.time()
            config = LOCALISE_CONFIG.override(train={"epochs": args.epochs, "patience": args.epochs, "boundary_weight": bw})
            m = train_and_score(data, Path(args.root) / f"run-b{bw}-s{seed}-e{args.epochs}", config=config, seed=seed)
            loc = m.get("localisation", {})
            vals = [loc.get(mod, {}).get(k, float("nan")) for mod, k in COLUMNS]
            rows.append((bw, vals))
            print(f"{bw:>8.2f} {seed:>4} " + " ".join(f"{v:>15.3f}" for v in vals)
                  + f"  {m['videos']:>6} {time.time() - t:.0f}", flush=True)
    for bw in args.boundary:
        sel = [v for b, v in rows if b == bw]
        print(f"boundary {bw:.2f}: " + ", ".join(
            f"{m} {k} {min(r[i] for r in sel):.3f}-{max(r[i] for r in sel):.3f}" for i, (m, k) in enumerate(COLUMNS)))


if __name__ == "__main__":
    main()
