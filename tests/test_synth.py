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
from dfdetect.synth import (
    ALL_METHODS,
    DIFFICULTY,
    FPS,
    LONG_SECONDS,
    METHODS,
    SEGMENT_SECONDS,
    SHORT_SECONDS,
    SR,
    UNSEEN_METHODS,
    ClipSpec,
    build_clip,
    envelope_of,
    identities,
    lpc_resynth,
    plan,
    plan_utterance,
    segment_frames,
    segment_samples,
    synthesize,
    vocode,
    voice,
)
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
        lo, hi = SEGMENT_SECONDS["medium"]
        if r.method.startswith("partial"):
            assert r.fake_segments and all(lo - 1e-6 <= b - a <= hi + 1e-6 for a, b in r.fake_segments)
            assert r.video_segments == (r.fake_segments if r.video_fake else ())
            assert r.audio_segments == (r.fake_segments if r.audio_fake else ())
        else:
            assert not r.fake_segments
            # per-modality spans: the whole clip where that modality is fake, nothing where it is real
            for own, fake in ((r.video_segments, r.video_fake), (r.audio_segments, r.audio_fake)):
                assert own == (((0.0, own[0][1]),) if fake else ()) and (not fake or own[0][1] > 3.5)
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


def _is_long(spec) -> bool:
    return LONG_SECONDS[0] - 1e-9 <= spec.seconds <= LONG_SECONDS[1] + 1e-9


@pytest.mark.parametrize("difficulty", list(DIFFICULTY))
def test_partial_fakes_segments_and_long_clips(difficulty):
    lo, hi = SEGMENT_SECONDS[difficulty]
    lengths, per_clip = [], []
    for seed in range(3):
        for shortcut in (False, True):
            specs = plan(400, seed, difficulty, silence_shortcut=shortcut)
            partial = [s for s in specs if s.method.startswith("partial")]
            assert {s.method for s in partial} == {"partial-audio", "partial-video", "partial-both"}
            for s in specs:
                if not s.method.startswith("partial"):
                    assert not s.segments
                    continue
                assert _is_long(s), s
                segs = s.segments
                per_clip.append(len(segs))
                assert 1 <= len(segs) <= 3
                assert segs[0][0] >= s.lead + 0.3 - 1e-9 and segs[-1][1] <= s.seconds - 0.1 + 1e-9
                for (a, b), nxt in zip(segs, [*segs[1:], None]):
                    assert lo - 1e-9 <= b - a <= hi + 1e-9
                    assert (a, b) == (round(a, 3), round(b, 3))  # what metadata.json stores is what is rendered
                    if nxt is not None:
                        assert nxt[0] - b >= 0.3 - 1e-9
                    lengths.append(b - a)
            # long clips: every partial fake, and as many reals as keep the fake rate among long clips the same
            longs = [s for s in specs if _is_long(s)]
            assert all(_is_long(s) or SHORT_SECONDS[0] <= s.seconds <= SHORT_SECONDS[1] for s in specs)
            assert {s.method for s in longs if s.category == "A"} == {"real"}
            reals = [s for s in specs if s.category == "A"]
            long_reals = [s for s in longs if s.category == "A"]
            assert long_reals and len(long_reals) < len(reals)
            fake_rate_long = 1 - len(long_reals) / len(longs)
            fake_rate = 1 - len(reals) / len(specs)
            assert abs(fake_rate_long - fake_rate) <= 1 / len(longs)
    assert set(per_clip) == {1, 2, 3} and min(np.bincount(per_clip)[1:]) > 0.2 * len(per_clip)
    # log-uniform lengths: short segments are common (P(length < 2 lo) is log 2 / log(hi / lo))
    short = np.mean(np.array(lengths) < 2 * lo)
    assert short > 0.8 * np.log(2) / np.log(hi / lo), short
    assert max(lengths) > 0.85 * hi and min(lengths) < 1.1 * lo


