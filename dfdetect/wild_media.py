"""Clips unlike the built-in benchmark, for testing that the model knows what it does not know.

The model trains on ``dfdetect.synth``: 256x256 H.264 + AAC talking heads at 25 fps, made from three
photographs (astronaut, grace_hopper, camera) centred over smooth gradients, with one clean formant voice.
Real footage differs in almost every respect, and the model calls it ``fake`` with near-certainty. The clips
made here differ on purpose, one named condition per kind (``KINDS``), so that an out-of-distribution
("familiarity") check can be tested on media the model has never seen:

* faces of *other* real people: LFW faces 0-49 of ``skimage.data.lfw_subset()`` (25x25 grey), upscaled,
  given a skin tone, hair, neck and shoulders, and placed as a person in a scene;
* framing (close-up, wide, off-centre, 9:16 phone, 16:9 interview), camera motion (hand-held, shake, pan and
  zoom), lighting (dim, backlit, colour cast with flicker), sensor noise, low-resolution and low-bitrate
  capture, VP9 + Opus in WebM, frame rates of 15 and 30, backgrounds that are real photographs and textures;
* audio: voices outside the benchmark's pitch range and speaking rate, with room noise, reverb, mains hum,
  babble, a telephone band, music, wind, levels that vary, or no audio track at all.

These clips are test material only, **never training data**: a model trained on them would learn to find
them familiar, which is exactly what they exist to check. They carry no real/fake label.

    >>> unfamiliar_clip("/tmp/c.mp4", "dim-light", seed=3)          # doctest: +SKIP
    >>> make_unfamiliar_set("/tmp/wild", per_kind=2)                  # doctest: +SKIP
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from dfdetect.media import write_video
from dfdetect.synth import SR, Utterance, plan_utterance, voice

# ---------------------------------------------------------------------------------------------------------
# The kinds
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How one kind of unfamiliar clip is made. Sizes are (width, height) of the encoded video."""

    name: str
    what: str  # one line: what is unlike the benchmark
    size: tuple[int, int] = (480, 360)
    fps: float = 30.0
    face: float = 0.35  # height of the face patch (brow to chin) as a share of the frame height
    at: tuple[float, float] = (0.5, 0.42)  # face centre as a share of (width, height), camera at rest
    background: str = "china"
    camera: str = "still"  # still | handheld | shake | pan-zoom
    light: str = "normal"  # normal | dim | backlit | cast-flicker | cool
    noise: float = 1.5  # sensor noise, 8-bit levels at mid grey
    soften: float = 1.0  # < 1: captured at this scale and upscaled (a low-resolution camera or call)
    codec: str = "h264"  # h264 | vp9
    crf: int = 23
    audio: str = "room"  # one of AUDIO_RECIPES ("none": no audio track)
    sample_rate: int = 48000
    channels: int = 1
    person: str = "face"  # face: an LFW face; not-a-face: an LFW non-face patch where the face would be

    @property
    def expects_face(self) -> bool:
        return self.person == "face"

    @property
    def suffix(self) -> str:
        return ".webm" if self.codec == "vp9" else ".mp4"


_KIND_LIST = (
    Kind("lfw-closeup", "tight close-up: the face fills most of the frame, hand-held",
         face=0.62, at=(0.5, 0.47), background="coffee", camera="handheld", audio="room"),
    Kind("lfw-wide", "wide shot: a small person in a large scene, far-field reverberant voice",
         size=(640, 360), face=0.15, at=(0.56, 0.33), background="china", audio="reverb"),
    Kind("off-centre", "face near the left edge of a 16:9 frame, mains hum on the audio",
         size=(640, 360), face=0.34, at=(0.2, 0.4), background="brick", audio="hum", fps=25.0),
    Kind("phone-vertical", "9:16 phone video held in the hand, stereo, wind and a voice that comes and goes",
         size=(360, 640), face=0.2, at=(0.5, 0.36), background="grass", camera="handheld",
         audio="street", channels=2, crf=26),
    Kind("shaky-cam", "strong hand-held shake and tilt, several voices talking at once",
         face=0.36, background="gravel", camera="shake", audio="babble"),
    Kind("pan-zoom", "slow pan and zoom across the scene, music under the voice",
         size=(640, 360), face=0.3, at=(0.5, 0.42), background="coffee", camera="pan-zoom", audio="music"),
    Kind("dim-light", "underexposed room: dark, noisy after the camera's gain, a quiet voice",
         face=0.4, background="china", light="dim", noise=5.0, audio="quiet"),
    Kind("backlit", "bright window behind a darker face, reverberant voice",
         size=(640, 360), face=0.34, at=(0.45, 0.42), background="flower", light="backlit", audio="reverb"),
    Kind("colour-flicker", "orange tungsten cast with rolling mains flicker, mains hum",
         face=0.36, background="brick", light="cast-flicker", audio="hum", fps=25.0),
    Kind("webcam-noise", "4:3 webcam at 15 fps: low resolution upscaled, grain, fan noise, 44.1 kHz",
         size=(640, 480), fps=15.0, face=0.32, at=(0.5, 0.45), background="coffee", light="cool",
         noise=5.0, soften=0.5, audio="fan", sample_rate=44100),
    Kind("low-bitrate-call", "video call: very low bitrate H.264, low resolution, telephone-band voice",
         size=(640, 360), face=0.36, background="china", soften=0.4, crf=45, audio="telephone",
         sample_rate=16000, fps=15.0),
    Kind("webm-interview", "16:9 interview framing in VP9 + Opus (WebM), stereo room voice",
         size=(854, 480), face=0.27, at=(0.64, 0.38), background="china", camera="handheld", codec="vp9",
         crf=34, audio="room", channels=2, fps=25.0),
    Kind("textured-background", "a person against a strongly textured real surface, speech levels that vary",
         face=0.36, background="gravel", audio="levels"),
    Kind("silent-no-audio", "no audio track at all", size=(640, 360), face=0.36, at=(0.5, 0.42),
         background="grass", audio="none"),
    Kind("not-a-face", "an LFW non-face patch where a head would be (no face to find), music only",
         face=0.36, background="coffee", audio="music-only", person="not-a-face"),
)

