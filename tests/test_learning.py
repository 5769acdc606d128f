"""The detector learns, and the figures it reports point the right way (``dfdetect.selfcheck``).

A tiny built-in benchmark (96 easy clips, the ``smoke`` model) is trained for a few epochs twice: once on its
labels, once on the labels inverted. Scored through ``evaluate_run`` — the code that writes ``metrics.json``
and the README's figures — on held-out clips, the first run must rank fakes clearly above reals and the second
clearly below, head by head. A pipeline that builds its targets wrong, a head that ignores its input, a branch
whose output is lost, or an evaluation that reads scores upside down each move one of these numbers to the
wrong side of its floor. Numbers from the built-in benchmark are pipeline checks, not claims about real-world
deepfakes.
"""

from __future__ import annotations

import pytest

from dfdetect.selfcheck import build_data, train_and_score

# Video-level ROC AUC floors on the held-out clips (37 videos, 10 real), each below the lowest of several
# training seeds with margin; `python bench/learning.py --seeds 0 1 2 3 4` measured, as is / inverted:
# fake 0.77-0.90 / 0.07-0.24, audio_fake 0.95-1.00 / 0.00-0.04, av_mismatch 0.85-0.98 / 0.04-0.36.
# video_fake is not taught by data this small (face swaps seen through 32 px): 0.44-0.73 as is, so no floor.
FLOORS = {"fake": 0.7, "audio_fake": 0.9, "av_mismatch": 0.6}


@pytest.fixture(scope="module")
def learn_data(tmp_path_factory):
    return build_data(tmp_path_factory.mktemp("learn"), n=96, seed=5)


@pytest.fixture(scope="module")
def results(learn_data, tmp_path_factory):
    return {name: train_and_score(learn_data, tmp_path_factory.mktemp(name), invert=name == "inverted")
            for name in ("labels", "inverted")}


def test_held_out_split_is_big_enough_to_mean_something(results):
    video = results["labels"]["video"]
    assert video["n"] >= 30 and video["n"] - video["positives"] >= 8, video


@pytest.mark.parametrize("head", list(FLOORS))
def test_each_head_learns_and_inverted_labels_invert_it(results, head):
    auc = results["labels"]["heads"][head]["auc"]
    inverted = results["inverted"]["heads"][head]["auc"]
    assert auc >= FLOORS[head], f"{head}: held-out AUC {auc:.3f} < {FLOORS[head]}: did it learn?"
    assert inverted <= 1 - FLOORS[head], (
        f"{head}: trained on inverted labels, held-out AUC {inverted:.3f} > {1 - FLOORS[head]:.2f}: the score "
        "does not follow the labels it was trained on")


def test_the_reported_video_auc_is_the_fake_heads(results):
    # metrics.json's headline figure is the fake head's video AUC, the one the floor above holds
    for m in results.values():
        assert m["video"]["auc"] == pytest.approx(m["heads"]["fake"]["auc"])
