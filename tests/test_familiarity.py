"""Familiarity and abstention (``dfdetect.familiarity``): the statistics, the files, and every verdict path.

Whether a *trained* model's familiarity separates the benchmark from unfamiliar clips is measured where a model
learned: ``tests/test_learning.py`` (and ``bench/familiarity.py`` on the demo model). Here the smoke export
checks the mechanics: what is saved, what is refused, and what a verdict says in each case.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfdetect.cli import main
from dfdetect.familiarity import (
    FILE,
    FamiliarityError,
    Reference,
    cross_fitted_part_distances,
    fit_parts,
)
from dfdetect.integrity import file_hashes
from dfdetect.predict import Detector
from dfdetect.sample_media import talking_clip


def _gaussian(n: int, d: int, shift: float, rng) -> np.ndarray:
    cov = np.diag(np.linspace(0.2, 3.0, d))
    return rng.multivariate_normal(np.full(d, shift), cov, n)


def _reference(train: np.ndarray, labels: np.ndarray, held: np.ndarray, parts, probe) -> Reference:
    means, precisions = fit_parts(train, labels, parts)
    ref = Reference(parts, means, precisions, np.ones(len(parts)), 0.0, np.zeros(0), probe)
    per = ref.part_distances(held)  # one window per "video" here
    ref.scales = np.median(per, axis=0)
    ref.held_out = np.sort((per / ref.scales).max(axis=1))
    ref.threshold = float(np.quantile(ref.held_out, 0.95, method="higher"))
    return ref


def test_reference_flags_what_is_far_in_any_part_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    parts = [("face", 8), ("voice", 4)]  # an embedding of two parts, concatenated
    train = np.concatenate([_gaussian(400, 12, 0.0, rng), _gaussian(400, 12, 1.0, rng)])
    labels = np.r_[np.zeros(400), np.ones(400)]
    ref = _reference(train, labels, _gaussian(200, 12, 0.5, rng), parts, rng.normal(size=(2, 12)))
    assert [m.shape for m in ref.means] == [(2, 8), (2, 4)] and ref.precisions[1].shape == (4, 4)
    fresh = ref.window_distances(_gaussian(400, 12, 0.0, rng))
    assert 0.01 <= np.mean(fresh > ref.threshold) <= 0.12  # about 5% of in-distribution data flagged
    odd_voice = _gaussian(50, 12, 0.0, rng)
    odd_voice[:, 8:] += 6.0  # only the voice part is unlike the training data: enough to be unfamiliar
    assert np.mean(ref.window_distances(odd_voice) > ref.threshold) == 1.0
    assert ref.unfamiliar_parts(odd_voice) == ["voice"]
    d, fam, ok = ref.judge(odd_voice)
    assert fam == 0.0 and ok is False and d == pytest.approx(ref.video_distance(odd_voice))
    # familiarity: the share of held-out videos at least as far; it falls as the distance grows
    assert ref.familiarity(0.0) == 1.0 and ref.familiarity(np.median(ref.held_out)) == pytest.approx(0.5, abs=0.01)

    ref.save(tmp_path)
    back = Reference.load(tmp_path)
    assert back.parts == parts and back.threshold == ref.threshold
    np.testing.assert_array_equal(back.precisions[0], ref.precisions[0])
    assert back.video_distance(odd_voice) == pytest.approx(ref.video_distance(odd_voice))
    back.check_probe(ref.probe + 1e-7)  # the same model, within float noise
    with pytest.raises(FamiliarityError, match="another model .*probe embedding differs"):
        back.check_probe(ref.probe * 1.1)
    with pytest.raises(FamiliarityError, match="embedding size 12, this model's 5"):
        back.check_probe(np.zeros((2, 5)))
    assert Reference.load(tmp_path / "nowhere") is None
    (tmp_path / FILE).write_bytes(b"not an npz")
    with pytest.raises(FamiliarityError, match="not a readable familiarity file"):
        Reference.load(tmp_path)


def test_cross_fitted_distances_are_out_of_sample():
    import pandas as pd

    rng = np.random.default_rng(1)
    x = _gaussian(300, 20, 0.0, rng)
    table = pd.DataFrame({"path": [f"v{i // 3}.mp4" for i in range(300)], "fake_label": rng.integers(0, 2, 300)})
    parts = [("pooled", 20)]
    means, precisions = fit_parts(x, table["fake_label"].to_numpy(), parts)
    in_sample = Reference(parts, means, precisions, np.ones(1), 0.0, np.zeros(0), np.zeros(0)).part_distances(x)
    crossed = cross_fitted_part_distances(x, table, parts)
    assert crossed.shape == (100, 1)  # every video gets a distance from statistics that never saw it
    assert crossed.mean() > in_sample.mean()  # which is what an unseen in-distribution video looks like


# ---------------------------------------------------------------------------------------------------------
# The exported model
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return talking_clip(tmp_path_factory.mktemp("fam") / "talk.mp4", seconds=3.0)


def test_export_writes_statistics_and_the_card_states_domain_and_abstention(smoke_export):
    card = json.loads((smoke_export / "model_card.json").read_text())
    fam = card["familiarity"]
    assert (smoke_export / FILE).exists() and fam["method"] == "mahalanobis"
    assert fam["train_windows"] > 0 and fam["held_out_videos"] > 0 and fam["target_rate"] == 0.05
    assert 0.0 <= fam["test_abstention_rate"] <= 1.0 and fam["test_videos"] > 0
    assert "dfdetect-synth" in card["training"]["domain"]["datasets"]
    assert "real footage is outside this domain" in card["training"]["domain"]["description"]
    md = (smoke_export / "model_card.md").read_text()
    assert "abstains on" in md and "of its own test split" in md and "pipeline check" in md
    # no evaluation of the smoke run exists: the card says where its threshold came from instead of hiding it
    assert card["threshold"] == 0.5 and card["threshold_source"].startswith("default 0.5: no evaluation")


def _set_threshold(export, value: float) -> None:
    ref = Reference.load(export)
    ref.threshold = value
    ref.save(export)
    _rehash(export)


def _rehash(export) -> None:
    """Records the changed files' sha256 in the card, as an export that wrote them would have."""
    card = json.loads((export / "model_card.json").read_text())
    card["files"] = file_hashes(export)
    (export / "model_card.json").write_text(json.dumps(card))