AUDIO_RECIPES = ("room", "reverb", "hum", "street", "babble", "music", "music-only", "quiet", "fan", "telephone",
                 "levels", "none")

KIND_SPECS: dict[str, Kind] = {k.name: k for k in _KIND_LIST}
KINDS: tuple[str, ...] = tuple(KIND_SPECS)
FACE_KINDS: tuple[str, ...] = tuple(k.name for k in _KIND_LIST if k.expects_face)

# lfw_subset(): images 0-99 are faces, 100-199 are not faces. Faces 50-99 are the built-in benchmark's other
# people (dfdetect.sample_media.LFW_BENCHMARK), so unfamiliar footage shows 0-49 only.
LFW_FACES = range(0, 50)
LFW_NON_FACES = range(100, 200)


def _kind(kind: str) -> Kind:
    try:
        return KIND_SPECS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}") from None


def _rng(kind: str, seed: int, stream: int) -> np.random.Generator:
    # crc32, not hash(): str hashes change between interpreter runs and clips must not.
    return np.random.default_rng([int(seed), zlib.crc32(kind.encode()), stream])


def photo_index(kind: str, seed: int = 0) -> int:
    """The ``lfw_subset()`` image a clip of this kind and seed shows (a face, or a non-face for
    ``not-a-face``)."""
    pool = LFW_FACES if _kind(kind).expects_face else LFW_NON_FACES
    return int(pool[int(_rng(kind, seed, 0).integers(len(pool)))])


# ---------------------------------------------------------------------------------------------------------
# Pictures: LFW faces, people, backgrounds
# ---------------------------------------------------------------------------------------------------------


@cache
def _lfw() -> np.ndarray:
    from skimage import data

    return data.lfw_subset()


def lfw_image(index: int) -> np.ndarray:
    """Image ``index`` of ``skimage.data.lfw_subset()``: 25x25 grey float in [0, 1]."""
    return _lfw()[index]


# Skin tones as RGB gains on the grey LFW photo, from light to dark (the photos carry no colour).
SKIN = ((1.18, 0.92, 0.76), (1.16, 0.86, 0.66), (1.08, 0.78, 0.56), (0.92, 0.64, 0.44), (0.74, 0.50, 0.34))
HAIR = ((30, 24, 20), (70, 48, 30), (120, 95, 60), (150, 150, 150), (20, 20, 25))
CLOTHES = ((40, 60, 110), (150, 40, 40), (220, 220, 215), (60, 90, 60), (35, 35, 40), (180, 140, 60))


def _soft_ellipse(h: int, w: int, centre: tuple[float, float], axes: tuple[float, float],
                  soft: float) -> np.ndarray:
    """A filled ellipse as a float32 mask whose edge ramps over about ``soft`` pixels (no jaggies)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2)
    return np.clip((1.0 - r) * min(axes) / max(soft, 1e-3) + 0.5, 0.0, 1.0).astype(np.float32)


@dataclass
class Person:
    """A head-and-shoulders sprite around one LFW patch, and what it takes to move its mouth.

    ``rgb``/``alpha`` is the sprite; the face patch (side ``side``) sits at ``patch_at`` in it, ``under`` is
    the sprite there before the face was laid on (so the mouth can be redrawn each frame), ``mask`` the
    face's blend mask and ``mouth`` the mouth in patch coordinates."""

    rgb: np.ndarray
    alpha: np.ndarray
    rgba: np.ndarray  # rgb and alpha in one float32 array, the face patch redrawn in place per frame
    face: np.ndarray
    under: np.ndarray
    mask: np.ndarray
    patch_at: tuple[int, int]
    side: int
    mouth: tuple[float, float]
    talks: bool
    _jaw: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # remap grids and how far each pixel moves

    def jaw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, shift): pixel grids of the face patch and how much of the jaw drop each pixel takes, most
        at the mouth's centre, tapering towards the cheeks and to nothing at the chin and above the mouth."""
        if self._jaw is None:
            F = self.side
            mx, my = self.mouth
            y, x = np.mgrid[0:F, 0:F].astype(np.float32)
            across = np.exp(-(((x - mx) / (0.3 * F)) ** 2))
            down = np.where(y > my, (F - y) / (F - my), 0.0)
            self._jaw = (x, y, (across * down).astype(np.float32))
        return self._jaw