def test_partial_plan_is_deterministic_and_leaves_other_kinds_alone():
    assert plan(200, 3, "hard") == plan(200, 3, "hard")
    assert plan(200, 3, "hard") != plan(200, 4, "hard")
    # without partial fakes nothing is long: the benchmark for one question keeps its 3.6-4.4 s clips
    assert all(SHORT_SECONDS[0] <= s.seconds <= SHORT_SECONDS[1]
               for s in plan(90, 1, methods=("real", "vocoder", "lipsync")))
    # difficulty changes segment lengths, never which clips are long or which real clips exist
    easy, hard = plan(200, 3, "easy"), plan(200, 3, "hard")
    assert [(s.method if not s.method.startswith("partial") else "p", s.seconds, s.lead) for s in easy] == \
        [(s.method if not s.method.startswith("partial") else "p", s.seconds, s.lead) for s in hard]


def test_short_segment_frame_and_sample_masks():
    from dfdetect.records import VideoRecord
    from dfdetect.shards import FRAME_MODALITIES, frame_labels

    assert np.flatnonzero(segment_frames([(1.0, 1.2)], 60)).tolist() == [25, 26, 27, 28, 29]  # 0.2 s: 5 frames
    rng = np.random.default_rng(0)
    starts = np.round(rng.uniform(0.3, 2.5, 40), 3).tolist() + [1.02, 0.5]  # 1.02: a frame centre on the edge
    for a in starts:
        for d in (0.2, 0.201, 0.23, 0.5):
            seg = (a, round(a + d, 3))
            rec = VideoRecord(path="x.mp4", label="fake", video_fake=1, audio_fake=0, fake_segments=(seg,))
            labels = frame_labels(rec, 0, 80, FPS)[FRAME_MODALITIES.index("video")]
            assert np.array_equal(segment_frames([seg], 80), labels == 1), seg  # what is shown is what is labelled
    # the audio ramps (10 ms each side) leave a 0.2 s segment wholly fake in between
    m = segment_samples([(1.0, 1.2)], 2 * SR)
    assert m[: SR].max() == 0 and m[int(1.2 * SR):].max() == 0
    assert np.all(m[int(1.01 * SR):int(1.19 * SR)] == 1.0) and 0.18 * SR < m.sum() < 0.2 * SR


def test_a_rendered_short_segment_swaps_exactly_its_frames(tmp_path, monkeypatch):
    import dfdetect.media

    shown = {}

    def capture(path, frames, **kwargs):
        shown[Path(path).stem] = [f.copy() for f in frames]
        Path(path).write_bytes(b"")

    monkeypatch.setattr(dfdetect.media, "write_video", capture)
    ids = identities()
    other = next(i for i, x in enumerate(ids) if x.photo != ids[0].photo)
    seg = [(0.48, 0.68)]  # 0.2 s: the frames whose centres (0.02 + 0.04 k) lie inside, 12..16
    fake = ClipSpec(index=0, seed=5, identity=0, utterance=0, category="C", method="partial-video", seconds=1.2,
                    lead=0.1, strength=0.6, swap_identity=other, segments=seg, modify_video=True)
    real = ClipSpec(index=0, seed=5, identity=0, utterance=0, category="A", method="real", seconds=1.2,
                    lead=0.1, strength=0.6)
    build_clip(fake, tmp_path / "fake.mp4", 0)
    build_clip(real, tmp_path / "real.mp4", 0)
    differs = np.array([not np.array_equal(a, b) for a, b in zip(shown["fake.part"], shown["real.part"])])
    assert np.flatnonzero(differs).tolist() == [12, 13, 14, 15, 16]
    assert np.array_equal(differs, segment_frames(seg, 30))


# --- Unseen manipulation families and the extreme level (#13) ---------------------------------------------

