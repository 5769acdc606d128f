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
                  batch_size: int = 32, thumbnails: bool = False, embeddings: bool = False) -> pd.DataFrame:
    """One row per window: path, start, category, method, each head's label (-1 unknown) and score.
    With ``thumbnails``, ``df.attrs["thumbnails"]`` maps each video to a face crop from its most
    suspicious window (for the report's worst errors). With ``embeddings``, ``df.attrs["embeddings"]`` holds
    each row's pooled embedding (``dfdetect.familiarity``), from the same forward pass."""
    from dfdetect.pipeline import make_dataset

    if embeddings:
        from dfdetect.familiarity import with_embedding

        model = with_embedding(model)
    ds = make_dataset(data_dir, config, split, training=False, batch_size=batch_size, with_meta=True)
    rows = []
    embs = []
    thumbs: dict[str, tuple[float, np.ndarray]] = {}
    for inputs, targets, weights, meta in ds:
        preds = model.predict_on_batch(inputs)
        if embeddings:
            embs.append(np.asarray(preds["embedding"], np.float32))
        n = len(meta["path"])
        if thumbnails:
            fake = np.asarray(preds["fake"]).reshape(-1)
            frames = inputs["frames"].numpy()
            masks = inputs["mask"].numpy()
            for i in range(n):
                p = meta["path"][i].numpy().decode()
                if p not in thumbs or fake[i] > thumbs[p][0]:
                    j = int(np.argmax(masks[i])) if masks[i].any() else 0
                    thumbs[p] = (float(fake[i]), frames[i, j])
        for i in range(n):
            row = {"path": meta["path"][i].numpy().decode(), "start": float(meta["start"][i]),
                   "category": meta["category"][i].numpy().decode(), "method": meta["method"][i].numpy().decode(),
                   "dataset": meta["dataset"][i].numpy().decode()}
            for h in HEADS:
                known = float(weights[h][i]) > 0
                row[f"{h}_label"] = int(targets[h][i][0]) if known else -1
                row[f"{h}_video_label"] = int(meta[f"{h}_video_label"][i])
                row[f"{h}_score"] = float(np.asarray(preds[h])[i].reshape(-1)[0])
            rows.append(row)
    df = pd.DataFrame(rows)
    if embeddings:
        df.attrs["embeddings"] = np.concatenate(embs) if embs else np.zeros((0, 0), np.float32)
    if thumbnails:
        df.attrs["thumbnails"] = {p: img for p, (_, img) in thumbs.items()}
    return df


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
    """One row per video: its labels, mean and confident scores. A video's label is its own (the
    ``*_video_label`` columns ``window_scores`` writes): a partial fake stays a fake video even where its fake
    segment fell in no scored window (trimmed leading silence, faceless windows). Tables without those
    columns fall back to "fake if any window is"."""
    out = []
    for path, g in windows.groupby("path", sort=True):
        row = {"path": path, "category": g["category"].iloc[0], "method": g["method"].iloc[0],
               "dataset": g["dataset"].iloc[0] if "dataset" in g else "", "windows": len(g)}
        for h in HEADS:
            labels = g[f"{h}_video_label"] if f"{h}_video_label" in g else g[f"{h}_label"]
            known = labels[labels >= 0]
            row[f"{h}_label"] = int(known.max()) if len(known) else -1
            row[f"{h}_score"] = float(g[f"{h}_score"].mean())
            row[f"{h}_score_confident"] = confident_mean(g[f"{h}_score"].to_numpy())
            # a partial fake is caught by its most suspicious window
            row[f"{h}_score_max"] = float(g[f"{h}_score"].max())
        out.append(row)
    return pd.DataFrame(out)


