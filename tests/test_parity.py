"""Parity where it matters: the exported SavedModel (what TF Serving runs) against the training run's own
``best.keras`` — not a copy saved by the same export call — scoring the same windows of a real video whose
face leaves the picture for a while, through ``Detector`` on both paths."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.media import write_video
from dfdetect.model import HEADS
from dfdetect.predict import Detector
from dfdetect.sample_media import moving_face_frames, tone


@pytest.fixture(scope="module")
def face_leaves_clip(tmp_path_factory):
    """4 s at 25 fps: the astronaut for 1.6 s, an empty room for 1 s, then the astronaut again."""
    fps = 25
    frames, _ = moving_face_frames("astronaut", n=4 * fps, size=(320, 240), scale=0.5)
    empty = np.full_like(frames[0], 90)
    frames = frames[:40] + [empty] * 25 + frames[65:]
    path = tmp_path_factory.mktemp("parity") / "face_leaves.mp4"
    write_video(path, frames, fps=fps, audio=tone(4.0))
    return path


def test_savedmodel_matches_the_runs_best_keras_through_detector(smoke_run, smoke_export, face_leaves_clip):
    best = smoke_run / "best.keras"
    with Detector(smoke_export, fmt="saved_model") as served, Detector(smoke_export, model_file=best) as ref:
        a = served.predict_video(face_leaves_clip, keep_windows=True)
        b = ref.predict_video(face_leaves_clip, keep_windows=True)
        assert a.status == b.status == "ok" and a.windows == b.windows >= 3
        masks = np.stack([w.mask for w in a._windows]).astype(np.float32)
        assert np.array_equal(masks, np.stack([w.mask for w in b._windows]))  # the same windows on both paths
        # faceless frames really are in the masks: some windows are mixed, and not every frame has a face
        mixed = (masks.min(axis=1) == 0) & (masks.max(axis=1) == 1)
        assert mixed.any() and 0.2 < masks.mean() < 0.9, masks.mean(axis=1)
        frames = np.stack([w.frames for w in a._windows])
        audio = np.stack([w.audio for w in a._windows])
        raw_a = served.score_windows(frames, audio, masks)
        raw_b = ref.score_windows(frames, audio, masks)
    for h in HEADS:
        np.testing.assert_allclose(raw_a[h], raw_b[h], atol=1e-5, err_msg=h)
        # and the verdicts built from them: per-window timeline (rounded to 4 places), video scores, label
        np.testing.assert_allclose([t[h] for t in a.timeline], [t[h] for t in b.timeline], atol=2e-4)
        assert getattr(a, h if h != "fake" else "score") == pytest.approx(
            getattr(b, h if h != "fake" else "score"), abs=1e-5)
    assert a.label == b.label and a.segments == b.segments
    # the comparison is not between two constants: the windows' scores differ (faces come and go)
    assert np.ptp(raw_a["fake"]) > 1e-4 or np.ptp(raw_a["video_fake"]) > 1e-4