# sha256 of the three portraits' plans (``faces="photos"``, the default before #13), taken before the unseen
# methods and ``extreme`` existed: figures were measured on these benchmarks, so they must never change.
DEFAULT_PLANS = {
    (40, 3, "medium"): "278127553f1a5fad19a4dffd4aa69ae18d6433a4cf74f6b0118f9805d31c2765",
    (400, 0, "easy"): "50b3e71bf17aa5665db96504fdad1d4cc8798765e3e8ac6398d7384d2853035f",
    (400, 0, "medium"): "282d5fe9d9074b996e7d04df1ba9a15d5297fa34d74def54f1977dc9834ac113",
    (400, 0, "hard"): "a0e08566e7dc0e841f0cf3c85799fb226849a002de92ba552c3cd8dfea75a004",
}


def _plan_hash(specs) -> str:
    import hashlib
    import json
    from dataclasses import asdict

    return hashlib.sha256(json.dumps([asdict(s) for s in specs], sort_keys=True).encode()).hexdigest()


# sha256 of the default plans (``faces="people"``: people and utterances held out), taken when it became the
# default (#13): the README's tables were re-measured on these.
PEOPLE_PLANS = {
    (40, 3, "medium"): "730f727bf8e1f4a2de2965c9116c174390885f8ae4543086fef57930db7802e2",
    (400, 0, "medium"): "a831f68844b0fc3daa5a14d80a75c947f202226668b65eccfdfe06bf1d82c167",
    (400, 0, "hard"): "b686280e67cbb290c5269fa63e3f1b52f447a478ace44fd23655f17b4a5a26ec",
}


def test_the_default_plan_is_byte_for_byte_what_it_was():
    for (n, seed, difficulty), digest in PEOPLE_PLANS.items():
        assert _plan_hash(plan(n, seed, difficulty)) == digest, (n, seed, difficulty)
    for (n, seed, difficulty), digest in DEFAULT_PLANS.items():
        specs = plan(n, seed, difficulty, faces="photos")
        assert _plan_hash(specs) == digest, (n, seed, difficulty)
        assert not {s.method for s in specs} & set(UNSEEN_METHODS)
    assert METHODS == ("real", "vocoder", "faceswap", "lipsync", "desync", "faceswap-vocoder", "partial")
    assert UNSEEN_METHODS == ("reenact", "resample", "lpc") and ALL_METHODS == METHODS + UNSEEN_METHODS
    # naming only default kinds leaves the unseen ones out too, and draws what it drew before
    assert _plan_hash(plan(90, 1, methods=("real", "vocoder", "lipsync"), faces="photos")) == \
        "4d50a19e3de13e66ba62439c31f4664d103edc4ad2ec44b19b640e62991b4f71"


def test_unseen_methods_appear_only_when_asked_for_with_their_labels():
    from collections import Counter

    specs = plan(200, 0, methods=ALL_METHODS)
    counts = Counter(s.method for s in specs)
    # each unseen kind gets 0.14 of 1.42 (like vocoder and faceswap): 19.7 -> about 20 of 200
    assert all(18 <= counts[m] <= 22 for m in UNSEEN_METHODS) and counts["vocoder"] == counts["reenact"]
    labels = {"reenact": ("C", True, False), "resample": ("C", True, False), "lpc": ("B", False, True)}
    for s in specs:
        if s.method in labels:
            assert (s.category, s.modify_video, s.modify_audio) == labels[s.method]
            assert s.swap_identity == -1 and not s.segments
            assert SHORT_SECONDS[0] <= s.seconds <= SHORT_SECONDS[1]
            # a reenactment is driven by another utterance of the benchmark
            assert (s.mouth_utterance not in (-1, s.utterance)) == (s.method == "reenact")
    assert Counter(s.method for s in plan(40, 0, methods=("real", "lpc"))).keys() == {"real", "lpc"}
    with pytest.raises(ValueError, match="reenact"):
        plan(10, 0, methods=("real", "reenactment"))