def prediction_accuracy(predictions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """How many videos ``predict`` labelled correctly, overall and per category and method.

    ``predictions``: ``predict``'s rows (``path``, ``status``, ``label``); ``truth``: the manifest's (``path``,
    ``label``, ``category``, ``method``). A failed prediction counts as wrong, and so does an abstention
    (``uncertain``): ``accuracy`` is over all videos, ``answered_accuracy`` over those given a fake or real label.
    Columns: ``by`` (all, category, method), ``value``, ``videos``, ``correct``, ``abstained``, ``accuracy``,
    ``answered_accuracy``.
    """
    df = truth[["path", "label", "category", "method"]].merge(
        predictions[["path", "status", "label"]], on="path", how="left", suffixes=("", "_pred"))
    df["correct"] = (df["status"] == "ok") & (df["label_pred"] == df["label"])
    df["abstained"] = df["label_pred"] == "uncertain"
    df["all"] = "all"
    rows = []
    for by in ("all", "category", "method"):
        for value, g in df.groupby(by, sort=True):
            answered = len(g) - int(g["abstained"].sum())
            rows.append({"by": by, "value": str(value), "videos": len(g), "correct": int(g["correct"].sum()),
                         "abstained": int(g["abstained"].sum()), "accuracy": float(g["correct"].mean()),
                         "answered_accuracy": float(g["correct"].sum() / answered) if answered else float("nan")})
    return pd.DataFrame(rows, columns=["by", "value", "videos", "correct", "abstained", "accuracy",
                                       "answered_accuracy"])


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
    from dfdetect.metrics import roc_auc

    out = {"all": roc_auc(v["fake_label"], v[score])}
    for g, sub in v[v["fake_label"] == 1].groupby("group"):
        both = pd.concat([real, sub])
        out[g] = roc_auc(both["fake_label"], both[score])
    return out


# ---------------------------------------------------------------------------------------------------------
# Segments and the whole evaluation of a run
# ---------------------------------------------------------------------------------------------------------

def predicted_segments(windows: pd.DataFrame, seconds: float, threshold: float = 0.5,
                       score: str = "fake_score") -> dict[str, list[tuple[float, float, float]]]:
    """Contiguous windows scoring above ``threshold`` merged into (start, end, mean score) per video."""
    from dfdetect.metrics import merge_segments

    out: dict[str, list[tuple[float, float, float]]] = {}
    for path, g in windows.sort_values("start").groupby("path"):
        merged = merge_segments([(a, a + seconds, x) for a, x in zip(g["start"], g[score])], threshold)
        out[path] = [(round(a, 3), round(b, 3), x) for a, b, x in merged]
    return out


def evaluate_run(run_dir: str | Path, data_dir: str | Path, out_dir: str | Path, split: str = "test",
                 which: str = "best", bootstrap: int = 1000, progress: bool = True) -> dict:
    """Scores ``split`` of ``data_dir`` with a run's model and writes ``metrics.json``, ``per_video.csv``,
    ``per_window.csv``, ``familiarity.npz`` and ``report.html`` into ``out_dir``. The decision threshold, the
    temperature and the familiarity threshold are fitted on the ``val`` split when it has windows; the
    familiarity statistics on the ``train`` split. ``metrics.json["selective"]`` holds the abstention rate and
    the metrics on the videos kept (coverage and risk) beside those on all videos."""
    import json

    from dfdetect import metrics as M
    from dfdetect.config import load_config
    from dfdetect.errors import BadArgument
    from dfdetect.familiarity import fit_reference, video_distances, with_embedding
    from dfdetect.pipeline import count_windows
    from dfdetect.preprocess import check_data_config, load_manifest
    from dfdetect.train import load_run_model

    run, data, out = Path(run_dir), Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(run / "config.yaml")
    check_data_config(config, data)  # a run scored on data cut another way is refused, naming the fields
    # one model with the familiarity embedding serves every pass below (test, val, the training statistics)
    model = with_embedding(load_run_model(run, which))
    test_w = window_scores(model, data, config, split, thumbnails=True, embeddings=True)
    if test_w.empty:
        raise BadArgument(f"{data} has no windows in split {split!r}")
    test_v = video_scores(test_w)
    # No val split (or no windows in it): threshold 0.5 and no temperature. Only that case: an exception while
    # scoring val is a bug and must not pass as a missing split.
    val_w = window_scores(model, data, config, "val", embeddings=True) if count_windows(data, "val") \
        else pd.DataFrame()
    val_v = video_scores(val_w) if not val_w.empty else pd.DataFrame()
    has_val = not val_v.empty and val_v["fake_label"].nunique() == 2
    threshold, rule = M.choose_threshold(val_v["fake_label"], val_v["fake_score"]) if has_val else (None, None)
    temperature = M.fit_temperature(val_v["fake_label"], val_v["fake_score"]) if has_val else 1.0

    # Familiarity: statistics of the training windows' embeddings, threshold from held-out val videos.
    held = (val_w.attrs["embeddings"], val_w["path"]) if not val_w.empty else None
    ref = fit_reference(model, data, config, held_out=held)
    ref.save(out)
    test_w["distance"] = ref.window_distances(test_w.attrs["embeddings"])
    dist = video_distances(ref, test_w.attrs["embeddings"], test_w["path"])
    test_v["distance"] = test_v["path"].map(dist)
    test_v["familiarity"] = [ref.familiarity(d) for d in test_v["distance"]]
    test_v["in_distribution"] = test_v["distance"] <= ref.threshold

    manifest = load_manifest(data)
    groups = None
    if "group" in manifest:
        g = test_v["path"].map(dict(zip(manifest["path"], manifest["group"].astype(str))))
        if g.notna().all() and g.nunique() < len(g):
            groups = g.to_numpy()  # identities: bootstrap resamples them, not videos

    results: dict = {"run": str(run), "data": str(data), "split": split, "model": which,
                     "videos": int(len(test_v)), "windows": int(len(test_w)), "val_threshold": threshold,
                     "threshold_rule": rule, "temperature": temperature}
    results["video"] = M.binary_report(test_v["fake_label"], test_v["fake_score"], threshold, bootstrap,
                                       groups=groups)
    results["video_confident"] = M.binary_report(test_v["fake_label"], test_v["fake_score_confident"],
                                                 threshold, 0)
    calibrated = M.apply_temperature(test_v["fake_score"], temperature)
    results["video_calibrated"] = {"log_loss": M.log_loss(test_v["fake_label"], calibrated),
                                   "ece": M.ece_top_label(test_v["fake_label"], calibrated),
                                   "ece_top_label": M.ece_top_label(test_v["fake_label"], calibrated),
                                   "ece_fake_class": M.ece(test_v["fake_label"], calibrated)}
    results["window"] = M.binary_report(test_w["fake_label"], test_w["fake_score"], threshold, 0)
    # Selective prediction: what abstaining on unfamiliar videos costs (coverage) and buys (risk).
    t = threshold if threshold is not None else 0.5
    accepted = test_v["in_distribution"].to_numpy()
    sel = M.selective_report(test_v["fake_label"], test_v["fake_score"], t, accepted)
    curve = M.coverage_curve(test_v["fake_label"], test_v["fake_score"], t, -test_v["distance"].to_numpy())
    results["familiarity"] = ref.summary()
    results["selective"] = {**sel, "abstention_rate": float(1 - accepted.mean()), "aurc": curve["aurc"],
                            "accepted": M.binary_report(test_v.loc[accepted, "fake_label"],
                                                        test_v.loc[accepted, "fake_score"], threshold, 0)}
    results["heads"] = {h: {"auc": M.roc_auc(test_v[f"{h}_label"], test_v[f"{h}_score"]),
                            "ap": M.average_precision(test_v[f"{h}_label"], test_v[f"{h}_score"])}
                        for h in HEADS if (test_v[f"{h}_label"] >= 0).any()}
    results["per_category"] = auc_by_category(test_v)
    results["per_method"] = {m: M.roc_auc(pd.concat([test_v[test_v.fake_label == 0], g])["fake_label"],
                                          pd.concat([test_v[test_v.fake_label == 0], g])["fake_score"])
                             for m, g in test_v[test_v.fake_label == 1].groupby("method")}

    results["per_dataset"] = {d: M.binary_report(g["fake_label"], g["fake_score"], threshold, 0)
                              for d, g in test_v.groupby("dataset")}

    segs_true = {}
    if "fake_segments" in manifest:
        for p, s in zip(manifest["path"], manifest["fake_segments"]):
            if p in set(test_v["path"]) and isinstance(s, str) and s not in ("", "[]"):
                segs_true[p] = [tuple(x) for x in json.loads(s)]
    if segs_true:
        preds = predicted_segments(test_w[test_w["path"].isin(segs_true)], config.window.seconds,
                                   threshold or 0.5)
        results["segments"] = {"videos": len(segs_true),
                               **{f"ap@{t}": M.segment_ap(preds, segs_true, t) for t in (0.5, 0.75, 0.95)},
                               **{f"ar@{n}": M.segment_ar(preds, segs_true, n) for n in (1, 5, 10)}}

    test_v["prediction"] = np.where(test_v["fake_score"] >= (threshold or 0.5), "fake", "real")
    test_v.to_csv(out / "per_video.csv", index=False)
    test_w.to_csv(out / "per_window.csv", index=False)
    test_w.attrs.pop("embeddings", None)
    (out / "metrics.json").write_text(json.dumps(_jsonable(results), indent=1))
    from dfdetect.report import write_report

    write_report(out, results, test_v, test_w, run, config, test_w.attrs.get("thumbnails", {}), curve)
    return results


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x
