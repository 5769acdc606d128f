"""Detection metrics as the deepfake literature reports them (numpy + scikit-learn, no TensorFlow).

Binary scores: ROC AUC (with a bootstrap interval over videos or identities), equal error rate, average
precision, accuracy, F1 and false-positive rate at a threshold, a validation-chosen threshold, log loss (the
DFDC metric), expected calibration error (top-label and fake-class), and temperature scaling fitted on
validation data. Selective prediction: risk and coverage when the detector abstains. Temporal localisation
(LAV-DF, AV-Deepfake1M): segment AP at IoU thresholds and AR@N.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _keep(labels, scores) -> np.ndarray:
    """The samples every metric uses: a known label (0 or 1; NaN and -1 mean unknown) and a finite score."""
    y = np.asarray(labels, float).reshape(-1)
    s = np.asarray(scores, float).reshape(-1)
    return (y >= 0) & np.isfinite(s)


def _clean(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, float).reshape(-1)
    s = np.asarray(scores, float).reshape(-1)
    keep = _keep(y, s)
    return y[keep].astype(int), s[keep]


def _aligned(values, keep: np.ndarray, name: str) -> np.ndarray:
    """``values`` (one per sample, before cleaning) restricted to the samples ``_clean`` keeps."""
    v = np.asarray(values).reshape(-1)
    if len(v) != len(keep):
        raise ValueError(f"{name} has {len(v)} entries for {len(keep)} labels")
    return v[keep]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve; NaN when only one class is present. Unknown labels (-1) are ignored."""
    from sklearn.metrics import roc_auc_score

    y, s = _clean(labels, scores)
    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else float("nan")


def bootstrap_auc(labels, scores, n: int = 1000, seed: int = 0, alpha: float = 0.05,
                  groups=None) -> tuple[float, float]:
    """A percentile bootstrap (1 - alpha) interval for ROC AUC.

    Without ``groups`` it resamples videos with replacement. With ``groups`` (one identity per sample, e.g. the
    person filmed) it resamples identities with replacement and takes all their videos - a cluster bootstrap:
    videos of one person score alike, so they are not independent draws, and resampling them one by one
    gives an interval too narrow for a new set of people. Resamples holding one class only are skipped; NaN
    when none is left.
    """
    keep = _keep(labels, scores)
    y, s = _clean(labels, scores)
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    vals = []
    if groups is None:
        # the original stream of draws, so that intervals without groups are what they always were
        draws = (rng.integers(0, len(y), len(y)) for _ in range(n))
    else:
        _, inverse = np.unique(_aligned(groups, keep, "groups").astype(str), return_inverse=True)
        members = [np.nonzero(inverse == g)[0] for g in range(inverse.max() + 1)]
        draws = (np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
                 for _ in range(n))
    for idx in draws:
        if len(np.unique(y[idx])) == 2:
            vals.append(roc_auc(y[idx], s[idx]))
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def eer(labels, scores) -> tuple[float, float]:
    """Equal error rate and the threshold where false-positive and false-negative rates meet
    (interpolated between ROC points)."""
    from sklearn.metrics import roc_curve

    y, s = _clean(labels, scores)
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    fpr, tpr, thr = roc_curve(y, s)
    fnr = 1 - tpr
    diff = fpr - fnr
    i = int(np.nonzero(diff >= 0)[0][0])
    if i == 0 or diff[i] == 0:
        return float((fpr[i] + fnr[i]) / 2), float(thr[i])
    # linear interpolation between the two ROC points around the crossing
    w = diff[i] / (diff[i] - diff[i - 1])
    rate = fpr[i] - w * (fpr[i] - fpr[i - 1])
    t = thr[i] - w * (thr[i] - thr[i - 1]) if np.isfinite(thr[i - 1]) else thr[i]
    return float(rate), float(t)


def average_precision(labels, scores) -> float:
    from sklearn.metrics import average_precision_score

    y, s = _clean(labels, scores)
    return float(average_precision_score(y, s)) if y.any() else float("nan")


