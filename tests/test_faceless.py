"""No faces where there are none: clips without a person (``sample_media.faceless_clip``) get (almost) no face
frames, while real faces keep being found and tracked.

BlazeFace scores clouds, letters and landscape photographs up to 0.79 on one look. Before new faces had to be
confirmed by three more looks (``FaceDetector.confirm``), a title card over an animated sky had a face in 40%
of its frames. Each faceless case below is the clip of its kind on which that older detector did worst
(measured on 2 s clips, seeds 0-3, three sizes: face share 0.9 sky-title, 0.63 text, 0.1 cartoon, 0.53
landscape, 0.8 back-of-head), plus the plain 320x240 seed-0 clip of each kind.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfdetect.config import FaceConfig, get_config
from dfdetect.faces import FaceTracker, iou
from dfdetect.media import MediaReader, VideoSample, probe
from dfdetect.sample_media import (
    FACELESS_KINDS,
    faceless_clip,
    faceless_frames,
    moving_face_frames,
    talking_clip,
)
from dfdetect.windows import VideoSummary, extract_windows

SECONDS = 2.0  # one 2 s window of the cpu-small preset (15 fps: 30 frames)

# (size, seed) of the clip of each kind on which the single-look detector found the most faces
WORST = {
    "sky-title": ((320, 240), 2),
    "text": ((480, 270), 3),
    "cartoon": ((256, 256), 3),
    "landscape": ((320, 240), 3),
    "back-of-head": ((480, 270), 3),
}
CASES = [(k, (320, 240), 0) for k in FACELESS_KINDS] + [(k, *WORST[k]) for k in FACELESS_KINDS]


def _face_share(path, detector) -> VideoSummary:
    summary = VideoSummary()
    windows = list(extract_windows(str(path), get_config("cpu-small"), detector, summary))
    assert windows and summary.frames >= 25, summary  # the clip decoded and was cut
    return summary


def test_faceless_kinds_are_listed_and_well_formed(tmp_path):
    assert set(WORST) == set(FACELESS_KINDS) and len(FACELESS_KINDS) >= 5
    frames = faceless_frames("cartoon", n=4, size=(200, 100), seed=1)
    assert len(frames) == 4 and all(f.shape == (100, 200, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[3])  # animated
    assert np.array_equal(faceless_frames("text", n=3, seed=5)[2], faceless_frames("text", n=3, seed=5)[2])
    path = faceless_clip(tmp_path / "t.mp4", "text", seconds=1.0, fps=25, size=(160, 120))
    info = probe(path)
    assert (info.width, info.height) == (160, 120) and info.video_codec == "h264" and info.audio_codec == "aac"
    with pytest.raises(ValueError, match="unknown faceless kind"):
        faceless_frames("portrait")


@pytest.mark.parametrize("kind,size,seed", CASES, ids=[f"{k}-{s[0]}x{s[1]}-{n}" for k, s, n in CASES])
def test_faceless_clip_has_almost_no_face_frames(tmp_path, detector, kind, size, seed):
    path = faceless_clip(tmp_path / f"{kind}.mp4", kind, seconds=SECONDS, size=size, seed=seed)
    summary = _face_share(path, detector)
    # measured after the fix: 0 on all of these but landscape 320x240 seed 0 (1 frame of 30: a fuzzy galaxy of
    # the Hubble deep field, confirmed at 0.70-0.74); on 4 s clips of 7 sizes x 4 seeds, mean <= 0.01 per kind
    assert summary.face_ratio <= 0.05, (kind, summary)


def test_sky_title_fools_one_look_but_not_four(detector):
    # the clip would fool an unconfirmed detector (so the tests above test something), not a confirmed one
    frames = faceless_frames("sky-title", n=30, size=(320, 240), seed=2)
    raw = [detector.detect(f, refine=False) for f in frames]
    assert sum(bool(r) for r in raw) >= 5, "no whole-frame candidates: the clip no longer tests the confirmation"
    assert max(d.score for r in raw for d in r) >= 0.55
    assert not any(detector.confirm(f, d) for f, r in zip(frames, raw) for d in r)
    assert not any(detector.detect(f) for f in frames)


@pytest.fixture(scope="module")
def lfw():
    """scikit-image's LFW subset (faces 0-99, non-faces 100-199, 25x25 grey) at 120 px on a 480x360 canvas."""
    from skimage import data

    out = []
    for img in data.lfw_subset():
        up = cv2.resize((img * 255).astype(np.uint8), (120, 120), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((360, 480), 128, np.uint8)
        canvas[120:240, 180:300] = up
        out.append(np.repeat(canvas[..., None], 3, axis=2))
    return out


def test_lfw_faces_found_and_non_faces_not(detector, lfw):
    truth = (180, 120, 300, 240)
    found = [detector.detect(img) for img in lfw]
    hits = [any(iou(d.box, truth) > 0.3 for d in dets) for dets in found[:100]]
    # 98 of 100 measured (two blurry faces average 0.645 and 0.697 over the four looks); 100 before the fix
    assert np.mean(hits) >= 0.95, np.flatnonzero(~np.array(hits))
    false = sum(bool(d) for d in found[100:])
    # 0 measured; 10 of 100 before the fix (single looks scoring 0.50-0.66)
    assert false <= 3, false


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_talking_clip_keeps_its_face(tmp_path, detector, photo):
    path = talking_clip(tmp_path / f"{photo}.mp4", photo, seconds=SECONDS)
    summary = _face_share(path, detector)
    assert summary.face_ratio >= 0.95 and summary.max_faces == 1, summary


@pytest.mark.parametrize("scale", [0.4, 0.9])
def test_turned_face_is_still_tracked(detector, scale):
    # The cameraman looks sideways: the whole-frame look gives him 0.50-0.73 in a box up to twice his face,
    # the zoomed looks 0.85-0.94. A confirmation demanding overlap with that coarse box lost him in half of the
    # frames at scale 0.4 (measured); the detector before confirmation kept the coarse box, centred off his face
    # in about half of the frames (0.47 centred at scale 0.4; 1.0 now).
    frames, boxes = moving_face_frames("camera", n=45, size=(480, 360), scale=scale, speed=3.0, seed=5)
    tracker = FaceTracker(detector, FaceConfig())
    out = [ff for i, img in enumerate(frames) for ff in tracker.push(i, img)] + list(tracker.flush())
    assert [f.index for f in out] == list(range(45))
    share = np.mean([f.has_face for f in out])
    assert share >= 0.9, share
    centred = [np.hypot((f.box[0] + f.box[2] - b[0] - b[2]) / 2, (f.box[1] + f.box[3] - b[1] - b[3]) / 2)
               < 0.5 * (b[2] - b[0]) for f, b in zip(out, boxes) if f.has_face]
    assert np.mean(centred) >= 0.9  # on his face, not on the camera beside it


def test_faceless_frames_between_faces_stay_faceless(tmp_path, detector):
    # a talking head, then a title card, then the head again: the title's frames get no face, the head's do
    head, _ = moving_face_frames("astronaut", n=20, size=(320, 240), scale=0.5)
    title = faceless_frames("sky-title", n=20, size=(320, 240), seed=2)
    from dfdetect.media import write_video

    path = tmp_path / "cut.mp4"
    write_video(path, head + title + head, fps=15)
    tracker = FaceTracker(detector, FaceConfig())
    out = []
    for item in MediaReader(path, fps=15):
        if isinstance(item, VideoSample):
            out.extend(tracker.push(item.index, item.frame))
    out.extend(tracker.flush())
    mask = np.array([f.has_face for f in out])
    assert len(mask) == 60
    assert mask[:20].mean() >= 0.9 and mask[40:].mean() >= 0.9, mask.astype(int)
    assert mask[21:40].mean() <= 0.05, mask.astype(int)  # frame 20 may still be interpolated from frame 19
