"""Several faces in one video (DFDC clips often show two people, one of them swapped): every face is tracked
and scored, the verdict is the most suspicious face's, and it says which.

Real MediaPipe on real photographs side by side (``sample_media.several_faces_clip``), real PyAV decoding and
the session's real exported smoke model; the one stand-in is a scorer in ``test_most_suspicious_face_decides``
that makes one face's windows suspicious on purpose, so that the rule is shown to pick a face other than the
dominant one.
"""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.config import get_config
from dfdetect.sample_media import several_faces_clip
from dfdetect.windows import VideoSummary, extract_windows


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    """4 s, 640x360: the astronaut on the left and Grace Hopper on the right, both there throughout."""
    return several_faces_clip(tmp_path_factory.mktemp("faces") / "two.mp4", seconds=4.0)


def _cut(path, detector, tracks: int):
    config = get_config("cpu-small").override(faces={"max_tracks": tracks})
    summary = VideoSummary()
    return list(extract_windows(str(path), config, detector, summary)), summary


def test_every_face_gets_a_track_of_its_own(two_people, detector):
    windows, summary = _cut(two_people, detector, tracks=4)
    assert sorted(summary.tracks) == [0, 1], summary.tracks
    # each face is followed nearly all the time, and each track stays on its own side of the frame
    for t, st in summary.tracks.items():
        assert st.face_frames >= 0.8 * summary.frames, (t, st.face_frames, summary.frames)
    assert {summary.tracks[0].where, summary.tracks[1].where} == {"left", "right"}
    by_track = {t: [w for w in windows if w.track == t] for t in (0, 1)}
    assert len(by_track[0]) == len(by_track[1]) >= 3
    # at each position the two faces' windows show different people (not one face twice)
    for a, b in zip(by_track[0], by_track[1]):
        assert a.index == b.index and a.start == b.start
        both = a.mask.astype(bool) & b.mask.astype(bool)
        assert both.any()
        diff = np.abs(a.frames[both].astype(int) - b.frames[both].astype(int)).mean()
        assert diff > 20, diff


def test_the_dominant_face_is_cut_as_preprocessing_cuts_it(two_people, detector):
    """Track 0 with other faces followed beside it is, byte for byte, what one tracker gives (what
    preprocessing writes for training): following more faces changes nothing of the first."""
    many, _ = _cut(two_people, detector, tracks=4)
    one, summary = _cut(two_people, detector, tracks=1)
    assert sorted(summary.tracks) == [0]
    first = [w for w in many if w.track == 0]
    assert len(first) == len(one)
    for a, b in zip(first, one):
        assert a.start == b.start
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.mouth, b.mouth) and np.array_equal(a.audio, b.audio)


def test_a_face_that_comes_later_is_picked_up(tmp_path, detector):
    """The second person walks in after 1.5 s: a track starts for them at the next whole-frame scan (every
    ``rescan_every`` x ``detect_every`` frames: 2 s at 15 fps), and it does not start before they are there."""
    path = several_faces_clip(tmp_path / "later.mp4", seconds=5.0, enter={1: 1.5})
    windows, summary = _cut(path, detector, tracks=4)
    fps = get_config("cpu-small").media.fps
    assert sorted(summary.tracks) == [0, 1]
    late = summary.tracks[1]
    assert late.where == "right" and summary.tracks[0].where == "left"
    assert 1.5 <= late.first / fps <= 1.5 + 2.1, late.first / fps
    assert late.last >= summary.frames - 6  # and followed to the end
    assert all(w.first_frame + len(w.mask) > late.first for w in windows if w.track == 1)


def test_a_face_that_leaves_ends_its_track(tmp_path, detector):
    """Grace Hopper (right) leaves after 2 s: her track ends there and does not jump to the astronaut (a
    locked track never switches faces), and the astronaut's track goes on alone."""
    path = several_faces_clip(tmp_path / "leaves.mp4", seconds=4.0, leave={1: 2.0})
    windows, summary = _cut(path, detector, tracks=4)
    fps = get_config("cpu-small").media.fps
    assert sorted(summary.tracks) == [0, 1]
    gone = summary.tracks[1]
    assert gone.where == "right" and gone.first == 0
    assert 2.0 - 0.5 <= (gone.last + 1) / fps <= 2.0 + 0.01, (gone.last + 1) / fps
    assert summary.tracks[0].where == "left" and summary.tracks[0].face_frames >= 0.9 * summary.frames
    assert all(w.start < 2.0 for w in windows if w.track == 1)


