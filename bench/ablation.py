"""Which branch catches which fake? Trains the model four ways and reports video-level ROC AUC per category.

    python bench/ablation.py --data data/processed/synth [--epochs 12] [--reuse aligned=RUN_DIR]

Variants: aligned fusion (face + mouth + audio + their sync correlation per time step), late fusion (each
branch pooled on its own), video only, audio only. Categories of the built-in benchmark: B fake audio,
C face swap, C-lipsync (mouth follows another utterance), C-desync (audio shifted 0.2-1 s), D both, partial.
Expected: video-only near chance on B, audio-only near chance on C, late fusion below aligned on lip-sync.
Writes RUNS/ablation.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = {
    "aligned": {"modality": "both", "fusion": "aligned"},
    "late": {"modality": "both", "fusion": "late"},
    "video": {"modality": "video", "fusion": "aligned"},
    "audio": {"modality": "audio", "fusion": "aligned"},
}
COLUMNS = ["all", "B", "C", "C-lipsync", "C-desync", "D", "partial"]


def evaluate_run(run: Path, data: Path, config) -> dict[str, float]:
    from dfdetect.evaluate import auc_by_category, video_scores, window_scores
    from dfdetect.train import load_run_model

    model = load_run_model(run)
    videos = video_scores(window_scores(model, data, config, "test"))
    return auc_by_category(videos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="preprocessed built-in benchmark")
    ap.add_argument("--config", default="cpu-small")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--runs", default="saved_models/ablation", help="where the variant runs go")
    ap.add_argument("--reuse", action="append", default=[], metavar="VARIANT=RUN",
                    help="use an existing run folder for a variant instead of training it")
    ap.add_argument("--only", action="append", choices=list(VARIANTS), help="train only these variants")
    args = ap.parse_args()

    from dfdetect.config import load_config
    from dfdetect.train import train

    base = load_config(args.config)
    reuse = dict(item.split("=", 1) for item in args.reuse)
    runs = Path(args.runs)
    results, seconds = {}, {}
    for name, overrides in VARIANTS.items():
        if args.only and name not in args.only and name not in reuse:
            continue
        cfg = base.override(model=overrides)
        run = Path(reuse.get(name, runs / name))
        if name not in reuse:
            t = time.time()
            train(args.data, run, cfg, epochs=args.epochs, verbose=2)
            seconds[name] = round(time.time() - t)
        results[name] = evaluate_run(run, Path(args.data), cfg)
        print(name, json.dumps(results[name]), flush=True)

    lines = ["| model | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, res in results.items():
        cells = [f"{res.get(c, float('nan')):.2f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "ablation.md").write_text(table + "\n")
    (runs / "ablation.json").write_text(json.dumps({"auc": results, "train_seconds": seconds}, indent=1))
    print("\nvideo-level ROC AUC on the test split (real vs each fake category):\n")
    print(table)


if __name__ == "__main__":
    main()
