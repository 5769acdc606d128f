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
from dfdetect.heads import FRAME_HEADS, HEADS
from dfdetect.metrics import (  # noqa: F401  (re-exported: the rules predict shares live in the light module)
    MODALITY_HEADS,
    confident_mean,
    frames_of,
    modality_tracks,
)


def window_scores(model, data_dir: str | Path, config: Config, split: str | None = "test",
                  batch_size: int = 32, thumbnails: bool = False, embeddings: bool = False) -> pd.DataFrame:
    """One row per window: path, start, category, method, each head's label (-1 unknown) and score.
    With ``thumbnails``, ``df.attrs["thumbnails"]`` maps each video to a face crop from its most
    suspicious window (for the report's worst errors). With ``embeddings``, ``df.attrs["embeddings"]`` holds
    each row's pooled embedding (``dfdetect.familiarity``), from the same forward pass. A model with frame-level
    heads adds ``df.attrs["frame_scores"]``: ``{frame_head: (windows, T) array}``, row for row, and each row's
    ``first_frame`` (its first step on the video's frame grid) for ``localisation``."""
    from dfdetect.pipeline import make_dataset

    if embeddings:
        from dfdetect.familiarity import with_embedding

        model = with_embedding(model)
    ds = make_dataset(data_dir, config, split, training=False, batch_size=batch_size, with_meta=True)
    rows = []
    embs = []
    frame_scores: dict[str, list[np.ndarray]] = {}
    thumbs: dict[str, tuple[float, np.ndarray]] = {}
    for inputs, targets, weights, meta in ds:
        preds = model.predict_on_batch(inputs)
        if embeddings:
            embs.append(np.asarray(preds["embedding"], np.float32))
        for h in FRAME_HEADS:
            if h in preds:
                x = np.asarray(preds[h], np.float32)
                frame_scores.setdefault(h, []).append(x.reshape(x.shape[0], -1))
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
                   "dataset": meta["dataset"][i].numpy().decode(), "first_frame": int(meta["first_frame"][i])}
            for h in HEADS:
                known = float(weights[h][i]) > 0
                row[f"{h}_label"] = int(targets[h][i][0]) if known else -1
                row[f"{h}_video_label"] = int(meta[f"{h}_video_label"][i])
                row[f"{h}_score"] = float(np.asarray(preds[h])[i].reshape(-1)[0])
            rows.append(row)
    df = pd.DataFrame(rows)
    if frame_scores:
        df.attrs["frame_scores"] = {h: np.concatenate(v) for h, v in frame_scores.items()}
    if embeddings:
        df.attrs["embeddings"] = np.concatenate(embs) if embs else np.zeros((0, 0), np.float32)
    if thumbnails:
        df.attrs["thumbnails"] = {p: img for p, (_, img) in thumbs.items()}
    return df


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


REPORTED_APART = ("reenact", "resample", "lpc")  # = dfdetect.synth.UNSEEN_METHODS (tests/test_synth.py checks)


def group_key(row) -> str:
    """The category a video is reported under: lip-sync and desync fakes apart from other C fakes, and the
    benchmark's methods that no model trains on by default (``dfdetect.synth.UNSEEN_METHODS``) apart from the
    ones it does, e.g. ``C-reenact``, ``B-lpc``."""
    if row["method"] in ("lipsync", "desync", *REPORTED_APART):
        return f"{row['category']}-{row['method']}"
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

def video_tracks(windows: pd.DataFrame, config: Config, n_frames: dict[str, int] | None = None,
                 ) -> dict[str, dict[str, np.ndarray]]:
    """Every video's ``modality_tracks``: ``{path: {modality: (n_frames,) array}}`` from ``window_scores``'
    rows and frame scores."""
    fps, T = config.media.fps, config.frames_per_window
    frame_scores = windows.attrs.get("frame_scores", {})
    if "first_frame" in windows and (windows["first_frame"] >= 0).all():
        first = windows["first_frame"].to_numpy(int)
    else:  # shards written before first_frame was stored: the start is on the frame grid
        first = np.round(windows["start"].to_numpy(float) * fps).astype(int)
    window_heads = [wh for _, wh in MODALITY_HEADS.values()]
    out: dict[str, dict[str, np.ndarray]] = {}
    for path, idx in windows.groupby("path", sort=True).indices.items():
        out[path] = modality_tracks(first[idx], {h: s[idx] for h, s in frame_scores.items()},
                                    {h: windows[f"{h}_score"].to_numpy(np.float32)[idx] for h in window_heads},
                                    T, (n_frames or {}).get(path, 0))
    return out