def test_one_face_stays_one_track(tmp_path, detector):
    from dfdetect.sample_media import talking_clip

    path = talking_clip(tmp_path / "one.mp4", seconds=3.0)
    windows, summary = _cut(path, detector, tracks=4)
    assert sorted(summary.tracks) == [0]
    assert {w.track for w in windows} == {0}


def test_the_verdict_names_the_face_and_lists_them(two_people, smoke_export):
    from dfdetect.batch import iter_verdicts
    from dfdetect.predict import Detector

    with Detector(smoke_export) as det:
        v = det.predict_video(two_people)
        assert v.status == "ok", v.reason
        assert [f["face"] for f in v.faces] == [0, 1]
        assert {f["where"] for f in v.faces} == {"left", "right"}
        scores = {f["face"]: f["score"] for f in v.faces}
        assert None not in scores.values() and all(f["windows"] >= 3 for f in v.faces)
        # the verdict is the most suspicious face's, and its scores are that face's own
        assert v.face == max(scores, key=scores.get)
        assert round(v.score, 4) == scores[v.face]
        assert v.label == v.faces[v.face]["label"]
        assert v.reason.startswith(f"2 faces scored: the verdict is face {v.face}'s")
        from dfdetect.explain import _face_words  # what --explain's pictures are titled with

        assert _face_words(v) == f"face {v.face} ({v.faces[v.face]['where']}) of 2"
        # batch prediction (decoding in a worker process) says the same
        (b,) = list(iter_verdicts(det, [two_people], workers=1))
        assert b.faces == v.faces and b.face == v.face
    with Detector(smoke_export, max_faces=1) as det:
        one = det.predict_video(two_people)
    # the dominant face alone scores as it does among several
    assert one.face == 0 and len(one.faces) == 1
    assert round(one.score, 4) == scores[0]


def test_most_suspicious_face_decides(two_people, smoke_export):
    """The scorer is swapped for one that calls the right-hand face's windows fake (it knows them by their
    crops' mean colour, measured on the real crops): the verdict then follows that face, not the dominant
    one, and a single-face run would have missed it."""
    from dfdetect.heads import FRAME_HEADS, HEADS
    from dfdetect.predict import Detector

    with Detector(smoke_export) as det:
        real = det.score_windows
        windows, summary = _cut(two_people, det.faces, tracks=4)
        right = next(t for t, st in summary.tracks.items() if st.where == "right")
        level = {t: np.mean([w.frames[w.mask.astype(bool)].mean() for w in windows if w.track == t])
                 for t in summary.tracks}
        cut = (level[0] + level[1]) / 2
        right_brighter = level[right] > cut

        def scorer(frames, audio, mask, mouth=None):
            out = real(frames, audio, mask, mouth)
            shown = np.array([f[m.astype(bool)].mean() for f, m in zip(frames, mask)])
            fake = ((shown > cut) == right_brighter).astype(np.float32) * 0.9 + 0.05
            for h in HEADS:
                out[h] = fake
            for h in FRAME_HEADS:
                if h in out:
                    out[h] = np.repeat(fake[:, None], out[h].shape[1], axis=1)
            return out

        det.score_windows = scorer
        v = det.predict_video(two_people)
        assert v.face == right, (v.face, v.faces)
        assert v.score == pytest.approx(0.95) and v.raw_label == "fake"
        assert [f["face"] for f in v.faces if f["score"] > 0.5] == [right]
        det.max_faces = 1
        assert det.predict_video(two_people).score == pytest.approx(0.05)


def test_cli_max_faces(two_people, smoke_export, capsys):
    import json

    from dfdetect.cli import main

    assert main(["predict", str(two_people), "--model", str(smoke_export), "--json", "--no-progress",
                 "--max-faces", "1"]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert one["face"] == 0 and [f["face"] for f in one["faces"]] == [0]
    assert main(["predict", str(two_people), "--model", str(smoke_export), "--max-faces", "0"]) == 2
    assert "error: --max-faces must be 1 or more, got 0" in capsys.readouterr().err
