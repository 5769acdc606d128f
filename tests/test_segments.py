"""dfdetect.segments: frame tracks from overlapping windows, segment proposals, NMS, frame labels."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect import segments as G
from dfdetect.metrics import segment_iou

FPS = 15


def _noisy(values, seed=0, sd=0.03) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.asarray(values, float) + rng.normal(0, sd, len(values)), 0, 1)


# --- stitch -----------------------------------------------------------------------------------------------

def test_stitch_single_window_and_plain_mean():
    track, covered = G.stitch([(0, np.array([0.1, 0.5, 0.9]))])
    assert track.dtype == np.float32 and covered.dtype == bool
    assert track == pytest.approx([0.1, 0.5, 0.9]) and covered.all()
    # two windows overlapping on frames 1-2, equal weights: the overlap is the plain mean
    track, _ = G.stitch([(0, np.zeros(3)), (1, np.ones(3))], taper=False)
    assert track == pytest.approx([0, 0.5, 0.5, 1])


def test_stitch_taper_by_hand():
    # 3 steps: weights sin^2(pi k / 4), k = 1..3 = [0.5, 1, 0.5]
    assert G._taper(3) == pytest.approx([0.5, 1, 0.5])
    assert (G._taper(30) > 0).all() and G._taper(30).argmax() in (14, 15)
    # A = 0 on frames 0-2, B = 1 on frames 1-3
    # frame 1: A's centre (w 1, 0) and B's edge (w 0.5, 1) -> 0.5 / 1.5 = 1/3
    # frame 2: A's edge (w 0.5, 0) and B's centre (w 1, 1) -> 2/3; frames 0 and 3: one window's edge alone
    track, covered = G.stitch([(0, np.zeros(3)), (1, np.ones(3))])
    assert track == pytest.approx([0, 1 / 3, 2 / 3, 1]) and covered.all()


def test_stitch_order_does_not_matter():
    rng = np.random.default_rng(1)
    windows = [(first, rng.random(30)) for first in range(0, 120, 15)]
    track, covered = G.stitch(windows)
    assert len(track) == 105 + 30 and covered.all()
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(windows))
        again, _ = G.stitch([windows[i] for i in order])
        assert again == pytest.approx(track, abs=1e-6)


def test_stitch_nan_steps_are_ignored():
    # frame 1 is NaN in the first window but scored by the second; frame 4 is NaN in its only window
    track, covered = G.stitch([(0, np.array([0.2, np.nan, 0.2])), (1, np.array([0.6, 0.6, 0.6, np.nan]))],
                              taper=False)
    assert covered.tolist() == [True, True, True, True, False]
    assert track == pytest.approx([0.2, 0.6, 0.4, 0.6, 0.6])  # frame 4: its nearest scored frame, 3


def test_stitch_gaps_take_the_nearest_scored_frame():
    track, covered = G.stitch([(0, np.full(3, 0.2)), (6, np.full(3, 0.8))])
    assert covered.tolist() == [True] * 3 + [False] * 3 + [True] * 3
    # frame 3: 1 from frame 2, 3 from frame 6; frame 4: 2 from each (mean); frame 5: 1 from frame 6
    assert track == pytest.approx([0.2] * 3 + [0.2, 0.5, 0.8] + [0.8] * 3)
    # before the first and after the last window
    track, covered = G.stitch([(3, np.full(2, 0.7))], n_frames=8)
    assert track == pytest.approx([0.7] * 8) and covered.tolist() == [False] * 3 + [True] * 2 + [False] * 3


def test_stitch_bounds_and_empty():
    track, covered = G.stitch([])
    assert track.shape == covered.shape == (0,) and track.dtype == np.float32
    track, covered = G.stitch([], n_frames=5)
    assert track == pytest.approx(np.zeros(5)) and not covered.any()
    track, covered = G.stitch([(0, np.full(3, np.nan))])  # nothing scored
    assert track == pytest.approx(np.zeros(3)) and not covered.any()
    # steps before frame 0 and at or after n_frames are dropped
    track, covered = G.stitch([(-2, np.array([9.0, 9.0, 0.1, 0.2])), (3, np.array([0.3, 9.0]))], n_frames=4,
                              taper=False)
    # frame 2, unscored, lies between frames 1 (0.2) and 3 (0.3): their mean
    assert track == pytest.approx([0.1, 0.2, 0.25, 0.3]) and covered.tolist() == [True, True, False, True]


def test_whole_fake_scored_late_is_one_segment_over_the_clip():
    # 6 s at 15 fps; the face was found only at frame 8, so windows (2 s, hop 1 s) start there; the last one
    # runs past the end of the clip
    windows = [(first, _noisy(np.full(30, 0.9), seed=first)) for first in range(8, 90, 15)]
    track, covered = G.stitch(windows, n_frames=90)
    assert not covered[:8].any() and covered[8:].all()
    props = G.propose(track, FPS, duration=6.0)
    assert props[0][:2] == pytest.approx((0.0, 6.0))


# --- propose ----------------------------------------------------------------------------------------------

def _fake_track(n, fakes, seed=0, blur=0.3):
    """Low noisy background, high on the frames of each (first, last) fake, ``blur`` on the frame either side
    (the model's receptive field smears the boundary)."""
    x = np.full(n, 0.05)
    for a, b in fakes:
        x[max(0, a - 1)] = max(x[max(0, a - 1)], blur)
        x[min(n - 1, b + 1)] = max(x[min(n - 1, b + 1)], blur)
    for a, b in fakes:
        x[a:b + 1] = 0.9
    return _noisy(x, seed)


@pytest.mark.parametrize("seed", range(5))
def test_short_fake_is_one_top_segment(seed):
    # a fake of 5 frames (1/3 s) at 2 s of a 6 s clip: frames 30-34. (0.3 s is 4.5 frames at 15 fps; no
    # frame-grid segment then reaches IoU 0.9 but the 5-frame one, at exactly 4.5 / 5.)
    truth = (2.0, 2.0 + 5 / FPS)
    props = G.propose(_fake_track(90, [(30, 34)], seed), FPS, duration=6.0)
    assert segment_iou(props[0], truth) >= 0.9
    # one segment: the next proposal scores far lower, or is the same place again (soft-NMS keeps it, lower)
    assert all(p[2] < props[0][2] / 2 or segment_iou(p, props[0]) > 0.3 for p in props[1:])
    # a 0.3 s truth not on the grid: the best a frame grid allows (4.5 / 5 frames)
    assert segment_iou(props[0], (2.0, 2.3)) >= 0.9 - 1e-9


def test_contrast_score_prefers_the_true_extent_to_its_high_core():
    # frames 30-39 fake; the model is surest in the middle, less so on the edge frames 30 and 39
    x = np.full(90, 0.05)
    x[[29, 40]] = 0.3
    x[30:40] = 0.95
    x[[30, 39]] = 0.7
    # the mean inside alone would rank the run above 0.9 (frames 31-38) first: 0.95 > mean of 30-39 (0.9)
    assert x[31:39].mean() > x[30:40].mean()
    props = G.propose(x, FPS)
    assert props[0][:2] == pytest.approx((30 / FPS, 40 / FPS))
    # contrast by hand: inside 0.9; around, 10 frames each side: (0.05 * 9 + 0.3) / 10 = 0.075 -> 0.825
    assert props[0][2] == pytest.approx(0.9 - 0.075)
    # too long (frames 29-40, above 0.3): inside (0.9 * 10 + 0.6) / 12 = 0.8, around 0.05 -> 0.75, lower
    assert G._segment_score(*_prefix(x), 29, 40) == pytest.approx(0.75)


def _prefix(x):
    return np.concatenate([[0.0], np.cumsum(x)]), np.concatenate([[0], np.cumsum(np.isfinite(x))])


def test_whole_fake_clip_gives_the_whole_clip():
    x = _noisy(np.full(90, 0.85), seed=3, sd=0.05)
    props = G.propose(x, FPS, duration=6.0)
    assert props[0][:2] == pytest.approx((0.0, 6.0))
    # no surroundings: the score is the mean inside
    assert props[0][2] == pytest.approx(x.mean())


def test_two_fakes_give_two_top_proposals():
    truths = [(15 / FPS, 25 / FPS), (60 / FPS, 70 / FPS)]  # frames 15-24 and 60-69
    props = G.propose(_fake_track(90, [(15, 24), (60, 69)], seed=4), FPS, duration=6.0)
    top = props[:2]
    assert max(segment_iou(top[0], t) for t in truths) >= 0.9
    assert max(segment_iou(top[1], t) for t in truths) >= 0.9
    assert segment_iou(top[0], top[1]) == 0


def test_real_clip_scores_low():
    for seed in range(5):
        x = _noisy(np.full(90, 0.1), seed=seed, sd=0.05)
        props = G.propose(x, FPS, duration=6.0)
        assert all(s < 0.2 for _, _, s in props)
    # and well below any fake's top proposal, so that AP ranks them after
    fake = G.propose(_fake_track(90, [(30, 34)]), FPS, duration=6.0)[0][2]
    assert fake > 0.7


def test_proposals_are_well_formed():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 120))
        x = np.convolve(rng.random(n + 4), np.ones(5) / 5, mode="valid")
        duration = float(rng.uniform(0.5, n / FPS))  # the track may run past the end of the clip
        props = G.propose(x, FPS, duration=duration, max_proposals=7)
        assert len(props) <= 7
        assert all(0 <= a < b <= duration for a, b, _ in props)
        assert [s for _, _, s in props] == sorted((s for _, _, s in props), reverse=True)
        assert all(s >= 0 for _, _, s in props)
    assert G.propose(np.array([]), FPS) == []
    assert G.propose(np.zeros(30), FPS) == []  # nothing reaches the lowest threshold


