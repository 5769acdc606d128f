"""Frame-level fake probabilities -> whole-video fake segments (temporal localisation, LAV-DF / AV-Deepfake1M).

The model scores every time step of a window (one step per video frame at the preset's fps), and windows
overlap. ``stitch`` averages the windows into one score per frame of the video (a *track*), ``propose`` turns a
track into scored segment proposals ``(start_s, end_s, score)`` the way the benchmarks evaluate them (AP at
IoU thresholds and AR@N, see ``dfdetect.metrics``), ``nms`` removes near-duplicates, and
``frame_labels_from_segments`` gives the frame labels a track is compared with (frame-level AUC).

Frame k spans [k / fps, (k + 1) / fps). Pure numpy: no TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from dfdetect.metrics import segment_iou

Proposal = tuple[float, float, float]

# Candidate thresholds: a segment's edges are where the track crosses *some* level, and which level depends on
# the video (a confident fake plateaus near 1, a hard one near 0.5), so every tenth is tried and the score
# picks. Below 0.1 every real clip's noise would make candidates. (Simulated, see NMS_IOU: 0.05:0.05:0.95 gave
# the same AR@50 with twice the candidates; 0.2:0.2:0.8 a little more AP, 0.01 less AR@50.)
THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Gaps of at most this many frames below a threshold are bridged: at 15 fps, up to 0.13 s where the model
# wavers inside a fake segment does not split it in two; two fakes further apart stay apart. (Frames no window
# scored never dip: stitch fills them.) Simulated, 0 to 5 changed no AP or AR figure by more than 0.01.
MAX_GAP = 2
# Soft-NMS (see nms) rather than removal, and no hard removal on top (IoU > 1 never happens). On a simulated
# benchmark (15 fps, 2 x 600 clips of 4-12 s: reals, one or two 0.2-1.5 s fakes, whole fakes; blurred, noisy
# tracks with spurious bumps) soft-NMS at sigma 1 beat the best hard NMS (IoU 0.7 or 0.8) on every AP and AR
# figure: AP@0.5 0.975 vs 0.955-0.962, AP@0.9 0.66-0.68 vs 0.62-0.65, AR@20 0.94 vs 0.89-0.90; hard NMS at 0.9
# on top of it only lowered AR@20 (0.92). A larger sigma trades AP@0.5 for AP@0.95 and AR@5 (sigma 2:
# AP@0.5 0.96, AP@0.95 0.37-0.41, AR@5 0.92-0.93).
NMS_IOU = 1.0
SOFT_SIGMA = 1.0


def _taper(n: int) -> np.ndarray:
    """Weights for the n steps of a window: sin^2 bump, highest at the centre, never zero at the edges.

    A window's edge steps saw less temporal context (the recurrent layer starts and stops there), so where
    windows overlap the one that holds the frame near its centre should decide. The bump is a Hann window over
    n + 2 points with its two zero end points dropped: the edge steps keep sin^2(pi / (n + 1)) > 0, so a frame
    that only one window's edge covers (the first and last frames of a video) still gets that window's score.
    """
    k = np.arange(1, n + 1)
    return np.sin(np.pi * k / (n + 1)) ** 2


def stitch(windows: Iterable[tuple[int, np.ndarray]], n_frames: int | None = None, taper: bool = True,
           ) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping window scores -> one score per video frame.

    ``windows``: ``(first_frame, scores)`` pairs, ``scores`` one value per step, step i being frame
    ``first_frame + i``; any order, overlaps and gaps allowed, NaN steps ignored. ``n_frames`` defaults to the
    end of the last window; steps outside ``[0, n_frames)`` are dropped.

    Returns ``(track, covered)``: ``track`` float32 (n_frames,), the weighted mean of the covering windows'
    steps (``_taper`` weights; equal weights with ``taper=False``), and ``covered`` bool (n_frames,). A frame
    no window scores takes the score of the nearest scored frame (the mean of the two when equidistant), with
    ``covered`` False: a wholly fake video whose first half second was never scored (face not found yet, the
    first window starting late) should still read as one fake segment over the whole clip, not end in a gap
    that splits or shortens it. No scored step at all: zeros, ``covered`` all False (empty without n_frames).
    """
    items = [(int(first), np.asarray(scores, np.float64).reshape(-1)) for first, scores in windows]
    if n_frames is None:
        n_frames = max((first + len(s) for first, s in items), default=0)
    n_frames = max(0, int(n_frames))
    # float64 sums, so the result hardly depends on the order the windows come in
    total = np.zeros(n_frames)
    weight = np.zeros(n_frames)
    for first, s in items:
        w = _taper(len(s)) if taper else np.ones(len(s))
        frames = first + np.arange(len(s))
        keep = np.isfinite(s) & (frames >= 0) & (frames < n_frames)
        np.add.at(total, frames[keep], w[keep] * s[keep])
        np.add.at(weight, frames[keep], w[keep])
    covered = weight > 0
    track = np.zeros(n_frames)
    np.divide(total, weight, out=track, where=covered)
    if covered.any() and not covered.all():
        track = _fill_nearest(track, covered)
    return track.astype(np.float32), covered


