"""Cutting a video into aligned windows: face crops + the waveform of the same time span + the face mask.

``extract_windows`` streams one video through ``media`` (decode) and ``faces`` (track, crop) and yields
``Window``s as soon as each is complete, so memory stays flat however long the video is. Preprocessing
writes them to shards; prediction scores them directly. Both keep only the windows ``usable`` accepts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from dfdetect.config import Config
from dfdetect.faces import FaceDetector, FaceFrame, MultiFaceTracker, TrackStats
from dfdetect.media import AudioChunk, Limits, MediaError, MediaReader, Prefetch, VideoSample


@dataclass
class Window:
    """One window. ``frames`` (T, H, W, 3) uint8, ``mask`` (T,) 1 where a face was found, ``audio`` (S,)
    float32 mono, ``mouth`` (T, 2) mouth position in crop coordinates (-1 where unknown), ``start`` the
    window's start in seconds on the video clock, ``audio_ratio`` the share of ``audio`` the file provided
    (0 for a silent track-less video)."""

    index: int
    start: float
    frames: np.ndarray
    mask: np.ndarray
    audio: np.ndarray
    mouth: np.ndarray
    audio_ratio: float
    first_frame: int = 0  # index k of frames[0] on the video's frame grid (overlapping windows share frames)
    track: int = 0  # which face (``faces.MultiFaceTracker``): 0 the dominant one, the only one preprocessing cuts

    @property
    def face_ratio(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def usable(window: Window, config: Config) -> bool:
    """Whether a window is kept for training and scored by prediction: it has at least one face frame and a
    face share of at least ``config.window.min_face_ratio``.

    The one rule both sides apply. Preprocessing writes only these windows, so a model never sees a faceless
    (or mostly faceless) window while it learns; scoring such windows at prediction time would average in
    outputs for inputs the model was never trained on, and a video's score would then depend on how long its
    face was out of the frame rather than on the face and voice the model knows."""
    return bool(window.mask.any()) and window.face_ratio >= config.window.min_face_ratio


@dataclass
class VideoSummary:
    """What extraction saw of one video (filled in while iterating)."""

    frames: int = 0
    face_frames: int = 0
    max_faces: int = 0
    has_audio: bool = False
    duration: float = 0.0
    trimmed: float = 0.0  # seconds of leading silence skipped
    windows: int = 0
    warnings: list[str] = field(default_factory=list)
    tracks: dict[int, TrackStats] = field(default_factory=dict)  # every face track (frames, where it was)

    @property
    def face_ratio(self) -> float:
        return self.face_frames / self.frames if self.frames else 0.0


def leading_silence(samples: np.ndarray, sample_rate: int, dbfs: float, block_s: float = 0.02) -> float | None:
    """Seconds before the first 20 ms block louder than ``dbfs``; ``None`` if every block is quieter."""
    n = int(sample_rate * block_s)
    blocks = samples[: (samples.size // n) * n].reshape(-1, n)
    if not len(blocks):
        return None
    rms = np.sqrt(np.mean(blocks.astype(np.float64) ** 2, axis=1) + 1e-20)
    loud = np.nonzero(20 * np.log10(rms) > dbfs)[0]
    return float(loud[0] * block_s) if loud.size else None


class _Audio:
    """Audio on the video clock, from sample ``base`` on; gaps and a late start are zero-filled."""

    def __init__(self, sample_rate: int) -> None:
        self.sr = sample_rate
        self.base = 0
        self.chunks: list[np.ndarray] = []
        self.end = 0  # absolute sample index after the last sample held
        self.done = False
        self.real = 0  # samples that came from the file (not padding)

    def add(self, chunk: AudioChunk) -> None:
        start = int(round(chunk.time * self.sr))
        data = chunk.samples
        if start > self.end:
            self.chunks.append(np.zeros(start - self.end, np.float32))
            self.end = start
        elif start < self.end:  # overlap from rounding: drop the repeated samples
            data = data[self.end - start:]
        if data.size:
            self.chunks.append(np.asarray(data, np.float32))
            self.end += data.size
            self.real += data.size

    def take(self, a: int, b: int) -> tuple[np.ndarray, float]:
        """Samples [a, b) (absolute), zero-padded past the end; and the share that was really there."""
        buf = np.concatenate(self.chunks) if len(self.chunks) > 1 else (
            self.chunks[0] if self.chunks else np.zeros(0, np.float32))
        self.chunks = [buf] if buf.size else []
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, self.base), min(b, self.end)
        if hi > lo:
            out[lo - a:hi - a] = buf[lo - self.base:hi - self.base]
        return out, max(0, hi - lo) / max(1, b - a)

    def drop_before(self, a: int) -> None:
        if a <= self.base or not self.chunks:
            self.base = max(self.base, min(a, self.end))
            return
        buf = np.concatenate(self.chunks)
        cut = min(a, self.end) - self.base
        buf = buf[cut:]
        self.base += cut
        self.chunks = [buf] if buf.size else []


def extract_windows(
    path: str,
    config: Config,
    detector: FaceDetector,
    summary: VideoSummary | None = None,
    max_windows: int | None = None,
) -> Iterator[Window]:
    """Streams a video and yields its windows in order.

    With ``config.faces.max_tracks`` > 1 every face gets windows of its own (``Window.track``): at each window
    position the dominant face's window (track 0, the one a single-face run gives) comes first, then one per
    further track that has a face frame in it. ``Window.index`` numbers positions, shared by the tracks.

    Args:
        path: the video.
        config: the run's ``Config`` (media, faces, window sections).
        detector: a ``FaceDetector`` for this process.
        summary: filled in while iterating (frames, faces, audio, trimmed silence, warnings).
        max_windows: stop after this many (default ``config.window.max_windows``; 0 = all).

    Raises:
        MediaError: the file is unusable (its message is the reason), or too short for one window.
    """
    summary = summary if summary is not None else VideoSummary()
    mc, wc = config.media, config.window
    fps, sr = mc.fps, mc.sample_rate
    T = config.frames_per_window
    S = config.samples_per_window
    hop = max(1, int(round(wc.hop_seconds * fps)))
    limit = wc.max_windows if max_windows is None else max_windows
    max_seconds = config.preprocess.max_seconds

    reader = MediaReader(path, fps=fps, sample_rate=sr, max_side=mc.max_side,
                         max_seconds=max_seconds if max_seconds > 0 else 0.0, limits=Limits.from_config(config))
    tracker = MultiFaceTracker(detector, config.faces, config.faces.max_tracks)
    audio = _Audio(sr)
    tracks: dict[int, dict[int, FaceFrame]] = {0: {}}  # track -> frame index -> frame
    frames = tracks[0]
    first_k: int | None = None  # start of window 0 (after leading silence), once known
    next_start = 0
    emitted = 0
    last_k = -1
    max_trim_s = 5.0  # never look further than this for the end of leading silence

    def decide_start(final: bool) -> int | None:
        nonlocal first_k
        if first_k is not None:
            return first_k
        if not wc.trim_leading_silence or not reader.has_audio:
            first_k = 0
        elif audio.end / sr >= max_trim_s or final:
            if audio.end > 0:
                head, _ = audio.take(0, min(audio.end, int(max_trim_s * sr)))
                onset = leading_silence(head, sr, wc.silence_dbfs)
            else:
                onset = None
            first_k = int(math.floor((onset or 0.0) * fps + 1e-6))
            summary.trimmed = first_k / fps
        return first_k

    def make(start: int, pad: bool, track: int, sound: tuple[np.ndarray, float]) -> Window:
        idx = range(start, start + T)
        crop = config.faces.crop_size
        imgs = np.zeros((T, crop, crop, 3), np.uint8)
        mask = np.zeros(T, np.uint8)
        mouth = np.full((T, 2), -1.0, np.float32)
        held = tracks[track]
        for j, k in enumerate(idx):
            ff = held.get(k)
            if ff is None:
                if not pad and not track:  # a further track starts and ends where its face does
                    raise AssertionError(f"frame {k} missing from a complete window")
                continue
            if ff.has_face:
                imgs[j], mask[j] = ff.crop, 1
                if ff.mouth is not None:
                    mouth[j] = ff.mouth
        wave, ratio = sound
        return Window(index=0, start=start / fps, frames=imgs, mask=mask, audio=wave, mouth=mouth, first_frame=start,
                      audio_ratio=ratio if reader.has_audio else 0.0, track=track)

    def at(start: int, pad: bool, index: int) -> Iterator[Window]:
        """The windows of every track at one position: the dominant face's, then each further face's (one
        waveform for all: the same time span)."""
        a0 = int(round(start / fps * sr))
        sound = audio.take(a0, a0 + S)
        for t in sorted(tracks):
            if t and not any(ff.has_face for k, ff in tracks[t].items() if start <= k < start + T):
                continue
            w = make(start, pad, t, sound)
            w.index = index
            yield w

    def others_ready(end_k: int) -> bool:
        """Whether every running further track has given out its frames up to ``end_k`` (a track lags up to
        one keyframe interval behind; one that ended has given out all it will)."""
        return all(last >= end_k for t, last in tracker.open_tracks.items() if t)

    def drop_before(keep: int) -> None:
        for held in tracks.values():
            for k in [k for k in held if k < keep]:
                del held[k]

    last_start = -1  # start of the last window yielded

    def ready(final: bool) -> Iterator[Window]:
        nonlocal next_start, emitted, last_start
        k0 = decide_start(final)
        if k0 is None:
            return
        if next_start < k0:
            next_start = k0
        while True:
            if limit and emitted >= limit:
                return
            end_k = next_start + T - 1
            need_audio = int(round((next_start + T) / fps * sr))
            have_frames = end_k <= last_k and (final or others_ready(end_k))
            have_audio = audio.done or not reader.has_audio or audio.end >= need_audio
            if have_frames and have_audio:
                pad = False
            elif final and emitted == 0 and last_k - next_start + 1 >= max(1, T // 2):
                # A clip shorter than one window still gets one, padded. Longer clips drop their partial
                # tail: a padded tail is a cue of its own (after leading-silence trimming, clips that had
                # more silence end in padding more often).
                pad = True
            else:
                return
            yield from at(next_start, pad, emitted)
            emitted += 1
            last_start = next_start
            next_start += hop
            # keep what a window ending at the last frame may still need (cover_end): all after this start
            keep = min(next_start, last_start + 1) if wc.cover_end else next_start
            drop_before(keep)
            audio.drop_before(int(round(keep / fps * sr)))
            if last_k - next_start + 1 < max(1, T // 2) and final:
                return

    def take_frames(items: Iterator[tuple[int, FaceFrame]]) -> None:
        nonlocal last_k
        for t, ff in items:
            if first_k is None or ff.index >= first_k:
                tracks.setdefault(t, {})[ff.index] = ff
            if t:
                continue
            summary.frames += 1
            summary.face_frames += int(ff.has_face)
            last_k = ff.index

    for item in Prefetch(reader):
        if isinstance(item, VideoSample):
            take_frames(tracker.push(item.index, item.frame))
        elif isinstance(item, AudioChunk):
            audio.add(item)
        if first_k is None and decide_start(False) is not None:
            drop_before(first_k)
        if first_k is not None:
            yield from ready(False)
            if limit and emitted >= limit:
                break
        elif len(frames) > (max_trim_s + 1) * fps + T:  # guard: never hold more than a few seconds
            decide_start(True)
    take_frames(tracker.flush())
    audio.done = True
    summary.has_audio = reader.has_audio and audio.real > 0
    summary.max_faces = tracker.max_faces
    summary.tracks = tracker.stats
    summary.duration = reader.video_end
    # a file cut short is scored on what decodes, and the verdict says so; so is a limit or a decoding error
    summary.warnings.extend(reader.notes())
    if not (limit and emitted >= limit):
        yield from ready(True)
        end_start = last_k - T + 1
        if wc.cover_end and emitted and not (limit and emitted >= limit) and last_start + T - 1 < last_k and end_start > last_start:
            # the tail the hop left out: one window ending at the last frame, overlapping the previous one
            next_start = end_start
            yield from at(end_start, False, emitted)
            emitted += 1
    summary.windows = emitted
    if emitted == 0:
        if reader.frames_out == 0:
            cut = reader.truncated
            raise MediaError((reader.error or "no decodable video frames") + (f" ({cut})" if cut else ""))
        need = max(1, T // 2) / fps
        cut = reader.truncated
        raise MediaError(f"too short: {reader.frames_out} frame(s), {reader.video_end:.2f} s after "
                         f"{summary.trimmed:.2f} s of leading silence; a window needs at least {need:.2f} s"
                         + (f" ({cut})" if cut else ""))
