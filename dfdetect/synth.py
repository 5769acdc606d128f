"""The built-in audio-visual benchmark: ``dfdetect synth --out DIR [--n N --seed S --difficulty D]``.

Talking clips built from real face photographs that installed packages ship, with voices synthesised in
code, labelled like FakeAVCeleb's four categories plus lip-sync mismatch and LAV-DF-style partial fakes:

=========  ==================================  ==============  =====================================
category   type                                method          manipulation
=========  ==================================  ==============  =====================================
A          RealVideo-RealAudio                 real            none
B          RealVideo-FakeAudio                 vocoder         voice resynthesised (mel + Griffin-Lim)
C          FakeVideo-RealAudio                 faceswap        another identity blended into the face
C          FakeVideo-RealAudio                 lipsync         mouth follows another utterance
C          FakeVideo-RealAudio                 desync          audio shifted 0.2-1.0 s against the lips
D          FakeVideo-FakeAudio                 faceswap-vocoder  both of the above
B/C/D      (as modified)                       partial-*       1-3 segments of 0.2-2 s manipulated
C          FakeVideo-RealAudio                 reenact *       same face, driven by another utterance
C          FakeVideo-RealAudio                 resample *      face region resampled + double JPEG
B          RealVideo-FakeAudio                 lpc *           voice resynthesised (LPC + pulse/noise)
=========  ==================================  ==============  =====================================

Methods marked * are ``UNSEEN_METHODS``: never in the default benchmark (``plan(n, seed)`` draws exactly
what it drew before they existed), built only when named in ``methods`` (``dfdetect synth --methods
real,reenact,resample,lpc``), for unseen-method evaluation of a model trained on the default kinds; named,
each gets a share like the other single-method fake kinds (``UNSEEN_KINDS``). They differ in kind from the
default ones:

- ``reenact`` keeps the identity (the same portrait) but takes head motion and mouth opening from another
  utterance's (the driver's) video, draws the mouth a little wider (``0.36 + 0.08 * strength`` of the face),
  and leaves a generator's trace around eyes and mouth (a drifting ``0.4 + 1.6 * strength`` px warp, slight
  softening). The mouth no longer follows the heard voice: ``av_mismatch`` is 1. Not a face swap (no
  identity change), not a lip-sync (head and eyes are redriven too).
- ``resample`` changes no identity and no motion: inside a soft ellipse over the face the frame is
  downscaled by ``1 + 1.5 * strength`` and upscaled back, then JPEG-compressed twice on shifted grids
  (quality ``90 - 50 * strength``, then 8 more) -- a splice trace; every pixel outside the mask is the real
  clip's. ``av_mismatch`` is 0.
- ``lpc`` replaces the voice by an LPC analysis/resynthesis of the real one (``lpc_resynth``): an all-pole
  envelope per 5 ms excited by a pulse train at the estimated, flattened and jittered f0 plus noise. What is
  said and how loud (so the mouth, which follows what is heard) stays; the spectral fine structure is the
  generator's. Unlike ``vocoder``, no mel spectrogram and no Griffin-Lim phase.

Partial fakes (LAV-DF style) are 6-10 s long, so that a detector has to stitch several 2 s windows to find
their segments. Each has 1, 2 or 3 segments (equally likely; fewer when they do not fit), at least 0.3 s
apart, starting no earlier than 0.3 s after the leading silence and ending at least 0.1 s before the clip
does, on a millisecond grid. Segment lengths are log-uniform (short ones are common) over a range set by
``--difficulty``:

==========  ==============  ==============================
difficulty  strength        partial-fake segment lengths
==========  ==============  ==============================
easy        1.0             0.4-2.0 s
medium      0.6 (default)   0.2-2.0 s
hard        0.3             0.2-1.0 s
extreme     0.15            0.2-0.6 s
==========  ==============  ==============================

Below ``hard`` (only ``extreme``), two manipulations that ``strength`` did not scale get subtler too: a
lip-sync fake's mouth follows a blend, ``strength / 0.3`` of the other utterance's loudness and the rest the
heard voice's; a desync shift keeps hard's 0.2-0.6 s (it never goes under 0.2 s). Every level at or above
``hard`` renders exactly what it rendered before ``extreme`` existed.

Every other clip is 3.6-4.4 s long, except a share of the real ones, which are 6-10 s too: as many as make
the fake rate among long clips the fake rate overall, so that duration says nothing about the label.

Every class is encoded alike (H.264 + AAC, same size, rate, duration and leading-silence distributions, the
same loudness), so only the manipulation separates them. It is a pipeline benchmark, never a claim about
real-world deepfakes.

Outputs in DIR: the videos (``TYPE/RACE/GENDER/ID/NNNNN.mp4``), ``meta_data.csv`` in FakeAVCeleb's layout
(10 values per row under a 9-name header, as the real file has), ``metadata.json`` in LAV-DF's layout
(``fake_periods``, ``modify_video``, ``modify_audio``; plus AV-Deepfake1M's per-modality
``visual_fake_segments`` / ``audio_fake_segments``: the spans where that modality is fake, ``[]`` where it is
real, ``[[0, duration]]`` where it is fake throughout), and ``splits.csv``: by default (``faces="people"``,
45 people: three portraits and 42 LFW faces) the split holds out whole source photographs and utterances,
70/15/15, so that a test clip's person, words and face-swap source were never in training;
``split_identity`` equals it. ``faces="photos"`` is the benchmark before that (12 identities from 3
portraits, split by identity and utterance, every portrait on every side, and an identity-held-out
``split_identity``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from scipy import signal

from dfdetect.sample_media import LFW_BENCHMARK, LFW_WOMEN, PHOTOS, face_photo, photo_landmarks

SR = 16000
FPS = 25
SIZE = 256

DIFFICULTY = {
    # strength of every manipulation: 1.0 = very visible/audible, towards 0 = subtle
    "easy": 1.0,
    "medium": 0.6,
    "hard": 0.3,
    "extreme": 0.15,
}
HARD = DIFFICULTY["hard"]  # below this strength some manipulations get subtler still (see ``--difficulty``)

# partial fakes: (shortest, longest) segment in seconds, lengths log-uniform in between
SEGMENT_SECONDS = {
    "easy": (0.4, 2.0),
    "medium": (0.2, 2.0),
    "hard": (0.2, 1.0),
    "extreme": (0.2, 0.6),
}
SEGMENTS_MAX = 3  # segments per partial fake: 1..SEGMENTS_MAX
SEGMENT_GAP = 0.3  # seconds between two segments, at least
SEGMENT_AFTER_LEAD = 0.3  # the first segment starts this long after the leading silence, or later
SEGMENT_BEFORE_END = 0.1  # the last one ends this long before the clip does, or earlier
SHORT_SECONDS = (3.6, 4.4)  # clip lengths
LONG_SECONDS = (6.0, 10.0)  # partial fakes, and as many real clips as keep the fake rate among long clips

# (F1, F2, F3) of a few vowels, Hz
VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410),
          (440, 1020, 2240), (660, 1720, 2410)]


# ---------------------------------------------------------------------------------------------------------
# Voices
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Utterance:
    """A syllable plan: start, duration, vowel and accent of each syllable (seconds)."""

    syllables: tuple[tuple[float, float, int, float], ...]
    seconds: float


def plan_utterance(rng: np.random.Generator, seconds: float) -> Utterance:
    t, syl = 0.0, []
    while t < seconds - 0.15:
        dur = rng.uniform(0.12, 0.30)
        if t + dur > seconds:
            break
        syl.append((t, dur, int(rng.integers(len(VOWELS))), float(rng.uniform(-1, 1))))
        t += dur + (rng.uniform(0.2, 0.4) if rng.random() < 0.12 else rng.uniform(0.02, 0.07))
    return Utterance(tuple(syl), seconds)


def envelope(utt: Utterance, n: int) -> np.ndarray:
    """Syllable loudness envelope in [0, 1], ``n`` samples at 16 kHz."""
    env = np.zeros(n, np.float32)
    for start, dur, _, accent in utt.syllables:
        a, b = int(start * SR), min(n, int((start + dur) * SR))
        if b <= a:
            continue
        x = np.linspace(0, np.pi, b - a)
        env[a:b] = np.maximum(env[a:b], np.sin(x) ** 0.7 * (0.75 + 0.25 * accent))
    return env


def _resonator(x: np.ndarray, freq: float, bw: float) -> np.ndarray:
    r = math.exp(-math.pi * bw / SR)
    theta = 2 * math.pi * freq / SR
    a = [1.0, -2 * r * math.cos(theta), r * r]
    return signal.lfilter([1 - r], a, x)


def voice(utt: Utterance, rng: np.random.Generator, f0: float, flat: float = 0.0, jitter: float = 0.012,
          shimmer: float = 0.08, breath: float = 0.03) -> np.ndarray:
    """A source-filter voice: harmonic glottal source on a moving pitch contour (declination, accents,
    jitter), shimmer, vowel formants per syllable, breath noise, syllable rhythm. ``flat`` in [0, 1]
    flattens the prosody (a cheap TTS tell)."""
    n = int(utt.seconds * SR)
    t = np.arange(n) / SR
    contour = np.zeros(n)
    for start, dur, _, accent in utt.syllables:
        contour += 0.12 * accent * np.exp(-0.5 * ((t - start - dur / 2) / (dur / 2 + 1e-3)) ** 2)
    contour += -0.08 * t / max(utt.seconds, 1e-3) + 0.03 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    contour *= 1.0 - flat
    jit = signal.lfilter([0.05], [1, -0.95], rng.standard_normal(n)) * jitter * (1.0 - flat)
    f = f0 * (1.0 + contour + jit)
    phase = 2 * np.pi * np.cumsum(f) / SR
    k_max = int(3800 / f.max())
    src = sum(np.sin(k * phase) * k ** -1.1 for k in range(1, k_max + 1))
    env = envelope(utt, n)
    shim = 1.0 + shimmer * (1.0 - flat) * signal.lfilter([0.1], [1, -0.9], rng.standard_normal(n))
    out = np.zeros(n)
    for start, dur, v, _ in utt.syllables:
        a, b = int(start * SR), min(n, int((start + dur) * SR))
        seg = src[a:b] * env[a:b] * shim[a:b]
        y = np.zeros_like(seg)
        for i, (fr, bw) in enumerate(zip(VOWELS[v], (80, 100, 140))):
            y += _resonator(seg, fr * rng.uniform(0.97, 1.03), bw) * (1.0, 0.6, 0.3)[i]
        out[a:b] += y
    noise = signal.lfilter(*signal.butter(2, [1500, 6000], btype="band", fs=SR), rng.standard_normal(n))
    out += breath * noise * (0.3 + env)
    return _normalise(out)


def _normalise(x: np.ndarray, rms: float = 0.08) -> np.ndarray:
    level = np.sqrt(np.mean(x ** 2)) + 1e-9
    return np.clip(x * rms / level, -1, 1).astype(np.float32)


def _mel_basis(n_fft: int, n_mels: int) -> np.ndarray:
    def hz2mel(h):
        return 2595 * np.log10(1 + h / 700)

    def mel2hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    pts = mel2hz(np.linspace(hz2mel(0), hz2mel(SR / 2), n_mels + 2))
    bins = np.floor((n_fft + 1) * pts / SR).astype(int)
    fb = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(1, n_mels + 1):
        lo, c, hi = bins[m - 1], bins[m], bins[m + 1]
        for k in range(lo, c):
            fb[m - 1, k] = (k - lo) / max(c - lo, 1)
        for k in range(c, hi):
            fb[m - 1, k] = (hi - k) / max(hi - c, 1)
    return fb


def vocode(x: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A vocoder-like resynthesis: mel spectrogram (information lost), Griffin-Lim phase (phasiness),
    band limiting. ``strength`` 1 = few iterations and a low cut-off; 0.3 = close to the original."""
    n_fft, hop = 512, 128
    _, _, Z = signal.stft(x, fs=SR, nperseg=n_fft, noverlap=n_fft - hop)
    mag = np.abs(Z)
    fb = _mel_basis(n_fft, 40 if strength > 0.5 else 64)
    mel = fb @ mag
    approx = np.linalg.pinv(fb) @ mel
    approx = np.maximum(approx, 0)
    iters = int(round(4 + (1.0 - strength) * 28))
    phase = np.exp(2j * np.pi * rng.random(approx.shape))
    for _ in range(iters):
        _, y = signal.istft(approx * phase, fs=SR, nperseg=n_fft, noverlap=n_fft - hop)
        _, _, Z2 = signal.stft(y, fs=SR, nperseg=n_fft, noverlap=n_fft - hop)
        Z2 = Z2[:, : approx.shape[1]]
        phase = np.exp(1j * np.angle(Z2))
    _, y = signal.istft(approx * phase, fs=SR, nperseg=n_fft, noverlap=n_fft - hop)
    y = y[: x.size] if y.size >= x.size else np.pad(y, (0, x.size - y.size))
    cutoff = 3500 + (1.0 - strength) * 3800
    y = signal.sosfilt(signal.butter(6, cutoff, fs=SR, output="sos"), y)
    return _normalise(y)


