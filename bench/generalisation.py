"""Generalisation to fakes a model was never shown, DeepfakeBench-style.

    python bench/generalisation.py [--config smoke] [--n 160] [--seeds 0 1 2] [--epochs 24]
                                   [--protocols lomo,real-only,difficulty] [--root DIR]

Builds the built-in benchmark (``--n`` clips at ``medium``; the methods that the default benchmark does not
have, ``dfdetect.synth.UNSEEN_METHODS`` where this version has them, are added and never trained on) and,
per training seed, trains and scores:

* ``lomo``: leave-one-manipulation-out. For every method M of the benchmark, train without M
  (``train.exclude_methods``: neither training nor the epoch choice sees it) and test real vs M, once without
  and once with pseudo-fakes mixed in (``train.pseudo_fakes``). The headline: the mean over M of the held-out
  AUC, with and without pseudo-fakes, mean +- sd over seeds.
* ``real-only``: train on the real videos alone (``train.real_only``; sync negatives and pseudo-fakes are its
  fakes) and test real vs every method.
* ``difficulty``: the model trained on ``medium`` (every seen method) tested on ``hard`` and ``extreme``
  benchmarks (where this version has ``extreme``).

Every benchmark here is split like the default one, holding out whole people and utterances (every cell is
identity-held-out: no test clip shows a person or says words that training saw), with a larger test share
(``SHARES``: 44/11/45) so that each method has test videos in a small benchmark. Every cell is a video-level
ROC AUC of the ``fake`` head on the test split, with a 95% bootstrap interval
(resampling videos). It prints a table per protocol and writes ``ROOT/generalisation.json``.

Numbers from the built-in benchmark are pipeline checks, never claims about real-world deepfakes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PSEUDO_SHARE = 0.3  # train.pseudo_fakes in the "with pseudo-fakes" runs (real-only runs use the CLI's 0.5)
SHARES = (0.44, 0.11)  # train, val of the held-out people split; 45% of each kind is tested


def _unseen() -> tuple[str, ...]:
    import dfdetect.synth as synth

    return tuple(getattr(synth, "UNSEEN_METHODS", ()))


def build(root: Path, n: int, seed: int, difficulty: str, methods: tuple[str, ...] | None, config) -> Path:
    """Synthesises and preprocesses a benchmark split at ``SHARES`` (resumable)."""
    from dfdetect.preprocess import preprocess
    from dfdetect.synth import synthesize

    raw = root / f"raw-{difficulty}"
    synthesize(raw, n=n, seed=seed, difficulty=difficulty, workers=2, progress=False, methods=methods,
               shares=SHARES)
    out = root / f"processed-{raw.name[4:]}"
    preprocess([raw], out, config=config, workers=2, progress=False)
    return out


def score(run: Path, data: Path, out: Path, methods: list[str]) -> dict[str, dict]:
    """Video AUC (fake head, best epoch) of real vs each method and vs every fake, with 95% intervals."""
    import pandas as pd

    from dfdetect.evaluate import evaluate_run
    from dfdetect.metrics import bootstrap_auc, roc_auc

    if not (out / "per_video.csv").exists():
        evaluate_run(run, data, out, split="test", which="best", bootstrap=0, progress=False)
    v = pd.read_csv(out / "per_video.csv")
    real = v[v["fake_label"] == 0]
    cells = {}
    for m in [*methods, "all"]:
        fake = v[v["fake_label"] == 1] if m == "all" else v[(v["fake_label"] == 1) & (v["method"].str.startswith(m))]
        if m != "all" and m == "faceswap":  # not faceswap-vocoder
            fake = fake[fake["method"] == "faceswap"]
        if fake.empty or real.empty:
            continue
        both = pd.concat([real, fake])
        lo, hi = bootstrap_auc(both["fake_label"], both["fake_score"], n=1000, seed=0)
        cells[m] = {"auc": roc_auc(both["fake_label"], both["fake_score"]), "lo": lo, "hi": hi,
                    "real": len(real), "fake": len(fake)}
    return cells


def train_and_score(name: str, data: Path, root: Path, config, methods: list[str], seed: int) -> dict[str, dict]:
    from dfdetect.train import train

    run = root / "runs" / f"{name}-seed{seed}"
    t = time.time()
    train(data, run / "run", config.override(train={"seed": seed}), verbose=0)
    cells = score(run / "run", data, run / "report", methods)
    print(f"  {name:<28} seed {seed}: " + ", ".join(f"{m} {c['auc']:.3f}" for m, c in cells.items())
          + f"  ({time.time() - t:.0f} s)", flush=True)
    return cells


def _fmt(cell: dict | None) -> str:
    return "    -    " if not cell else f"{cell['auc']:.3f} [{cell['lo']:.2f}, {cell['hi']:.2f}]"


def main() -> None:
    import numpy as np

    from dfdetect.config import load_config
    from dfdetect.selfcheck import CONFIG as SELFCHECK

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="smoke",
                   help="smoke (the learning check's model: minutes per run) or a preset such as cpu-small")
    p.add_argument("--n", type=int, default=160, help="clips per benchmark")
    p.add_argument("--data-seed", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--protocols", default="lomo,real-only,difficulty")
    p.add_argument("--difficulty", default="medium", help="the benchmark trained and tested on (easy for smoke)")
    p.add_argument("--root", default="/tmp/dfdetect-generalisation")
    args = p.parse_args()

    base = SELFCHECK if args.config == "smoke" else load_config(args.config)
    base = base.override(train={"epochs": args.epochs, "patience": args.epochs})
    root = Path(args.root)
    unseen = _unseen()
    seen = ("vocoder", "faceswap", "lipsync", "desync", "faceswap-vocoder", "partial")
    methods = seen + unseen
    protocols = args.protocols.split(",")
    data = build(root, args.n, args.data_seed, args.difficulty, ("real", *methods), base)
    # the unseen families are never trained on, in any protocol
    cfg = base.override(train={"exclude_methods": unseen})
    pseudo = cfg.override(train={"pseudo_fakes": PSEUDO_SHARE})

    from dfdetect.preprocess import load_manifest

    present = set(load_manifest(data)["method"].astype(str))
    partials = tuple(sorted(m for m in present if m.startswith("partial")))
    listed = [m for m in methods if m in present or (m == "partial" and partials)]
    results: dict = {"config": args.config, "n": args.n, "epochs": args.epochs, "seeds": args.seeds,
                     "unseen_methods": list(unseen), "cells": {}}

    def run(name, config, d=data, seed=0):
        cells = train_and_score(name, d, root, config, listed, seed)
        results["cells"].setdefault(name, {})[str(seed)] = cells
        (root / "generalisation.json").write_text(json.dumps(results, indent=1))
        return cells

    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        run("all-seen", cfg, seed=seed)
        run("all-seen+pseudo", pseudo, seed=seed)
        if "lomo" in protocols:
            for m in seen:
                if m not in listed:
                    continue
                left = (m,) if m != "partial" else partials
                for tag, c in (("", cfg), ("+pseudo", pseudo)):
                    run(f"without-{m}{tag}", c.override(train={"exclude_methods": unseen + left}), seed=seed)
        if "real-only" in protocols:
            run("real-only", cfg.override(train={"real_only": True, "pseudo_fakes": 0.5}), seed=seed)
    if "difficulty" in protocols:
        from dfdetect.synth import DIFFICULTY

        for level in [lv for lv in ("medium", "hard", "extreme") if lv in DIFFICULTY and lv != args.difficulty]:
            d = build(root, args.n, args.data_seed + 1, level, ("real", *methods), base)
            for seed in args.seeds:
                name = f"{args.difficulty}->{level}"
                cells = score(root / "runs" / f"all-seen-seed{seed}" / "run", d,
                              root / "runs" / f"{name}-seed{seed}", listed)
                results["cells"].setdefault(name, {})[str(seed)] = cells
                print(f"  {name:<28} seed {seed}: " + ", ".join(f"{m} {c['auc']:.3f}" for m, c in cells.items()))
    (root / "generalisation.json").write_text(json.dumps(results, indent=1))

    # tables: one row per run kind, one column per tested method; a cell is the first seed's AUC [95% CI]
    rows = results["cells"]
    print("\nvideo ROC AUC, fake head, test split: real vs each method (first seed, 95% bootstrap CI)")
    print(f"{'trained':<28} " + " ".join(f"{m[:18]:>20}" for m in [*listed, "all"]))
    for name, by_seed in rows.items():
        first = by_seed[str(args.seeds[0])]
        print(f"{name:<28} " + " ".join(f"{_fmt(first.get(m)):>20}" for m in [*listed, "all"]))

    def held_out_mean(tag: str, seed: int) -> float:
        vals = [rows[f"without-{m}{tag}"][str(seed)][m]["auc"] for m in seen
                if f"without-{m}{tag}" in rows and m in rows[f"without-{m}{tag}"].get(str(seed), {})]
        return float(np.mean(vals)) if vals else float("nan")

    if "lomo" in protocols:
        print("\nleave-one-manipulation-out: mean over held-out methods of real-vs-M AUC (mean +- sd over seeds)")
        summary = {}
        for tag, label in (("", "without pseudo-fakes"), ("+pseudo", "with pseudo-fakes")):
            per_seed = [held_out_mean(tag, s) for s in args.seeds]
            summary[label] = per_seed
            print(f"  {label:<22} {np.mean(per_seed):.3f} +- {np.std(per_seed):.3f}  (seeds: "
                  + ", ".join(f"{x:.3f}" for x in per_seed) + ")")
        gain = np.array(summary["with pseudo-fakes"]) - np.array(summary["without pseudo-fakes"])
        print(f"  gain from pseudo-fakes: {gain.mean():+.3f} +- {gain.std():.3f}")
        results["lomo_mean"] = summary
    if unseen:
        print("\nunseen families (never trained on): " + ", ".join(unseen) + " -- their columns above")
    (root / "generalisation.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
