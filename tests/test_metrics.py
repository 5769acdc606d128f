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


def test_bootstrap_interval_contains_auc():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    s = y * 0.5 + rng.normal(0, 0.5, 300)
    lo, hi = M.bootstrap_auc(y, s, n=300)
    assert lo < M.roc_auc(y, s) < hi and hi - lo < 0.2


def test_threshold_choice():
    t = M.best_threshold(Y, S)
    assert M.at_threshold(Y, S, t)["balanced_accuracy"] >= M.at_threshold(Y, S, 0.5)["balanced_accuracy"]
    # a perfectly separated split: any cut in the gap is as good on it; take the one nearest 0.5, not the edge
    y = np.array([0, 0, 0, 1, 1, 1])
    assert M.best_threshold(y, np.array([0.01, 0.05, 0.1, 0.12, 0.9, 0.95])) == 0.11
    assert M.best_threshold(y, np.array([0.01, 0.05, 0.1, 0.7, 0.9, 0.95])) == 0.5
    report = M.binary_report(Y, S, threshold=t, bootstrap=50)
    assert {"auc", "eer", "ap", "log_loss", "ece", "accuracy@0.5", "f1@val"} <= set(report)


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
