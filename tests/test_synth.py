"""The built-in benchmark: deterministic, labelled like FakeAVCeleb/LAV-DF, faces MediaPipe finds, and
honest: file-level features (size, bitrate, duration, leading silence, luminance, loudness) do not separate
real from fake."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dfdetect import datasets
from dfdetect.media import probe, read_all
from dfdetect.synth import DIFFICULTY, SR, plan, plan_utterance, synthesize, vocode, voice
from dfdetect.windows import leading_silence

N = 60


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, n=N, seed=1, workers=2, progress=False)
    return out


def test_layout_labels_and_splits(bench):
    with open(bench / "meta_data.csv") as f:
        rows = list(csv.reader(f))
    assert len(rows[0]) == 9 and all(len(r) == 10 for r in rows[1:])  # FakeAVCeleb's quirk, reproduced
    recs, reader = datasets.read(bench)
    assert reader.name == "dfdetect-synth" and len(recs) == N and not reader.problems
    cats = {r.category for r in recs}
    assert cats == {"A", "B", "C", "D"}
    methods = {r.method for r in recs}
    assert {"real", "vocoder", "faceswap", "lipsync", "desync", "faceswap-vocoder"} <= methods
    assert any(m.startswith("partial-") for m in methods)
    for r in recs:
        assert (r.label == "real") == (r.category == "A")
        assert r.av_mismatch == int(r.method in ("lipsync", "desync"))
        if r.method.startswith("partial"):
            assert r.fake_segments and all(0.5 - 1e-6 <= b - a <= 2.0 + 1e-6 for a, b in r.fake_segments)
        else:
            assert not r.fake_segments
    assert not datasets.split_leaks(recs)
    with open(bench / "splits.csv") as f:
        srows = list(csv.DictReader(f))
    train_ids = {r["identity"].split("_", 1)[1] for r in srows if r["split_identity"] == "train"}
    test_ids = {r["identity"].split("_", 1)[1] for r in srows if r["split_identity"] == "test"}
    assert test_ids and not (train_ids & test_ids)  # identity held out


def test_deterministic_plan_and_clip(tmp_path):
    assert plan(20, 5) == plan(20, 5) and plan(20, 5) != plan(20, 6)
    a, b = tmp_path / "a", tmp_path / "b"
    synthesize(a, n=6, seed=2, workers=1, progress=False)
    synthesize(b, n=6, seed=2, workers=1, progress=False)
    pa = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert pa == sorted(p.relative_to(b) for p in b.rglob("*.mp4"))
    fa, wa, _ = read_all(a / pa[0], fps=5)
    fb, wb, _ = read_all(b / pa[0], fps=5)
    assert np.array_equal(fa, fb) and np.allclose(wa, wb)


def _file_features(path: Path) -> list[float]:
    info = probe(path)
    frames, wave, _ = read_all(path, fps=5)
    lead = leading_silence(wave, 16000, -45.0) or 0.0
    return [info.size_bytes, info.size_bytes * 8 / max(info.duration, 1e-3), info.duration, lead,
            float(frames.mean()), float(np.sqrt(np.mean(wave ** 2)))]


def test_file_level_features_do_not_separate_real_from_fake(bench):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    recs, _ = datasets.read(bench)
    X = np.array([_file_features(Path(r.path)) for r in recs])
    y = np.array([r.label == "fake" for r in recs], int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_predict(model, X, y, cv=5, method="predict_proba")[:, 1]
    auc = roc_auc_score(y, scores)
    assert auc <= 0.6, f"file-level features separate the classes (AUC {auc:.2f}): the benchmark leaks"


def test_mediapipe_finds_faces_in_every_category(bench, detector):
    recs, _ = datasets.read(bench)
    per_cat: dict[str, list[bool]] = {}
    for r in recs:
        frames, _, _ = read_all(r.path, fps=4)
        key = r.method if r.method in ("lipsync", "desync") else r.category
        per_cat.setdefault(key, []).extend(bool(detector.detect(f)) for f in frames)
    for cat, hits in per_cat.items():
        assert np.mean(hits) >= 0.95, (cat, np.mean(hits))


def test_difficulty_scales_the_manipulations():
    assert DIFFICULTY["easy"] > DIFFICULTY["medium"] > DIFFICULTY["hard"]
    shifts = {d: [abs(s.shift) for s in plan(300, 0, d) if s.method == "desync"] for d in DIFFICULTY}
    assert np.mean(shifts["easy"]) > np.mean(shifts["medium"]) > np.mean(shifts["hard"])
    assert all(0.2 - 1e-9 <= s <= 1.0 + 1e-9 for v in shifts.values() for s in v)
    rng = np.random.default_rng(0)
    utt = plan_utterance(rng, 3.0)
    v = voice(utt, np.random.default_rng(1), 180.0)

    def high_band(x):
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / SR)
        return spec[f > 5000].sum() / spec.sum()

    easy = vocode(v, np.random.default_rng(2), DIFFICULTY["easy"])
    hard = vocode(v, np.random.default_rng(2), DIFFICULTY["hard"])
    assert high_band(easy) < high_band(hard) < high_band(v) * 1.5


def test_plan_keeps_only_the_methods_asked_for():
    from collections import Counter

    full = plan(400, 0)
    assert plan(400, 0, methods=None) == full  # the default benchmark is unchanged
    kept = ("real", "vocoder", "lipsync")
    counts = Counter(s.method for s in plan(90, 1, methods=kept))
    # shares 0.22 / 0.14 / 0.10 of 0.46 rescaled to 90 clips: 43.04 -> 43, 27.39 -> 27, 19.57 -> 20 (sum 90)
    assert counts == {"real": 43, "vocoder": 27, "lipsync": 20}
    with pytest.raises(ValueError, match="methods"):
        plan(10, 0, methods=("vocoder",))  # no reals
    with pytest.raises(ValueError, match="methods"):
        plan(10, 0, methods=("real", "deepfacelab"))
