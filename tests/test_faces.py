"""MediaPipe really detects faces here, on real photographs (scikit-image's astronaut, matplotlib's Grace
Hopper) moved around a frame the way a talking head moves."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.config import FaceConfig
from dfdetect.faces import FaceTracker, crop_square, iou
from dfdetect.sample_media import face_photo, moving_face_frames, place


def _track(detector, frames, **cfg):
    tracker = FaceTracker(detector, FaceConfig(**cfg))
    out = []
    for i, img in enumerate(frames):
        out.extend(tracker.push(i, img))
    out.extend(tracker.flush())
    return tracker, out


def _square(box, margin):
    x0, y0, x1, y1 = box
    cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * margin
    return (cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_moving_face_is_tracked(detector, photo):
    # three times the default sway speed, to stress the tracker (it detects on every 5th frame)
    frames, truth = moving_face_frames(photo, n=60, size=(480, 360), scale=0.8 if photo == "astronaut" else 0.5,
                                       speed=3.0)
    before = detector.calls  # the detector is shared by the session: count this test's calls only
    tracker, out = _track(detector, frames)
    calls = detector.calls - before
    assert [f.index for f in out] == list(range(60))
    found = [f for f in out if f.has_face]
    assert len(found) / len(out) >= 0.95
    margin = FaceConfig().margin
    overlaps = [iou(_square(f.box, margin), _square(t, margin)) for f, t in zip(out, truth) if f.has_face]
    assert min(overlaps) >= 0.7, np.round(overlaps, 2)
    assert tracker.max_faces == 1
    # the tracker saves detector calls: 60 frames are 12 keyframes (every 5th), and between rescans (every
    # 6th keyframe) it searches only around the followed face, so full-frame detections are few (3 measured)
    assert 1 <= calls <= 60 // FaceConfig().detect_every // 2, calls
    assert all(f.crop.shape == (112, 112, 3) for f in out)


def test_crop_is_the_face(detector):
    img = face_photo("astronaut")
    box = detector.detect(img)[0].box
    crop, region = crop_square(img, box, 112, 1.4)
    # the crop itself contains a face the detector finds again, centred
    again = detector.detect(np.ascontiguousarray(crop))
    assert again, "no face in the crop"
    cx, cy = again[0].center
    assert abs(cx - 56) < 15 and abs(cy - 56) < 15


def test_frames_without_face_get_mask_zero(detector):
    frames, _ = moving_face_frames("astronaut", n=30, size=(480, 360), speed=4.0)
    blank = [np.full_like(frames[0], 40) for _ in range(10)]
    seq = frames[:12] + blank + frames[12:20]
    _, out = _track(detector, seq)
    mask = np.array([f.has_face for f in out])
    assert not mask[12:22].any(), mask.astype(int)
    assert mask[:12].mean() >= 0.9 and mask[22:].mean() >= 0.9
    assert all(out[i].crop.max() == 0 for i in range(12, 22))


def test_two_faces_both_counted_one_track_chosen(detector):
    a = face_photo("astronaut")
    b = face_photo("grace_hopper")
    b = np.ascontiguousarray(b[40:552, 0:512])  # same size as the astronaut
    frames = []
    for i in range(30):
        canvas = np.full((400, 1100, 3), 80, np.uint8)
        dx = int(8 * np.sin(i / 5))
        place(canvas, a, 20 + dx, -20)
        place(canvas, b, 560 - dx, -20)
        frames.append(canvas)
    tracker, out = _track(detector, frames)
    assert tracker.max_faces >= 2
    sides = {f.box[0] < 550 for f in out if f.has_face}
    assert len(sides) == 1, "the crop jumped between the two people"
    assert sum(f.has_face for f in out) >= 28
    assert tracker.track_switches == 0