@pytest.fixture
def render(monkeypatch, tmp_path):
    """Renders specs without encoding: name -> (frames uint8 (T, H, W, 3), audio float32)."""
    import dfdetect.media

    shown = {}

    def capture(path, frames, audio=None, **kwargs):
        shown[Path(path).name.split(".")[0]] = (np.stack(list(frames)), np.asarray(audio))
        Path(path).write_bytes(b"")

    monkeypatch.setattr(dfdetect.media, "write_video", capture)

    def run(**specs):
        for name, spec in specs.items():
            build_clip(spec, tmp_path / f"{name}.mp4", 0)
        return {name: shown[name] for name in specs}

    return run


def _clip(method, category, strength=0.6, seconds=3.0, **kw) -> ClipSpec:
    return ClipSpec(index=0, seed=5, identity=0, utterance=0, category=category, method=method,
                    seconds=seconds, lead=0.1, strength=strength, **kw)


def _mouth_follows_voice(frames, audio) -> float:
    """Correlation of the mouth's visible area (the drawn mouth's dark-red pixels) with the heard loudness."""
    f = frames.astype(int)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    area = ((r < 130) & (g < 70) & (r - g > 30) & (r - b > 20)).sum((1, 2))
    per = SR // FPS
    loud = np.pad(envelope_of(audio), (0, len(f) * per))[: len(f) * per].reshape(len(f), per).mean(1)
    return float(np.corrcoef(area, loud)[0, 1])


def _same_face(a: np.ndarray, b: np.ndarray) -> float:
    """Best normalised cross-correlation of frame ``a``'s eyes-and-nose patch anywhere in frame ``b``, over
    the scales head motion spans."""
    import cv2

    tpl = cv2.cvtColor(a[80:150, 90:166], cv2.COLOR_RGB2GRAY).astype(np.float32)
    img = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return max(float(cv2.matchTemplate(img, cv2.resize(tpl, None, fx=s, fy=s), cv2.TM_CCOEFF_NORMED).max())
               for s in np.linspace(0.88, 1.12, 7))


def test_reenact_keeps_the_identity_redrives_head_and_mouth(render):
    ids = identities()
    other = next(i for i, x in enumerate(ids) if x.photo != ids[0].photo)
    out = render(real=_clip("real", "A", 0.3),
                 reenact=_clip("reenact", "C", 0.3, mouth_utterance=3, modify_video=True),
                 lipsync=_clip("lipsync", "C", 0.3, mouth_utterance=3, modify_video=True),
                 faceswap=_clip("faceswap", "C", 0.3, swap_identity=other, modify_video=True))
    real, audio = out["real"]
    assert np.array_equal(out["reenact"][1], audio)  # FakeVideo-RealAudio: the voice is the real one
    same = {k: np.mean([_same_face(real[i], out[k][0][i]) for i in range(0, len(real), 10)])
            for k in ("reenact", "faceswap")}
    assert same["reenact"] > 0.8 and same["reenact"] > same["faceswap"] + 0.15, same  # the person, no swap
    follows = {k: _mouth_follows_voice(out[k][0], audio) for k in ("real", "reenact")}
    assert follows["real"] > 0.8 and follows["reenact"] < 0.3, follows  # the mouth follows another utterance
    changed = {k: float((np.abs(out[k][0].astype(int) - real).max(-1) > 8).mean())
               for k in ("reenact", "lipsync")}
    assert changed["lipsync"] < 0.05 and changed["reenact"] > 0.3, changed  # the head moves as the driver's