def at_threshold(labels, scores, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall (TPR), specificity (TNR), false-positive rate on reals (FPR), F1 and
    balanced accuracy at a threshold (fake when score >= threshold). Precision, recall and specificity are 0
    when undefined (as they always were); FPR is NaN without reals, so that it never reads as "no false alarms"."""
    y, s = _clean(labels, scores)
    pred = (s >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    spec = tn / (tn + fp) if tn + fp else 0.0
    fpr = fp / (fp + tn) if tn + fp else float("nan")
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"threshold": float(threshold), "accuracy": (tp + tn) / max(1, len(y)), "precision": prec,
            "recall": rec, "specificity": spec, "fpr": fpr, "f1": f1, "balanced_accuracy": (rec + spec) / 2,
            "tp": tp, "tn": tn, "fp": fp, "fn": fn}


def best_threshold(labels, scores, criterion: str = "balanced_accuracy") -> float:
    """The threshold maximising ``criterion`` on (validation) data.

    Candidates sit midway between consecutive distinct scores (never on a score, where one video decides), plus
    0.5; of the ties, the one closest to 0.5 wins. A small validation split that separates perfectly leaves a
    wide plateau, and its lowest edge (the least fake-looking fake) is the worst place to cut: test reals then
    land above it. ``choose_threshold`` handles that case by the margin instead.
    """
    y, s = _clean(labels, scores)
    u = np.unique(s)
    candidates = np.unique(np.concatenate([(u[:-1] + u[1:]) / 2, [0.5]]))
    values = np.array([at_threshold(y, s, t)[criterion] for t in candidates])
    ties = candidates[values >= values.max() - 1e-12]
    return float(ties[np.argmin(np.abs(ties - 0.5))])


def _is_prob(s: np.ndarray) -> bool:
    return bool(len(s)) and bool(((s >= 0) & (s <= 1)).all())


def _cut_between(lo: np.ndarray, hi: np.ndarray, prob: bool) -> np.ndarray:
    """A threshold t with lo < t <= hi for each pair (lo < hi): the midpoint in logit space for probabilities,
    else the plain midpoint. ``_logit`` clips at 1e-7 (float32 sigmoid outputs reach exactly 1 near 1 - 6e-8),
    so an exact 0 counts as logit -16 rather than pushing the cut to 1e-300; where both ends clip to the
    same value the logit midpoint would leave the gap, and the plain midpoint is used instead."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    mid = (lo + hi) / 2
    if prob:
        z = (_logit(lo) + _logit(hi)) / 2
        t = 1 / (1 + np.exp(-z))
        mid = np.where((t > lo) & (t <= hi), t, mid)
    # adjacent floats: the midpoint rounds onto lo, and only hi itself separates
    return np.where(mid > lo, mid, hi)


TARGET_FPR = 0.01
MIN_REALS_FOR_FPR = 8


def choose_threshold(labels, scores, target_fpr: float | None = TARGET_FPR) -> tuple[float, str]:
    """The decision threshold to carry from validation to test, and the name of the rule that chose it.

    - ``"target_fpr"`` (probability scores, ``target_fpr`` set, at least ``MIN_REALS_FOR_FPR`` validation
      reals): the cut a normal fit of the validation reals' logits puts ``target_fpr`` (1%) of reals above, but
      never below the highest validation real. Calling a real video fake is the costly error for the people
      who use a detector, and a fit to all the reals does not hinge on the one highest real of a small split:
      on the demo model the gap rule below cut at 0.0342 between a real at 0.0342 and a fake at 0.0343, and 2
      of 20 test reals (0.038, 0.045) then scored above it; this rule cut at 0.0455 and called none of them
      fake, though the highest sat just under it (README, "Training results").
      The other rules apply without enough reals, for scores that are not probabilities, or with
      ``target_fpr=None``:

    - ``"logit_midpoint"``: validation separates the classes (highest real < lowest fake). Every cut in the
      gap scores 100% on validation, so accuracy cannot choose; the midpoint of the gap in logit space is the
      max-margin cut for sigmoid outputs, which crowd near 0 and 1 where a plain midpoint (or the gap's edge,
      which ``best_threshold`` can land on) sits next to one class. One added validation point inside the gap
      moves it by half that point's logit distance from the old edge, never onto an edge.
      Scores outside [0, 1] are not probabilities: the plain midpoint, ``"midpoint"``.
    - ``"balanced_accuracy"``: classes overlap; the cut maximising balanced accuracy among cuts between
      consecutive distinct scores (never on a score, where one video decides). Ties - a plateau - go to the
      cut nearest the midpoint of the two classes' mean logits: that is where the bulk of each class is
      furthest away (the cut an equal-variance Gaussian model of the logits would place for balanced classes),
      so it depends on the classes as a whole rather than on the one video at the plateau's edge, and unlike
      "nearest 0.5" it follows a detector whose scores are shifted.
    - ``"default"``: 0.5 when only one class (or nothing) has a known label, or every score is the same.

    Labels NaN or -1 (unknown) and non-finite scores are ignored, as everywhere in this module.
    """
    y, s = _clean(labels, scores)
    if len(np.unique(y)) < 2:
        return 0.5, "default"
    prob = _is_prob(s)
    real_max, fake_min = s[y == 0].max(), s[y == 1].min()
    if prob and target_fpr and (y == 0).sum() >= MIN_REALS_FOR_FPR:
        from scipy.stats import norm

        z = _logit(s[y == 0])
        cut = float(1 / (1 + np.exp(-(z.mean() + norm.ppf(1 - target_fpr) * z.std(ddof=1)))))
        # strictly above the highest real: never call a validation real fake
        return float(max(cut, np.nextafter(real_max, 1.0))), "target_fpr"
    if real_max < fake_min:
        return float(_cut_between(real_max, fake_min, prob)), "logit_midpoint" if prob else "midpoint"
    u = np.unique(s)
    if len(u) < 2:  # every video scored alike: no cut tells the classes apart
        return 0.5, "default"
    candidates = _cut_between(u[:-1], u[1:], prob)
    # balanced accuracy for every candidate at once: reals below the cut are right, fakes at or above it
    real, fake = np.sort(s[y == 0]), np.sort(s[y == 1])
    tnr = np.searchsorted(real, candidates, side="left") / len(real)
    tpr = 1 - np.searchsorted(fake, candidates, side="left") / len(fake)
    bal = (tnr + tpr) / 2
    ties = candidates[bal >= bal.max() - 1e-12]
    f = _logit if prob else (lambda v: np.asarray(v, float))
    centre = (f(s[y == 0]).mean() + f(s[y == 1]).mean()) / 2
    return float(ties[np.argmin(np.abs(f(ties) - centre))]), "balanced_accuracy"


def log_loss(labels, scores, eps: float = 1e-15) -> float:
    """Binary cross-entropy with probabilities clipped to [eps, 1 - eps] (DFDC clipped to 1e-15)."""
    y, s = _clean(labels, scores)
    p = np.clip(s, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else float("nan")


def calibration_bins(labels, scores, bins: int = 10) -> list[dict[str, float]]:
    """Equal-width reliability bins of the fake-class probability over [0, 1) (the last bin closed): count,
    mean score ("confidence") and observed fake rate ("accuracy") per bin."""
    y, s = _clean(labels, scores)
    edges = np.linspace(0, 1, bins + 1)
    return _bin_table(edges, np.clip(np.digitize(s, edges[1:-1]), 0, bins - 1), s, y)


def _bin_table(edges: np.ndarray, idx: np.ndarray, confidence: np.ndarray, outcome: np.ndarray,
               ) -> list[dict[str, float]]:
    """Per bin ``b`` (samples with ``idx == b``): its edges, count, mean confidence and mean outcome."""
    out = []
    for b in range(len(edges) - 1):
        m = idx == b
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(m.sum()),
                    "confidence": float(confidence[m].mean()) if m.any() else float("nan"),
                    "accuracy": float(outcome[m].mean()) if m.any() else float("nan")})
    return out


