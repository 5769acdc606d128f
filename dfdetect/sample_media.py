"""Real face photographs that installed packages ship, and simple clips made from them.

No deepfake dataset can be downloaded on every machine, but scikit-image and matplotlib ship real photographs
of faces: three portraits (``PHOTOS``) and scikit-image's ``lfw_subset()``, 100 small faces of other people
from Labeled Faces in the Wild (``LFW_BENCHMARK``: those the built-in benchmark uses). Tests, benchmarks and the
built-in benchmark (``dfdetect.synth``) build their clips from these. Also
clips with no face at all (``faceless_clip``: a title over clouds, credits, a cartoon, landscape photographs,
a head seen from behind), on which the face detector must find (almost) nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np


@cache
def face_photo(name: str) -> np.ndarray:
    """A real photograph with one frontal face, RGB uint8: ``astronaut`` (scikit-image), ``camera``
    (scikit-image, greyscale turned RGB), ``grace_hopper`` (matplotlib) or ``lfwNN`` (``lfw_portrait``)."""
    if name.startswith("lfw") and name[3:].isdigit():
        return lfw_portrait(int(name[3:]))
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
    raise ValueError(f"unknown photo {name!r}; known: astronaut, camera, grace_hopper, lfwNN")


PHOTOS = ("astronaut", "grace_hopper", "camera")

# scikit-image's lfw_subset(): faces 0-99 (25x25 grey crops of news photographs from Labeled Faces in the Wild,
# Huang et al. 2007; other people than PHOTOS', though LFW holds several photographs of some people, so two
# indices may show one person). Faces 0-49 are kept for dfdetect.wild_media's unfamiliar footage; of 50-99,
# these are the ones MediaPipe finds, with a mouth keypoint, in ``lfw_portrait`` (42 of 50; a test checks).
LFW_BENCHMARK = (50, 51, 52, 53, 54, 55, 56, 57, 60, 61, 62, 63, 64, 65, 66, 67, 69, 70, 71, 72, 73, 75, 77,
                 78, 79, 80, 81, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98)
# who looks like a woman, for the benchmark voice's pitch (a look, not a claim about the person)
LFW_WOMEN = frozenset({50, 52, 53, 57, 75, 91, 93, 94})


@cache
def lfw_portrait(index: int) -> np.ndarray:
    """``lfw_subset()[index]`` as a portrait MediaPipe finds: upscaled 4x (cubic) to 100 px and padded by
    edge replication to 220 px, grey turned RGB uint8."""
    from skimage import data

    if not 0 <= index < 100:
        raise ValueError(f"lfw_subset() faces are 0-99, got {index}")
    face = data.lfw_subset()[index]
    grey = (np.clip(face, 0.0, 1.0) * 255).astype(np.uint8)
    big = cv2.resize(grey, (100, 100), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 60, 60, 60, 60, cv2.BORDER_REPLICATE)
    return np.repeat(big[..., None], 3, axis=2)

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


def several_faces_frames(photos: tuple[str, ...] = ("astronaut", "grace_hopper"), n: int = 50,
                         size: tuple[int, int] = (640, 360), face_px: float | None = None, background: int = 90,
                         seed: int = 0, enter: dict[int, int] | None = None, leave: dict[int, int] | None = None,
                         ) -> tuple[list[np.ndarray], list[list[tuple[float, float, float, float] | None]]]:
    """Frames of several photographed people side by side (one per ``photos``, left to right, each face about
    ``face_px`` wide, default 11% of the frame's width, each swaying on its own), and each face's box per frame. ``enter`` and ``leave`` map a
    person's position to the frame they appear at and the one they are gone from (absent: their box is None)."""
    rng = np.random.default_rng(seed)
    w, h = size
    people = []
    for i, photo in enumerate(photos):
        img = face_photo(photo)
        box = np.array(FACE_BOXES.get(photo) or photo_landmarks(photo)[0], float)
        # the head and shoulders only (2 face widths around the face), so that neighbours do not cover it
        half = box[2] - box[0]
        x0 = int(max(0, (box[0] + box[2]) / 2 - half))
        y0 = int(max(0, (box[1] + box[3]) / 2 - half))
        img = img[y0:int((box[1] + box[3]) / 2 + 1.2 * half), x0:int((box[0] + box[2]) / 2 + half)]
        box = box - np.array([x0, y0, x0, y0])
        s = (face_px or 0.11 * w) / (box[2] - box[0])
        people.append((cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), box * s,
                       (i + 0.5) * w / len(photos), rng.uniform(0, 2 * np.pi, 2)))
    frames, boxes = [], []
    for k in range(n):
        canvas = np.full((h, w, 3), background, np.uint8)
        where = []
        for i, (img, box, x, phase) in enumerate(people):
            if enter and k < enter.get(i, 0) or leave and k >= leave.get(i, n):
                where.append(None)
                continue
            cx = x + 0.04 * w * np.sin(k / 30 + phase[0])
            cy = h / 2 + 0.05 * h * np.sin(k / 23 + phase[1])
            ox, oy = int(round(cx - (box[0] + box[2]) / 2)), int(round(cy - (box[1] + box[3]) / 2))
            place(canvas, img, ox, oy)
            where.append(tuple(box + np.array([ox, oy, ox, oy])))
        frames.append(canvas)
        boxes.append(where)
    return frames, boxes


