"""The frame-level heads learn *where* a video was faked (``dfdetect.selfcheck``, ``dfdetect.segments``).

A tiny built-in benchmark of real clips and partial fakes (6-10 s clips with 1-3 fake segments of 0.4-2 s, of
the face, the voice or both; easy) is preprocessed with the smoke preset, the smoke model is trained on it, and
``evaluate_run`` scores the held-out clips the way LAV-DF and AV-Deepfake1M score localisation: segment AP and
AR over every held-out video and frame-level AUC. A frame head that ignores its input, frame labels built from
the wrong frames, a stitching that misplaces windows on the video's frame grid, or proposals that lose a
segment's edges each push one of these numbers under its floor. Numbers from the built-in benchmark are
pipeline checks, not claims about real-world deepfakes.
"""

from __future__ import annotations

import pytest

from dfdetect.selfcheck import LOCALISE_CONFIG, LOCALISE_METHODS, build_data, train_and_score

# `python bench/localisation.py --seeds 0 1 2` measured on the held-out clips (26 videos, 2 cores), trained with
# boundary weight 1.0: frame AUC (any modality) 0.74-0.83, segment AP@0.5 0.24-0.35 (the voice alone: frame AUC
# 0.61-0.79, too spread to hold a floor). A frame head that ignores its input scores frame AUC 0.5 and AP near 0;
# frame labels on the wrong frames or a stitch that misplaces windows fall towards that too. The smoke model sees
# faces through 32 px crops and learns from ~22 clips: these floors say it learnt where, not that it is good at it
# (the full benchmark's figures are in the README).
FLOORS = {("any", "frame_auc"): 0.65, ("any", "ap@0.5"): 0.12}


@pytest.fixture(scope="module")
def localisation(tmp_path_factory):
    root = tmp_path_factory.mktemp("localise")
    data = build_data(root / "data", n=48, seed=11, methods=LOCALISE_METHODS)
    metrics = train_and_score(data, root, seed=0, config=LOCALISE_CONFIG)
    return metrics


def test_every_held_out_video_is_scored(localisation):
    loc = localisation["localisation"]
    assert loc["any"]["videos"] == localisation["videos"] >= 12
    assert loc["any"]["segments"] >= 6  # enough true segments for AP to mean something


@pytest.mark.parametrize("key", list(FLOORS))
def test_frame_heads_learn_where(localisation, key):
    modality, metric = key
    got = localisation["localisation"][modality][metric]
    assert got >= FLOORS[key], f"{modality} {metric} {got:.3f} < {FLOORS[key]}: did the frame heads learn where?"
