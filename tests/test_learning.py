"""The detector learns, and the figures it reports point the right way (``dfdetect.selfcheck``).

A tiny built-in benchmark (128 easy clips: real, fake voices, lip-sync and shifted voices, face swaps with fake
voices; a smoke-sized model) is trained for 24 short epochs twice: once on its labels, once on them inverted.
Scored through ``evaluate_run`` — the code that writes ``metrics.json`` and the README's figures — on held-out
clips, the first run must rank fakes clearly above reals and the second clearly below, head by head. A pipeline
that builds its targets wrong, a head that ignores its input, a branch whose output is lost, or an evaluation
that reads scores upside down each move one of these numbers to the wrong side of its floor. Numbers from the
built-in benchmark are pipeline checks, not claims about real-world deepfakes.
"""

from __future__ import annotations

import pytest

from dfdetect.selfcheck import build_data, train_and_score

# Video-level ROC AUC on the held-out clips (51 videos, 19 real). `python bench/learning.py --seeds 0 1 2 3`
# measured, trained on the labels / on them inverted: fake 0.94-1.00 / 0.01-0.20, video_fake 0.84-0.96 /
# 0.05-0.19, audio_fake 0.96-1.00 / 0.00-0.26, av_mismatch 0.99-1.00 / 0.00-0.02. Each floor sits below the
# lowest run with margin, and every inverted run must stay under CEILING.
FLOORS = {"fake": 0.85, "video_fake": 0.7, "audio_fake": 0.85, "av_mismatch": 0.85}
CEILING = 0.4


@pytest.fixture(scope="module")
def learn_data(tmp_path_factory):
    return build_data(tmp_path_factory.mktemp("learn"), seed=5)


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
    assert inverted <= CEILING, (
        f"{head}: trained on inverted labels, held-out AUC {inverted:.3f} > {CEILING}: the score does not "
        "follow the labels it was trained on")


def test_the_reported_video_auc_is_the_fake_heads(results):
    # metrics.json's headline figure is the fake head's video AUC, the one the floor above holds
    for m in results.values():
        assert m["video"]["auc"] == pytest.approx(m["heads"]["fake"]["auc"])
