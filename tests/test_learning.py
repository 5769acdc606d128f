"""The detector learns, and the figures it reports point the right way (``dfdetect.selfcheck``).

A tiny built-in benchmark (128 easy clips: real, fake voices, lip-sync and shifted voices, face swaps with fake
voices; a smoke-sized model) is trained for 24 short epochs on its labels (three seeds, AUCs averaged) and twice
on them inverted, each run in a fresh process. Scored through ``evaluate_run`` — the code that writes ``metrics.json`` and the README's figures
— on held-out clips, the runs on the labels must rank fakes clearly above reals and the inverted run clearly
below, head by head. A pipeline that builds its targets wrong, a head that ignores its input, a branch whose
output is lost, or an evaluation that reads scores upside down each move one of these numbers to the wrong side
of its floor. Numbers from the built-in benchmark are pipeline checks, not claims about real-world deepfakes.
"""

from __future__ import annotations

import pytest

from dfdetect.selfcheck import build_data, train_and_score

# Video-level ROC AUC on the held-out clips (51 videos, 19 real). Single runs, each in a fresh process
# (`python bench/learning.py --seeds 0 1 2 3` and three runs of this test), trained on the labels / on them
# inverted: fake 0.76-1.00 / 0.00-0.35, video_fake 0.82-0.98 / 0.03-0.24, audio_fake 0.63-1.00 / 0.00-0.39,
# av_mismatch 0.98-1.00 / 0.00-0.03; seed 1 is the one that now and then memorises its training voices (audio_fake
# 0.63-0.72). The seed-0 run twice in one process gave fake 0.98 and 0.80: threaded kernels and parallel input
# do not repeat a run bit for bit. Runs inside the test session, before they moved to their own processes, were
# lower: fake 0.71 and 0.80, audio_fake 0.68 and 0.67, an inverted fake head 0.42 and 0.44. The floors hold the
# mean of three seeds below the lowest single runs, still far above what a broken pipeline scores (0.5, or below
# it); the mean of the two inverted runs must stay under CEILING.
FLOORS = {"fake": 0.75, "video_fake": 0.7, "audio_fake": 0.7, "av_mismatch": 0.85}
CEILING = 0.4


@pytest.fixture(scope="module")
def learn_data(tmp_path_factory):
    return build_data(tmp_path_factory.mktemp("learn"), seed=5)


# Runs on the labels: three training seeds, their AUCs averaged, so that one run that memorised a cue instead of
# learning it (about one in four for audio_fake) does not decide the test alone; two runs on inverted labels.
SEEDS = (0, 1, 2)
INVERTED_SEEDS = (0, 1)


# The five runs train two at a time (each in its own fresh process): on CI's two cores that takes about 60% of
# the time of one after another, and a run cannot see another's process.
WORKERS = 2


def fresh_processes(jobs: list[tuple[tuple, dict]]) -> list[dict]:
    """``train_and_score(*args, **kwargs)`` for each job, each in a new Python process, as ``bench/learning.py``
    runs it: inside the test session the same runs scored lower together (fake 0.71 and 0.80 for seeds that
    scored 1.00 and 0.76 alone; an inverted run 0.44 for one that scored 0.00), so what earlier tests leave behind
    in the process must not decide them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # max_tasks_per_child=1: a process per run, so one run cannot leave anything behind for the next either
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futures = [pool.submit(train_and_score, *args, **kwargs) for args, kwargs in jobs]
        return [f.result() for f in futures]


@pytest.fixture(scope="module")
def runs(learn_data, tmp_path_factory):
    """Every run of the check: (folder, metrics) on the labels per seed of SEEDS, then inverted per seed of
    INVERTED_SEEDS."""
    roots = [tmp_path_factory.mktemp(f"labels{s}") for s in SEEDS]
    roots += [tmp_path_factory.mktemp(f"inverted{s}") for s in INVERTED_SEEDS]
    jobs = [((learn_data, r), {"seed": s}) for r, s in zip(roots, SEEDS)]
    jobs += [((learn_data, r), {"seed": s, "invert": True}) for r, s in zip(roots[len(SEEDS):], INVERTED_SEEDS)]
    return list(zip(roots, fresh_processes(jobs)))


@pytest.fixture(scope="module")
def first_run(runs):
    """The seed-0 run on the labels: its folder and its metrics."""
    return runs[0]


@pytest.fixture(scope="module")
def results(runs):
    return {"labels": [m for _, m in runs[:len(SEEDS)]], "inverted": [m for _, m in runs[len(SEEDS):]]}


def _auc(runs: list[dict], head: str) -> tuple[float, list[float]]:
    aucs = [m["heads"][head]["auc"] for m in runs]
    return sum(aucs) / len(aucs), aucs


def test_held_out_split_is_big_enough_to_mean_something(results):
    video = results["labels"][0]["video"]
    assert video["n"] >= 30 and video["n"] - video["positives"] >= 8, video


@pytest.mark.parametrize("head", list(FLOORS))
def test_each_head_learns_and_inverted_labels_invert_it(results, head):
    auc, each = _auc(results["labels"], head)
    inverted, _ = _auc(results["inverted"], head)
    assert auc >= FLOORS[head], f"{head}: held-out AUC {auc:.3f} (seeds {each}) < {FLOORS[head]}: did it learn?"
    assert inverted <= CEILING, (
        f"{head}: trained on inverted labels, held-out AUC {inverted:.3f} > {CEILING}: the score does not "
        "follow the labels it was trained on")


def test_the_reported_video_auc_is_the_fake_heads(results):
    # metrics.json's headline figure is the fake head's video AUC, the one the floor above holds
    for runs in results.values():
        for m in runs:
            assert m["video"]["auc"] == pytest.approx(m["heads"]["fake"]["auc"])


# Familiarity on a model that learned. The held-out clips are the benchmark's own: few may abstain (the
# threshold is set to flag 5% of cross-fitted training videos). Clips it never saw — other people's faces, framing,
# light, compression, voices (dfdetect.wild_media) — must abstain. bench/familiarity.py measured on the demo
# model: 2.9% of 68 test videos abstained, 28 of 28 unfamiliar clips with a face did. Here, measured once: 0 of 51
# held-out clips abstained, and all 6 clips below did, at distances 2.6-8.8 against a threshold of 1.78.
UNFAMILIAR = ("lfw-closeup", "phone-vertical", "dim-light", "webm-interview", "low-bitrate-call", "silent-no-audio")


def test_familiarity_keeps_the_benchmark_and_flags_clips_it_never_saw(first_run, learn_data, tmp_path):
    from dfdetect.export import export_model
    from dfdetect.predict import Detector
    from dfdetect.wild_media import clip_name, unfamiliar_clip

    root, metrics = first_run
    sel = metrics["selective"]
    assert sel["abstention_rate"] <= 0.2, sel  # the benchmark's held-out clips stay mostly in distribution
    exported = export_model(root / "run", tmp_path / "export", which="final", report_dir=root / "report",
                            data_dir=learn_data)
    clips = [unfamiliar_clip(tmp_path / clip_name(k, 1), k, seed=1, seconds=3.0) for k in UNFAMILIAR]
    with Detector(exported) as det:
        verdicts = [det.predict_video(c) for c in clips]
    flagged = [v.in_distribution is False and v.label == "uncertain" for v in verdicts]
    assert sum(flagged) >= len(clips) - 1, [(v.path, v.label, v.familiarity, v.raw_label) for v in verdicts]