def ece(labels, scores, bins: int = 10) -> float:
    """Expected calibration error of the fake-class probability: the count-weighted gap between the mean score
    and the observed fake rate over ``calibration_bins``. Not the number papers report; see ``ece_top_label``."""
    return _ece_from_bins(calibration_bins(labels, scores, bins))


def _ece_from_bins(table: list[dict[str, float]]) -> float:
    total = sum(b["count"] for b in table)
    if not total:
        return float("nan")
    return float(sum(b["count"] / total * abs(b["confidence"] - b["accuracy"]) for b in table if b["count"]))


def top_label_bins(labels, scores, bins: int = 10) -> list[dict[str, float]]:
    """Reliability bins of the predicted label's confidence, as Guo et al. (2017) bin it: confidence
    max(p, 1 - p), correct when (p >= 0.5) == label, ``bins`` equal-width bins over [0, 1] closed on the right
    ((lo, hi], as their reference code). In a binary problem confidence is at least 0.5, so the lower half of
    the bins is always empty; binning [0, 1] rather than [0.5, 1] keeps the figure comparable with papers that
    report ECE with the same bin count for a 2-way softmax. Per bin: count, mean confidence, accuracy."""
    y, s = _clean(labels, scores)
    conf = np.maximum(s, 1 - s)
    correct = ((s >= 0.5).astype(int) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    # right-closed bins: index b holds edges[b] < conf <= edges[b + 1]
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    return _bin_table(edges, idx, conf, correct)


def ece_top_label(labels, scores, bins: int = 10) -> float:
    """Expected calibration error of the top label (Guo et al. 2017), the calibration figure the literature
    reports: the count-weighted gap between confidence and accuracy over ``top_label_bins``. It pools a video
    scored p with one scored 1 - p (same confidence), so over- and under-confidence on the two sides can
    add up or cancel differently than in ``ece`` (fake-class probability): either can be the larger."""
    return _ece_from_bins(top_label_bins(labels, scores, bins))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def fit_temperature(labels, scores) -> float:
    """Temperature T minimising log loss of sigmoid(logit(score) / T) on validation data."""
    from scipy.optimize import minimize_scalar

    y, s = _clean(labels, scores)
    z = _logit(s)

    def nll(log_t: float) -> float:
        return log_loss(y, 1 / (1 + np.exp(-z / np.exp(log_t))))

    res = minimize_scalar(nll, bounds=(-3, 3), method="bounded")
    return float(np.exp(res.x))


def apply_temperature(scores, temperature: float) -> np.ndarray:
    return 1 / (1 + np.exp(-_logit(np.asarray(scores, float)) / temperature))


def binary_report(labels, scores, threshold: float | None = None, bootstrap: int = 1000,
                  groups=None) -> dict[str, float | int | str]:
    """Everything above for one set of scores; ``threshold`` (chosen on validation data) adds a second
    operating point beside 0.5.

    Calibration: ``ece_top_label`` (Guo et al., what papers report), ``ece_fake_class`` (the fake-probability
    version, ``ece``), and ``ece``, kept for existing readers and equal to ``ece_top_label``.
    ``groups`` (one identity per sample) makes the AUC interval a cluster bootstrap over identities;
    ``bootstrap_unit`` says which ("group" or "video")."""
    keep = _keep(labels, scores)
    y, s = _clean(labels, scores)
    g = _aligned(groups, keep, "groups") if groups is not None else None
    rate, eer_t = eer(y, s)
    lo, hi = bootstrap_auc(y, s, n=bootstrap, groups=g) if bootstrap else (float("nan"), float("nan"))
    out = {"n": int(len(y)), "positives": int(y.sum()), "auc": roc_auc(y, s), "auc_ci_low": lo, "auc_ci_high": hi,
           "eer": rate, "eer_threshold": eer_t, "ap": average_precision(y, s), "log_loss": log_loss(y, s)}
    out["ece_top_label"] = ece_top_label(y, s)
    out["ece_fake_class"] = ece(y, s)
    out["ece"] = out["ece_top_label"]
    out["bootstrap_unit"] = "group" if g is not None else "video"
    at = at_threshold(y, s, 0.5)
    out.update({f"{k}@0.5": v for k, v in at.items() if k != "threshold"})
    if threshold is not None:
        at = at_threshold(y, s, threshold)
        out["val_threshold"] = float(threshold)
        out.update({f"{k}@val": v for k, v in at.items() if k != "threshold"})
    return out


# --- selective prediction (abstention) -------------------------------------------------------------------

def selective_report(labels, scores, threshold: float, accepted) -> dict[str, float | int]:
    """A detector that abstains (e.g. on videos flagged out of distribution), judged on what it accepts.

    ``accepted``: one boolean per sample, True where the detector gives a verdict. Samples with an unknown label
    or a non-finite score are dropped first, so coverage is the accepted share of the scorable, labelled videos.
    Keys: n, n_accepted, coverage, risk (error rate at ``threshold`` on the accepted), accuracy_all,
    accuracy_accepted, auc_all, auc_accepted; NaN where undefined (nothing accepted, one class only).
    """
    keep = _keep(labels, scores)
    y, s = _clean(labels, scores)
    acc = _aligned(accepted, keep, "accepted").astype(bool)
    correct = (s >= threshold).astype(int) == y
    n, k = len(y), int(acc.sum())
    nan = float("nan")
    return {"n": n, "n_accepted": k, "coverage": k / n if n else nan,
            "risk": float(1 - correct[acc].mean()) if k else nan,
            "accuracy_all": float(correct.mean()) if n else nan,
            "accuracy_accepted": float(correct[acc].mean()) if k else nan,
            "auc_all": roc_auc(y, s), "auc_accepted": roc_auc(y[acc], s[acc])}


def coverage_curve(labels, scores, threshold: float, familiarity) -> dict[str, np.ndarray | float]:
    """The risk-coverage curve: videos admitted from most to least familiar, error rate at ``threshold`` after
    each admission.

    ``familiarity``: one number per sample, higher = more familiar = admitted first (pass minus an
    out-of-distribution score). NaN familiarity counts as least familiar (-inf in the returned
    ``familiarity``). Within ties the order is unknowable,
    so each tied video carries the tie block's mean error: the curve is the expectation over tie orders and
    does not depend on input order (constant familiarity gives a flat curve at the overall error rate).

    Returns arrays over k = 1..n admitted: ``coverage`` (k / n), ``risk``, ``accuracy`` (1 - risk),
    ``familiarity`` (of the k-th admitted, the abstention cut that gives that coverage); and floats ``aurc``,
    the area under the risk-coverage curve as Geifman et al. (2018) compute it (mean risk over k = 1..n, lower
    is better), and ``eaurc``, its excess over the best ordering of the same errors (errors admitted last), so
    detectors with different error rates compare on ranking alone. Unknown labels and non-finite scores are
    dropped; empty arrays and NaN for no samples.
    """
    keep = _keep(labels, scores)
    y, s = _clean(labels, scores)
    fam = _aligned(familiarity, keep, "familiarity").astype(float)
    fam = np.where(np.isnan(fam), -np.inf, fam)
    err = ((s >= threshold).astype(int) != y).astype(float)
    order = np.argsort(-fam, kind="stable")
    fam, err = fam[order], err[order]
    # mean error within each block of equal familiarity
    _, block, size = np.unique(fam, return_inverse=True, return_counts=True)
    err = np.bincount(block, weights=err)[block] / size[block]
    n = len(y)
    k = np.arange(1, n + 1)
    risk = np.cumsum(err) / k
    # the best ordering of the same errors: all n_err of them admitted last
    n_err = err.sum()
    best = np.maximum(0.0, k - (n - n_err)) / k
    aurc = float(risk.mean()) if n else float("nan")
    return {"coverage": k / max(n, 1), "risk": risk, "accuracy": 1 - risk, "familiarity": fam,
            "aurc": aurc, "eaurc": aurc - float(best.mean()) if n else float("nan")}


# --- temporal localisation -------------------------------------------------------------------------------

def segment_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two intervals ``(start, end, ...)`` (extra fields ignored); 0 when both are empty."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


# IoU thresholds of AR@N in the AV-Deepfake1M protocol: 0.5:0.05:0.95 (linspace: arange's float steps can
# overshoot and yield an eleventh value)
AR_IOUS = tuple(float(x) for x in np.round(np.linspace(0.5, 0.95, 10), 2))
# A hit is IoU >= threshold in exact arithmetic; this slack absorbs the float rounding of frame times k / fps,
# so a frame-grid proposal whose IoU is exactly 3/4 counts at 0.75 however its ends were rounded.
_IOU_EPS = 1e-9


def _ranked(props: Sequence[Sequence[float]]) -> list[tuple[float, float, float]]:
    """A video's proposals ``(start, end, score)`` by score, descending; ties keep their input order."""
    return sorted(((float(p[0]), float(p[1]), float(p[2])) for p in props), key=lambda p: -p[2])


def segment_ap(predictions: dict[str, Sequence[tuple[float, float, float]]],
               truths: dict[str, Sequence[tuple[float, float]]], iou_threshold: float = 0.5) -> float:
    """Average precision of fake-segment proposals at one IoU threshold, as LAV-DF and AV-Deepfake1M score it.

    ``truths`` names every evaluated video (a real one, or one without segments, with an empty list: its
    proposals are false positives; a wholly fake one with ``[(0, duration)]``); ``predictions`` maps videos
    to ``(start, end, score)`` proposals. Videos missing from ``predictions`` have none; videos missing from
    ``truths`` are not evaluated (the reference iterates over the label file, so a subset is scored by passing
    its truths). NaN when there is no true segment at all; 0 when there are truths but no proposals.

    Matching: all proposals of all videos ranked together by score; in that order each takes the unmatched
    truth of its own video with the highest IoU, a true positive when that IoU >= ``iou_threshold``, else a
    false positive. Ties in score keep input order (a stable sort over videos in ``truths`` order, each
    video's proposals in list order), as the reference's ``sort(stable=True, descending=True)`` does.
    The reference (``ControlNet/AV-Deepfake1M`` ``src/loc_1d.rs`` ``get_ap_values``, the same as
    ``ControlNet/LAV-DF`` ``metrics.py`` ``AP.get_values``) matches label by label, each truth taking the
    first of its video's proposals with IoU > threshold not yet taken (in list order, which its
    post-processing writes by score). For thresholds >= 0.5 and truths that do not overlap (a proposal can
    then pass the threshold for one truth at most), both give every truth its highest-scored proposal over the
    threshold, and the two agree. One difference: the reference counts
    IoU > threshold, here IoU >= threshold (ActivityNet's rule, and exact ties are real on a frame grid,
    where a 0.75 IoU is the same 3/4 whatever the float rounding: see ``_IOU_EPS``).

    Interpolation: all-point (the precision envelope, the maximum precision at any recall at or above, summed
    over every recall step), the reference's (``calc_ap_curve`` / ``calculate_ap`` in ``loc_1d.rs``,
    ``AP.calculate_curve`` / ``AP.calculate_ap`` in LAV-DF) with one exception. That code
    builds the curve as the point (recall 1, precision 0) followed by the ranks in reverse and sums
    ``|diff(recall)| * cummax(precision)[:-1]``, which never counts the step from recall 0 to the first
    rank's recall: when the top-ranked proposal is a true positive it reports 1 / n_truths less than here (a
    perfect detector with one truth gets 0 there, 1 here), otherwise the same value. That step is counted
    here, as in ActivityNet's and PASCAL VOC's all-point AP; at benchmark size (tens of thousands of segments)
    the difference is below 1e-4.
    """
    n_true = sum(len(t) for t in truths.values())
    if n_true == 0:
        return float("nan")
    ranked = [(s, video, (a, b)) for video in truths for a, b, s in _ranked(predictions.get(video, ()))]
    if not ranked:
        return 0.0
    # stable: equal scores stay in the order built above
    ranked.sort(key=lambda r: -r[0])
    used = {video: [False] * len(t) for video, t in truths.items()}
    tp = np.zeros(len(ranked))
    for i, (_, video, seg) in enumerate(ranked):
        best, best_j = -1.0, -1
        for j, t in enumerate(truths[video]):
            o = segment_iou(seg, t)
            if not used[video][j] and o > best:
                best, best_j = o, j
        if best_j >= 0 and best >= iou_threshold - _IOU_EPS:
            used[video][best_j] = True
            tp[i] = 1
    tp_c = np.cumsum(tp)
    recall = tp_c / n_true
    precision = tp_c / np.arange(1, len(tp) + 1)
    # the precision envelope, then the area over each recall step (zero steps at false positives add nothing)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def segment_ar(predictions: dict[str, Sequence[tuple[float, float, float]]],
               truths: dict[str, Sequence[tuple[float, float]]], n: int = 10,
               iou_thresholds: Sequence[float] = AR_IOUS) -> float:
    """Average recall at N (AR@N) as AV-Deepfake1M scores it: the ``n`` highest-scored proposals of each video
    in ``truths`` (ties in input order), and a true segment found at an IoU threshold when any of them
    overlaps it with IoU >= the threshold. Recall pooled over all true segments of all videos, then averaged
    over ``iou_thresholds`` (0.5:0.05:0.95). NaN without true segments; ``truths`` and ``predictions`` as in
    ``segment_ap``.

    Not one-to-one, as in the reference (``ControlNet/AV-Deepfake1M`` ``src/loc_1d.rs`` ``calc_ar_values``,
    ``ControlNet/LAV-DF`` ``metrics.py`` ``AR.get_values``: the running maximum IoU of each truth over the
    top proposals, no proposal used up): one proposal may find two truths (at IoU >= 0.5 only when the truths
    overlap). Two differences: >= rather than the reference's > (see ``segment_ap``), and a video with truths
    but no proposal counts its truths as missed, where the reference's Rust code leaves them out of the
    denominator (its zero (TP, FN) array for an empty proposal list).
    """
    n_true = sum(len(t) for t in truths.values())
    if n_true == 0:
        return float("nan")
    thresholds = np.asarray(iou_thresholds, float)
    hits = np.zeros(len(thresholds))
    for video, ts in truths.items():
        top = _ranked(predictions.get(video, ()))[:n]
        for t in ts:
            best = max((segment_iou(p, t) for p in top), default=0.0)
            hits += best >= thresholds - _IOU_EPS
    return float(np.mean(hits / n_true))


