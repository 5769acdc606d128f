"""dfdetect.wild_media: unfamiliar clips decode as intended, show detectable LFW faces, and are deterministic.

Clips are 2 s (one window of the ``cpu-small`` preset) and each is made at most once per module (``clip``),
so every test costs a few seconds at most.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dfdetect import wild_media as wm
from dfdetect.config import get_config
from dfdetect.media import probe, read_all
from dfdetect.windows import VideoSummary, extract_windows

SECONDS = 2.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """``clip(kind, seed=0)``: the path of a 2 s clip of that kind, made on first use."""
    root = tmp_path_factory.mktemp("wild")
    made: dict[tuple[str, int], Path] = {}

    def get(kind: str, seed: int = 0) -> Path:
        if (kind, seed) not in made:
            made[kind, seed] = wm.unfamiliar_clip(root / wm.clip_name(kind, seed), kind, seed, SECONDS)
        return made[kind, seed]

    return get


def test_kinds_are_many_and_well_formed():
    assert len(wm.KINDS) >= 10 and len(set(wm.KINDS)) == len(wm.KINDS)
    assert set(wm.FACE_KINDS) < set(wm.KINDS)
    for name in wm.KINDS:
        k = wm.KIND_SPECS[name]
        assert k.camera in wm._MARGIN and k.codec in ("h264", "vp9") and k.audio in wm.AUDIO_RECIPES and k.what
        assert k.light == "normal" or k.light in wm._STATIC_LIGHT
    # what the benchmark never has, each at least once
    specs = wm.KIND_SPECS.values()
    assert {k.size[0] < k.size[1] for k in specs} == {True, False}  # vertical and landscape
    assert {k.codec for k in specs} == {"h264", "vp9"}
    assert any(k.audio == "none" for k in specs) and any(k.audio == "telephone" for k in specs)
    assert all(k.size != (256, 256) for k in specs) and {k.fps for k in specs} - {25.0}
    assert all(k.background in (*wm._TEXTURE_TINT, "china", "flower", "coffee") for k in specs)
    with pytest.raises(ValueError, match="unknown kind"):
        wm.unfamiliar_clip("x.mp4", "no-such-kind")


@pytest.mark.parametrize("kind", wm.KINDS)
def test_every_kind_decodes_at_its_size_and_codec(clip, kind):
    k = wm.KIND_SPECS[kind]
    path = clip(kind)
    assert path.suffix == k.suffix
    info = probe(path)
    assert (info.width, info.height) == k.size
    assert info.video_codec == k.codec
    assert info.fps == pytest.approx(k.fps, abs=0.01)
    assert info.has_audio == (k.audio != "none")
    if info.has_audio:
        assert info.audio_codec == ("opus" if k.codec == "vp9" else "aac")
        assert info.sample_rate == k.sample_rate and info.channels == k.channels
    frames, wave, fps = read_all(path, fps=k.fps, max_side=0)
    assert frames.shape[1:3] == (k.size[1], k.size[0])
    assert abs(len(frames) - SECONDS * k.fps) <= 1
    if info.has_audio:
        assert wave.size >= 0.9 * SECONDS * 16000 and np.abs(wave).max() > 1e-3


@pytest.mark.parametrize("kind", wm.FACE_KINDS)
def test_face_kinds_show_a_face_in_most_frames(clip, detector, kind):
    summary = VideoSummary()
    windows = list(extract_windows(str(clip(kind)), get_config("cpu-small"), detector, summary))
    assert windows and summary.face_ratio >= 0.8, summary


def test_not_a_face_kind_mostly_has_no_face(clip, detector):
    summary = VideoSummary()
    list(extract_windows(str(clip("not-a-face")), get_config("cpu-small"), detector, summary))
    assert summary.face_ratio < 0.5


def test_clips_are_deterministic_by_seed(tmp_path, clip):
    # rendering: exactly the same pixels and samples
    a, b = wm.render("shaky-cam", 7, 1.0), wm.render("shaky-cam", 7, 1.0)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert np.array_equal(a.audio, b.audio)
    # encoding: the same bytes, for H.264 and for VP9
    for kind in ("shaky-cam", "webm-interview"):
        again = wm.unfamiliar_clip(tmp_path / wm.clip_name(kind, 0), kind, 0, SECONDS)
        assert again.read_bytes() == clip(kind).read_bytes(), kind
    # another seed: another clip (and another face)
    other = wm.render("shaky-cam", 8, 1.0)
    assert other.photo != a.photo
    assert not np.array_equal(next(other.frames), next(wm.render("shaky-cam", 7, 1.0).frames))


def _face_patch(kind: str, seed: int) -> tuple[np.ndarray, wm.Rendered, np.ndarray]:
    """Frame 0 of a clip, and the LFW patch recovered from it by undoing the person's placement."""
    r = wm.render(kind, seed, 1.0)
    frame = next(r.frames)
    px, py, side = r.patch
    inv = cv2.invertAffineTransform(r.placement[0])
    sprite = cv2.warpAffine(frame, inv, (px + side, py + side), flags=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(sprite[py:py + side, px:px + side], cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.resize(grey, (25, 25), interpolation=cv2.INTER_AREA), r, frame


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    # the centre only: the patch's edges fade into hair and skin
    a, b = a[4:21, 4:21].ravel(), b[4:21, 4:21].ravel()
    if a.std() == 0 or b.std() == 0:  # some non-face images are flat there
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("kind,seed", [("textured-background", 0), ("dim-light", 1), ("webm-interview", 2)])
def test_faces_are_lfw_faces_not_the_benchmarks(monkeypatch, detector, kind, seed):
    import dfdetect.sample_media
    import dfdetect.synth

    def refuse(*a, **k):
        raise AssertionError("a benchmark photograph was used")

    for mod, name in ((dfdetect.sample_media, "face_photo"), (dfdetect.sample_media, "photo_landmarks"),
                      (dfdetect.synth, "face_photo"), (dfdetect.synth, "photo_landmarks"),
                      (dfdetect.synth, "_identity_image")):
        monkeypatch.setattr(mod, name, refuse)
    patch, r, frame = _face_patch(kind, seed)
    assert r.photo in wm.LFW_FACES
    scores = [_corr(patch, wm.lfw_image(j)) for j in range(200)]
    # the face in the frame is the LFW face the clip says it shows, and no other
    assert int(np.argmax(scores)) == r.photo and scores[r.photo] > 0.9, sorted(scores)[-3:]
    # and the detector finds it there: the box centre lies inside the patch as placed in the frame
    found = detector.detect(frame)
    assert found
    px, py, side = r.patch
    x0, y0, x1, y1 = found[0].box
    inv = cv2.invertAffineTransform(r.placement[0])
    cx, cy = inv @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 1.0])
    assert px < cx < px + side and py < cy < py + side


