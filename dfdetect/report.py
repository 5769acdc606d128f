"""``report.html``: one self-contained file (images embedded) a reviewer can open anywhere.

ROC and PR curves, score histograms per class, confusion matrices at 0.5 and at the validation threshold,
AUC per category, a reliability diagram, training curves from the run's history, the model and data summary,
the worst errors with face thumbnails, and temporal localisation: segment AP/AR per modality and the per-frame
score track of the worst-localised videos with their true and predicted segments.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dfdetect import metrics as M  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _img_tag(arr: np.ndarray, size: int = 96) -> str:
    import cv2

    img = cv2.resize(np.asarray(arr, np.uint8), (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.tobytes()).decode()}" width="{size}">'


def roc_pr_figure(videos: pd.DataFrame, windows: pd.DataFrame):
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for df, name, style in ((videos, "video", "-"), (windows, "window", "--")):
        y, s = df["fake_label"].to_numpy(), df["fake_score"].to_numpy()
        keep = y >= 0
        if len(np.unique(y[keep])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[keep], s[keep])
        axes[0].plot(fpr, tpr, style, label=f"{name} (AUC {M.roc_auc(y, s):.3f})")
        p, r, _ = precision_recall_curve(y[keep], s[keep])
        axes[1].plot(r, p, style, label=f"{name} (AP {M.average_precision(y, s):.3f})")
    axes[0].plot([0, 1], [0, 1], ":", color="grey")
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (fake head)")
    axes[1].set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for ax in axes:
        ax.legend(loc="lower right" if ax is axes[0] else "lower left")
        ax.grid(alpha=0.3)
    return fig


def histogram_figure(videos: pd.DataFrame, threshold: float | None):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, 1, 26)
    for label, name, color in ((0, "real", "tab:green"), (1, "fake", "tab:red")):
        ax.hist(videos.loc[videos.fake_label == label, "fake_score"], bins=bins, alpha=0.6, label=name, color=color)
    ax.axvline(0.5, color="black", ls=":", label="0.5")
    if threshold is not None:
        ax.axvline(threshold, color="tab:blue", ls="--", label=f"val threshold {threshold:.2f}")
    ax.set(xlabel="video fake score", ylabel="videos", title="Scores per class")
    ax.legend()
    return fig


def confusion_figure(videos: pd.DataFrame, threshold: float | None):
    import seaborn as sns

    ts = [0.5] + ([threshold] if threshold is not None else [])
    fig, axes = plt.subplots(1, len(ts), figsize=(4.2 * len(ts), 3.6))
    axes = np.atleast_1d(axes)
    for ax, t in zip(axes, ts):
        at = M.at_threshold(videos["fake_label"], videos["fake_score"], t)
        cm = np.array([[at["tn"], at["fp"]], [at["fn"], at["tp"]]])
        sns.heatmap(cm, annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax,
                    xticklabels=["pred real", "pred fake"], yticklabels=["real", "fake"])
        ax.set_title(f"threshold {t:.2f}: acc {at['accuracy']:.2f}, F1 {at['f1']:.2f}")
    return fig


def category_figure(per_category: dict[str, float]):
    items = [(k, v) for k, v in per_category.items() if v == v]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar([k for k, _ in items], [v for _, v in items], color="tab:purple")
    for i, (_, v) in enumerate(items):
        ax.text(i, v + 0.01, f"{v:.2f}", ha="center")
    ax.set(ylim=(0, 1.08), ylabel="ROC AUC vs real", title="Per category (video level)")
    ax.axhline(0.5, color="grey", ls=":")
    return fig


def calibration_figure(videos: pd.DataFrame):
    bins = M.calibration_bins(videos["fake_label"], videos["fake_score"], 10)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    conf = [b["confidence"] for b in bins if b["count"]]
    acc = [b["accuracy"] for b in bins if b["count"]]
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.plot(conf, acc, "o-")
    ax.set(xlabel="mean score", ylabel="observed fake rate",
           title=f"Calibration of the fake score (fake-class ECE "
                 f"{M.ece(videos['fake_label'], videos['fake_score']):.3f}; top-label ECE "
                 f"{M.ece_top_label(videos['fake_label'], videos['fake_score']):.3f})")
    return fig


def coverage_figure(curve: dict, selective: dict):
    """Accuracy and risk against coverage as videos are admitted from the most to the least familiar, with
    the operating point the familiarity threshold chose."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    cov = np.asarray(curve["coverage"], float)
    ax.plot(cov, curve["accuracy"], "-", color="tab:green", label="accuracy on the videos kept")
    ax.plot(cov, curve["risk"], "-", color="tab:red", label=f"risk (error rate); AURC {curve['aurc']:.3f}")
    if selective.get("coverage") is not None:
        ax.axvline(selective["coverage"], color="black", ls="--",
                   label=f"familiarity threshold: keeps {selective['coverage']:.0%}")
    ax.set(xlabel="coverage (share of videos answered, most familiar first)", ylim=(-0.02, 1.02), xlim=(0, 1.02),
           title="Selective prediction: abstaining on unfamiliar videos")
    ax.legend(fontsize=8, loc="center left")
    ax.grid(alpha=0.3)
    return fig