def frame_auc(scores, labels) -> float:
    """Frame-level ROC AUC over the frames of all videos together; labels < 0 (and NaN) and non-finite scores
    are ignored, NaN with one class only.

    ``scores`` and ``labels``: one array per video, as two dicts (matched by video; videos only in ``scores``
    are ignored), two sequences in the same order, or two flat arrays. A video's two arrays must have the same
    length.
    """
    if isinstance(labels, dict):
        missing = [v for v in labels if v not in scores]
        if missing:
            raise ValueError(f"no frame scores for {len(missing)} labelled videos, e.g. {missing[0]!r}")
        pairs = [(scores[v], labels[v]) for v in labels]
    elif len(labels) and np.ndim(labels[0]) >= 1:
        if len(scores) != len(labels):
            raise ValueError(f"{len(scores)} score arrays for {len(labels)} label arrays")
        pairs = list(zip(scores, labels))
    else:
        pairs = [(scores, labels)]
    s_all, y_all = [], []
    for s, y in pairs:
        s, y = np.asarray(s, float).reshape(-1), np.asarray(y, float).reshape(-1)
        if len(s) != len(y):
            raise ValueError(f"{len(s)} frame scores for {len(y)} frame labels")
        s_all.append(s)
        y_all.append(y)
    if not s_all:
        return float("nan")
    return roc_auc(np.concatenate(y_all), np.concatenate(s_all))