def _fill_nearest(track: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """``track`` with every uncovered frame set to the nearest covered frame's value (mean of two at a tie)."""
    idx = np.nonzero(covered)[0]
    k = np.arange(len(track))
    pos = np.searchsorted(idx, k)  # first covered frame at or after k
    left = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    right = idx[np.clip(pos, 0, len(idx) - 1)]
    d_left = np.where(pos > 0, k - left, np.inf)
    d_right = np.where(pos < len(idx), right - k, np.inf)
    tie = (track[left] + track[right]) / 2
    return np.where(d_right < d_left, track[right], np.where(d_left < d_right, track[left], tie))


def _runs(mask: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """Runs of True as inclusive (first, last) frame pairs, runs separated by at most ``max_gap`` False frames
    joined."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    runs: list[tuple[int, int]] = []
    for a, b in zip(edges[::2], edges[1::2] - 1):
        if runs and a - runs[-1][1] - 1 <= max_gap:
            runs[-1] = (runs[-1][0], int(b))
        else:
            runs.append((int(a), int(b)))
    return runs


def _segment_score(csum: np.ndarray, ccount: np.ndarray, a: int, b: int) -> float:
    """The confidence that frames a..b are one fake segment: mean inside - mean around it, at least 0.

    Why not the mean inside alone: the frames just inside a true segment's edges score lower than its centre
    (the model's temporal receptive field blurs the boundary), so the mean inside is highest for a proposal
    *shorter* than the truth - the run above 0.9 rather than the run above 0.5 - and AP at IoU 0.9-0.95 would
    rank the too-short one first. Subtracting the mean of the frames around it rewards edges that separate
    high from low: a too-short proposal has the truth's edge frames around it (high), a too-long one has low
    frames inside; the true extent gives the largest contrast. It stays comparable across videos, which is
    what AP ranks: a real clip's noise has a low mean and no contrast, a confident fake a high mean against
    a low background. A proposal over the whole clip has no surroundings and scores its mean inside ("fake
    everywhere" against an implicit background of 0). The surroundings are as long as the proposal on each
    side (at least 2 frames, at most 60; clipped to the track): long enough not to hinge on one noisy frame.
    On the simulated benchmark (see ``NMS_IOU``) the mean inside alone gave AP@0.9 0.41, this contrast
    0.66 (the product mean inside x (1 - mean around) 0.64); surroundings of a fixed 2 or 5 frames, or twice
    the proposal, did worse (0.47-0.59). Clipped at 0: soft-NMS scales scores, which would raise a negative one.
    """
    def total(lo: int, hi: int) -> tuple[float, float]:  # sum and count of finite values in frames lo..hi-1
        return csum[hi] - csum[lo], ccount[hi] - ccount[lo]

    n = len(csum) - 1
    s_in, c_in = total(a, b + 1)
    if c_in == 0:
        return 0.0
    ctx = int(min(60, max(2, b - a + 1)))
    s_l, c_l = total(max(0, a - ctx), a)
    s_r, c_r = total(b + 1, min(n, b + 1 + ctx))
    around = (s_l + s_r) / (c_l + c_r) if c_l + c_r else 0.0
    return float(max(0.0, s_in / c_in - around))


def nms(proposals: Iterable[Sequence[float]], iou: float, sigma: float | None = None) -> list[Proposal]:
    """Greedy non-maximum suppression of ``(start, end, score)`` proposals, returned by score, descending.

    Repeatedly keeps the highest-scored proposal left (ties: the earliest in the input) and drops every other
    that overlaps it with IoU > ``iou``. With ``sigma`` (soft-NMS, Bodla et al. 2017, Gaussian form, as
    LAV-DF's BA-TFD post-processing) the ones it keeps lose score instead: ``score * exp(-IoU^2 / sigma)``,
    so a near-duplicate sinks below other videos' segments (it would be a false positive there, costing AP)
    but stays in the video's top N, where its slightly different edges may be the ones that reach IoU 0.95.
    """
    rest = [(float(a), float(b), float(s)) for a, b, s in proposals]
    kept: list[Proposal] = []
    while rest:
        best = max(range(len(rest)), key=lambda j: rest[j][2])  # first of the highest: stable
        top = rest.pop(best)
        kept.append(top)
        left = []
        for p in rest:
            o = segment_iou(top, p)
            if o > iou:
                continue
            left.append((p[0], p[1], p[2] * float(np.exp(-o * o / sigma))) if sigma else p)
        rest = left
    return kept


def propose(track: np.ndarray, fps: float, duration: float | None = None,
            thresholds: Sequence[float] = THRESHOLDS, max_gap: int = MAX_GAP, min_frames: int = 1,
            nms_iou: float = NMS_IOU, max_proposals: int = 100, soft_sigma: float | None = SOFT_SIGMA,
            ) -> list[Proposal]:
    """Fake-segment proposals ``(start_s, end_s, score)`` from a frame track, by score, descending.

    Candidates: for every threshold, the runs of frames scoring at or above it, with gaps of at most
    ``max_gap`` frames bridged, at least ``min_frames`` long. Each is scored by ``_segment_score`` (its mean
    against the mean around it), then ``nms`` at ``nms_iou`` with soft-NMS at ``soft_sigma`` (None: plain greedy
    NMS, best at ``nms_iou`` 0.7 when used alone), and the best ``max_proposals`` are kept. Frames a..b
    become ``(a / fps, (b + 1) / fps)``, clipped to ``duration`` when given (frames starting at or after it
    are dropped). NaN frames count as below every threshold and are left out of the means.
    """
    x = np.asarray(track, np.float64).reshape(-1)
    if duration is not None:
        # frames whose span starts at or after the end of the clip (the last window ran past it)
        x = x[: max(0, int(np.ceil(duration * fps - 1e-9)))]
    finite = np.isfinite(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    candidates: dict[tuple[int, int], None] = {}  # insertion-ordered set: deterministic ties
    with np.errstate(invalid="ignore"):
        for t in thresholds:
            for a, b in _runs(finite & (x >= t), max_gap):
                if b - a + 1 >= min_frames:
                    candidates[(a, b)] = None
    scored = []
    for a, b in candidates:
        start, end = a / fps, (b + 1) / fps
        if duration is not None:
            end = min(end, float(duration))
        scored.append((start, end, _segment_score(csum, ccount, a, b)))
    return nms(scored, nms_iou, soft_sigma)[:max_proposals]


def frame_labels_from_segments(segments: Iterable[Sequence[float]], n_frames: int, fps: float) -> np.ndarray:
    """1 for frames whose centre (k + 0.5) / fps lies in any segment ``[start, end)`` (extra fields such as a
    score are ignored), else 0: int (n_frames,). The centre rather than any overlap, so that a segment on the
    frame grid (a proposal) labels exactly its own frames, and a frame a segment covers in part is fake when
    the segment reaches its centre."""
    centre = (np.arange(int(n_frames)) + 0.5) / fps
    labels = np.zeros(int(n_frames), int)
    for seg in segments:
        labels[(centre >= seg[0]) & (centre < seg[1])] = 1
    return labels
