"""Scoring a preprocessed split with a trained model, and the metrics the field reports.

``window_scores`` runs the model over one split's windows; ``video_scores`` aggregates them per video
(mean, and the DFDC winner's confident-windows rule); ``auc_by_category`` gives ROC AUC overall and for each
fake category against the real videos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dfdetect.config import Config
from dfdetect.model import HEADS


def window_scores(model, data_dir: str | Path, config: Config, split: str | None = "test",
                  batch_size: int = 32) -> pd.DataFrame:
    """One row per window: path, start, category, method, each head's label (-1 unknown) and score."""
    from dfdetect.pipeline import make_dataset

    ds = make_dataset(data_dir, config, split, training=False, batch_size=batch_size, with_meta=True)
    rows = []
    for inputs, targets, weights, meta in ds:
        preds = model.predict_on_batch(inputs)
        n = len(meta["path"])
        for i in range(n):
            row = {"path": meta["path"][i].numpy().decode(), "start": float(meta["start"][i]),
                   "category": meta["category"][i].numpy().decode(), "method": meta["method"][i].numpy().decode()}
            for h in HEADS:
                known = float(weights[h][i]) > 0
                row[f"{h}_label"] = int(targets[h][i][0]) if known else -1
                row[f"{h}_score"] = float(np.asarray(preds[h])[i].reshape(-1)[0])
            rows.append(row)
    return pd.DataFrame(rows)


def confident_mean(scores: np.ndarray, hi: float = 0.8, lo: float = 0.2, frac: float = 0.11) -> float:
    """The DFDC winner's rule: if enough windows are confidently fake, average those; else if most are
    confidently real, average those; else the plain mean."""
    s = np.asarray(scores, float)
    n = len(s)
    if n == 0:
        return float("nan")
    if (s > hi).sum() > frac * n:
        return float(s[s > hi].mean())
    if (s < lo).sum() > 0.9 * n:
        return float(s[s < lo].mean())
    return float(s.mean())


def video_scores(windows: pd.DataFrame) -> pd.DataFrame:
    """One row per video: its labels (a video is fake if any window is), mean and confident scores."""
    out = []
    for path, g in windows.groupby("path", sort=True):
        row = {"path": path, "category": g["category"].iloc[0], "method": g["method"].iloc[0], "windows": len(g)}
        for h in HEADS:
            labels = g[f"{h}_label"]
            known = labels[labels >= 0]
            row[f"{h}_label"] = int(known.max()) if len(known) else -1
            row[f"{h}_score"] = float(g[f"{h}_score"].mean())
            row[f"{h}_score_confident"] = confident_mean(g[f"{h}_score"].to_numpy())
            # a partial fake is caught by its most suspicious window
            row[f"{h}_score_max"] = float(g[f"{h}_score"].max())
        out.append(row)
    return pd.DataFrame(out)


def auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    labels, scores = np.asarray(labels), np.asarray(scores)
    keep = labels >= 0
    if len(set(labels[keep])) < 2:
        return float("nan")
    return float(roc_auc_score(labels[keep], scores[keep]))


def group_key(row) -> str:
    """The category a video is reported under: lip-sync and desync fakes apart from other C fakes."""
    if row["method"] in ("lipsync", "desync"):
        return f"C-{row['method']}"
    if str(row["method"]).startswith("partial"):
        return "partial"
    return row["category"]


def auc_by_category(videos: pd.DataFrame, score: str = "fake_score") -> dict[str, float]:
    """ROC AUC of real vs all fakes, and of real vs each fake category (the reals are shared)."""
    v = videos.copy()
    v["group"] = v.apply(group_key, axis=1)
    real = v[v["fake_label"] == 0]
    out = {"all": auc(v["fake_label"], v[score])}
    for g, sub in v[v["fake_label"] == 1].groupby("group"):
        both = pd.concat([real, sub])
        out[g] = auc(both["fake_label"], both[score])
    return out