def test_duration_clips_and_frame_grid():
    x = np.full(100, 0.9)  # the last window ran 10 frames past a 6 s clip; 5.95 s is not on the grid
    assert G.propose(x, FPS, duration=5.95)[0][:2] == pytest.approx((0.0, 5.95))
    x = np.full(20, 0.05)
    x[4:7] = 0.9  # frames 4-6 span [4/15, 7/15)
    assert G.propose(x, FPS)[0][:2] == pytest.approx((4 / FPS, 7 / FPS))


def test_min_frames_and_max_gap():
    x = np.full(60, 0.05)
    x[10] = 0.9  # a one-frame spike
    assert G.propose(x, FPS, min_frames=2) == []
    assert G.propose(x, FPS)[0][:2] == pytest.approx((10 / FPS, 11 / FPS))
    # frames 20-39 fake with a one-frame dip at 30: bridged by default, split without bridging
    x = np.full(60, 0.05)
    x[20:40] = 0.9
    x[30] = 0.05
    assert G.propose(x, FPS)[0][:2] == pytest.approx((20 / FPS, 40 / FPS))
    assert all(b - a < 0.7 for a, b, _ in G.propose(x, FPS, max_gap=0, thresholds=(0.5,)))


# --- nms --------------------------------------------------------------------------------------------------