def test_not_a_face_shows_an_lfw_non_face():
    patch, r, _ = _face_patch("not-a-face", 0)
    assert r.photo in wm.LFW_NON_FACES
    assert _corr(patch, wm.lfw_image(r.photo)) > 0.9


def test_audio_recipes():
    rng = np.random.default_rng
    tel, speech = wm.make_audio("telephone", 2.0, 16000, 1, rng(0))
    spec = np.abs(np.fft.rfft(tel)) ** 2
    f = np.fft.rfftfreq(tel.size, 1 / 16000)
    assert spec[f > 3800].sum() < 0.01 * spec.sum()  # a phone line stops at 3.4 kHz
    assert spec[f < 200].sum() < 0.01 * spec.sum()
    none, silent = wm.make_audio("none", 2.0, 48000, 1, rng(0))
    assert none is None and not silent.any()
    stereo, _ = wm.make_audio("street", 2.0, 48000, 2, rng(0))
    assert stereo.shape == (96000, 2) and not np.allclose(stereo[:, 0], stereo[:, 1])
    # the mouth follows the speech: open while it is loud, shut in the silence before it
    lead = int(np.argmax(np.abs(speech) > 1e-4))
    o = wm.mouth_openness(speech, 50, 25.0)
    assert o.max() > 0.8 and o[: max(1, lead * 25 // 16000 - 1)].max() < 0.05


def test_make_unfamiliar_set_writes_a_table_and_resumes(tmp_path, monkeypatch):
    kinds = ("silent-no-audio", "low-bitrate-call")
    # two worker processes: also shows that a clip made in another process has the same bytes
    table = wm.make_unfamiliar_set(tmp_path, per_kind=1, seed=3, kinds=kinds, seconds=1.0, workers=2)
    assert list(table.columns[:8]) == ["path", "kind", "seed", "face_photo", "width", "height", "codec",
                                       "has_audio"]
    assert len(table) == 2 and list(table.kind) == list(kinds) and set(table.seed) == {3}
    assert (tmp_path / "unfamiliar.csv").exists()
    row = table.iloc[0]
    assert (row.width, row.height, row.codec, bool(row.has_audio)) == (640, 360, "h264", False)
    assert row.face_photo == f"lfw_subset[{wm.photo_index('silent-no-audio', 3)}]"
    assert not list(tmp_path.glob("*.part*"))
    here = wm.unfamiliar_clip(tmp_path / "here" / "x.mp4", "low-bitrate-call", 3, 1.0)
    assert here.read_bytes() == (tmp_path / wm.clip_name("low-bitrate-call", 3)).read_bytes()
    # a second run keeps what is there: nothing is rendered again
    monkeypatch.setattr(wm, "unfamiliar_clip", lambda *a, **k: pytest.fail("re-rendered an existing clip"))
    again = wm.make_unfamiliar_set(tmp_path, per_kind=1, seed=3, kinds=kinds, seconds=1.0)
    assert again.equals(table)
