"""Real face photographs that installed packages ship, and simple clips made from them.

No deepfake dataset can be downloaded on every machine, but scikit-image and matplotlib ship real photographs
of faces. Tests, benchmarks and the built-in benchmark (``dfdetect.synth``) build their clips from these.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np


@cache
def face_photo(name: str) -> np.ndarray:
    """A real photograph with one frontal face, RGB uint8: ``astronaut`` (scikit-image), ``camera``
    (scikit-image, greyscale turned RGB) or ``grace_hopper`` (matplotlib)."""
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    if name == "camera":
        from skimage import data

        return np.repeat(data.camera()[..., None], 3, axis=2)
    if name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(path)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    raise ValueError(f"unknown photo {name!r}; known: astronaut, camera, grace_hopper")


PHOTOS = ("astronaut", "grace_hopper", "camera")

# Face boxes (x0, y0, x1, y1) in each photo, as MediaPipe's short-range detector finds them (with ROI
# refinement) at full resolution; used by clip makers to place faces and by tests as ground truth.
FACE_BOXES = {
    "astronaut": (172.5, 71.4, 276.5, 175.3),
}


def place(canvas: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    """Pastes ``img`` with its top-left corner at (x, y), clipped to the canvas, in place."""
    h, w = img.shape[:2]
    H, W = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = img[y0 - y:y1 - y, x0 - x:x1 - x]


def moving_face_frames(
    photo: str = "astronaut",
    n: int = 50,
    size: tuple[int, int] = (480, 360),
    scale: float = 0.8,
    background: int = 90,
    seed: int = 0,
    speed: float = 1.0,
) -> tuple[list[np.ndarray], list[tuple[float, float, float, float]]]:
    """Frames of a photo drifting and zooming over a plain background, with where its face box
    (``FACE_BOXES``, else detected once at full size) lands in each frame. At ``speed`` 1 the face sways
    like a talking head's (a few seconds per sway at 25 fps); tests raise it to stress the tracker."""
    img = face_photo(photo)
    box = np.array(FACE_BOXES.get(photo) or photo_landmarks(photo)[0], float)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 3)
    w, h = size
    frames, boxes = [], []
    for i in range(n):
        u = i * speed / 4.0  # speed 4 is the old, fast default: a sway a second
        s = scale * (1.0 + 0.08 * np.sin(u / 9 + phase[0]))
        small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        cx = w / 2 + 0.18 * w * np.sin(u / 11 + phase[1])
        cy = h / 2 + 0.10 * h * np.sin(u / 7 + phase[2])
        fx, fy = (box[0] + box[2]) / 2 * s, (box[1] + box[3]) / 2 * s
        ox, oy = int(round(cx - fx)), int(round(cy - fy))
        canvas = np.full((h, w, 3), background, np.uint8)
        place(canvas, small, ox, oy)
        frames.append(canvas)
        boxes.append(tuple(box * s + np.array([ox, oy, ox, oy])))
    return frames, boxes


@cache
def photo_landmarks(photo: str) -> tuple[tuple[float, float, float, float], tuple[float, float]]:
    """The face box and mouth point of a photo, found once by MediaPipe."""
    from dfdetect.config import FaceConfig
    from dfdetect.faces import FaceDetector

    with FaceDetector(FaceConfig()) as det:
        found = det.detect(face_photo(photo))
    if not found:
        raise RuntimeError(f"no face found in {photo}")
    d = found[0]
    x0, y0, x1, y1 = d.box
    return d.box, d.mouth or ((x0 + x1) / 2, y0 + 0.78 * (y1 - y0))


def tone(seconds: float, sample_rate: int = 16000, freq: float = 220.0, level: float = 0.2) -> np.ndarray:
    """A voiced-like harmonic tone (a stand-in voice for tests that only need audio to exist)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t) ** 2
    return (level * wave * env / 2.3).astype(np.float32)


def talking_clip(path: str | Path, photo: str = "astronaut", seconds: float = 3.0, fps: int = 25,
                 size: tuple[int, int] = (320, 240), lead_silence: float = 0.0, audio: bool = True,
                 seed: int = 0) -> Path:
    """Encodes a short H.264 + AAC clip of a real photographed face drifting over a background, with a
    tone standing in for a voice after ``lead_silence`` seconds."""
    frames, _ = moving_face_frames(photo, n=int(seconds * fps), size=size,
                                   scale=(0.5 if photo == "astronaut" else 0.3) * size[0] / 320, seed=seed)
    wave = None
    if audio:
        wave = np.concatenate([np.zeros(int(lead_silence * 16000), np.float32),
                               tone(seconds - lead_silence, freq=150 + 40 * seed)])
    from dfdetect.media import write_video

    write_video(path, frames, fps=fps, audio=wave)
    return Path(path)
