"""How the cpu-small model's AUC falls as the built-in benchmark gets harder.

    python bench/difficulty.py [--n 400 --epochs 20] [--reuse medium=RUN_DIR,DATA_DIR] [--work DIR]

For each --difficulty (easy, medium, hard): builds the benchmark, preprocesses it, trains cpu-small, and
reports video-level ROC AUC on its test split, overall and per fake category.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
COLUMNS = ["all", "B", "C", "C-lipsync", "C-desync", "D", "partial"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--config", default="cpu-small")
    ap.add_argument("--levels", default="easy,medium,hard")
    ap.add_argument("--reuse", action="append", default=[], metavar="LEVEL=RUN,DATA")
    ap.add_argument("--work", help="keep intermediate folders here (default: a temporary folder)")
    args = ap.parse_args()

    from dfdetect.config import load_config
    from dfdetect.evaluate import auc_by_category, video_scores, window_scores
    from dfdetect.preprocess import preprocess
    from dfdetect.synth import synthesize
    from dfdetect.train import load_run_model, train

    cfg = load_config(args.config)
    reuse = {k: v.split(",") for k, v in (r.split("=", 1) for r in args.reuse)}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        for level in args.levels.split(","):
            if level in reuse:
                run, data = (Path(p) for p in reuse[level])
            else:
                raw, data, run = work / f"{level}_raw", work / f"{level}_data", work / f"{level}_run"
                synthesize(raw, n=args.n, seed=11, difficulty=level, progress=False)
                preprocess([raw], data, config=cfg, progress=False)
                train(data, run, cfg, epochs=args.epochs, verbose=2)
            videos = video_scores(window_scores(load_run_model(run), data, cfg, "test"))
            results[level] = auc_by_category(videos)
            print(level, json.dumps(results[level]), flush=True)
    print(f"\n{args.config}, video-level ROC AUC on each benchmark's test split:\n")
    print("| difficulty | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for level, res in results.items():
        print(f"| {level} | " + " | ".join(f"{res.get(c, float('nan')):.2f}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