def several_faces_clip(path: str | Path, photos: tuple[str, ...] = ("astronaut", "grace_hopper"),
                       seconds: float = 4.0, fps: int = 25, size: tuple[int, int] = (640, 360),
                       enter: dict[int, float] | None = None, leave: dict[int, float] | None = None,
                       seed: int = 0) -> Path:
    """An H.264 + AAC clip of ``several_faces_frames`` (people appear at ``enter`` seconds and go at ``leave``
    seconds), with a tone for a voice: an interview or a DFDC clip of two people, of whom a fake may swap one."""
    from dfdetect.media import write_video

    n = int(seconds * fps)
    frames, _ = several_faces_frames(photos, n=n, size=size, seed=seed,
                                     enter={i: int(t * fps) for i, t in (enter or {}).items()},
                                     leave={i: int(t * fps) for i, t in (leave or {}).items()})
    write_video(path, frames, fps=fps, audio=tone(seconds))
    return Path(path)


# -- Media without any face ---------------------------------------------------------------------------------
# Clips with no person in them, the kinds a real corpus holds between talking heads: title cards over an
# animated sky, credits, cartoons, landscapes, a person seen from behind. A face detector that finds faces in
# them hands the deepfake model crops of clouds and letters; tests/test_faceless.py holds it to (almost) none.

FACELESS_KINDS = ("sky-title", "text", "cartoon", "landscape", "back-of-head")

LANDSCAPE_PHOTOS = ("china", "flower", "rocket", "coffee", "hubble_deep_field", "gravel")