def localisation_metrics(predictions: dict[str, Sequence[tuple[float, float, float]]],
                         truths: dict[str, Sequence[tuple[float, float]]],
                         ious: Sequence[float] = (0.5, 0.75, 0.9, 0.95),
                         ns: Sequence[int] = (1, 5, 10, 20, 50)) -> dict[str, float | int]:
    """The temporal localisation report: ``ap@<iou>`` for every IoU in ``ious`` (``segment_ap``), ``ar@<n>``
    for every N in ``ns`` (``segment_ar`` over IoU 0.5:0.05:0.95), ``videos`` (evaluated: those in ``truths``)
    and ``segments`` (true segments); AP and AR NaN when there are no true segments. AV-Deepfake1M's challenge
    reports AP@0.5/0.75/0.9/0.95 and AR@50/30/20/10/5 (its score: half the mean AP plus half the mean AR)."""
    out: dict[str, float | int] = {f"ap@{float(t):g}": segment_ap(predictions, truths, t) for t in ious}
    out.update({f"ar@{int(k)}": segment_ar(predictions, truths, int(k)) for k in ns})
    out["videos"] = len(truths)
    out["segments"] = sum(len(t) for t in truths.values())
    return out


# ---------------------------------------------------------------------------------------------------------
# Video-level rules shared by evaluate and predict (kept here, with numpy only, so predict stays light)
# ---------------------------------------------------------------------------------------------------------

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