def true_segments(manifest: pd.DataFrame, paths, modality: str = "any") -> dict[str, list[tuple[float, float]]]:
    """The true fake segments of ``modality`` per video, clipped to its duration: a wholly fake clip is one
    segment over all of it, a real one has none. Videos whose label for that modality is unknown are left
    out (they can be neither right nor wrong)."""
    from dfdetect.records import VideoRecord

    wanted = set(paths)
    out: dict[str, list[tuple[float, float]]] = {}
    for row in manifest.to_dict("records"):
        if row["path"] not in wanted:
            continue
        rec = VideoRecord.from_row(row)
        segs = rec.modality_segments(modality)
        if segs is None:
            continue
        duration = float(row.get("duration") or 0.0)
        if not segs:
            fake = rec.fake if modality == "any" else (rec.video_fake if modality == "video" else rec.audio_fake)
            out[rec.path] = [(0.0, duration)] if fake == 1 and duration > 0 else []
            continue
        clipped = [(max(0.0, a), min(b, duration) if duration > 0 else b) for a, b in segs]
        out[rec.path] = [(a, b) for a, b in clipped if b > a]
    return out


def localisation(windows: pd.DataFrame, manifest: pd.DataFrame, config: Config) -> tuple[dict, pd.DataFrame]:
    """Temporal localisation of a split, per modality, the way LAV-DF and AV-Deepfake1M score it: every video
    stitched into one per-frame track, a ranked list of segment proposals per video (``dfdetect.segments``),
    segment AP at IoU 0.5/0.75/0.9/0.95 and AR@1/5/10/20/50 averaged over IoU 0.5:0.05:0.95 over **every**
    video (real and wholly fake ones included), and frame-level ROC AUC over all frames.

    Returns the metrics (``{modality: {...}}``) and one row per video and modality (``path``, ``modality``,
    true segments, the top proposals, the top proposal's IoU with the truth it overlaps most, the track)."""
    from dfdetect import metrics as M
    from dfdetect.segments import frame_labels_from_segments, propose

    fps = config.media.fps
    durations = dict(zip(manifest["path"], pd.to_numeric(manifest.get("duration"), errors="coerce")))
    paths = sorted(windows["path"].unique())
    tracks = video_tracks(windows, config, {p: frames_of(durations.get(p), fps) for p in paths})
    results, rows = {}, []
    for modality in MODALITY_HEADS:
        truths = true_segments(manifest, paths, modality)
        if not any(truths.values()):
            continue
        preds, scores, labels = {}, [], []
        for p, segs in truths.items():
            track = tracks[p][modality]  # the video's frames (all windows' when its duration is unknown)
            dur = len(track) / fps if not frames_of(durations.get(p), fps) else float(durations[p])
            preds[p] = propose(track, fps, duration=dur)
            scores.append(track)
            labels.append(frame_labels_from_segments(segs, len(track), fps))
            top = preds[p][0] if preds[p] else None
            iou = max((M.segment_iou(top[:2], t) for t in segs), default=float("nan")) if top else 0.0
            rows.append({"path": p, "modality": modality, "true_segments": [list(map(float, t)) for t in segs],
                         "proposals": [[round(a, 3), round(b, 3), round(float(c), 4)] for a, b, c in preds[p][:5]],
                         "top_iou": iou, "top_score": float(top[2]) if top else 0.0,
                         "track": np.round(track, 4)})
        res = M.localisation_metrics(preds, truths)
        res["frame_auc"] = M.frame_auc(np.concatenate(scores), np.concatenate(labels))
        res["frames"] = int(sum(len(x) for x in labels))
        results[modality] = res
    return results, pd.DataFrame(rows)


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

    # Where: segment AP/AR over every test video, per modality, from the frame-level tracks.
    loc, loc_rows = localisation(test_w, manifest, config)
    if loc:
        results["localisation"] = loc
        any_rows = loc_rows[loc_rows["modality"] == "any"].set_index("path")
        test_v["segments_true"] = test_v["path"].map(lambda p: json.dumps(any_rows["true_segments"].get(p, [])))
        test_v["segments_predicted"] = test_v["path"].map(lambda p: json.dumps(any_rows["proposals"].get(p, [])))
        test_v["segment_iou"] = test_v["path"].map(any_rows["top_iou"])

    test_v["prediction"] = np.where(test_v["fake_score"] >= (threshold or 0.5), "fake", "real")
    test_v.to_csv(out / "per_video.csv", index=False)
    test_w.to_csv(out / "per_window.csv", index=False)
    test_w.attrs.pop("embeddings", None)
    (out / "metrics.json").write_text(json.dumps(_jsonable(results), indent=1))
    from dfdetect.report import write_report

    write_report(out, results, test_v, test_w, run, config, test_w.attrs.get("thumbnails", {}), curve,
                 localisation=loc_rows)
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