LPC_HOP, LPC_WIN, PITCH_WIN = 80, 400, 640  # samples: 5 ms hop, 25 ms LPC window, 40 ms pitch window
PITCH_RANGE = (70.0, 400.0)  # Hz


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Hann-windowed frames centred on ``k * hop`` for k = 0 .. len(x) // hop."""
    n_fr = x.size // hop + 1
    xp = np.pad(x, (win // 2, win // 2 + hop))
    idx = np.arange(n_fr)[:, None] * hop + np.arange(win)[None]
    return xp[idx] * np.hanning(win)[None]


def _autocorr(frames: np.ndarray, lags: int) -> np.ndarray:
    n_fft = 1 << int(np.ceil(np.log2(2 * frames.shape[1])))
    spec = np.fft.rfft(frames, n_fft)
    return np.fft.irfft(np.abs(spec) ** 2, n_fft)[:, :lags + 1]


def pitch_track(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and voicing per ``LPC_HOP`` frame by normalised autocorrelation in ``PITCH_RANGE``; unvoiced
    frames carry the f0 interpolated from their voiced neighbours (the median where none is voiced)."""
    lo, hi = int(SR / PITCH_RANGE[1]), int(SR / PITCH_RANGE[0])
    r = _autocorr(_frames(x, PITCH_WIN, LPC_HOP), hi + 1)
    lag = lo + np.argmax(r[:, lo:hi + 1], axis=1)
    peak = r[np.arange(r.shape[0]), lag] / (r[:, 0] + 1e-12)
    energy = r[:, 0]
    voiced = (peak > 0.45) & (energy > 0.02 * np.percentile(energy, 95))
    f0 = SR / lag.astype(float)
    if not voiced.any():
        return np.full(f0.shape, 150.0), voiced
    f0 = signal.medfilt(np.where(voiced, f0, 0.0), 5)
    ok = voiced & (f0 > 0)
    if not ok.any():
        ok = voiced
        f0 = SR / lag.astype(float)
    k = np.arange(f0.size)
    f0 = np.interp(k, k[ok], f0[ok])
    return f0, voiced


def lpc_resynth(x: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """An LPC vocoder, a voice generator different in kind from ``vocode`` (which keeps the magnitude
    spectrum on a mel scale and invents the phase): linear prediction keeps only an all-pole spectral
    envelope per 5 ms (order ``22 - 10 * strength``, from 25 ms pre-emphasised Hann frames, Levinson's
    recursion) and the loudness (the prediction-error power), and replaces the voice's own source with a
    synthetic excitation: a unit pulse train at the estimated f0, its contour flattened towards the median by
    ``0.6 * strength`` and jittered (``0.4 + 2 * strength`` %), mixed with ``5 + 30 * strength`` % white noise
    (noise only where no pitch is found). The spectral fine structure (harmonic shape, glottal roll-off,
    shimmer, breath) is the generator's, not the speaker's; what is said and how loud stays."""
    from scipy.linalg import solve_toeplitz

    x = np.asarray(x, np.float64)
    n = x.size
    order = int(round(22 - 10 * strength))
    pre = signal.lfilter([1.0, -0.97], [1.0], x)
    fr = _frames(pre, LPC_WIN, LPC_HOP)
    r = _autocorr(fr, order)
    r[:, 0] *= 1.0 + 1e-6  # white-noise correction: well-conditioned even on silence
    r[:, 0] += 1e-12
    n_fr = fr.shape[0]
    a = np.zeros((n_fr, order + 1))
    a[:, 0] = 1.0
    err = np.zeros(n_fr)
    for k in range(n_fr):
        coef = solve_toeplitz(r[k, :order], r[k, 1:order + 1])
        a[k, 1:] = -coef
        err[k] = max(r[k, 0] - coef @ r[k, 1:order + 1], 0.0)
    gain = np.sqrt(err / np.sum(np.hanning(LPC_WIN) ** 2))

    f0, voiced = pitch_track(x)
    med = float(np.median(f0[voiced])) if voiced.any() else float(np.median(f0))
    f0 = med * np.exp((1.0 - 0.6 * strength) * np.log(f0 / med))
    t_fr = np.arange(n_fr) * LPC_HOP
    f0_s = np.interp(np.arange(n), t_fr, f0)
    jit = signal.lfilter([0.1], [1, -0.9], rng.standard_normal(n))
    jit *= (0.004 + 0.02 * strength) / (jit.std() + 1e-12)
    f0_s = f0_s * (1.0 + jit)
    phase = np.cumsum(f0_s / SR) + rng.random()
    pulses = np.zeros(n)
    at = np.flatnonzero(np.diff(np.floor(phase), prepend=np.floor(phase[0])) > 0)
    pulses[at] = np.sqrt(SR / f0_s[at])  # unit power
    noise = rng.standard_normal(n)
    v = np.interp(np.arange(n), t_fr, voiced.astype(float))
    mix = 0.05 + 0.3 * strength
    exc = v * (np.sqrt(1 - mix) * pulses + np.sqrt(mix) * noise) + (1 - v) * noise

    y = np.zeros(n)
    zi = np.zeros(order)
    for k in range(n_fr):
        i0, i1 = k * LPC_HOP, min(n, (k + 1) * LPC_HOP)
        if i1 <= i0:
            break
        y[i0:i1], zi = signal.lfilter([gain[k]], a[k], exc[i0:i1], zi=zi)
    y = signal.lfilter([1.0], [1.0, -0.97], y)
    return _normalise(y)


# ---------------------------------------------------------------------------------------------------------
# Faces
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    name: str
    photo: str
    flip: bool
    tint: tuple[float, float, float]
    gender: str


GENDERS = {"astronaut": "women", "grace_hopper": "women", "camera": "men"}
TINTS = [(1.0, 1.0, 1.0), (1.08, 0.98, 0.9), (0.92, 0.98, 1.08)]
# ``people`` (the default): the three portraits and 42 LFW faces, split by source photograph and utterance, so
# that every test clip shows a person and says words that no training clip has. ``photos``: the three
# portraits only (12 identities: each flipped and tinted), split by identity and utterance, so that every
# photograph is on every side: the benchmark before #13, kept for the learning check, which was calibrated on it.
FACE_SETS = ("people", "photos")
SPLIT_SHARES = (0.7, 0.15)  # train, val; the rest is test


def identities(faces: str = "people") -> list[Identity]:
    """The benchmark's identities. The first 12 (the portraits' variants) are the same in every face set, so
    a spec's ``identity`` index means one face whichever set planned it."""
    if faces not in FACE_SETS:
        raise ValueError(f"faces must be one of {', '.join(FACE_SETS)}, got {faces!r}")
    out = []
    for p in PHOTOS:
        for flip in (False, True):
            for tint in TINTS[:2]:
                out.append(Identity(f"id{len(out):02d}_{p}", p, flip, tint, GENDERS[p]))
    if faces == "people":
        for i in LFW_BENCHMARK:  # one variant each: a flip and a tint fixed by the index
            out.append(Identity(f"id{len(out):02d}_lfw{i}", f"lfw{i}", bool(i % 2), TINTS[i % 3],
                                "women" if i in LFW_WOMEN else "men"))
    return out


def _shares(items: list, rng: np.random.Generator, shares: tuple[float, float] = SPLIT_SHARES) -> dict:
    """Each item's split: a shuffle cut at ``shares`` (exact counts, unlike a hash per item)."""
    order = [items[k] for k in rng.permutation(len(items))]
    n_train = int(round(shares[0] * len(order)))
    n_val = max(1, int(round(shares[1] * len(order)))) if len(order) >= 3 else 0
    return {x: ("train" if k < n_train else "val" if k < n_train + n_val else "test") for k, x in enumerate(order)}


def held_out_splits(n: int, seed: int, faces: str = "people",
                    shares: tuple[float, float] = SPLIT_SHARES) -> tuple[dict[str, str], dict[int, str]]:
    """The ``people`` benchmark's split of source photographs and of utterances (``n_utterances(n)``), cut
    at ``shares`` (train, val; the rest is test)."""
    photos = sorted({i.photo for i in identities(faces)})
    rng = np.random.default_rng([seed, 2])  # a stream of its own: the clip draws stay what they were
    return _shares(photos, rng, shares), _shares(list(range(n_utterances(n))), rng, shares)


def _kind_sides(count: int, rng: np.random.Generator, shares: tuple[float, float] = SPLIT_SHARES) -> list[str]:
    """``count`` sides in ``shares`` (val and test at least one each from 3 clips on), shuffled."""
    n_val = int(round(shares[1] * count))
    n_test = int(round((1 - sum(shares)) * count))
    if count >= 3:
        n_val, n_test = max(1, n_val), max(1, n_test)
    sides = ["train"] * (count - n_val - n_test) + ["val"] * n_val + ["test"] * n_test
    return [sides[k] for k in rng.permutation(count)]


def n_utterances(n: int) -> int:
    return max(8, n // 3)


@cache
def _identity_image(ident: Identity) -> tuple[np.ndarray, tuple, tuple]:
    """A square portrait around the face (face ~45% of its side), with box and mouth in its coordinates."""
    img = face_photo(ident.photo).astype(np.float32)
    (x0, y0, x1, y1), (mx, my) = photo_landmarks(ident.photo)
    side = 2.2 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.1 * (y1 - y0)
    ox, oy = cx - side / 2, cy - side / 2
    out = 200
    s = out / side
    M = np.array([[s, 0, -ox * s], [0, s, -oy * s]], np.float32)
    por = cv2.warpAffine(img, M, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    box = ((x0 - ox) * s, (y0 - oy) * s, (x1 - ox) * s, (y1 - oy) * s)
    mouth = ((mx - ox) * s, (my - oy) * s)
    if ident.flip:
        por = por[:, ::-1]
        box = (out - box[2], box[1], out - box[0], box[3])
        mouth = (out - mouth[0], mouth[1])
    por = np.clip(por * np.array(ident.tint, np.float32), 0, 255)
    return np.ascontiguousarray(por), box, mouth


def _ellipse_mask(shape: tuple[int, int], center, axes, blur: float) -> np.ndarray:
    m = np.zeros(shape, np.float32)
    cv2.ellipse(m, (int(center[0]), int(center[1])), (max(1, int(axes[0])), max(1, int(axes[1]))), 0, 0, 360,
                1.0, -1)
    k = int(blur * 3) * 2 + 1
    return cv2.GaussianBlur(m, (k, k), blur) if blur > 0 else m


# ---------------------------------------------------------------------------------------------------------
# Clips
# ---------------------------------------------------------------------------------------------------------

@dataclass
class ClipSpec:
    """Everything needed to build one clip deterministically."""

    index: int
    seed: int
    identity: int
    utterance: int  # the source utterance (real voice and, for real clips, the mouth)
    category: str
    method: str
    seconds: float
    lead: float
    strength: float
    swap_identity: int = -1
    mouth_utterance: int = -1  # lipsync: the utterance the mouth follows; reenact: the driving utterance
    shift: float = 0.0  # desync: seconds the audio is shifted
    segments: list[tuple[float, float]] = field(default_factory=list)
    modify_video: bool = False
    modify_audio: bool = False


def _motion(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-frame (dx, dy, scale, angle): a slow natural sway plus small drift."""
    t = np.arange(n) / FPS
    ph = rng.uniform(0, 2 * np.pi, 4)
    fr = rng.uniform(0.15, 0.45, 4)
    dx = 10 * np.sin(2 * np.pi * fr[0] * t + ph[0]) + rng.uniform(-8, 8)
    dy = 6 * np.sin(2 * np.pi * fr[1] * t + ph[1]) + rng.uniform(-6, 6)
    sc = 1.0 + 0.03 * np.sin(2 * np.pi * fr[2] * t + ph[2]) + rng.uniform(-0.05, 0.05)
    ang = 3.0 * np.sin(2 * np.pi * fr[3] * t + ph[3])
    return np.stack([dx, dy, sc, ang], 1)


def _mouth_open(env: np.ndarray, n_frames: int) -> np.ndarray:
    """Mouth opening per video frame from a 16 kHz loudness envelope (smoothed, 0..1)."""
    per = SR // FPS
    env = np.pad(env, (0, max(0, n_frames * per - env.size)))[: n_frames * per]
    o = env.reshape(n_frames, per).mean(1)
    o = np.convolve(o, [0.25, 0.5, 0.25], mode="same")
    return np.clip(o / 0.8, 0, 1)


def _background(rng: np.random.Generator) -> np.ndarray:
    c0, c1 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    g = np.linspace(0, 1, SIZE)[:, None, None]
    bg = c0 * (1 - g) + c1 * g
    return np.broadcast_to(bg, (SIZE, SIZE, 3)).astype(np.float32).copy()


def _render_frame(bg, por, box, mouth_pt, motion, openness, strength_swap, swap, rng_frame,
                  mouth_width: float = 0.36, geometry: dict | None = None):
    """One frame: portrait warped by the head motion onto the background, face swap, mouth (``mouth_width``
    of the face box wide). Where ``geometry`` is given it receives the face box (centre ``fcx, fcy``, size
    ``fw, fh``, top ``fy0``) and the mouth point ``mx, my`` in frame coordinates."""
    dx, dy, sc, ang = motion
    ps = por.shape[0]
    s = 1.15 * sc
    center = (ps / 2, ps / 2)
    M = cv2.getRotationMatrix2D(center, ang, s)
    M[0, 2] += SIZE / 2 - center[0] + dx
    M[1, 2] += SIZE / 2 - center[1] + dy + 8
    layer = cv2.warpAffine(por, M, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(np.ones((ps, ps), np.float32), M, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (5, 5), 1.0)[..., None]
    frame = bg * (1 - alpha) + layer * alpha

    def tr(p):
        return (M[0, 0] * p[0] + M[0, 1] * p[1] + M[0, 2], M[1, 0] * p[0] + M[1, 1] * p[1] + M[1, 2])

    fx0, fy0 = tr((box[0], box[1]))
    fx1, fy1 = tr((box[2], box[3]))
    fw, fh = abs(fx1 - fx0), abs(fy1 - fy0)
    fcx, fcy = (fx0 + fx1) / 2, (fy0 + fy1) / 2

    mx, my = tr(mouth_pt)
    if swap is not None:
        spor, sbox, smouth = swap
        # Warp the other identity's face onto this face box, imperfectly: offset, colour and sharpness
        # mismatch grow with the strength; a per-frame jitter gives the temporal flicker of frame-wise swaps.
        sw, sh = sbox[2] - sbox[0], sbox[3] - sbox[1]
        k = fw / sw
        jit = rng_frame.normal(0, 0.6 + 1.2 * strength_swap, 2)
        ky = fh / sh
        M2 = np.array([[k, 0, fcx - k * (sbox[0] + sbox[2]) / 2 + jit[0]],
                       [0, ky, fcy - ky * (sbox[1] + sbox[3]) / 2 + jit[1]]], np.float32)
        face = cv2.warpAffine(spor, M2, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        # the lips move where the swapped-in face has its mouth (as in a real swap, which transfers expression)
        mx, my = M2[0, 0] * smouth[0] + M2[0, 2], M2[1, 1] * smouth[1] + M2[1, 2]
        blur = 0.4 + 1.4 * strength_swap
        face = cv2.GaussianBlur(face, (0, 0), blur)
        mask = _ellipse_mask((SIZE, SIZE), (fcx, fcy + 0.05 * fh), (0.42 * fw, 0.55 * fh),
                             blur=max(1.0, 4.0 * (1.2 - strength_swap)))[..., None]
        # colour: match the target's mean colour only partly
        region = mask[..., 0] > 0.5
        if region.any():
            tgt = frame[region].mean(0)
            src = face[region].mean(0)
            face = face + (tgt - src) * (1.0 - 0.85 * strength_swap)
        flicker = 1.0 + rng_frame.normal(0, 0.01 + 0.03 * strength_swap)
        frame = frame * (1 - mask) + face * flicker * mask

    mw = mouth_width * fw
    mh = 0.03 * fh + openness * 0.13 * fh
    m = _ellipse_mask((SIZE, SIZE), (mx, my + 0.02 * fh + mh * 0.3), (mw / 2, mh / 2), blur=1.2)[..., None]
    frame = frame * (1 - 0.85 * m) + np.array([70, 25, 30], np.float32) * 0.85 * m
    if geometry is not None:
        geometry.update(fcx=fcx, fcy=fcy, fw=fw, fh=fh, fy0=min(fy0, fy1), mx=mx, my=my)
    return frame


def _inner_face_mask(g: dict) -> np.ndarray:
    """Soft mask over what a reenactment generator redraws: the eye band and the mouth."""
    fw, fh = g["fw"], g["fh"]
    eyes = _ellipse_mask((SIZE, SIZE), (g["fcx"], g["fy0"] + 0.35 * fh), (0.40 * fw, 0.13 * fh), blur=3.0)
    mouth = _ellipse_mask((SIZE, SIZE), (g["mx"], g["my"] + 0.04 * fh), (0.30 * fw, 0.17 * fh), blur=3.0)
    return np.maximum(eyes, mouth)


def _reenact_warp(frame: np.ndarray, g: dict, i: int, strength: float, phases: np.ndarray) -> np.ndarray:
    """A reenactment generator's trace around the eyes and mouth: a smooth displacement field of
    ``0.4 + 1.6 * strength`` px that drifts from frame to frame (wobbling features), and a softening of
    ``0.3 + 0.8 * strength`` px sigma (generated texture is smoother than the photograph)."""
    mask = _inner_face_mask(g)
    amp = 0.4 + 1.6 * strength
    lam = max(0.35 * g["fw"], 8.0)
    t = i / FPS
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    dx = amp * np.sin(2 * np.pi * yy / lam + phases[0] + 2 * np.pi * 0.9 * t) * mask
    dy = amp * np.sin(2 * np.pi * xx / lam + phases[1] + 2 * np.pi * 0.6 * t) * mask
    warped = cv2.remap(frame, (xx + dx).astype(np.float32), (yy + dy).astype(np.float32), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)
    soft = cv2.GaussianBlur(warped, (0, 0), 0.3 + 0.8 * strength)
    m = mask[..., None]
    return warped * (1 - m) + soft * m


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """An RGB float image through JPEG at ``quality`` (8x8 blocks anchored at its top-left corner)."""
    bgr = np.clip(img, 0, 255).astype(np.uint8)[..., ::-1]
    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)


RESAMPLE_GRID_SHIFT = (3, 5)  # (rows, columns) between the two JPEG grids of a resampled face


def resample_region(frame: np.ndarray, g: dict, strength: float) -> np.ndarray:
    """A splice trace with no identity change: the face region (a soft ellipse around the face box) is
    downscaled by ``1 + 1.5 * strength`` and upscaled back, JPEG-compressed at quality ``90 - 50 * strength``,
    then again at that + 8 on a grid shifted by ``RESAMPLE_GRID_SHIFT`` (non-aligned double compression), and
    pasted back through the mask; pixels outside the mask are left exactly as they were."""
    fw, fh = g["fw"], g["fh"]
    mask = _ellipse_mask((SIZE, SIZE), (g["fcx"], g["fcy"] + 0.05 * fh), (0.50 * fw, 0.62 * fh), blur=3.0)
    rows, cols = np.nonzero(mask > 0)
    if rows.size == 0:
        return frame
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = frame[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    factor = 1.0 + 1.5 * strength
    small = cv2.resize(crop, (max(4, round(w / factor)), max(4, round(h / factor))),
                       interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    q = int(round(90 - 50 * strength))
    out = _jpeg(out, q)
    dr, dc = RESAMPLE_GRID_SHIFT
    if h > dr + 8 and w > dc + 8:
        out[dr:, dc:] = _jpeg(out[dr:, dc:], min(q + 8, 100))
    m = mask[y0:y1, x0:x1, None]
    frame = frame.copy()
    frame[y0:y1, x0:x1] = crop * (1 - m) + out * m
    return frame


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if x.size >= n else np.pad(x, (0, n - x.size))


def _shift(x: np.ndarray, seconds: float) -> np.ndarray:
    n = int(round(seconds * SR))
    if n > 0:
        return np.concatenate([np.zeros(n, np.float32), x[:-n]])
    if n < 0:
        return np.concatenate([x[-n:], np.zeros(-n, np.float32)])
    return x


_EDGE = 1e-6  # seconds: a frame centre on a segment's edge (both are on a millisecond grid) counts as inside


def segment_frames(segments, n_frames: int) -> np.ndarray:
    """The video frames a partial fake manipulates: frame ``k`` spans ``[k / FPS, (k + 1) / FPS)`` and is
    manipulated when its centre lies in a segment -- the rule ``dfdetect.shards.frame_labels`` labels frames
    by, so that what a frame shows and its label agree (a 0.2 s segment is 5 frames at 25 fps)."""
    centres = (np.arange(n_frames) + 0.5) / FPS
    inside = np.zeros(n_frames, bool)
    for a, b in segments:
        inside |= (centres >= a - _EDGE) & (centres < b + _EDGE)
    return inside


def segment_samples(segments, n: int, ramp_s: float = 0.01) -> np.ndarray:
    """Weight of the fake audio per 16 kHz sample: 1 inside the segments, 0 outside, with linear ramps of
    ``ramp_s`` (at most a quarter of the segment) inside each edge, so the splice does not click."""
    mask = np.zeros(n, np.float32)
    for a, b in segments:
        i0, i1 = max(0, int(round(a * SR))), min(n, int(round(b * SR)))
        if i1 <= i0:
            continue
        ramp = np.ones(i1 - i0, np.float32)
        r = min(int(ramp_s * SR), (i1 - i0) // 4)
        if r:
            ramp[:r] = np.linspace(0, 1, r)
            ramp[-r:] = np.linspace(1, 0, r)
        mask[i0:i1] = np.maximum(mask[i0:i1], ramp)
    return mask


def build_clip(spec: ClipSpec, path: Path, root_seed: int) -> None:
    """Renders and encodes one clip. The default benchmark's methods draw from ``rng`` in a fixed order; the
    methods in ``UNSEEN_METHODS`` draw what they add from streams of their own, so that such a clip is the
    real clip of the same spec but for its manipulation."""
    from dfdetect.media import write_video

    ids = identities()
    ident = ids[spec.identity]
    rng = np.random.default_rng([root_seed, spec.seed])
    n_frames = int(round(spec.seconds * FPS))
    n = int(round(spec.seconds * SR))
    lead = int(spec.lead * SR)

    def utter(u: int) -> Utterance:
        return plan_utterance(np.random.default_rng([root_seed, 10_000 + u]), spec.seconds - spec.lead)

    f0 = {"women": 200.0, "men": 115.0}[ident.gender] * rng.uniform(0.9, 1.1)
    utt = utter(spec.utterance)
    own_voice = voice(utt, np.random.default_rng([root_seed, 20_000 + spec.utterance]), f0)
    pad = np.zeros(lead, np.float32)
    real_voice = _fit(np.concatenate([pad, own_voice]), n)
    audio = real_voice

    fake_voice = None
    if spec.method == "lpc":
        fv = lpc_resynth(own_voice, np.random.default_rng([root_seed, spec.seed, 11]), spec.strength)
        fake_voice = _fit(np.concatenate([pad, fv]), n)
    elif spec.modify_audio:
        flat = 0.35 + 0.6 * spec.strength
        fv = voice(utt, np.random.default_rng([root_seed, 30_000 + spec.utterance]), f0, flat=flat,
                   jitter=0.012 * (1 - spec.strength), shimmer=0.08 * (1 - spec.strength),
                   breath=0.03 * (1 - 0.7 * spec.strength))
        fv = vocode(fv, rng, spec.strength)
        fake_voice = _fit(np.concatenate([pad, fv]), n)

    seg_mask_audio = segment_samples(spec.segments, n) if spec.segments else np.ones(n, np.float32)
    seg_frames = segment_frames(spec.segments, n_frames) if spec.segments else np.ones(n_frames, bool)

    if fake_voice is not None:
        audio = real_voice * (1 - seg_mask_audio) + fake_voice * seg_mask_audio
    audio = np.clip(audio * rng.uniform(0.8, 1.25), -1, 1)
    # The mouth follows what is heard (a fake voice still drives the mouth), by one mechanism for every
    # class, so that only the manipulation differs: lip-sync fakes follow another utterance, desync fakes
    # follow the heard audio shifted in time (the audio itself stays put: same leading silence as others).
    # Reenactment fakes take mouth and head motion from another utterance's (the driver's) video.
    if spec.method in ("lipsync", "reenact"):
        u2 = utter(spec.mouth_utterance)
        other = voice(u2, np.random.default_rng([root_seed, 20_000 + spec.mouth_utterance]), f0)
        mouth_env = envelope_of(_fit(np.concatenate([pad, other]), n))
        if spec.method == "lipsync" and spec.strength < HARD:
            # below hard, the mouth follows a blend that leans on the heard voice (a better lip-sync model)
            w = spec.strength / HARD
            mouth_env = w * mouth_env + (1.0 - w) * envelope_of(audio)
    elif spec.method == "desync":
        mouth_env = _shift(envelope_of(audio), -spec.shift)
    else:
        mouth_env = envelope_of(audio)
    openness = _mouth_open(mouth_env, n_frames) * (0.8 + 0.2 * rng.random())

    por, box, mouth_pt = _identity_image(ident)
    swap = None
    if spec.modify_video and spec.method not in ("lipsync", "desync", *UNSEEN_METHODS):
        swap = _identity_image(ids[spec.swap_identity])
    motion = _motion(rng, n_frames)
    bg = _background(rng)
    grain = [rng.normal(0, 2.0, (SIZE, SIZE, 1)).astype(np.float32) for _ in range(4)]
    rng_frame = np.random.default_rng([root_seed, spec.seed, 7])
    mouth_width = 0.36
    if spec.method == "reenact":
        # the same portrait, driven by the driver's head motion; the generator draws the mouth its own way
        motion = _motion(np.random.default_rng([root_seed, 40_000 + spec.mouth_utterance]), n_frames)
        mouth_width = 0.36 + 0.08 * spec.strength
        warp_phases = np.random.default_rng([root_seed, spec.seed, 13]).uniform(0, 2 * np.pi, 2)

    def frames():
        for i in range(n_frames):
            geometry = {} if spec.method in ("reenact", "resample") else None
            f = _render_frame(bg, por, box, mouth_pt, motion[i], openness[i], spec.strength,
                              swap if seg_frames[i] else None, rng_frame, mouth_width, geometry)
            if spec.method == "reenact":
                f = _reenact_warp(f, geometry, i, spec.strength, warp_phases)
            f = f + grain[i % 4]
            if spec.method == "resample":
                f = resample_region(f, geometry, spec.strength)  # after the grain: the splice smooths it
            yield np.clip(f, 0, 255).astype(np.uint8)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    write_video(tmp, frames(), fps=FPS, audio=audio, sample_rate=SR, crf=23)
    os.replace(tmp, path)


def envelope_of(x: np.ndarray) -> np.ndarray:
    """Loudness envelope of a waveform (what drives the mouth when the audio is what is heard)."""
    a = np.abs(x)
    k = int(0.03 * SR)
    env = np.convolve(a, np.ones(k) / k, mode="same")
    peak = np.percentile(env, 99) + 1e-9
    return np.clip(env / peak, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------------------

KINDS = [
    # (share, category, type, method, modify_video, modify_audio, av_mismatch)
    (0.22, "A", "RealVideo-RealAudio", "real", False, False, False),
    (0.14, "B", "RealVideo-FakeAudio", "vocoder", False, True, False),
    (0.14, "C", "FakeVideo-RealAudio", "faceswap", True, False, False),
    (0.10, "C", "FakeVideo-RealAudio", "lipsync", True, False, True),
    (0.08, "C", "FakeVideo-RealAudio", "desync", True, False, True),
    (0.14, "D", "FakeVideo-FakeAudio", "faceswap-vocoder", True, True, False),
    (0.18, "partial", "", "partial", True, True, False),
]
METHODS = tuple(k[3] for k in KINDS)  # the default benchmark's methods (what a model trains on by default)
# Manipulation families the default benchmark never holds, for unseen-method evaluation cells: only a
# ``plan`` / ``synthesize`` / ``dfdetect synth --methods`` that names them builds them, and then with a share
# like the other single-method fake kinds (rescaled with the rest to ``n``).
UNSEEN_KINDS = [
    (0.14, "C", "FakeVideo-RealAudio", "reenact", True, False, True),
    (0.14, "C", "FakeVideo-RealAudio", "resample", True, False, False),
    (0.14, "B", "RealVideo-FakeAudio", "lpc", False, True, False),
]
UNSEEN_METHODS = tuple(k[3] for k in UNSEEN_KINDS)
ALL_METHODS = METHODS + UNSEEN_METHODS
AV_MISMATCH_METHODS = tuple(k[3] for k in KINDS + UNSEEN_KINDS if k[6])  # the mouth does not follow the voice
TYPES = {"A": "RealVideo-RealAudio", "B": "RealVideo-FakeAudio", "C": "FakeVideo-RealAudio",
         "D": "FakeVideo-FakeAudio"}


def _long(u: float) -> float:
    """A clip length in ``LONG_SECONDS`` from one drawn in ``SHORT_SECONDS`` (the same uniform draw,
    stretched), so that making a clip long changes no other draw."""
    (s0, s1), (l0, l1) = SHORT_SECONDS, LONG_SECONDS
    return l0 + (u - s0) / (s1 - s0) * (l1 - l0)


def partial_segments(rng: np.random.Generator, seconds: float, lead: float,
                     difficulty: str = "medium") -> list[tuple[float, float]]:
    """1-``SEGMENTS_MAX`` fake segments for a partial fake of ``seconds`` with ``lead`` s of leading silence:
    log-uniform lengths in ``SEGMENT_SECONDS[difficulty]``, at least ``SEGMENT_GAP`` apart, inside
    ``[lead + SEGMENT_AFTER_LEAD, seconds - SEGMENT_BEFORE_END]``, placed uniformly at random in that span, on
    a millisecond grid (what ``metadata.json`` stores is exactly what was rendered). When the drawn segments
    do not fit, the last drawn are dropped until they do."""
    lo, hi = SEGMENT_SECONDS[difficulty]
    first = math.ceil((lead + SEGMENT_AFTER_LEAD) * 1000)
    last = math.floor((seconds - SEGMENT_BEFORE_END) * 1000)
    span, gap = last - first, int(round(SEGMENT_GAP * 1000))
    if span < hi * 1000:
        raise ValueError(f"a {seconds:.2f} s clip with {lead:.2f} s of leading silence has no room for a "
                         f"{hi} s segment")
    k = int(rng.integers(1, SEGMENTS_MAX + 1))
    lengths = [int(np.clip(round(1000 * math.exp(rng.uniform(math.log(lo), math.log(hi)))),
                           round(lo * 1000), round(hi * 1000))) for _ in range(k)]
    while sum(lengths) + gap * (len(lengths) - 1) > span:
        lengths.pop()
    slack = span - sum(lengths) - gap * (len(lengths) - 1)
    # the slack is shared out among the len + 1 spaces around the segments at random
    cuts = np.sort(rng.integers(0, slack + 1, size=len(lengths)))
    segs, t, prev = [], first, 0
    for d, c in zip(lengths, cuts):
        t += int(c) - prev
        prev = int(c)
        segs.append((t / 1000, (t + d) / 1000))
        t += d + gap
    return segs


def plan(n: int, seed: int, difficulty: str = "medium", silence_shortcut: bool = False,
         methods: tuple[str, ...] | None = None, faces: str = "people",
         shares: tuple[float, float] = SPLIT_SHARES) -> list[ClipSpec]:
    """The clip list, deterministic in (n, seed, difficulty, methods, faces). Under ``faces="people"`` a
    clip's utterance, its lip-sync or reenactment driver and its face-swap source all come from its own
    person's split (``held_out_splits``), so nothing of a test clip was seen in training; ``"photos"`` draws
    exactly what the benchmark drew before. ``silence_shortcut`` reproduces
    FakeAVCeleb's artefact on purpose (fakes start with 0.3-0.8 s more silence), for the leading-silence
    ablation only. ``methods`` keeps only those kinds (``real``, ``vocoder``, ``faceswap``, ``lipsync``,
    ``desync``, ``faceswap-vocoder``, ``partial``, and the ``UNSEEN_METHODS`` ``reenact``, ``resample``,
    ``lpc``, which only appear when named), their shares rescaled to ``n``: a benchmark for one question,
    such as the learning test's or an unseen-method evaluation. Kinds are drawn in ``KINDS`` order, then
    ``UNSEEN_KINDS``'.

    Partial fakes are ``LONG_SECONDS`` long, and so are as many real clips (chosen at random) as make the
    fake rate among long clips equal the fake rate overall; every other clip is ``SHORT_SECONDS`` long."""
    if difficulty not in DIFFICULTY:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTY)}, got {difficulty!r}")
    kinds = KINDS if methods is None else [k for k in KINDS + UNSEEN_KINDS if k[3] in methods]
    unknown = set(methods or ()) - set(ALL_METHODS)
    if unknown or not kinds or kinds[0][3] != "real":
        raise ValueError(f"methods must include real and come from {', '.join(ALL_METHODS)}; got {methods!r}")
    strength = DIFFICULTY[difficulty]
    rng = np.random.default_rng(seed)
    ids = identities(faces)
    photo_split, utter_split = held_out_splits(n, seed, faces, shares)
    same_side = {sp: [u for u, x in utter_split.items() if x == sp] for sp in ("train", "val", "test")}
    by_person = {p: [k for k, i in enumerate(ids) if i.photo == p] for p in sorted(photo_split)}
    people_on = {sp: [p for p in sorted(photo_split) if photo_split[p] == sp] for sp in ("train", "val", "test")}
    side_rng = np.random.default_rng([seed, 3])
    total = sum(k[0] for k in kinds) if methods is not None else 1.0  # the full benchmark exactly as before
    counts = [int(round(share / total * n)) for share, *_ in kinds]
    counts[0] += n - sum(counts)
    # Long real clips: partial / (partial + long_real) = fakes / n, i.e. long_real = partial * reals / fakes.
    # Chosen from a stream of their own, so that every other draw is what it was before long clips existed.
    n_real = counts[0]
    n_partial = sum(c for k, c in zip(kinds, counts) if k[3] == "partial")
    n_long_real = min(n_real, int(round(n_partial * n_real / (n - n_real)))) if n > n_real else 0
    long_real = set(np.random.default_rng([seed, 1]).choice(n_real, n_long_real, replace=False).tolist())
    specs: list[ClipSpec] = []
    n_utter = n_utterances(n)
    for (_, cat, _, method, mv, ma, _), count in zip(kinds, counts):
        # each kind is split in the split's shares (at least one clip on val and test from 3 on), so that a
        # small benchmark has real and fake clips on every side; each clip's person is then one of that side's
        sides = _kind_sides(count, side_rng, shares)
        for j in range(count):
            seconds = float(rng.uniform(*SHORT_SECONDS))
            if method == "partial" or (method == "real" and j in long_real):
                seconds = _long(seconds)
            lead = float(rng.uniform(0.0, 0.6))
            if silence_shortcut and cat != "A":
                lead += float(rng.uniform(0.3, 0.8))
            if faces == "photos":
                ident = int(rng.integers(len(ids)))
            else:  # every person of the side equally often, whatever their number of variants
                on_side = people_on[sides[j]]
                variants = by_person[on_side[int(rng.integers(len(on_side)))]]
                ident = variants[int(rng.integers(len(variants)))]
            clip_seed = int(rng.integers(1 << 31))
            side = photo_split[ids[ident].photo]
            if faces == "photos":
                utterance = int(rng.integers(n_utter))
            else:
                utterance = same_side[side][int(rng.integers(len(same_side[side])))]
            spec = ClipSpec(index=len(specs), seed=clip_seed, identity=ident, utterance=utterance, category=cat,
                            method=method, seconds=seconds, lead=lead, strength=strength, modify_video=mv,
                            modify_audio=ma)
            if mv and method in ("faceswap", "faceswap-vocoder", "partial"):
                others = [i for i in range(len(ids)) if ids[i].photo != ids[ident].photo]
                if faces != "photos":  # the swapped-in face is a person of the same side, where there is one
                    others = [i for i in others if photo_split[ids[i].photo] == side] or others
                spec.swap_identity = int(rng.choice(others))
            if method in ("lipsync", "reenact"):
                if faces == "photos":
                    spec.mouth_utterance = (spec.utterance + 1 + int(rng.integers(n_utter - 1))) % n_utter
                else:
                    drivers = [u for u in same_side[side] if u != utterance] or \
                        [u for u in range(n_utter) if u != utterance]
                    spec.mouth_utterance = drivers[int(rng.integers(len(drivers)))]
            if method == "desync":
                lo = max(0.2, 0.2 + 0.6 * (strength - 0.3) / 0.7 * 0.5)  # 0.2 s at hard and below
                spec.shift = float(rng.choice([-1, 1]) * rng.uniform(lo, min(1.0, lo + 0.4)))
            if method == "partial":
                what = rng.choice(["video", "audio", "both"])
                spec.modify_video = what in ("video", "both")
                spec.modify_audio = what in ("audio", "both")
                spec.method = f"partial-{what}"
                spec.category = {"video": "C", "audio": "B", "both": "D"}[str(what)]
                spec.segments = partial_segments(rng, seconds, lead, difficulty)
            specs.append(spec)
    return specs


def _clip_path(spec: ClipSpec) -> str:
    ident = identities()[spec.identity]
    typ = TYPES[spec.category]
    return f"{typ}/Synthetic/{ident.gender}/{ident.name}/{spec.index:05d}.mp4"


def _split_of(key: str, seed: int, fractions=(0.7, 0.15)) -> str:
    """A stable split for a group key: every clip of the group lands on the same side."""
    import zlib

    h = zlib.crc32(f"{seed}:{key}".encode()) / 2 ** 32
    return "train" if h < fractions[0] else ("val" if h < fractions[0] + fractions[1] else "test")


def _build_one(args) -> str:
    spec, out, seed = args
    path = Path(out) / _clip_path(spec)
    if not path.exists():
        build_clip(spec, path, seed)
    return str(path)


def synthesize(out_dir: str | Path, n: int = 400, seed: int = 0, difficulty: str = "medium",
               workers: int | None = None, progress: bool = True, silence_shortcut: bool = False,
               methods: tuple[str, ...] | None = None, faces: str = "people",
               shares: tuple[float, float] = SPLIT_SHARES) -> Path:
    """Builds the benchmark into ``out_dir`` (resumable: finished clips are kept). Returns ``meta_data.csv``.
    ``silence_shortcut`` builds the deliberately flawed variant used by ``bench/silence_ablation.py``;
    ``faces`` is one of ``FACE_SETS`` and ``shares`` the people split's train and val shares (``plan``)."""
    import multiprocessing as mp

    import pandas as pd
    from tqdm.auto import tqdm

    from dfdetect.errors import checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(n, seed, difficulty, silence_shortcut, methods, faces, shares)
    ids = identities(faces)
    workers = workers or min(os.cpu_count() or 1, 8)
    jobs = [(s, str(out), seed) for s in specs]
    bar = tqdm(total=len(jobs), unit="clip", desc="synth", disable=not progress, dynamic_ncols=True)
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_build_one, jobs):
                bar.update(1)
                checkpoint()
    else:
        for j in jobs:
            _build_one(j)
            bar.update(1)
            checkpoint()  # a Ctrl-C swallowed while encoding still stops the build here
    bar.close()

    if faces == "photos":
        # identity-held-out split: whole identities (all photos' variants of a person) on one side
        people = sorted({i.photo for i in ids})
        held = {people[seed % len(people)]: "test", people[(seed + 1) % len(people)]: "val"}
    else:  # the split itself holds out people (and utterances)
        held, _ = held_out_splits(n, seed, faces, shares)
    rows, lav, splits = [], [], []
    for s in specs:
        ident = ids[s.identity]
        rel = _clip_path(s)
        typ = TYPES[s.category]
        target = ids[s.swap_identity].name if s.swap_identity >= 0 else "-"
        rows.append([ident.name, target, "-", s.method, s.category, typ, "Synthetic", ident.gender,
                     Path(rel).name, f"FakeAVCeleb/{Path(rel).parent.as_posix()}"])
        whole = [[0.0, round(s.seconds, 3)]]
        segs = [[round(a, 3), round(b, 3)] for a, b in s.segments]
        periods = segs or (whole if (s.modify_audio or s.modify_video) else [])
        group = f"{ident.name}/u{s.utterance:03d}"
        split = _split_of(group, seed) if faces == "photos" else held[ident.photo]
        lav.append({"file": rel, "n_fakes": len(periods), "fake_periods": periods, "duration": round(s.seconds, 3),
                    "original": None, "modify_video": bool(s.modify_video), "modify_audio": bool(s.modify_audio),
                    "split": split, "video_frames": int(round(s.seconds * FPS)),
                    "audio_frames": int(round(s.seconds * SR)), "method": s.method, "category": s.category,
                    "av_mismatch": s.method in AV_MISMATCH_METHODS, "identity": ident.name,
                    "group": group,
                    # AV-Deepfake1M's per-modality spans: [] where the modality is real
                    "visual_fake_segments": (segs or whole) if s.modify_video else [],
                    "audio_fake_segments": (segs or whole) if s.modify_audio else []})
        splits.append({"path": rel, "group": group, "identity": ident.name, "split": split,
                       "split_identity": held.get(ident.photo, "train")})
    meta = out / "meta_data.csv"
    with open(meta, "w") as f:
        # FakeAVCeleb's header names 9 columns; every row carries 10 values (file name, then folder).
        f.write("source,target1,target2,method,category,type,race,gender,path\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")
    (out / "metadata.json").write_text(json.dumps(lav, indent=1))
    pd.DataFrame(splits).to_csv(out / "splits.csv", index=False)
    (out / "synth.json").write_text(json.dumps({"n": n, "seed": seed, "difficulty": difficulty,
                                                "silence_shortcut": silence_shortcut, "faces": faces,
                                                "shares": list(shares),
                                                "methods": list(methods) if methods else None,
                                                "specs": [asdict(s) for s in specs]}, indent=1))
    return meta
