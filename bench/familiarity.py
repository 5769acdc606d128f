"""Does an exported model know what it does not know? ``python bench/familiarity.py [--model DIR]``

Scores three sets with ``predict`` (abstention on):

* the benchmark's own held-out test videos (in distribution: few should abstain, and the metrics on the rest
  should stay where they are);
* unfamiliar clips it never saw (``dfdetect.wild_media``: other people's faces, framing, camera motion, light,
  compression, noise, odd voices): each should abstain or be called real;
* faceless clips (``dfdetect.sample_media.faceless_clip``): each should say ``no face found``.

Prints each set's shares, the familiarity of each part (face, mouth, voice, pooled) as ROC AUC between the
benchmark's test videos and the unfamiliar clips, and the warm ``predict`` time with and without the familiarity
step (the ratio the issue bounds at 1.05); writes ``OUT/familiarity.csv`` and ``OUT/familiarity.png``.
Numbers from the built-in benchmark are a pipeline check, never a claim about real-world deepfakes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="saved_models/demo-cpu-small-export", help="exported model folder")
    p.add_argument("--data", help="the benchmark's preprocessed folder (default: the card's training data)")
    p.add_argument("--out", default="reports/familiarity", help="where media, table and chart go")
    p.add_argument("--per-kind", type=int, default=2, help="unfamiliar clips per kind")
    p.add_argument("--max-test", type=int, default=0, help="score at most this many benchmark test videos")
    p.add_argument("--timing-clips", type=int, default=6, help="clips timed with and without familiarity")
    args = p.parse_args(argv)

    from tqdm.auto import tqdm

    from dfdetect import metrics as M
    from dfdetect.predict import Detector
    from dfdetect.preprocess import load_manifest
    from dfdetect.sample_media import FACELESS_KINDS, faceless_clip
    from dfdetect.wild_media import make_unfamiliar_set

    out = Path(args.out)
    (out / "faceless").mkdir(parents=True, exist_ok=True)
    det = Detector(args.model)
    if det.reference is None:
        print(f"{args.model} has no familiarity statistics: export it again", file=sys.stderr)
        return 2
    data = Path(args.data or det.card["training"]["data"])
    m = load_manifest(data)
    test = m[(m["split"].astype(str) == "test") & (m["status"] == "ok")]
    if args.max_test:
        test = test.sample(min(args.max_test, len(test)), random_state=0)
    wild = make_unfamiliar_set(out / "unfamiliar", per_kind=args.per_kind, seed=0)
    faceless = [faceless_clip(out / "faceless" / f"{k}.mp4", k, seed=0) for k in FACELESS_KINDS]

    sets = [("benchmark test", p, lab, "") for p, lab in zip(test["path"], test["label"])]
    sets += [("unfamiliar", p, "real", k) for p, k in zip(wild["path"], wild["kind"])]
    sets += [("faceless", str(p), "none", k) for p, k in zip(faceless, FACELESS_KINDS)]
    rows, emb = [], {}
    for name, path, truth, kind in tqdm(sets, unit="video", desc="predict", file=sys.stderr):
        v = det.predict_video(path)
        rows.append({"set": name, "kind": kind, "path": path, "truth": truth, "status": v.status,
                     "label": v.label, "raw_label": v.raw_label, "score": v.score,
                     "in_distribution": v.in_distribution, "familiarity": v.familiarity, "distance": v.distance,
                     "reason": v.reason})
        if v.embeddings is not None and len(v.embeddings):
            emb[path] = v.embeddings
    df = pd.DataFrame(rows)
    df.to_csv(out / "familiarity.csv", index=False)

    bench = df[df.set == "benchmark test"]
    kept = bench[bench.in_distribution == True]  # noqa: E712 (a column of True/False/None)
    y = (bench.truth == "fake").astype(int)
    print(f"\nmodel {args.model}; threshold (distance) {det.reference.threshold:.3f}, "
          f"familiarity parts: {', '.join(n for n, _ in det.reference.parts)}")
    print("\n== benchmark test split (in distribution; a pipeline check, not a real-world claim)")
    print(f"videos {len(bench)}, abstained {1 - bench.in_distribution.astype(bool).mean():.1%} "
          f"(target <= 5%); video AUC all {M.roc_auc(y, bench.score):.3f}, on the kept "
          f"{M.roc_auc((kept.truth == 'fake').astype(int), kept.score):.3f} ({len(kept)} videos)")
    un = df[df.set == "unfamiliar"]
    ok = un.label.isin(["uncertain", "real"])
    print(f"\n== unfamiliar clips: {len(un)}; abstained {(un.label == 'uncertain').mean():.1%}, "
          f"abstained or real {ok.mean():.1%} (target >= 90%); raw label fake for "
          f"{(un.raw_label == 'fake').mean():.1%}")
    print(un.groupby("kind").agg(clips=("path", "size"), abstained=("in_distribution", lambda s: (s == False).mean()),  # noqa: E712
                                 familiarity=("familiarity", "mean")).round(2).to_string())
    fl = df[df.set == "faceless"]
    print(f"\n== faceless clips: {len(fl)}; 'no face found' {fl.reason.str.startswith('no face found').mean():.0%}")
    print(fl[["kind", "label", "reason"]].to_string(index=False))

    # each part on its own: how well does it tell the benchmark's test videos from the unfamiliar clips?
    ref = det.reference
    part_rows = []
    both = df[df.set.isin(["benchmark test", "unfamiliar"]) & df.path.isin(emb)]
    lab = (both.set == "unfamiliar").astype(int).to_numpy()
    per = np.stack([ref.part_distances(emb[p]).mean(axis=0) / ref.scales for p in both.path])
    for i, (name, _) in enumerate(ref.parts):
        part_rows.append({"part": name, "auroc": M.roc_auc(lab, per[:, i]),
                          "flagged_test": float((per[lab == 0, i] > ref.threshold).mean()),
                          "flagged_unfamiliar": float((per[lab == 1, i] > ref.threshold).mean())})
    part_rows.append({"part": "max (used)", "auroc": M.roc_auc(lab, per.max(axis=1)),
                      "flagged_test": float((per[lab == 0].max(axis=1) > ref.threshold).mean()),
                      "flagged_unfamiliar": float((per[lab == 1].max(axis=1) > ref.threshold).mean())})
    print("\n== each part alone (ROC AUC benchmark test vs unfamiliar; share past the threshold)")
    print(pd.DataFrame(part_rows).round(3).to_string(index=False))

    # warm predict time with and without the familiarity step (the embedding comes from the same forward pass)
    clips = list(bench.path[: args.timing_clips]) or list(un.path[: args.timing_clips])
    saved = det.reference
    for c in clips[:1]:
        det.predict_video(c)  # warm up
    t_with, t_without = [], []
    for c in clips:
        for use, acc in ((True, t_with), (False, t_without)):
            det.reference = saved if use else None
            t0 = time.perf_counter()
            det.predict_video(c)
            acc.append(time.perf_counter() - t0)
    det.reference = saved
    ratio = sum(t_with) / sum(t_without)
    print(f"\n== warm predict time over {len(clips)} clips: with familiarity {sum(t_with):.2f} s, without "
          f"{sum(t_without):.2f} s, ratio {ratio:.3f} (target <= 1.05)")
    det.close()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    bins = np.linspace(0, max(5 * ref.threshold, float(np.nanmax(df.distance.astype(float)))), 40)
    for name, color in (("benchmark test", "tab:green"), ("unfamiliar", "tab:red")):
        ax.hist(df[df.set == name].distance.astype(float).dropna(), bins=bins, alpha=0.6, color=color, label=name)
    ax.axvline(ref.threshold, color="black", ls="--", label="threshold (5% of held-out val videos)")
    ax.set(xlabel="video distance from the training data (scaled Mahalanobis, largest part)", ylabel="videos",
           title="Familiarity: the built-in benchmark vs clips it never saw")
    ax.legend(fontsize=8)
    fig.savefig(out / "familiarity.png", dpi=110, bbox_inches="tight")
    summary = {"benchmark_abstention": float(1 - bench.in_distribution.astype(bool).mean()),
               "unfamiliar_abstain_or_real": float(ok.mean()), "time_ratio": ratio,
               "parts": part_rows}
    (out / "familiarity.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{out / 'familiarity.csv'}\n{out / 'familiarity.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