def test_unfamiliar_video_is_uncertain_unless_told_not_to_abstain(smoke_export, clip, tmp_path, capsys, export_copy):
    strict = export_copy("strict")
    _set_threshold(strict, 0.0)  # nothing is familiar enough: every video is out of distribution
    with Detector(strict) as det:
        v = det.predict_video(clip)
    assert v.status == "ok" and v.in_distribution is False and v.label == "uncertain"
    assert v.reason.startswith("this video is unlike anything this model was trained on: its score is not reliable")
    assert v.raw_label in ("real", "fake") and f"it would say {v.raw_label}" in v.reason
    assert v.segments == []  # no fake segments claimed from a score that is not reliable
    assert main(["predict", str(clip), "--model", str(strict), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["label"], row["in_distribution"]) == ("uncertain", False) and row["familiarity"] == v.familiarity
    assert main(["predict", str(clip), "--model", str(strict), "--json", "--no-abstain"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert (raw["label"], raw["in_distribution"]) == (v.raw_label, False)
    assert main(["predict", str(clip), "--model", str(strict)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{clip}: UNCERTAIN: this video is unlike anything this model was trained on")

    lenient = export_copy("lenient")
    _set_threshold(lenient, float("inf"))
    with Detector(lenient) as det:
        w = det.predict_video(clip)
    assert w.in_distribution is True and w.label == w.raw_label and w.score == pytest.approx(v.score)
    assert "unlike anything" not in w.reason


def test_export_without_statistics_still_predicts_with_a_notice(smoke_export, clip, tmp_path, capsys, export_copy):
    old = export_copy("old")
    (old / FILE).unlink()  # as exported before familiarity existed
    notices: list[str] = []
    with Detector(old, notify=notices.append) as det:
        v = det.predict_video(clip)
    assert len(notices) == 1 and "in_distribution null" in notices[0]
    assert v.status == "ok" and v.in_distribution is None and v.familiarity is None
    assert v.label in ("real", "fake") and "familiarity unknown" in v.reason
    assert main(["predict", str(clip), "--model", str(old), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["in_distribution"] is None
    assert [line for line in err.splitlines() if line.startswith("notice:")] == [
        f"notice: {notices[0]}"]


def test_statistics_of_another_model_are_refused(smoke_export, clip, tmp_path, capsys, export_copy):
    import keras

    from dfdetect.config import load_config
    from dfdetect.model import build_model

    other = export_copy("other")
    keras.utils.set_random_seed(123)
    build_model(load_config(other / "config.yaml")).save(other / "model.keras")  # another model, same shape
    _rehash(other)  # a folder put together consistently, yet with another model's statistics
    with pytest.raises(FamiliarityError, match="computed for another model"):
        Detector(other)
    assert main(["predict", str(clip), "--model", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "export the run again" in err[0]


def test_savedmodel_and_keras_agree_on_familiarity(smoke_export, clip):
    with Detector(smoke_export) as k, Detector(smoke_export, fmt="saved_model") as s:
        a, b = k.predict_video(clip), s.predict_video(clip)
    assert a.distance == pytest.approx(b.distance, rel=1e-4) and a.in_distribution == b.in_distribution