def test_nms_greedy_and_soft():
    props = [(2.0, 3.0, 0.7), (0.0, 1.0, 0.9), (0.0, 0.9, 0.8)]
    # (0, 0.9) overlaps (0, 1) at IoU 0.9 > 0.5: dropped; (2, 3) overlaps nothing
    assert G.nms(props, 0.5) == [(0.0, 1.0, 0.9), (2.0, 3.0, 0.7)]
    assert G.nms(props, 0.95) == [(0.0, 1.0, 0.9), (0.0, 0.9, 0.8), (2.0, 3.0, 0.7)]
    # soft: 0.8 * exp(-0.9^2 / 1) = 0.356, now below (2, 3)
    soft = G.nms(props, 1.0, sigma=1.0)
    assert [p[:2] for p in soft] == [(0.0, 1.0), (2.0, 3.0), (0.0, 0.9)]
    assert soft[2][2] == pytest.approx(0.8 * np.exp(-0.81))
    # ties keep input order
    assert G.nms([(0, 1, 0.5), (2, 3, 0.5)], 0.5) == [(0, 1, 0.5), (2, 3, 0.5)]
    assert G.nms([(2, 3, 0.5), (0, 1, 0.5)], 0.5) == [(2, 3, 0.5), (0, 1, 0.5)]
    assert G.nms([], 0.5) == []


# --- frame labels -----------------------------------------------------------------------------------------

def test_frame_labels_from_segments():
    # fps 10: centres 0.05, 0.15, 0.25, 0.35, 0.45; [0.1, 0.3) holds 0.15 and 0.25
    assert G.frame_labels_from_segments([(0.1, 0.3)], 5, 10).tolist() == [0, 1, 1, 0, 0]
    # a segment ending mid-frame: frame 3 ([0.3, 0.4)) only when it covers its centre; scores ignored
    assert G.frame_labels_from_segments([(0.1, 0.34, 0.9)], 5, 10).tolist() == [0, 1, 1, 0, 0]
    assert G.frame_labels_from_segments([(0.1, 0.36, 0.9)], 5, 10).tolist() == [0, 1, 1, 1, 0]
    labels = G.frame_labels_from_segments([(0, 0.1), (0.4, 9)], 5, 10)
    assert labels.tolist() == [1, 0, 0, 0, 1] and labels.dtype.kind == "i"
    assert G.frame_labels_from_segments([], 3, 10).tolist() == [0, 0, 0]
    # a frame-grid proposal labels exactly its frames
    x = np.full(30, 0.05)
    x[7:12] = 0.9
    top = G.propose(x, FPS)[0]
    assert np.flatnonzero(G.frame_labels_from_segments([top], 30, FPS)).tolist() == list(range(7, 12))