def localisation_figure(rows: pd.DataFrame, fps: float, n: int = 6):
    """The per-frame score track of the ``n`` worst-localised videos (lowest IoU of the top proposal with the
    truth; real videos by their top proposal's score), true segments shaded, top proposals drawn as bars."""
    r = rows[rows["modality"] == "any"].copy()
    if r.empty:
        return None
    has_truth = r["true_segments"].map(len) > 0
    # fakes: worse when the top proposal misses; reals: worse when the top false positive is confident
    r["badness"] = np.where(has_truth, 1.0 - r["top_iou"].fillna(0.0), r["top_score"])
    worst = r.sort_values("badness", ascending=False).head(n)
    fig, axes = plt.subplots(len(worst), 1, figsize=(10, 1.5 * len(worst) + 0.4), squeeze=False)
    for ax, (_, row) in zip(axes[:, 0], worst.iterrows()):
        track = np.asarray(row["track"], float)
        t = np.arange(len(track)) / fps
        for a, b in row["true_segments"]:
            ax.axvspan(a, b, color="tab:red", alpha=0.18, lw=0)
        ax.step(t, track, where="post", color="black", lw=1)
        for k, (a, b, c) in enumerate(row["proposals"][:3]):
            ax.plot([a, b], [1.05 + 0.08 * k] * 2, lw=3, color="tab:blue", alpha=max(0.25, float(c)))
        ax.set_ylim(-0.02, 1.3)
        ax.set_xlim(0, max(t[-1] + 1 / fps if len(t) else 1, max((b for _, b in row["true_segments"]), default=0)))
        what = f"top IoU {row['top_iou']:.2f}" if row["true_segments"] else f"real; top proposal {row['top_score']:.2f}"
        ax.set_title(f"{Path(row['path']).name}: {what}", fontsize=9, loc="left")
        ax.set_ylabel("P(fake)", fontsize=8)
    axes[-1, 0].set_xlabel("seconds (shaded: true fake segments; bars: top 3 proposals, darker = more confident)")
    fig.tight_layout()
    return fig