@cache
def landscape_photo(name: str) -> np.ndarray:
    """A real photograph without people, RGB uint8: ``china`` and ``flower`` (scikit-learn's sample images),
    ``rocket``, ``coffee``, ``hubble_deep_field`` and ``gravel`` (scikit-image; gravel is greyscale, turned RGB)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    if name in ("rocket", "coffee", "hubble_deep_field", "gravel"):
        from skimage import data

        img = getattr(data, name)()
        return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    raise ValueError(f"unknown photo {name!r}; known: {', '.join(LANDSCAPE_PHOTOS)}")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scales=(64, 24, 8)) -> np.ndarray:
    """Fractal-ish noise in [0, 1]: uniform noise at a few coarse grids, upsampled and summed."""
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for k, s in enumerate(scales):
        gh, gw = max(2, h // s + 2), max(2, w // s + 2)
        grid = rng.random((gh, gw)).astype(np.float32)
        amp = 0.5 ** k
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
    out /= total
    return np.clip((out - out.min()) / max(1e-6, out.max() - out.min()), 0.0, 1.0)


def _text_centered(img: np.ndarray, text: str, cy: int, scale: float, colour, thickness: int,
                   font: int = cv2.FONT_HERSHEY_DUPLEX, outline: int = 0) -> None:
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    org = (int((img.shape[1] - tw) / 2), int(cy + th / 2))
    if outline:
        cv2.putText(img, text, org, font, scale, (20, 20, 30), thickness + outline, cv2.LINE_AA)
    cv2.putText(img, text, org, font, scale, colour, thickness, cv2.LINE_AA)


def _sky_title_frames(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Clouds (smoothed noise, drifting sideways and slowly changing) on a blue gradient, with a large
    title that fades in and grows a little, as in the report of faces found in a title card."""
    w, h = size
    pad = n * 2 + 8
    density = _smooth_noise(rng, h, w + pad, scales=(max(8, w // 4), max(4, w // 12), max(2, w // 40)))
    density2 = _smooth_noise(rng, h, w + pad, scales=(max(8, w // 3), max(4, w // 10)))
    top, bottom = np.array([40, 90, 190], np.float32), np.array([150, 190, 235], np.float32)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = top * (1 - ramp) + bottom * ramp
    words = rng.choice(["SUMMER SKIES", "THE JOURNEY", "CHAPTER ONE", "OPEN AIR", "DAYBREAK"])
    frames = []
    for i in range(n):
        t = i / max(1, n - 1)
        d = (1 - 0.3 * t) * density[:, 2 * i:2 * i + w] + 0.3 * t * density2[:, i:i + w]
        cover = np.clip((d - 0.45) * 3.0, 0.0, 1.0)[..., None]
        shade = 225 + 30 * d[..., None]
        img = sky * (1 - cover) + shade * cover
        img = np.clip(img, 0, 255).astype(np.uint8)
        scale = (0.9 + 0.25 * t) * w / 320
        colour = tuple(int(v) for v in np.array([255, 250, 220]) * min(1.0, 0.3 + 1.5 * t))
        _text_centered(img, str(words), int(h * 0.45), scale, colour, max(2, int(3 * w / 320)), outline=2)
        _text_centered(img, "a film", int(h * 0.62), 0.5 * w / 320, (255, 255, 255), 1,
                       font=cv2.FONT_HERSHEY_SIMPLEX)
        frames.append(img)
    return frames


def _text_frames(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """End credits: lines of names and roles scrolling up over black (or a dark colour)."""
    w, h = size
    first = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "John"]
    last = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton"]
    roles = ["Director", "Producer", "Editor", "Sound", "Camera", "Music", "Lighting", "Written by"]
    lines = []
    for _ in range(40):
        lines.append((str(rng.choice(roles)), f"{rng.choice(first)} {rng.choice(last)}"))
    bg = np.array(rng.choice([[0, 0, 0], [10, 10, 40], [30, 5, 5]]), np.uint8)
    step = int(34 * h / 240)
    speed = 1.6 * h / 240
    s = w / 320
    frames = []
    for i in range(n):
        img = np.empty((h, w, 3), np.uint8)
        img[:] = bg
        off = h - i * speed
        for k, (role, name) in enumerate(lines):
            y = int(off + k * step)
            if -step < y < h + step:
                cv2.putText(img, role, (int(w * 0.08), y), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * s, (170, 170, 170), 1,
                            cv2.LINE_AA)
                cv2.putText(img, name, (int(w * 0.45), y), cv2.FONT_HERSHEY_DUPLEX, 0.6 * s, (255, 255, 255),
                            max(1, int(s)), cv2.LINE_AA)
        # a big title at the top of the roll
        ty = int(off - 1.5 * step)
        if -step < ty < h + step:
            cv2.putText(img, "THE END", (int(w * 0.2), ty), cv2.FONT_HERSHEY_TRIPLEX, 1.4 * s, (240, 220, 160),
                        max(2, int(2 * s)), cv2.LINE_AA)
        frames.append(img)
    return frames


def _cartoon_frames(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """A flat-colour cartoon scene: sky, hills, a house, a tree, a sun with rays, a car driving by, a ball
    bouncing, and a few loose shapes; outlines in black as cartoons draw them. No faces, not even smileys."""
    w, h = size
    s = w / 320
    sky = tuple(int(v) for v in rng.integers([90, 160, 220], [140, 200, 255]))
    frames = []
    shapes = [(int(rng.integers(0, w)), int(rng.integers(h // 2, h)), int(rng.integers(6, 18) * s),
               tuple(int(v) for v in rng.integers(0, 255, 3))) for _ in range(6)]
    for i in range(n):
        t = i / 25.0
        img = np.empty((h, w, 3), np.uint8)
        img[:] = sky
        # sun with turning rays
        sun = (int(w * 0.82), int(h * 0.18))
        for k in range(10):
            a = k * np.pi / 5 + t
            p0 = (int(sun[0] + 24 * s * np.cos(a)), int(sun[1] + 24 * s * np.sin(a)))
            p1 = (int(sun[0] + 34 * s * np.cos(a)), int(sun[1] + 34 * s * np.sin(a)))
            cv2.line(img, p0, p1, (255, 200, 0), max(1, int(3 * s)), cv2.LINE_AA)
        cv2.circle(img, sun, int(18 * s), (255, 220, 40), -1, cv2.LINE_AA)
        # a cloud drifting
        cx = int((w * 0.2 + 12 * s * t * 4) % (w + 60 * s)) - int(30 * s)
        for dx, dy, r in ((0, 0, 14), (16, -6, 16), (32, 0, 13)):
            cv2.circle(img, (cx + int(dx * s), int(h * 0.2) + int(dy * s)), int(r * s), (250, 250, 250), -1,
                       cv2.LINE_AA)
        # hills
        cv2.ellipse(img, (int(w * 0.25), h), (int(w * 0.45), int(h * 0.45)), 0, 180, 360, (80, 170, 60), -1)
        cv2.ellipse(img, (int(w * 0.8), h), (int(w * 0.5), int(h * 0.38)), 0, 180, 360, (60, 150, 50), -1)
        # house
        hx, hy, hw, hh = int(w * 0.12), int(h * 0.5), int(70 * s), int(55 * s)
        cv2.rectangle(img, (hx, hy), (hx + hw, hy + hh), (220, 80, 60), -1)
        cv2.rectangle(img, (hx, hy), (hx + hw, hy + hh), (0, 0, 0), max(1, int(2 * s)))
        roof = np.array([[hx - int(8 * s), hy], [hx + hw // 2, hy - int(35 * s)], [hx + hw + int(8 * s), hy]])
        cv2.fillPoly(img, [roof], (120, 60, 30))
        cv2.polylines(img, [roof], True, (0, 0, 0), max(1, int(2 * s)))
        cv2.rectangle(img, (hx + int(28 * s), hy + int(25 * s)), (hx + int(44 * s), hy + hh), (90, 50, 20), -1)
        cv2.rectangle(img, (hx + int(8 * s), hy + int(12 * s)), (hx + int(22 * s), hy + int(26 * s)),
                      (200, 230, 255), -1)
        # tree, swaying
        tx, ty = int(w * 0.6), int(h * 0.62)
        cv2.rectangle(img, (tx - int(5 * s), ty), (tx + int(5 * s), ty + int(45 * s)), (110, 70, 30), -1)
        sway = int(3 * s * np.sin(2 * t))
        cv2.circle(img, (tx + sway, ty - int(10 * s)), int(26 * s), (30, 130, 40), -1, cv2.LINE_AA)
        cv2.circle(img, (tx + sway, ty - int(10 * s)), int(26 * s), (0, 0, 0), max(1, int(2 * s)), cv2.LINE_AA)
        # car driving by
        carx = int((i * 5 * s) % (w + 120 * s)) - int(80 * s)
        cy = int(h * 0.86)
        cv2.rectangle(img, (carx, cy - int(18 * s)), (carx + int(70 * s), cy), (40, 90, 220), -1)
        cv2.rectangle(img, (carx + int(14 * s), cy - int(32 * s)), (carx + int(52 * s), cy - int(18 * s)),
                      (40, 90, 220), -1)
        cv2.rectangle(img, (carx + int(20 * s), cy - int(29 * s)), (carx + int(46 * s), cy - int(19 * s)),
                      (200, 230, 255), -1)
        for wx in (14, 56):
            cv2.circle(img, (carx + int(wx * s), cy), int(8 * s), (20, 20, 20), -1, cv2.LINE_AA)
            cv2.circle(img, (carx + int(wx * s), cy), int(3 * s), (180, 180, 180), -1, cv2.LINE_AA)
        # bouncing ball
        by = int(h * 0.75 - abs(np.sin(3 * t)) * 50 * s)
        cv2.circle(img, (int(w * 0.42), by), int(10 * s), (230, 30, 120), -1, cv2.LINE_AA)
        for x, y, r, c in shapes:
            cv2.rectangle(img, (x - r, y - r), (x + r, y + r), c, -1)
        frames.append(img)
    return frames


def _landscape_frames(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Every photo of ``LANDSCAPE_PHOTOS`` in turn (start in a seed-chosen place), each slowly panned and
    zoomed (a Ken Burns effect), a few frames each."""
    w, h = size
    order = list(LANDSCAPE_PHOTOS)
    k0 = int(rng.integers(len(order)))
    order = order[k0:] + order[:k0]
    per = max(1, int(np.ceil(n / len(order))))
    frames = []
    for i in range(n):
        img = landscape_photo(order[(i // per) % len(order)])
        t = (i % per) / max(1, per - 1)
        H, W = img.shape[:2]
        zoom = 1.0 + 0.25 * t  # the visible part shrinks as the camera zooms in
        cw = min(W, H * w / h) / zoom
        ch = cw * h / w
        x0 = (W - cw) * (0.2 + 0.6 * t)
        y0 = (H - ch) * 0.5
        M = np.array([[w / cw, 0, -x0 * w / cw], [0, h / ch, -y0 * h / ch]], np.float32)
        frames.append(cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return frames


def _back_of_head_frames(n: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """A person seen from behind, drawn: shoulders in a shirt, a skin-coloured neck, ears, and hair covering
    the whole head; swaying and nodding a little over a softly textured background."""
    w, h = size
    s = h / 240
    bg = (60 + 80 * _smooth_noise(rng, h, w, scales=(max(8, w // 3), max(4, w // 10)))[..., None]).astype(np.float32)
    bg = np.clip(bg * np.array([0.9, 1.0, 1.1], np.float32), 0, 255).astype(np.uint8)
    hair = tuple(int(v) for v in rng.choice([[40, 28, 20], [90, 60, 30], [20, 20, 20], [150, 110, 60]]))
    skin = tuple(int(v) for v in rng.choice([[225, 180, 150], [190, 140, 100], [120, 80, 55]]))
    shirt = tuple(int(v) for v in rng.integers(30, 220, 3))
    phase = rng.uniform(0, 2 * np.pi, 2)
    frames = []
    for i in range(n):
        t = i / 25.0
        img = bg.copy()
        cx = int(w / 2 + 10 * s * np.sin(0.9 * t + phase[0]))
        cy = int(h * 0.42 + 4 * s * np.sin(1.7 * t + phase[1]))
        tilt = 6 * np.sin(1.1 * t)
        # shoulders and back
        cv2.ellipse(img, (cx, h + int(20 * s)), (int(110 * s), int(95 * s)), 0, 180, 360, shirt, -1, cv2.LINE_AA)
        # neck
        cv2.rectangle(img, (cx - int(20 * s), cy + int(30 * s)), (cx + int(20 * s), cy + int(85 * s)), skin, -1)
        # ears, peeking out at the sides
        for side in (-1, 1):
            cv2.ellipse(img, (cx + side * int(44 * s), cy + int(4 * s)), (int(8 * s), int(15 * s)), 0, 0, 360,
                        skin, -1, cv2.LINE_AA)
        # the head: hair all over, a little darker crown, a few strands
        cv2.ellipse(img, (cx, cy), (int(45 * s), int(55 * s)), tilt, 0, 360, hair, -1, cv2.LINE_AA)
        darker = tuple(int(v * 0.75) for v in hair)
        cv2.ellipse(img, (cx, cy - int(20 * s)), (int(18 * s), int(14 * s)), tilt, 0, 360, darker, -1, cv2.LINE_AA)
        for k in range(7):
            a = np.deg2rad(200 + 20 * k + tilt)
            p0 = (int(cx + 10 * s * np.cos(a)), int(cy - 20 * s + 8 * s * np.sin(a)))
            p1 = (int(cx + 42 * s * np.cos(a)), int(cy + 45 * s * np.sin(a) * -1))
            cv2.line(img, p0, p1, darker, max(1, int(2 * s)), cv2.LINE_AA)
        frames.append(img)
    return frames


_FACELESS = {
    "sky-title": _sky_title_frames,
    "text": _text_frames,
    "cartoon": _cartoon_frames,
    "landscape": _landscape_frames,
    "back-of-head": _back_of_head_frames,
}


def faceless_frames(kind: str, n: int = 75, size: tuple[int, int] = (320, 240), seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB uint8 frames of a clip with no human face in it, of one of ``FACELESS_KINDS``:
    ``sky-title`` (drifting clouds under a large title), ``text`` (scrolling credits), ``cartoon`` (a
    flat-colour drawn scene), ``landscape`` (real photographs without people, panned and zoomed) or
    ``back-of-head`` (a drawn person seen from behind)."""
    if kind not in _FACELESS:
        raise ValueError(f"unknown faceless kind {kind!r}; known: {', '.join(FACELESS_KINDS)}")
    return _FACELESS[kind](int(n), (int(size[0]), int(size[1])), np.random.default_rng(seed))


def faceless_clip(path: str | Path, kind: str, seconds: float = 3.0, fps: int = 25,
                  size: tuple[int, int] = (320, 240), seed: int = 0, audio: bool = True) -> Path:
    """Encodes a short H.264 + AAC clip of ``faceless_frames(kind)`` (music-like tone for audio: a clip
    with a sound track, as the report's title card had)."""
    frames = faceless_frames(kind, n=int(round(seconds * fps)), size=size, seed=seed)
    wave = tone(seconds, freq=330 + 30 * seed, level=0.1) if audio else None
    from dfdetect.media import write_video

    write_video(path, frames, fps=fps, audio=wave)
    return Path(path)