def test_resample_changes_the_face_region_and_nothing_else(render):
    out = render(real=_clip("real", "A", seconds=1.0),
                 fake=_clip("resample", "C", seconds=1.0, modify_video=True))
    (real, audio), (fake, fake_audio) = out["real"], out["fake"]
    assert np.array_equal(audio, fake_audio)
    differs = (real != fake).any(-1).any(0)
    assert 0.05 < differs.mean() < 0.35, differs.mean()  # the face region, not the frame
    border = np.ones_like(differs)
    border[20:-20, 20:-20] = False
    assert not (differs & border).any()  # far from the face every pixel is the real clip's
    assert np.array_equal(real[:, :, :20], fake[:, :, :20])
    assert _detail(fake) < 0.6 * _detail(real), (_detail(fake), _detail(real))  # fine detail and grain gone


def _detail(frames) -> float:
    """High-frequency energy (Laplacian) in the middle of the frame, where the face is."""
    import cv2

    lap = np.stack([cv2.Laplacian(f.mean(-1), cv2.CV_64F) for f in frames.astype(np.float64)])
    return float((lap[:, 90:170, 90:170] ** 2).mean())


def _fine_and_envelope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Correlation of the log-spectra's fine structure (minus a 15-bin smoothing, loud frames, 0-6 kHz), and
    of the smoothed spectral envelopes."""
    from scipy import signal

    logs = [np.log(np.abs(signal.stft(z, SR, nperseg=512)[2]) + 1e-5) for z in (x, y)]
    box = np.ones(15) / 15
    smooth = [np.apply_along_axis(lambda c: np.convolve(c, box, mode="same"), 0, s) for s in logs]
    loud = np.exp(logs[0]).sum(0) > np.median(np.exp(logs[0]).sum(0))
    fine = [(s - m)[:192, loud].ravel() for s, m in zip(logs, smooth)]
    env = [m[:192, loud].ravel() for m in smooth]
    return float(np.corrcoef(*fine)[0, 1]), float(np.corrcoef(*env)[0, 1])


def test_lpc_voice_keeps_what_is_said_and_how_loud_not_the_source():
    utt = plan_utterance(np.random.default_rng(0), 3.0)
    for f0 in (115.0, 200.0):
        v = voice(utt, np.random.default_rng(1), f0)
        fake = lpc_resynth(v, np.random.default_rng(2), DIFFICULTY["medium"])
        again = voice(utt, np.random.default_rng(7), f0)  # the same speaker saying it again: a yardstick
        assert fake.shape == v.shape and fake.dtype == np.float32 and np.abs(fake).max() <= 1.0
        assert np.corrcoef(envelope_of(v), envelope_of(fake))[0, 1] > 0.9  # loudness envelope kept
        fine, env = _fine_and_envelope(v, fake)
        fine_again, _ = _fine_and_envelope(v, again)
        assert env > 0.9, env  # the formants (what is said) kept
        assert fine < 0.55 and fine < fine_again - 0.2, (fine, fine_again)  # the source's fine structure not
        assert abs(np.corrcoef(v, fake)[0, 1]) < 0.4  # a new waveform, not a filtered copy


def test_lpc_clip_is_the_real_clip_with_another_voice(render):
    out = render(real=_clip("real", "A", seconds=1.5), fake=_clip("lpc", "B", seconds=1.5, modify_audio=True))
    (real, audio), (fake, fake_audio) = out["real"], out["fake"]
    assert _fine_and_envelope(audio, fake_audio)[0] < 0.55
    assert np.corrcoef(envelope_of(audio), envelope_of(fake_audio))[0, 1] > 0.85
    lead = int(0.1 * SR)
    assert not fake_audio[: lead - 200].any()  # the same leading silence
    # RealVideo: the same frames but for the mouth, which follows what is heard
    assert (np.abs(real.astype(int) - fake).max(-1) > 8).mean() < 0.02


def test_unseen_methods_labels_on_disk(tmp_path, detector):
    methods = ("real", *UNSEEN_METHODS)
    meta = synthesize(tmp_path, n=4, seed=2, workers=1, progress=False, methods=methods)
    import json

    with open(meta) as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(methods)
    assert {m: rows[m]["category"] for m in methods} == \
        {"real": "A", "reenact": "C", "resample": "C", "lpc": "B"}
    lav = {e["method"]: e for e in json.loads((tmp_path / "metadata.json").read_text())}
    for m, (video, audio, mismatch) in {"reenact": (True, False, True), "resample": (True, False, False),
                                        "lpc": (False, True, False)}.items():
        e = lav[m]
        assert (e["modify_video"], e["modify_audio"], e["av_mismatch"]) == (video, audio, mismatch), m
        whole = [[0.0, e["duration"]]]
        assert e["fake_periods"] == whole
        assert e["visual_fake_segments"] == (whole if video else [])
        assert e["audio_fake_segments"] == (whole if audio else [])
    recs, reader = datasets.read(tmp_path)
    assert reader.name == "dfdetect-synth" and not reader.problems
    got = {r.method: (r.label, r.category, r.video_fake, r.audio_fake, r.av_mismatch) for r in recs}
    assert got == {"real": ("real", "A", 0, 0, 0), "reenact": ("fake", "C", 1, 0, 1),
                   "resample": ("fake", "C", 1, 0, 0), "lpc": ("fake", "B", 0, 1, 0)}
    for r in recs:  # the encoded clips decode, at the length planned, and MediaPipe still finds the face
        frames, wave, _ = read_all(r.path, fps=4)
        assert abs(len(wave) / SR - lav[r.method]["duration"]) < 0.1
        assert np.mean([bool(detector.detect(f)) for f in frames]) >= 0.95, r.method
    assert json.loads((tmp_path / "synth.json").read_text())["methods"] == list(methods)


def test_extreme_is_accepted_and_weaker_than_hard(render):
    assert DIFFICULTY["extreme"] < DIFFICULTY["hard"]
    assert SEGMENT_SECONDS["extreme"][1] <= SEGMENT_SECONDS["hard"][1]
    assert SEGMENT_SECONDS["extreme"][0] <= SEGMENT_SECONDS["hard"][0]
    specs = plan(200, 3, "extreme")
    assert {s.strength for s in specs} == {DIFFICULTY["extreme"]}
    # extreme changes strengths and segment lengths, never which clips exist or how long they are
    hard = plan(200, 3, "hard")
    assert [(s.category, s.seconds, s.lead, s.identity) for s in specs] == \
        [(s.category, s.seconds, s.lead, s.identity) for s in hard]
    # the vocoder's band limit is higher (closer to the real voice) than at hard
    v = voice(plan_utterance(np.random.default_rng(0), 3.0), np.random.default_rng(1), 180.0)

    def high_band(x):
        spec = np.abs(np.fft.rfft(x)) ** 2
        return spec[np.fft.rfftfreq(x.size, 1 / SR) > 5000].sum() / spec.sum()

    assert high_band(vocode(v, np.random.default_rng(2), DIFFICULTY["hard"])) < \
        high_band(vocode(v, np.random.default_rng(2), DIFFICULTY["extreme"]))
    # a resampled face keeps more of its fine detail than at hard
    frames = render(real=_clip("real", "A", seconds=0.4),
                    **{d: _clip("resample", "C", DIFFICULTY[d], seconds=0.4, modify_video=True)
                       for d in ("hard", "extreme")})
    kept = {d: _detail(frames[d][0]) / _detail(frames["real"][0]) for d in ("hard", "extreme")}
    assert kept["extreme"] > kept["hard"] + 0.03, kept
    # a lip-sync fake's mouth leans on the heard voice below hard (at hard it follows the other utterance)
    out = render(hard=_clip("lipsync", "C", DIFFICULTY["hard"], mouth_utterance=3, modify_video=True),
                 extreme=_clip("lipsync", "C", DIFFICULTY["extreme"], mouth_utterance=3, modify_video=True))
    follows = {k: _mouth_follows_voice(*out[k]) for k in out}
    assert follows["extreme"] > follows["hard"] + 0.3, follows


def test_cli_synth_methods_and_extreme(tmp_path, capsys):
    from dfdetect.cli import build_parser, main

    args = build_parser().parse_args(["synth", "--out", str(tmp_path), "--difficulty", "extreme",
                                      "--methods", "real,reenact,resample,lpc"])
    assert args.difficulty == "extreme" and args.methods == "real,reenact,resample,lpc"
    assert main(["synth", "--out", str(tmp_path / "s"), "--methods", "real,bogus", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--methods" in err and "lpc" in err and not (tmp_path / "s" / "meta_data.csv").exists()


def test_evaluation_reports_the_unseen_methods_apart():
    from dfdetect.evaluate import REPORTED_APART, group_key
    from dfdetect.synth import UNSEEN_METHODS

    assert set(REPORTED_APART) == set(UNSEEN_METHODS)
    assert group_key({"method": "reenact", "category": "C"}) == "C-reenact"
    assert group_key({"method": "lpc", "category": "B"}) == "B-lpc"
    assert group_key({"method": "lipsync", "category": "C"}) == "C-lipsync"
    assert group_key({"method": "faceswap", "category": "C"}) == "C"


# --- The held-out split (#13): people and utterances on one side only ---------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_people_and_utterances_never_cross_splits(seed):
    from collections import Counter

    from dfdetect.synth import held_out_splits, n_utterances

    specs = plan(400, seed)
    ids = identities()
    photo_split, utter_split = held_out_splits(400, seed)
    assert Counter(photo_split.values()) == {"train": 31, "val": 7, "test": 7}  # of 45 people
    assert len(utter_split) == n_utterances(400)
    sides = Counter()
    for s in specs:
        side = photo_split[ids[s.identity].photo]
        sides[side, s.category == "A"] += 1
        assert utter_split[s.utterance] == side, s
        if s.mouth_utterance >= 0:  # the lip-sync / reenactment driver's words were never on another side
            assert utter_split[s.mouth_utterance] == side and s.mouth_utterance != s.utterance
        if s.swap_identity >= 0:  # the swapped-in face too
            assert photo_split[ids[s.swap_identity].photo] == side
            assert ids[s.swap_identity].photo != ids[s.identity].photo
    # every side has real and fake clips, in about the split's shares (people are drawn equally often)
    for side, share in (("train", 31 / 45), ("val", 7 / 45), ("test", 7 / 45)):
        n_side = sides[side, True] + sides[side, False]
        assert sides[side, True] >= 5 and sides[side, False] >= 20 and abs(n_side / 400 - share) < 0.06, sides


def test_people_split_is_written_and_read_as_the_split(bench):
    with open(bench / "splits.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["split"] == r["split_identity"] for r in rows)
    side_of = {}
    for r in rows:  # a person (all variants of one source photograph) is on one side
        photo = r["identity"].split("_", 1)[1]
        assert side_of.setdefault(photo, r["split"]) == r["split"], photo
    assert any(p.startswith("lfw") for p in side_of) and len(set(side_of.values())) == 3


def test_the_benchmarks_lfw_faces_are_found_with_a_mouth(detector):
    """Every LFW face the benchmark uses is one MediaPipe finds, with the mouth keypoint the clips are
    animated from; wild_media's unfamiliar footage uses none of them."""
    from dfdetect.sample_media import LFW_BENCHMARK, face_photo
    from dfdetect.wild_media import LFW_FACES

    assert len(LFW_BENCHMARK) == 42 and not set(LFW_BENCHMARK) & set(LFW_FACES)
    for i in LFW_BENCHMARK:
        found = detector.detect(face_photo(f"lfw{i}"))
        assert found and found[0].mouth is not None, i
        x0, y0, x1, y1 = found[0].box
        mx, my = found[0].mouth
        assert x0 < mx < x1 and (y0 + y1) / 2 < my < y1, i  # the mouth is in the lower half of the face