def history_figure(history: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for col in ("loss", "val_loss"):
        if col in history:
            axes[0].plot(history["epoch"] + 1, history[col], label=col)
    for col in [c for c in history.columns if c.endswith("_auc")]:
        axes[1].plot(history["epoch"] + 1, history[col], label=col, ls="-" if col.startswith("val_") else ":")
    axes[0].set(xlabel="epoch", title="Loss")
    axes[1].set(xlabel="epoch", title="AUC per head", ylim=(0.4, 1.02))
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return fig


def write_report(out: Path, results: dict, videos: pd.DataFrame, windows: pd.DataFrame, run: Path, config,
                 thumbnails: dict[str, np.ndarray], coverage: dict | None = None,
                 localisation: pd.DataFrame | None = None) -> Path:
    figs = {"ROC and precision-recall": roc_pr_figure(videos, windows),
            "Score distributions": histogram_figure(videos, results.get("val_threshold")),
            "Confusion matrices": confusion_figure(videos, results.get("val_threshold")),
            "AUC per category": category_figure(results["per_category"]),
            "Calibration": calibration_figure(videos)}
    if coverage is not None and "selective" in results:
        figs["Coverage and accuracy (abstention)"] = coverage_figure(coverage, results["selective"])
    if localisation is not None and not localisation.empty:
        fig = localisation_figure(localisation, config.media.fps)
        if fig is not None:
            figs["Where: per-frame score tracks of the worst-localised videos"] = fig
    hist_path = Path(run) / "history.csv"
    if hist_path.exists():
        figs["Training curves"] = history_figure(pd.read_csv(hist_path))
    parts = []
    v = results["video"]
    rows = [("videos / windows", f"{results['videos']} / {results['windows']}"),
            ("ROC AUC (95% CI)", f"{v['auc']:.3f} ({v['auc_ci_low']:.3f}-{v['auc_ci_high']:.3f})"),
            ("EER", f"{v['eer']:.3f}"), ("average precision", f"{v['ap']:.3f}"),
            ("accuracy / F1 @ 0.5", f"{v['accuracy@0.5']:.3f} / {v['f1@0.5']:.3f}"),
            ("log loss", f"{v['log_loss']:.3f}"),
            ("ECE: top-label / fake-class", f"{v['ece_top_label']:.3f} / {v['ece_fake_class']:.3f}"),
            ("bootstrap unit", v.get("bootstrap_unit", "video"))]
    if "accuracy@val" in v:
        rows.append((f"accuracy / F1 @ val threshold {v['val_threshold']:.2f}",
                     f"{v['accuracy@val']:.3f} / {v['f1@val']:.3f}"))
    if "fpr@val" in v:
        rows.append(("false-positive rate on reals @ val threshold", f"{v['fpr@val']:.3f}"))
    sel = results.get("selective")
    if sel:
        acc = sel.get("accepted", {})
        rows += [("abstained (unfamiliar videos)", f"{sel['abstention_rate']:.1%} of {results['videos']}"),
                 ("accuracy: all / kept videos", f"{sel['accuracy_all']:.3f} / {sel['accuracy_accepted']:.3f}"),
                 ("ROC AUC on kept videos", f"{acc.get('auc', float('nan')):.3f}"),
                 ("risk on kept videos (coverage)", f"{sel['risk']:.3f} ({sel['coverage']:.1%})")]
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(x))}</td></tr>" for k, x in rows)
    parts.append(f"<h2>Summary (video level, split '{html.escape(results['split'])}')</h2><table>{summary}</table>")
    if "localisation" in results:
        loc = results["localisation"]
        keys = [k for k in next(iter(loc.values())) if k.startswith(("ap@", "ar@", "frame_auc"))]
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join(f"<tr><th>{html.escape(m)}</th>" + "".join(
            f"<td>{r.get(k, float('nan')):.3f}</td>" for k in keys) + "</tr>" for m, r in loc.items())
        parts.append("<h2>Temporal localisation (segment AP at IoU, AR@N over IoU 0.5:0.05:0.95, frame AUC; "
                     "every video of the split)</h2><table><tr><th>modality</th>" + head + "</tr>" + body
                     + "</table><p>On the built-in benchmark these figures check the pipeline; they are not a "
                     "claim about real-world deepfakes.</p>")
    for title, fig in figs.items():
        parts.append(f"<h2>{html.escape(title)}</h2><img src=\"{_png(fig)}\" alt=\"{html.escape(title)}\">")
    # worst errors: the most confident wrong answers
    v = videos.copy()
    v["error"] = np.where(v.fake_label == 1, 1 - v.fake_score, v.fake_score)
    worst = v[v.fake_label >= 0].sort_values("error", ascending=False).head(8)
    cells = []
    for _, r in worst.iterrows():
        thumb = _img_tag(thumbnails[r.path]) if r.path in thumbnails else ""
        label = "fake" if r.fake_label == 1 else "real"
        cells.append(f"<div class='err'>{thumb}<br><b>{label}</b> scored {r.fake_score:.2f}<br>"
                     f"<small>{html.escape(Path(r.path).name)} ({html.escape(str(r.category))}, "
                     f"{html.escape(str(r.method))})</small></div>")
    parts.append("<h2>Worst errors</h2><div class='errs'>" + "".join(cells) + "</div>")
    model_info = {"run": str(run), "config": config.name, "model": config.model.__dict__,
                  "window": config.window.__dict__}
    summ = Path(run) / "summary.json"
    if summ.exists():
        model_info["training"] = json.loads(summ.read_text())
    parts.append("<h2>Model and data</h2><pre>" + html.escape(json.dumps(model_info, indent=1, default=str))
                 + "</pre>")
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>dfdetect report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
img{{max-width:100%}}.errs{{display:flex;flex-wrap:wrap;gap:12px}}.err{{width:150px;font-size:13px}}
pre{{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}}</style></head><body>
<script>window.addEventListener("load", () => {{ const im = [...document.images];
document.body.setAttribute("data-images-ok", im.filter(x => x.complete && x.naturalWidth > 0).length + "/" + im.length);
}});</script>
<h1>dfdetect evaluation report</h1><p>{html.escape(str(results['data']))} &middot; model {html.escape(str(run))}</p>
{''.join(parts)}</body></html>"""
    path = Path(out) / "report.html"
    path.write_text(doc)
    return path