def make_person(index: int, side: int, rng: np.random.Generator) -> Person:
    """A person sprite from ``lfw_subset()[index]`` upscaled (cubic) to ``side`` px, with a skin tone,
    hair, neck and shoulders in colours drawn from ``rng``."""
    grey = cv2.resize(lfw_image(index).astype(np.float32) * 255.0, (side, side), interpolation=cv2.INTER_CUBIC)
    grey = np.clip(grey, 0, 255)
    tone = np.array(SKIN[int(rng.integers(len(SKIN)))], np.float32) * rng.uniform(0.95, 1.05, 3)
    face = np.clip(grey[..., None] * tone, 0, 255).astype(np.float32)
    talks = index in LFW_FACES
    F = side
    W, H = int(3.4 * F), int(3.3 * F)
    px, py = (W - F) // 2, int(0.3 * F)
    cx = W / 2
    rgb = np.zeros((H, W, 3), np.float32)
    alpha = np.zeros((H, W), np.float32)

    def lay(mask: np.ndarray, colour) -> None:
        nonlocal rgb, alpha
        rgb = rgb * (1 - mask[..., None]) + np.asarray(colour, np.float32) * mask[..., None]
        alpha = np.maximum(alpha, mask)

    cloth = np.array(CLOTHES[int(rng.integers(len(CLOTHES)))], np.float32)
    body = _soft_ellipse(H, W, (cx, py + 2.3 * F), (1.55 * F, 0.9 * F), 2.0)
    body[int(py + 2.3 * F):, int(cx - 1.55 * F):int(cx + 1.55 * F)] = 1.0
    # shading from the shoulders down, so the torso is not a flat cut-out
    shade = np.linspace(1.1, 0.75, H, dtype=np.float32)[:, None, None]
    lay(body, 0.0)
    rgb += body[..., None] * cloth * shade
    skin = np.median(face[int(0.45 * F):int(0.7 * F), int(0.35 * F):int(0.65 * F)].reshape(-1, 3), axis=0)
    neck = np.zeros((H, W), np.float32)
    neck[int(py + 0.8 * F):int(py + 1.6 * F), int(cx - 0.22 * F):int(cx + 0.22 * F)] = 1.0
    neck = cv2.GaussianBlur(neck, (0, 0), 1.5)
    lay(neck, skin * 0.78)  # in the chin's shadow
    if talks:
        hair = np.array(HAIR[int(rng.integers(len(HAIR)))], np.float32)
        lay(_soft_ellipse(H, W, (cx, py + 0.4 * F), (0.5 * F, 0.48 * F), 2.0), hair)
        lay(_soft_ellipse(H, W, (cx, py + 0.56 * F), (0.45 * F, 0.56 * F), 2.0), skin)
        mask = _soft_ellipse(F, F, (0.5 * F, 0.52 * F), (0.44 * F, 0.52 * F), 0.08 * F)
    else:
        # a non-face patch shown where the head is: square, as LFW cut it
        mask = np.ones((F, F), np.float32)
        mask[[0, -1], :] = 0.5
        mask[:, [0, -1]] = 0.5
    under = rgb[py:py + F, px:px + F].copy()
    rgb[py:py + F, px:px + F] = under * (1 - mask[..., None]) + face * mask[..., None]
    alpha[py:py + F, px:px + F] = np.maximum(alpha[py:py + F, px:px + F], mask)
    rgba = np.dstack([rgb, alpha]).astype(np.float32)
    return Person(rgb=rgb, alpha=alpha, rgba=rgba, face=face, under=under, mask=mask, patch_at=(px, py),
                  side=F, mouth=(0.5 * F, _mouth_row(lfw_image(index)) * F), talks=talks)


def _mouth_row(img: np.ndarray) -> float:
    """Where the mouth is in an LFW crop, as a share of its height: the darkest row (the line between the
    lips) in the middle columns of the lower face. LFW crops vary; a fixed row misses many mouths."""
    h, w = img.shape
    lo, hi = int(0.62 * h), int(0.86 * h)
    rows = img[lo:hi, int(0.38 * w):int(0.62 * w)].mean(1)
    return (lo + int(np.argmin(rows)) + 0.5) / h


def _with_mouth(p: Person, openness: float) -> np.ndarray:
    """The sprite (RGBA) with the jaw dropped by ``openness`` (0..1): the lower face slides down (tapering
    towards the chin and the cheeks) and the gap shows a dark mouth. Returns ``p.rgba``, redrawn in place."""
    F = p.side
    px, py = p.patch_at
    m = p.mask[..., None]
    if not p.talks or openness < 0.02:
        p.rgba[py:py + F, px:px + F, :3] = p.rgb[py:py + F, px:px + F]
        return p.rgba
    mx, my = p.mouth
    d = openness * 0.08 * F
    x, y, shift = p.jaw()
    face = cv2.remap(p.face, x, y - d * shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gap = _soft_ellipse(F, F, (mx, my + 0.5 * d), (0.13 * F * (0.85 + 0.15 * openness), 0.55 * d + 0.01 * F),
                        1.0)
    a = gap[..., None] * 0.85 * min(1.0, 3.0 * openness)
    # the inside of a mouth: dark, tinted like the lips around it
    lips = p.face[int(my), int(mx - 0.1 * F):int(mx + 0.1 * F)].mean(0)
    face = face * (1 - a) + (0.3 * lips + np.array([30, 8, 12], np.float32)) * a
    p.rgba[py:py + F, px:px + F, :3] = p.under * (1 - m) + face * m
    return p.rgba


# Textures are grey; these tints make them read as the material (brick, grass, gravel).
_TEXTURE_TINT = {"brick": (1.15, 0.78, 0.62), "grass": (0.75, 1.05, 0.6), "gravel": (1.0, 0.96, 0.9)}


@cache
def _source_picture(name: str) -> np.ndarray:
    """A real photograph for backgrounds, RGB float32 (none of them is in the benchmark)."""
    from skimage import data

    if name in ("china", "flower"):
        # the JPEGs behind sklearn.datasets.load_sample_image, read directly: importing sklearn.datasets
        # takes longer than making a clip
        import importlib.util

        spec = importlib.util.find_spec("sklearn")
        roots = list(spec.submodule_search_locations or []) if spec else []
        img = cv2.imread(str(Path(roots[0]) / "datasets" / "images" / f"{name}.jpg")) if roots else None
        if img is None:
            from sklearn.datasets import load_sample_image

            return load_sample_image(f"{name}.jpg").astype(np.float32)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32)
    if name == "coffee":
        return data.coffee().astype(np.float32)
    if name in _TEXTURE_TINT:
        grey = getattr(data, name)().astype(np.float32)
        return grey[..., None] * np.array(_TEXTURE_TINT[name], np.float32)
    raise ValueError(f"unknown background {name!r}")


