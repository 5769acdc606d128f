"""Leading silence must not be a usable cue. FakeAVCeleb's and AV-Deepfake1M's fakes start with a short
silence; a model can learn that instead of the manipulation. This ablation builds a benchmark with that flaw
on purpose, trains the audio-only model with leading-silence trimming on and off, and scores both on the
flawed test split and on the clean benchmark's test split.

    python bench/silence_ablation.py --clean data/processed/synth [--n 240 --epochs 8]

A model that leans on the shortcut scores well on the flawed split and drops on the clean one; with trimming
(the default) the shortcut is gone before the model sees a window.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", required=True, help="the normal built-in benchmark, preprocessed")
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--config", default="cpu-small")
    ap.add_argument("--work", help="keep intermediate folders here (default: a temporary folder)")
    args = ap.parse_args()

    from dfdetect.config import load_config
    from dfdetect.evaluate import auc_by_category, video_scores, window_scores
    from dfdetect.preprocess import preprocess
    from dfdetect.synth import synthesize
    from dfdetect.train import load_run_model, train

    base = load_config(args.config).override(model={"modality": "audio"})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        raw = work / "flawed_raw"
        synthesize(raw, n=args.n, seed=7, silence_shortcut=True, progress=False)
        rows = []
        for trim in (True, False):
            cfg = base.override(window={"trim_leading_silence": trim})
            data = work / f"flawed_trim_{trim}"
            preprocess([raw], data, config=cfg, progress=False)
            run = work / f"run_trim_{trim}"
            train(data, run, cfg, epochs=args.epochs, verbose=2)
            model = load_run_model(run)
            flawed = auc_by_category(video_scores(window_scores(model, data, cfg, "test")))["all"]
            clean = auc_by_category(video_scores(window_scores(model, args.clean, cfg, "test")))["all"]
            rows.append({"trim_leading_silence": trim, "auc_flawed_test": flawed, "auc_clean_test": clean})
            print(json.dumps(rows[-1]), flush=True)
    print("\naudio-only model, trained on a benchmark whose fakes start with extra silence:\n")
    print("| leading-silence trimming | AUC, flawed test split | AUC, clean benchmark test split |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {'on' if r['trim_leading_silence'] else 'off'} | {r['auc_flawed_test']:.2f} | "
              f"{r['auc_clean_test']:.2f} |")


if __name__ == "__main__":
    main()