# Frame-level output per modality, and the window head an older model without frame heads falls back on.
MODALITY_HEADS = {"any": ("frame_fake", "fake"), "video": ("frame_video", "video_fake"),
                  "audio": ("frame_audio", "audio_fake")}


def frames_of(duration, fps: float) -> int:
    """How many frames a video of ``duration`` seconds has on the ``fps`` grid; 0 when the duration is unknown."""
    d = float(duration) if duration is not None else 0.0
    return int(np.ceil(d * fps - 1e-6)) if np.isfinite(d) and d > 0 else 0


def modality_tracks(first_frames, frame_scores: dict[str, np.ndarray], window_scores: dict[str, np.ndarray],
                    frames_per_window: int, n_frames: int = 0) -> dict[str, np.ndarray]:
    """One video's per-frame score track per modality (``any``, ``video``, ``audio``): its windows' frame
    scores (``{frame_head: (windows, T)}``) stitched over its ``n_frames`` frames (``dfdetect.segments.stitch``;
    0: up to the end of the last window). A model without frame heads gives each step its window's score
    (``{window_head: (windows,)}``)."""
    from dfdetect.segments import stitch

    first = np.asarray(first_frames, int)
    # the video's own frames: steps of a padded window past the end are no frames of it
    n = n_frames or (int(first.max()) + frames_per_window if first.size else 0)
    out = {}
    for modality, (fh, wh) in MODALITY_HEADS.items():
        per = frame_scores.get(fh)
        if per is None:
            per = np.repeat(np.asarray(window_scores[wh], np.float32)[:, None], frames_per_window, axis=1)
        out[modality], _ = stitch(zip(first.tolist(), per), n_frames=n)
    return out