def background(name: str, width: int, height: int) -> np.ndarray:
    """A ``width`` x ``height`` RGB float32 background: photographs are scaled to cover the frame and
    centre-cropped; textures are tiled at their own scale (their grain is the point)."""
    img = _source_picture(name)
    h, w = img.shape[:2]
    if name in _TEXTURE_TINT:
        reps = (int(np.ceil(height / h)), int(np.ceil(width / w)), 1)
        # mirror-tile so that the seams do not show as straight lines
        tile = np.concatenate([img, img[:, ::-1]], 1)
        tile = np.concatenate([tile, tile[::-1]], 0)
        return np.tile(tile, (reps[0], reps[1], 1))[:height, :width].copy()
    s = max(width / w, height / h)
    big = cv2.resize(img, (max(width, int(np.ceil(w * s))), max(height, int(np.ceil(h * s)))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return big[y0:y0 + height, x0:x0 + width].copy()


# ---------------------------------------------------------------------------------------------------------
# Motion, light, noise
# ---------------------------------------------------------------------------------------------------------


def _wobble(rng: np.random.Generator, n: int, fps: float, hz: float) -> np.ndarray:
    """Smooth random motion with most of its energy below ``hz``, unit standard deviation, ``n`` values
    at ``fps`` per second."""
    if fps > 200:
        # an audio-rate envelope: drawn at 100 Hz and interpolated (a Gaussian filter thousands of samples
        # wide at the audio rate costs seconds)
        m = int(np.ceil(n * 100 / fps)) + 2
        return np.interp(np.arange(n) * 100 / fps, np.arange(m), _wobble(rng, m, 100.0, hz))
    x = gaussian_filter1d(rng.standard_normal(n + 64), sigma=max(0.5, fps / (2 * np.pi * hz)))[32:32 + n]
    return x / (x.std() + 1e-9)


# Scene margin per camera: how far beyond the frame the camera may look.
_MARGIN = {"still": 0.0, "handheld": 0.06, "shake": 0.12, "pan-zoom": 0.18}


def camera_path(camera: str, n: int, fps: float, size: tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
    """Per frame (tx, ty, zoom, angle): where the camera looks (pixels from rest), its zoom and roll
    (degrees)."""
    W, _ = size
    t = np.arange(n) / fps
    out = np.zeros((n, 4), np.float32)
    out[:, 2] = 1.0
    if camera == "still":
        return out
    if camera in ("handheld", "pan-zoom"):
        # a hand holding a phone: slow drift, a little roll, breathing
        out[:, 0] = 0.010 * W * _wobble(rng, n, fps, 0.8)
        out[:, 1] = 0.008 * W * _wobble(rng, n, fps, 0.8)
        out[:, 3] = 0.6 * _wobble(rng, n, fps, 0.5)
        out[:, 2] += 0.01 * _wobble(rng, n, fps, 0.3)
    if camera == "shake":
        # walking with the camera: large low-frequency sway plus 5-9 Hz tremor and a few jolts
        out[:, 0] = 0.03 * W * _wobble(rng, n, fps, 1.2) + 0.008 * W * _wobble(rng, n, fps, 7.0)
        out[:, 1] = 0.025 * W * _wobble(rng, n, fps, 1.5) + 0.008 * W * _wobble(rng, n, fps, 7.0)
        out[:, 3] = 2.0 * _wobble(rng, n, fps, 1.0)
        for j in rng.integers(0, n, 3):
            out[j:j + 3, :2] += rng.normal(0, 0.015 * W, 2)
    if camera == "pan-zoom":
        u = 0.5 - 0.5 * np.cos(np.pi * t / max(t[-1], 1e-3))  # ease in and out
        out[:, 0] += (0.12 - 0.24 * u) * W
        out[:, 2] *= 1.0 + 0.3 * u
    return out


def _camera_matrix(scene_size: tuple[int, int], size: tuple[int, int], cam: np.ndarray) -> np.ndarray:
    """The 2x3 affine map from scene to frame pixels for one camera pose."""
    tx, ty, zoom, ang = (float(v) for v in cam)
    (Sw, Sh), (W, H) = scene_size, size
    M = cv2.getRotationMatrix2D((Sw / 2 + tx, Sh / 2 + ty), ang, zoom)
    M[0, 2] += W / 2 - (Sw / 2 + tx)
    M[1, 2] += H / 2 - (Sh / 2 + ty)
    return M


class SensorNoise:
    """Sensor noise: shot noise (grows with brightness), slightly blurred luminance grain and weaker
    chroma noise, different in every frame.

    Drawing fresh Gaussian fields for every frame dominated the rendering time, so a few fields are drawn
    once and each frame takes a randomly shifted window of a random one: frames still never repeat a
    pattern in place."""

    PAD = 48

    def __init__(self, size: tuple[int, int], sigma: float, rng: np.random.Generator, bank: int = 6) -> None:
        W, H = size
        self.sigma, self.rng, self.size = sigma, rng, size
        self.fields = []
        for _ in range(bank if sigma > 0 else 0):
            lum = rng.standard_normal((H + self.PAD, W + self.PAD), dtype=np.float32)
            lum = cv2.GaussianBlur(lum, (0, 0), 0.7) * 1.6  # demosaicing correlates neighbours
            chroma = rng.standard_normal((H + self.PAD, W + self.PAD, 3), dtype=np.float32) * 0.35
            self.fields.append(lum[..., None] + chroma)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if not self.fields:
            return img
        W, H = self.size
        f = self.fields[int(self.rng.integers(len(self.fields)))]
        y, x = (int(v) for v in self.rng.integers(0, self.PAD, 2))
        level = cv2.sqrt(np.maximum(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 4.0) * (self.sigma ** 2 / 128.0))
        return img + level[..., None] * f[y:y + H, x:x + W]


# ---------------------------------------------------------------------------------------------------------
# Sound
# ---------------------------------------------------------------------------------------------------------


def _speech(rng: np.random.Generator, seconds: float, f0: float, rate: float, lead: float) -> np.ndarray:
    """A voice at 16 kHz after ``lead`` seconds of silence, with its syllables stretched by ``rate``
    (>1 slower): the benchmark's voices speak at one rate with f0 near 115 or 200 Hz."""
    talk = max(0.5, seconds - lead)
    plan = plan_utterance(rng, talk / rate)
    utt = Utterance(tuple((s * rate, d * rate, v, a) for s, d, v, a in plan.syllables), talk)
    out = np.zeros(int(round(seconds * SR)), np.float32)
    v = voice(utt, rng, f0)
    a = int(round(lead * SR))
    out[a:a + v.size] = v[: out.size - a]
    return out


def _odd_voice(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A voice unlike the benchmark's: very low (75-95 Hz) or high (235-290 Hz), fast or slow."""
    f0 = rng.uniform(75, 95) if rng.random() < 0.5 else rng.uniform(235, 290)
    rate = rng.uniform(0.7, 0.85) if rng.random() < 0.5 else rng.uniform(1.25, 1.45)
    return _speech(rng, seconds, f0, rate, lead=rng.uniform(0.0, 0.6))


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size)
    spec /= np.sqrt(np.maximum(f, 1))
    x = np.fft.irfft(spec, n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def _reverb(x: np.ndarray, sr: int, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """A room: exponentially decaying noise tail plus a few early reflections."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.3
    for d in rng.uniform(0.004, 0.03, 5):
        ir[int(d * sr)] += rng.uniform(0.2, 0.5)
    y = signal.fftconvolve(x, ir)[: x.size]
    y *= np.std(x) / (np.std(y) + 1e-12)
    return ((1 - wet) * x + wet * y).astype(np.float32)


def _hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum and buzz: 50 or 60 Hz with odd-heavy harmonics."""
    base = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / sr
    return sum(np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6)) / k ** (0.8 if k % 2 else 1.6)
               for k in range(1, 12)).astype(np.float32) / 2.0


def _music(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Chords and a bass line of plucked harmonic tones (a stand-in for background music)."""
    out = np.zeros(n, np.float32)
    beat = rng.uniform(0.35, 0.6)
    root = rng.uniform(110, 160)
    scale = (0, 2, 4, 5, 7, 9, 11, 12)
    t0 = 0.0
    while t0 < n / sr:
        deg = int(rng.integers(0, 5))
        for j, step in enumerate((0, 2, 4)):
            f = root * 2 ** ((scale[(deg + step) % 7] + 12 * ((deg + step) // 7)) / 12)
            a, m = int(t0 * sr), int(min(n, (t0 + 2 * beat) * sr))
            tt = np.arange(m - a) / sr
            note = sum(np.sin(2 * np.pi * f * 2 * h * tt) / h for h in range(1, 5)) * np.exp(-tt * 3.0)
            out[a:m] += note * (0.5 if j else 0.8)
        a, m = int(t0 * sr), int(min(n, (t0 + beat) * sr))
        tt = np.arange(m - a) / sr
        out[a:m] += np.sin(2 * np.pi * root / 2 * tt) * np.exp(-tt * 4.0)  # bass
        t0 += beat
    return out / (out.std() + 1e-9)


def _resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    if sr_from == sr_to:
        return x.astype(np.float32)
    g = np.gcd(sr_from, sr_to)
    return signal.resample_poly(x, sr_to // g, sr_from // g, axis=0).astype(np.float32)


def _telephone(x: np.ndarray) -> np.ndarray:
    """A phone line: 300-3400 Hz band, down to 8 kHz, 8-bit mu-law, and back up to 16 kHz."""
    sos = signal.butter(4, [300, 3400], btype="band", fs=SR, output="sos")
    y = _resample(signal.sosfilt(sos, x), SR, 8000)
    peak = np.abs(y).max() + 1e-9
    mu = 255.0
    c = np.sign(y / peak) * np.log1p(mu * np.abs(y / peak)) / np.log1p(mu)
    c = np.round(c * 127) / 127  # 8 bits per sample
    y = np.sign(c) * ((1 + mu) ** np.abs(c) - 1) / mu * peak
    return _resample(y, 8000, SR)


def _db(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``dbfs``."""
    return x * (10 ** (dbfs / 20) / (np.sqrt(np.mean(np.square(x))) + 1e-12))


def make_audio(recipe: str, seconds: float, sr: int, channels: int,
               rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray]:
    """The track for a recipe, ``(n,)`` or ``(n, channels)`` at ``sr`` (``None`` for ``none``), and the
    clean speech at 16 kHz that the mouth follows (zeros when nobody in view talks)."""
    n16 = int(round(seconds * SR))
    if recipe == "none":
        return None, np.zeros(n16, np.float32)
    n = int(round(seconds * sr))
    speech = np.zeros(n16, np.float32) if recipe == "music-only" else _odd_voice(rng, seconds)
    x = speech.astype(np.float64)
    level = rng.uniform(-26, -16)  # varies from clip to clip, unlike the benchmark's fixed loudness
    extra = np.zeros(n)  # full-band sounds added at the output rate
    if recipe == "room":
        x = _reverb(x, SR, rng.uniform(0.25, 0.45), 0.3, rng)
        extra = _db(_pink(rng, n), level - rng.uniform(15, 22))
    elif recipe == "reverb":
        x = _reverb(x, SR, rng.uniform(0.7, 1.2), 0.65, rng)
        extra = _db(_pink(rng, n), level - 25)
    elif recipe == "hum":
        speech_db = 20 * np.log10(np.sqrt(np.mean(np.square(x))) + 1e-12)
        x = x + _db(_hum(n16, SR, rng), speech_db - rng.uniform(14, 22))
    elif recipe == "street":
        # a phone moving about: level swings with distance, gusts of wind rumble, distant traffic
        x = x * (10 ** (6 * _wobble(rng, n16, SR, 0.4) / 20))
        lp = signal.butter(2, 250, fs=sr, output="sos")
        gust = np.clip(_wobble(rng, n, sr, 0.5), 0, None)
        wind = signal.sosfilt(lp, rng.standard_normal(n)) * gust
        traffic = signal.sosfilt(signal.butter(2, [80, 900], btype="band", fs=sr, output="sos"),
                                  rng.standard_normal(n))
        extra = _db(wind, level - 8) + _db(traffic, level - 20)
    elif recipe == "babble":
        others = np.zeros(n16)
        for _ in range(4):
            v = _speech(rng, seconds, rng.uniform(95, 240), rng.uniform(0.8, 1.2), rng.uniform(0, 0.5))
            others += _db(v + 1e-6, -30) * rng.uniform(0.5, 1.0)
        x = x + _reverb(others, SR, 0.8, 0.7, rng) * (np.std(x) / (np.std(others) + 1e-9)) * 0.7
    elif recipe == "music":
        extra = _db(_music(n, sr, rng), level - rng.uniform(6, 10))
    elif recipe == "music-only":
        extra = _db(_music(n, sr, rng), level)
    elif recipe == "quiet":
        level = rng.uniform(-42, -36)  # far too quiet, with a hiss the gain brought up
        extra = _db(rng.standard_normal(n), level - 10)
    elif recipe == "fan":
        t = np.arange(n) / sr
        fan = signal.sosfilt(signal.butter(2, 600, fs=sr, output="sos"), rng.standard_normal(n))
        whine = np.sin(2 * np.pi * rng.uniform(1800, 2600) * t) * 0.05
        extra = _db(fan + whine, level - 14) + _db(_hum(n, sr, rng), level - 30)
    elif recipe == "telephone":
        x = _telephone(x + _db(_pink(rng, n16), -55))
    elif recipe == "levels":
        # someone who moves towards the mic and shouts, then turns away: +-12 dB, soft-clipped
        gain = 10 ** (12 * np.tanh(_wobble(rng, n16, SR, 0.6)) / 20)
        x = np.tanh(3 * x * gain) / 3
    else:
        raise ValueError(f"unknown audio recipe {recipe!r}")
    if recipe != "music-only":
        x = _db(x, level)
    out = _resample(x, SR, sr)[:n]
    out = np.pad(out, (0, n - out.size)) + extra
    if channels == 2:
        # a stereo mic pair: the far channel a little later and with its own noise
        late = np.roll(out, int(rng.integers(5, 25)))
        out = np.stack([out, 0.85 * late + _db(rng.standard_normal(n), level - 35)], 1)
    # a recorder's limiter: peaks are rounded off instead of clipped (transparent below about -10 dBFS)
    return np.tanh(out).astype(np.float32), speech


def mouth_openness(speech: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Jaw opening per video frame (0..1) from the loudness of the clean 16 kHz speech under it."""
    edges = np.round(np.arange(n_frames + 1) * SR / fps).astype(int)
    rms = np.array([np.sqrt(np.mean(np.square(speech[a:b]))) if b > a else 0.0
                    for a, b in zip(edges[:-1], np.minimum(edges[1:], speech.size))])
    peak = np.percentile(rms, 95) + 1e-9 if rms.any() else 1.0
    o = np.convolve(np.clip(rms / peak, 0, 1), [0.25, 0.5, 0.25], mode="same")
    return o.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """A clip before encoding: its frames (a generator), the audio track, and facts for tests."""

    kind: Kind
    frames: Iterator[np.ndarray]
    n_frames: int
    audio: np.ndarray | None
    photo: int  # the lfw_subset() image shown
    placement: np.ndarray  # (n, 2, 3): each frame's affine map from person-sprite to frame pixels
    patch: tuple[int, int, int]  # (x, y, side) of the LFW patch in the person sprite


def render(kind: str, seed: int = 0, seconds: float = 4.0) -> Rendered:
    """Everything of one clip but the encoding. Frames are drawn lazily (one in memory at a time)."""
    k = _kind(kind)
    W, H = k.size
    n = int(round(seconds * k.fps))
    photo = photo_index(kind, seed)
    rng = _rng(kind, seed, 1)
    side = max(24, int(round(k.face * H)))
    person = make_person(photo, side, rng)
    audio, speech = make_audio(k.audio, seconds, k.sample_rate, k.channels, _rng(kind, seed, 2))
    openness = mouth_openness(speech, n, k.fps)
    m = _MARGIN[k.camera]
    Sw, Sh = int(round(W * (1 + 2 * m))), int(round(H * (1 + 2 * m)))
    scene = background(k.background, Sw, Sh)
    cam = camera_path(k.camera, n, k.fps, (W, H), rng)
    t = np.arange(n) / k.fps
    # the head's own motion: slow sway and nods, a little more while talking
    sway = np.stack([0.04 * side * _wobble(rng, n, k.fps, 0.4), 0.02 * side * _wobble(rng, n, k.fps, 0.6),
                     2.5 * _wobble(rng, n, k.fps, 0.35) + 1.5 * openness], 1)
    # face centre in the scene when the camera is at rest
    fx, fy = k.at[0] * W + (Sw - W) / 2, k.at[1] * H + (Sh - H) / 2
    px, py = person.patch_at
    pivot = (px + side / 2, py + 1.6 * side)  # the base of the neck: heads turn about it
    flicker_hz = _rng(kind, seed, 3).uniform(6, 11)

    # Light that does not change during the clip is applied once, to the scene and the person apart (a
    # window behind someone lights the two differently); only flicker and glare are drawn per frame.
    scene_gain, scene_add, person_gain = _STATIC_LIGHT.get(k.light, ((1.0, 1.0, 1.0), 0.0, (1.0, 1.0, 1.0)))
    scene = np.clip(scene * np.array(scene_gain, np.float32) + scene_add, 0, 255).astype(np.float32)
    pg = np.array(person_gain, np.float32)
    add = scene_add if k.light == "dim" else 0.0  # the lifted black level of a dim picture is everywhere
    for part in (person.rgb, person.under, person.face, person.rgba[..., :3]):
        part *= pg
        part += add
    noise = SensorNoise((W, H), k.noise, _rng(kind, seed, 4))
    still = _camera_matrix((Sw, Sh), (W, H), cam[0])
    still_bg = cv2.warpAffine(scene, still, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    sh, sw = person.rgba.shape[:2]
    corners = np.array([[0, 0, 1], [sw, 0, 1], [0, sh, 1], [sw, sh, 1]], np.float64).T

    placement = np.zeros((n, 2, 3))
    for i in range(n):
        dx, dy, ang = (float(v) for v in sway[i])
        M = cv2.getRotationMatrix2D(pivot, ang, 1.0)
        M[0, 2] += fx + dx - (px + side / 2)
        M[1, 2] += fy + dy - (py + side / 2)
        # the sprite goes straight from its own pixels to the frame (camera after head motion)
        placement[i] = _camera_matrix((Sw, Sh), (W, H), cam[i]) @ np.vstack([M, [0, 0, 1]])

    def frames() -> Iterator[np.ndarray]:
        for i in range(n):
            rgba = _with_mouth(person, float(openness[i]))
            if k.camera == "still":
                img = still_bg.copy()
            else:
                C = _camera_matrix((Sw, Sh), (W, H), cam[i])
                img = cv2.warpAffine(scene, C, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            # warped into its bounding box only: the frame around it is left alone
            M = placement[i].copy()
            xy = M @ corners
            x0, y0 = max(0, int(np.floor(xy[0].min()))), max(0, int(np.floor(xy[1].min())))
            x1, y1 = min(W, int(np.ceil(xy[0].max())) + 1), min(H, int(np.ceil(xy[1].max())) + 1)
            if x1 > x0 and y1 > y0:
                M[0, 2] -= x0
                M[1, 2] -= y0
                sprite = cv2.warpAffine(rgba, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_CONSTANT)
                a = sprite[..., 3:]
                roi = img[y0:y1, x0:x1]
                img[y0:y1, x0:x1] = roi + (sprite[..., :3] - roi) * a
            img = _light(img, k.light, float(t[i]), flicker_hz)
            img = noise(img)
            if k.soften < 1.0:
                small = cv2.resize(img, (int(W * k.soften), int(H * k.soften)), interpolation=cv2.INTER_AREA)
                img = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
            np.clip(img, 0, 255, out=img)
            yield img.astype(np.uint8)

    return Rendered(kind=k, frames=frames(), n_frames=n, audio=audio, photo=photo, placement=placement,
                    patch=(px, py, side))


# light -> (scene RGB gain, scene offset, person RGB gain), applied once per clip
_STATIC_LIGHT = {
    # underexposed and bluish, as the camera's gain lifted it (with its black level): noise does the rest
    "dim": ((0.3, 0.32, 0.38), 4.0, (0.3, 0.32, 0.38)),
    # a window behind a person: the background blown out towards white, the person in its shadow
    "backlit": ((0.55, 0.55, 0.55), 150.0, (0.55, 0.55, 0.55)),
    "cast-flicker": ((1.25, 1.0, 0.6), 0.0, (1.25, 1.0, 0.6)),  # tungsten on a daylight white balance
    "cool": ((0.9, 1.0, 1.12), 0.0, (0.9, 1.0, 1.12)),  # a webcam's bluish auto white balance
}


def _light(img: np.ndarray, light: str, t: float, flicker_hz: float) -> np.ndarray:
    """Lighting that changes from frame to frame: glare around a bright window, rolling flicker."""
    if light == "backlit":
        # glare: a wide blur of the bright parts (at a quarter of the size: a wide blur at full size is slow)
        h, w = img.shape[:2]
        small = cv2.GaussianBlur(cv2.resize(img, (w // 4, h // 4), interpolation=cv2.INTER_AREA), (0, 0), 3)
        glow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return img * 0.85 + 0.35 * np.maximum(glow - 120, 0)
    if light == "cast-flicker":
        h = img.shape[0]
        # rolling bands from lights on the mains beating against the shutter, drifting down the frame
        rows = 1.0 + 0.16 * np.sin(2 * np.pi * (np.arange(h) / h * 1.5 - flicker_hz * t))
        return img * rows[:, None, None].astype(np.float32)
    return img


def unfamiliar_clip(path: str | os.PathLike, kind: str, seed: int = 0, seconds: float = 4.0) -> Path:
    """Writes one clip of ``kind`` (see ``KINDS``) to ``path`` and returns the path. Same kind, seed and
    seconds give the same clip. ``path`` should end in ``.webm`` for VP9 kinds (``Kind.suffix``); the file
    is written to a temporary name and renamed, so a killed run leaves no half-written clip."""
    r = render(kind, seed, seconds)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    try:
        encode(tmp, r.frames, r.kind, r.audio)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def encode(path: str | os.PathLike, frames: Iterable[np.ndarray], k: Kind, audio: np.ndarray | None) -> None:
    """Encodes RGB frames and a track as ``k`` says (H.264 + AAC in MP4, or VP9 + Opus in WebM), the same
    bytes every time (``write_video(reproducible=True)``)."""
    vp9 = k.codec == "vp9"
    write_video(path, frames, fps=k.fps, audio=audio, sample_rate=k.sample_rate, audio_channels=k.channels,
                video_codec="libvpx-vp9" if vp9 else "libx264", audio_codec="libopus" if vp9 else "aac",
                crf=k.crf - 10 if vp9 else k.crf,  # write_video's VP9 quality is its crf + 10
                reproducible=True)


def clip_name(kind: str, seed: int) -> str:
    """The file name ``make_unfamiliar_set`` gives a clip."""
    return f"{kind}-{seed:04d}{_kind(kind).suffix}"


def _make_one(job: tuple[str, str, int, float]) -> str:
    path, kind, seed, seconds = job
    return str(unfamiliar_clip(path, kind, seed, seconds))


def make_unfamiliar_set(out_dir: str | os.PathLike, per_kind: int = 2, seed: int = 0,
                        kinds: Sequence[str] = KINDS, seconds: float = 4.0, workers: int = 1):
    """Writes ``per_kind`` clips of each kind (seeds ``seed .. seed + per_kind - 1``) into ``out_dir`` and
    a table of them, ``out_dir/unfamiliar.csv``; returns it as a DataFrame with columns path, kind, seed,
    face_photo, width, height, codec, has_audio (and expects_face, fps, audio). Clips already there are
    kept (and probed for the table), so an interrupted run resumes where it stopped. ``workers`` > 1
    makes clips in that many processes (the clips are the same either way)."""
    import pandas as pd

    from dfdetect.media import probe

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        _kind(kind)  # an unknown kind fails before any work
    wanted = [(kind, s) for kind in kinds for s in range(seed, seed + per_kind)]
    jobs = [(str(out / clip_name(kind, s)), kind, s, seconds) for kind, s in wanted
            if not (out / clip_name(kind, s)).exists()]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the caller may hold MediaPipe or TensorFlow threads, which do not survive a fork
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_make_one, jobs))
    else:
        for job in jobs:
            _make_one(job)
    rows = []
    for kind, s in wanted:
        k = _kind(kind)
        path = out / clip_name(kind, s)
        info = probe(path)
        rows.append(dict(path=str(path), kind=kind, seed=s, face_photo=f"lfw_subset[{photo_index(kind, s)}]",
                         width=info.width, height=info.height, codec=info.video_codec, has_audio=info.has_audio,
                         expects_face=k.expects_face, fps=k.fps, audio=k.audio))
    table = pd.DataFrame(rows)
    table.to_csv(out / "unfamiliar.csv", index=False)
    return table
