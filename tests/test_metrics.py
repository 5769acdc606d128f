"""Metrics against hand-computed values and scikit-learn on fixed inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from sklearn.metrics import log_loss as sk_log_loss

from dfdetect import metrics as M

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.9, 0.65])


def test_against_sklearn():
    assert M.roc_auc(Y, S) == pytest.approx(roc_auc_score(Y, S))
    assert M.average_precision(Y, S) == pytest.approx(average_precision_score(Y, S))
    assert M.log_loss(Y, S) == pytest.approx(sk_log_loss(Y, S))
    at = M.at_threshold(Y, S, 0.5)
    assert at["f1"] == pytest.approx(f1_score(Y, S >= 0.5))
    # by hand: predictions 0,0,0,1 | 1,0,1,1 -> tp 3, fp 1, tn 3, fn 1
    assert (at["tp"], at["fp"], at["tn"], at["fn"]) == (3, 1, 3, 1) and at["accuracy"] == 0.75


def test_unknown_labels_are_ignored():
    y = np.concatenate([Y, [-1, -1]])
    s = np.concatenate([S, [0.0, 1.0]])
    assert M.roc_auc(y, s) == pytest.approx(M.roc_auc(Y, S))


def test_eer_known_answers():
    # perfectly separated: EER 0
    assert M.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])[0] == pytest.approx(0.0)
    # one real above one fake out of two each: FPR and FNR cross at 0.5
    rate, _ = M.eer([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    assert rate == pytest.approx(0.5)
    # symmetric overlapping Gaussians: EER = Phi(-d/2)
    rng = np.random.default_rng(0)
    n = 200_000
    y = np.r_[np.zeros(n), np.ones(n)]
    s = np.r_[rng.normal(0, 1, n), rng.normal(2, 1, n)]
    from scipy.stats import norm

    assert M.eer(y, s)[0] == pytest.approx(norm.cdf(-1.0), abs=0.003)


def test_calibration_and_temperature():
    rng = np.random.default_rng(1)
    p_true = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p_true).astype(int)
    assert M.ece(y, p_true) < 0.02  # calibrated scores
    over = M.apply_temperature(p_true, 0.4)  # overconfident
    assert M.ece(y, over) > 0.08
    t = M.fit_temperature(y, over)
    assert t == pytest.approx(1 / 0.4, rel=0.1)
    assert M.ece(y, M.apply_temperature(over, t)) < 0.02


def test_top_label_ece_by_hand():
    y = np.array([0, 1, 1, 1, 0, 0])
    s = np.array([0.15, 0.22, 0.62, 0.93, 0.33, 0.64])
    # top-label confidence 0.85 0.78 0.62 0.93 0.67 0.64; predicted 0 0 1 1 0 1, so correct 1 0 1 1 1 0.
    # bins (lo, hi]: (0.6, 0.7] holds 0.62 0.67 0.64, mean 0.64333 against accuracy 2/3 (gap 0.02333);
    # (0.7, 0.8] 0.78 against 0; (0.8, 0.9] 0.85 against 1; (0.9, 1] 0.93 against 1
    expected = 3 / 6 * (2 / 3 - 0.64333333333333333) + (0.78 + 0.15 + 0.07) / 6
    assert M.ece_top_label(y, s) == pytest.approx(expected)  # 0.178333
    # fake-class version on the same data: [0.1, 0.2) 0.15 vs 0; [0.2, 0.3) 0.22 vs 1; [0.3, 0.4) 0.33 vs 0;
    # [0.6, 0.7) 0.62 0.64 (mean 0.63) vs fake rate 1/2; [0.9, 1] 0.93 vs 1
    assert M.ece(y, s) == pytest.approx((0.15 + 0.78 + 0.33 + 2 * 0.13 + 0.07) / 6)  # 0.265
    table = M.top_label_bins(y, s)
    assert [b["count"] for b in table] == [0, 0, 0, 0, 0, 0, 3, 1, 1, 1]  # nothing below 0.5, ever
    assert table[6]["accuracy"] == pytest.approx(2 / 3)
    assert M.ece_top_label(1 - y, 1 - s) == pytest.approx(expected)  # swapping the classes changes nothing
    # pooling p with 1 - p: a real at 0.2 and a fake at 0.8 are each 80% confident and right, so top-label
    # ECE is 0.2; the fake-class bins see 0.2 against a fake rate of 0 and 0.8 against 1, also 0.2 - but a
    # real at 0.3 and a real at 0.7 are one bin at confidence 0.7 and accuracy 1/2 (gap 0.2) against two
    # fake-class bins with gaps 0.3 and 0.7 (mean 0.5)
    assert M.ece_top_label([0, 1], [0.2, 0.8]) == pytest.approx(0.2) == M.ece([0, 1], [0.2, 0.8])
    assert M.ece_top_label([0, 0], [0.3, 0.7]) == pytest.approx(0.2)
    assert M.ece([0, 0], [0.3, 0.7]) == pytest.approx(0.5)
    # 0.5 is predicted fake and lands in (0.4, 0.5]; 1.0 in (0.9, 1]
    table = M.top_label_bins([0, 1, 1], [0.5, 0.5, 1.0])
    assert (table[4]["count"], table[4]["accuracy"], table[9]["count"]) == (2, 0.5, 1)
    assert M.ece_top_label([0, 1, 1], [0.5, 0.5, 1.0]) == pytest.approx(0.0)
    assert np.isnan(M.ece_top_label([-1], [0.3]))
    report = M.binary_report(y, s, bootstrap=0)
    assert report["ece"] == report["ece_top_label"] == pytest.approx(expected)
    assert report["ece_fake_class"] == pytest.approx(M.ece(y, s))


def test_bootstrap_interval_contains_auc():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    s = y * 0.5 + rng.normal(0, 0.5, 300)
    lo, hi = M.bootstrap_auc(y, s, n=300)
    assert lo < M.roc_auc(y, s) < hi and hi - lo < 0.2


def _old_bootstrap_auc(y, s, n, seed, alpha=0.05):
    # bootstrap_auc as it was before groups: the reference for "unchanged without groups"
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) == 2:
            vals.append(roc_auc_score(y[idx], s[idx]))
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def test_cluster_bootstrap_over_identities():
    # 30 identities of 10 videos each, one label per identity; an identity's videos score almost alike
    # (identity effect sd 1, video noise sd 0.01), so there are 30 independent draws, not 300
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(30), 10)
    y = g % 2
    s = y + rng.normal(0, 1, 30)[g] + rng.normal(0, 0.01, 300)
    auc = M.roc_auc(y, s)
    v_lo, v_hi = M.bootstrap_auc(y, s, n=200, seed=1)
    g_lo, g_hi = M.bootstrap_auc(y, s, n=200, seed=1, groups=g)
    assert g_lo < auc < g_hi and v_lo < auc < v_hi
    assert g_hi - g_lo > 2 * (v_hi - v_lo)  # about 0.30 against 0.10
    # without groups: the same draws, so the same interval, as before groups existed
    assert (v_lo, v_hi) == pytest.approx(_old_bootstrap_auc(y, s, 200, 1), abs=1e-12)
    assert M.bootstrap_auc(Y, S, n=100, seed=7) == pytest.approx(_old_bootstrap_auc(Y, S, 100, 7), abs=1e-12)
    # group names of any type; unknown labels dropped together with their group entries
    few = M.bootstrap_auc(y, s, n=30, seed=2, groups=g)
    names = np.array([f"id{i}" for i in g])
    assert M.bootstrap_auc(y, s, n=30, seed=2, groups=names) == few
    assert M.bootstrap_auc(np.r_[y, -1], np.r_[s, 0.5], n=30, seed=2, groups=np.r_[g, 99]) == few
    with pytest.raises(ValueError):
        M.bootstrap_auc(y, s, groups=g[:-1])
    rep = M.binary_report(y, s, bootstrap=30, groups=g)
    assert rep["bootstrap_unit"] == "group"
    # binary_report draws with bootstrap_auc's default seed (0)
    assert (rep["auc_ci_low"], rep["auc_ci_high"]) == M.bootstrap_auc(y, s, n=30, groups=g)
    assert M.binary_report(y, s, bootstrap=0)["bootstrap_unit"] == "video"


def test_threshold_choice():
    t = M.best_threshold(Y, S)
    assert M.at_threshold(Y, S, t)["balanced_accuracy"] >= M.at_threshold(Y, S, 0.5)["balanced_accuracy"]
    # a perfectly separated split: any cut in the gap is as good on it; take the one nearest 0.5, not the edge
    y = np.array([0, 0, 0, 1, 1, 1])
    assert M.best_threshold(y, np.array([0.01, 0.05, 0.1, 0.12, 0.9, 0.95])) == 0.11
    assert M.best_threshold(y, np.array([0.01, 0.05, 0.1, 0.7, 0.9, 0.95])) == 0.5
    report = M.binary_report(Y, S, threshold=t, bootstrap=50)
    assert {"auc", "eer", "ap", "log_loss", "ece", "accuracy@0.5", "f1@val"} <= set(report)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _sigmoid_logit_mid(a: float, b: float) -> float:
    # sigmoid((logit a + logit b) / 2) in closed form
    return np.sqrt(a * b) / (np.sqrt(a * b) + np.sqrt((1 - a) * (1 - b)))


def test_choose_threshold_separable_is_the_logit_midpoint():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.002, 0.005, 0.01, 0.7, 0.9, 0.97])
    t, rule = M.choose_threshold(y, s)
    assert rule == "logit_midpoint"
    assert t == pytest.approx(_sigmoid_logit_mid(0.01, 0.7), rel=1e-12)  # 0.1331
    assert M.at_threshold(y, s, t)["balanced_accuracy"] == 1.0
    # a fake added on the far side of the gap (0.3, between the cut and the fakes): the cut moves by half of
    # that point's logit distance from the old edge and stays inside the new gap; best_threshold, which
    # prefers 0.5 on the plateau, jumps from 0.5 to 0.155 (the plain midpoint of the new gap)
    t2, rule2 = M.choose_threshold(np.r_[y, 1], np.r_[s, 0.3])
    assert rule2 == "logit_midpoint" and 0.01 < t2 < 0.3
    assert t2 == pytest.approx(_sigmoid_logit_mid(0.01, 0.3), rel=1e-12)  # 0.0617
    assert _logit(t) - _logit(t2) == pytest.approx((_logit(0.7) - _logit(0.3)) / 2)
    assert M.best_threshold(y, s) == 0.5 and M.best_threshold(np.r_[y, 1], np.r_[s, 0.3]) == 0.155
    # exact 0 and 1 (saturated sigmoids) still give a cut inside the gap, at logit 0 by symmetry
    t3, _ = M.choose_threshold([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])
    assert t3 == pytest.approx(0.5)
    # scores that are not probabilities: the plain midpoint
    assert M.choose_threshold([0, 0, 1], [-3.0, -1.0, 2.0]) == (0.5, "midpoint")


def test_choose_threshold_overlapping_maximises_balanced_accuracy():
    t, rule = M.choose_threshold(Y, S)
    assert rule == "balanced_accuracy"
    # the only 0.75 cut lies between the real at 0.4 and the fake at 0.65; taken at their logit midpoint
    assert t == pytest.approx(_sigmoid_logit_mid(0.4, 0.65), rel=1e-12)
    grid = np.linspace(0, 1, 2001)
    best = max(M.at_threshold(Y, S, g)["balanced_accuracy"] for g in grid)
    assert M.at_threshold(Y, S, t)["balanced_accuracy"] == pytest.approx(best) == 0.75
    # two plateaus tie at 0.75 (real real fake fake real real fake fake): the one nearer the midpoint of the
    # class mean logits (-1.21) wins, the cut between the real at 0.35 and the fake at 0.5 (logit -0.31, not
    # the one between 0.05 and 0.1 at logit -2.57)
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    s = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.35, 0.5, 0.9])
    t, rule = M.choose_threshold(y, s)
    assert rule == "balanced_accuracy" and t == pytest.approx(_sigmoid_logit_mid(0.35, 0.5), rel=1e-12)
    assert M.at_threshold(y, s, t)["balanced_accuracy"] == 0.75


def test_choose_threshold_one_class_and_unknown_labels():
    assert M.choose_threshold([0, 0, 0], [0.1, 0.2, 0.3]) == (0.5, "default")
    assert M.choose_threshold([1, -1, np.nan], [0.9, 0.1, 0.2]) == (0.5, "default")
    assert M.choose_threshold([], []) == (0.5, "default")
    assert M.choose_threshold([0, 1, 1], [0.3, 0.3, 0.3]) == (0.5, "default")  # one score for all
    # unknown labels and NaN scores are dropped before choosing: the same answer as without them
    y = np.array([0, 0, 0, 1, 1, 1, -1, np.nan, 1])
    s = np.array([0.002, 0.005, 0.01, 0.7, 0.9, 0.97, 0.5, 0.4, np.nan])
    assert M.choose_threshold(y, s) == M.choose_threshold(y[:6], s[:6])


def test_false_positive_rate_on_reals():
    at = M.at_threshold(Y, S, 0.5)  # one of four reals (0.8) above 0.5
    assert at["fpr"] == pytest.approx(0.25) == pytest.approx(1 - at["specificity"])
    assert M.at_threshold(Y, S, 0.85)["fpr"] == 0.0
    assert np.isnan(M.at_threshold([1, 1], [0.2, 0.9], 0.5)["fpr"])  # no reals: undefined, not 0
    report = M.binary_report(Y, S, threshold=0.85, bootstrap=0)
    assert report["fpr@0.5"] == pytest.approx(0.25) and report["fpr@val"] == 0.0


# six videos at threshold 0.5: two errors, the real at 0.7 and the fake at 0.2
SEL_Y = np.array([0, 0, 1, 1, 0, 1])
SEL_S = np.array([0.1, 0.3, 0.8, 0.9, 0.7, 0.2])


def test_selective_report_by_hand():
    r = M.selective_report(SEL_Y, SEL_S, 0.5, [True, True, True, True, False, False])
    assert (r["n"], r["n_accepted"]) == (6, 4) and r["coverage"] == pytest.approx(4 / 6)
    assert r["risk"] == 0.0 and r["accuracy_accepted"] == 1.0 and r["accuracy_all"] == pytest.approx(4 / 6)
    assert r["auc_accepted"] == 1.0
    assert r["auc_all"] == pytest.approx(roc_auc_score(SEL_Y, SEL_S))  # 7/9
    # accepting only the two errors: risk 1; accepting one class only: AUC undefined
    r = M.selective_report(SEL_Y, SEL_S, 0.5, [False, False, False, False, True, True])
    assert r["risk"] == 1.0 and r["accuracy_accepted"] == 0.0 and r["auc_accepted"] == 0.0
    r = M.selective_report(SEL_Y, SEL_S, 0.5, [True, True, False, False, False, False])
    assert np.isnan(r["auc_accepted"]) and r["risk"] == 0.0
    r = M.selective_report(SEL_Y, SEL_S, 0.5, np.zeros(6, bool))
    assert r["coverage"] == 0.0 and np.isnan(r["risk"]) and np.isnan(r["accuracy_accepted"])
    # unknown labels leave the denominators
    r = M.selective_report(np.r_[SEL_Y, -1], np.r_[SEL_S, 0.5], 0.5, [True] * 4 + [False] * 2 + [True])
    assert (r["n"], r["n_accepted"]) == (6, 4)


def test_coverage_curve_errors_admitted_last():
    c = M.coverage_curve(SEL_Y, SEL_S, 0.5, [6, 5, 4, 3, 2, 1])  # the two errors are the least familiar
    assert c["coverage"] == pytest.approx(np.arange(1, 7) / 6)
    assert c["risk"] == pytest.approx([0, 0, 0, 0, 1 / 5, 2 / 6])
    assert c["accuracy"] == pytest.approx(1 - c["risk"])
    assert np.all(np.diff(c["risk"]) >= 0)  # risk falls as coverage falls
    assert c["aurc"] == pytest.approx((1 / 5 + 2 / 6) / 6)  # 0.0889
    assert c["eaurc"] == pytest.approx(0.0)  # the best possible ordering
    # reversed: the errors come first; risks 1, 1, 2/3, 2/4, 2/5, 2/6
    r = M.coverage_curve(SEL_Y, SEL_S, 0.5, [1, 2, 3, 4, 5, 6])
    assert r["risk"] == pytest.approx([1, 1, 2 / 3, 2 / 4, 2 / 5, 2 / 6])
    assert r["aurc"] == pytest.approx(3.9 / 6) and r["aurc"] > c["aurc"]
    # constant familiarity cannot rank: a flat curve at the overall error rate, whatever the input order
    f = M.coverage_curve(SEL_Y, SEL_S, 0.5, np.ones(6))
    assert f["risk"] == pytest.approx(np.full(6, 1 / 3)) and f["aurc"] == pytest.approx(1 / 3)
    # NaN familiarity is admitted last, like the least familiar
    n = M.coverage_curve(SEL_Y, SEL_S, 0.5, [6, 5, 4, 3, np.nan, np.nan])
    assert n["aurc"] == pytest.approx(c["aurc"])
    e = M.coverage_curve([], [], 0.5, [])
    assert len(e["risk"]) == 0 and np.isnan(e["aurc"])


def test_segment_ap_and_ar():
    truths = {"a": [(1.0, 2.0)], "b": [(0.0, 1.0), (3.0, 4.0)]}
    perfect = {"a": [(1.0, 2.0, 0.9)], "b": [(0.0, 1.0, 0.8), (3.0, 4.0, 0.7)]}
    assert M.segment_ap(perfect, truths, 0.5) == pytest.approx(1.0)
    assert M.segment_ar(perfect, truths, n=10) == pytest.approx(1.0)
    # a top-scored false positive, then the three truths: precision 1/2, 2/3, 3/4 at recall 1/3, 2/3, 1;
    # the interpolated envelope (max precision at any higher recall) is 3/4 at every step
    noisy = {"a": [(1.0, 2.0, 0.8), (5.0, 6.0, 0.95)], "b": [(0.0, 1.0, 0.7), (3.0, 4.0, 0.6)]}
    assert M.segment_ap(noisy, truths, 0.5) == pytest.approx(0.75)
    # a false positive ranked last costs nothing; ranked between truths it does
    mid = {"a": [(1.0, 2.0, 0.9), (5.0, 6.0, 0.75)], "b": [(0.0, 1.0, 0.8), (3.0, 4.0, 0.6)]}
    assert M.segment_ap(mid, truths, 0.5) == pytest.approx((1 + 1 + 3 / 4) / 3)
    # IoU 0.75 (0.75 s of 1 s) counts at 0.75; IoU 0.5 counts at 0.5 but not at 0.75; IoU 0.4 at neither
    truth = {"a": [(1.0, 2.0)]}
    assert M.segment_iou((1.25, 2.0), (1.0, 2.0)) == pytest.approx(0.75)
    assert M.segment_ap({"a": [(1.25, 2.0, 0.9)]}, truth, 0.75) == pytest.approx(1.0)
    assert M.segment_iou((1.5, 2.0), (1.0, 2.0)) == pytest.approx(0.5)
    assert M.segment_ap({"a": [(1.5, 2.0, 0.9)]}, truth, 0.5) == pytest.approx(1.0)
    assert M.segment_ap({"a": [(1.5, 2.0, 0.9)]}, truth, 0.75) == pytest.approx(0.0)
    assert M.segment_ap({"a": [(1.6, 2.0, 0.9)]}, truth, 0.5) == pytest.approx(0.0)



# Three videos, three true segments. "real" has none: its proposal is a false positive wherever it lies.
# "two" has two; its proposals: the first exactly, the second at IoU 1.4 / 2 = 0.7, and a duplicate of the
# first (IoU 0.8 with a truth already taken). "whole" is fake from start to end: one exact proposal, one over
# its first half (IoU 0.5, the truth already taken).
LOC_TRUTHS = {"real": [], "two": [(1.0, 2.0), (4.0, 6.0)], "whole": [(0.0, 4.0)]}
LOC_PREDS = {"real": [(1.0, 2.0, 0.6)],
             "two": [(4.0, 5.4, 0.5), (1.0, 2.0, 0.9), (1.2, 2.0, 0.4)],
             "whole": [(0.0, 4.0, 0.8), (0.0, 2.0, 0.3)]}


def test_segment_ap_three_videos_by_hand():
    # ranked: 0.9 two(1-2) TP, 0.8 whole TP, 0.6 real FP, 0.5 two(4-5.4) IoU 0.7, 0.4 two dup FP, 0.3 whole FP
    # IoU 0.5: T T F T F F -> (precision, recall) 1 1/3 | 1 2/3 | 2/3 2/3 | 3/4 1 | 3/5 1 | 1/2 1
    #   envelope (max precision at this recall or above) at the three recall steps: 1, 1, 3/4
    #   AP = 1/3 * 1 + 1/3 * 1 + 1/3 * 3/4 = 11/12
    assert M.segment_ap(LOC_PREDS, LOC_TRUTHS, 0.5) == pytest.approx(11 / 12)
    # IoU 0.75: T T F F F F -> steps 1/3 at precision 1 twice: AP = 2/3
    assert M.segment_ap(LOC_PREDS, LOC_TRUTHS, 0.75) == pytest.approx(2 / 3)
    # the reference code (ControlNet/AV-Deepfake1M loc_1d.rs, LAV-DF metrics.py) drops the first recall step,
    # 1/3 here since rank 1 is a true positive: 7/12 and 1/3 (see test_segment_ap_and_ar_match_the_reference)
    # no predictions at all: AP 0; no truths at all: NaN; a video not in the truths is not evaluated
    assert M.segment_ap({}, LOC_TRUTHS, 0.5) == 0.0
    assert np.isnan(M.segment_ap(LOC_PREDS, {"real": []}, 0.5))
    assert M.segment_ap({**LOC_PREDS, "other": [(0.0, 1.0, 0.99)]}, LOC_TRUTHS, 0.5) == pytest.approx(11 / 12)


def test_segment_ar_by_hand():
    # AR@1 (top proposal of each video): "two" finds (1, 2) at IoU 1, misses (4, 6); "whole" finds its truth
    # at IoU 1: 2 of 3 at each of the 10 thresholds 0.5:0.05:0.95 -> 2/3
    assert M.segment_ar(LOC_PREDS, LOC_TRUTHS, 1) == pytest.approx(2 / 3)
    # AR@5: (4, 6) is now found at IoU 0.7, so at the thresholds 0.5, 0.55, 0.6, 0.65 and 0.7 (IoU >= the
    # threshold; the reference's IoU > threshold would miss it at 0.7): recall 1 at five, 2/3 at five -> 5/6
    assert M.segment_ar(LOC_PREDS, LOC_TRUTHS, 5) == pytest.approx((5 * 1 + 5 * 2 / 3) / 10)
    assert M.AR_IOUS == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    # a video with truths and no proposals: its truths count as missed
    assert M.segment_ar({"two": LOC_PREDS["two"]}, LOC_TRUTHS, 5) == pytest.approx((5 * 2 / 3 + 5 * 1 / 3) / 10)
    assert np.isnan(M.segment_ar(LOC_PREDS, {"real": []}, 5))
    # not one-to-one, as the reference: one proposal finds two overlapping truths (IoU 2/2.1 and 2.1/2.2, both
    # above 0.95), where AP lets it match one only (precision 1 at recall 1/2: AP 1/2)
    overlap = {"a": [(0.0, 2.0), (0.0, 2.2)]}
    assert M.segment_ar({"a": [(0.0, 2.1, 0.9)]}, overlap, 1) == pytest.approx(1.0)
    assert M.segment_ap({"a": [(0.0, 2.1, 0.9)]}, overlap, 0.5) == pytest.approx(0.5)


def test_segment_ap_ties_are_stable():
    # equal scores, one TP and one FP: the order of the videos in ``truths`` decides (a stable sort)
    preds = {"a": [(0.0, 1.0, 0.5)], "b": [(0.0, 1.0, 0.5)]}
    # TP first: precision 1 at recall 1
    assert M.segment_ap(preds, {"a": [(0.0, 1.0)], "b": []}, 0.5) == pytest.approx(1.0)
    # FP first: precision 1/2 at recall 1
    assert M.segment_ap(preds, {"b": [], "a": [(0.0, 1.0)]}, 0.5) == pytest.approx(0.5)
    # within a video, list order: the half-length proposal (IoU 0.5) first takes the truth at 0.5 and the exact
    # one is a FP (P 1, then 1/2 at recall 1: AP 1) ...
    truth = {"a": [(0.0, 1.0)]}
    half_first = {"a": [(0.0, 0.5, 0.5), (0.0, 1.0, 0.5)]}
    assert M.segment_ap(half_first, truth, 0.5) == pytest.approx(1.0)
    # ... and at 0.75 it is the FP, then the exact one a TP: precision 1/2 at recall 1
    assert M.segment_ap(half_first, truth, 0.75) == pytest.approx(0.5)
    assert M.segment_ap({"a": half_first["a"][::-1]}, truth, 0.75) == pytest.approx(1.0)


def _reference_ap(preds, truths, thr):
    """ControlNet/LAV-DF metrics.py AP (= AV-Deepfake1M src/loc_1d.rs calc_ap_scores) in numpy, fps 1: each
    label in turn takes the first of its video's proposals with IoU > thr not taken yet; curve (1, 0) then the
    ranks reversed, AP = sum |diff(recall)| * cummax(precision)[:-1]."""
    values, n_labels = [], 0
    for video, labels in truths.items():
        props = preds.get(video, [])
        taken = []
        for t in labels:
            for j, p in enumerate(props):
                if M.segment_iou(p, t) > thr and j not in taken:
                    taken.append(j)
                    break
        values += [(p[2], j in taken) for j, p in enumerate(props)]
        n_labels += len(labels)
    order = np.argsort([-v[0] for v in values], kind="stable")
    is_tp = np.array([values[i][1] for i in order], float)
    acc = np.cumsum(is_tp)
    precision, recall = acc / np.arange(1, len(acc) + 1), acc / n_labels
    x, y = np.r_[1.0, recall[::-1]], np.r_[0.0, precision[::-1]]
    return float(np.sum(np.abs(np.diff(x)) * np.maximum.accumulate(y)[:-1])), bool(is_tp[0]), n_labels


def _reference_ar(preds, truths, n, thresholds):
    """ControlNet/LAV-DF metrics.py AR: per truth the running maximum IoU over the video's first n proposals,
    found when > threshold; TP and FN summed over videos, recall averaged over thresholds."""
    tp = np.zeros(len(thresholds))
    total = 0
    for video, labels in truths.items():
        top = preds[video][:n]
        for t in labels:
            tp += max(M.segment_iou(p, t) for p in top) > np.asarray(thresholds)
        total += len(labels)
    return float(np.mean(tp / total))


def test_segment_ap_and_ar_match_the_reference():
    # random videos: disjoint truths, every video with proposals sorted by score (as the reference's inputs)
    rng = np.random.default_rng(0)
    for _trial in range(20):
        truths, preds = {}, {}
        for v in range(12):
            edges = np.sort(rng.uniform(0, 10, 2 * int(rng.integers(0, 4))))
            truths[f"v{v}"] = [(float(a), float(b)) for a, b in edges.reshape(-1, 2)]
            props = []
            for _ in range(int(rng.integers(1, 7))):
                if truths[f"v{v}"] and rng.random() < 0.6:  # near a truth
                    a, b = truths[f"v{v}"][int(rng.integers(len(truths[f"v{v}"])))]
                    a, b = a + rng.normal(0, 0.1 * (b - a)), b + rng.normal(0, 0.1 * (b - a))
                else:
                    a = rng.uniform(0, 9)
                    b = a + rng.uniform(0.1, 2)
                props.append((float(a), float(max(b, a + 0.01)), float(rng.random())))
            preds[f"v{v}"] = sorted(props, key=lambda p: -p[2])
        if not sum(len(t) for t in truths.values()):
            continue
        for thr in (0.5, 0.75, 0.9):
            ref, top_is_tp, n_labels = _reference_ap(preds, truths, thr)
            # the same value but for the first recall step, which the reference leaves out
            assert M.segment_ap(preds, truths, thr) == pytest.approx(ref + (1 / n_labels if top_is_tp else 0))
        for n in (1, 5):
            assert M.segment_ar(preds, truths, n) == pytest.approx(_reference_ar(preds, truths, n, M.AR_IOUS))


def test_frame_auc_by_hand():
    # fake frames 0.35 and 0.8, real 0.1 and 0.4: of the 4 (fake, real) pairs only (0.35, 0.4) is misordered
    assert M.frame_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(3 / 4)
    # the same frames split over two videos, with an unknown frame (label -1) and an unscored one (NaN)
    scores = {"v1": np.array([0.1, 0.4]), "v2": np.array([0.35, 0.8, 0.99, np.nan]), "extra": np.ones(3)}
    labels = {"v1": np.array([0, 0]), "v2": np.array([1, 1, -1, 0])}
    assert M.frame_auc(scores, labels) == pytest.approx(3 / 4)
    assert M.frame_auc([scores["v1"], scores["v2"]], [labels["v1"], labels["v2"]]) == pytest.approx(3 / 4)
    assert np.isnan(M.frame_auc([[0.2, 0.3]], [[1, 1]]))
    with pytest.raises(ValueError):
        M.frame_auc({"v1": np.zeros(3)}, {"v1": np.zeros(2)})
    with pytest.raises(ValueError):
        M.frame_auc({}, {"v1": np.zeros(2)})


def test_localisation_metrics():
    m = M.localisation_metrics(LOC_PREDS, LOC_TRUTHS)
    assert list(m) == ["ap@0.5", "ap@0.75", "ap@0.9", "ap@0.95", "ar@1", "ar@5", "ar@10", "ar@20", "ar@50",
                       "videos", "segments"]
    assert (m["videos"], m["segments"]) == (3, 3)
    assert m["ap@0.5"] == pytest.approx(11 / 12) and m["ap@0.75"] == pytest.approx(2 / 3)
    # at 0.9 and 0.95 the two exact proposals, ranked first and second, are the only true positives
    assert m["ap@0.9"] == pytest.approx(2 / 3) and m["ap@0.95"] == pytest.approx(2 / 3)
    assert m["ar@1"] == pytest.approx(2 / 3) and m["ar@5"] == m["ar@50"] == pytest.approx(5 / 6)
    empty = M.localisation_metrics({}, {"r1": [], "r2": []})
    assert np.isnan(empty["ap@0.5"]) and np.isnan(empty["ar@10"]) and empty["videos"] == 2
    assert empty["segments"] == 0

def test_target_fpr_threshold_fits_all_the_reals_not_the_highest_one():
    rng = np.random.default_rng(0)
    real = 1 / (1 + np.exp(-rng.normal(-6.0, 1.0, 40)))  # logits N(-6, 1)
    fake = np.r_[np.exp(-3.37) / (1 + np.exp(-3.37)), 1 / (1 + np.exp(-rng.normal(3.0, 2.0, 60)))]
    y, s = np.r_[np.zeros(40), np.ones(61)], np.r_[real, fake]
    t, rule = M.choose_threshold(y, s)
    z = np.log(real / (1 - real))
    expected = 1 / (1 + np.exp(-(z.mean() + 2.3263 * z.std(ddof=1))))
    assert rule == "target_fpr" and t == pytest.approx(max(expected, real.max()), rel=1e-3)
    assert t > real.max()  # no validation real is called fake
    # few reals: the normal fit means nothing; the gap rules decide
    keep = np.r_[np.arange(5), np.arange(40, 101)]
    assert M.choose_threshold(y[keep], s[keep])[1] != "target_fpr"
    assert M.choose_threshold(y, s, target_fpr=None)[1] in ("logit_midpoint", "balanced_accuracy")
