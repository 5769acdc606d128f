"""Streaming video + audio decoding with PyAV (one pass, never the whole video in memory).

``decode`` demuxes a file once and yields, in the order packets arrive:

* ``VideoSample`` — frames resampled *by timestamp* to a fixed rate (the frame on screen at ``k / fps``),
  converted to upright RGB (the display-matrix rotation applied) and downscaled to ``max_side``;
* ``AudioChunk`` — audio resampled to mono float32 at ``sample_rate``, with its start time.

Times are seconds on one clock whose zero is the first video frame, so audio sample ``n`` of a chunk that
starts at ``t`` plays at ``t + n / sample_rate`` next to frame ``round((t + n / sr) * fps)``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".wmv",
                    ".3gp", ".mts"}

# A frame counts as "on screen at t" if its timestamp is within this of t (float rounding of pts * tb).
_EPS = 1e-4


class MediaError(Exception):
    """A file that cannot be used; ``str(e)`` is a one-line reason for the manifest."""


@dataclass(frozen=True)
class Limits:
    """What a file may ask of a decoding process (0 = no limit); ``MediaConfig`` holds the configured ones.

    Checked on the container's headers before any frame is decoded, so a resource bomb costs the time it
    takes to open it; the frame size is checked again on every decoded frame (a stream may change size), and
    decoding stops at ``max_duration`` even where the header says nothing or lies.
    """

    max_frame_pixels: int = 7680 * 4320  # 8K UHD
    max_duration: float = 3 * 3600.0  # seconds
    max_sample_rate: int = 384000
    max_channels: int = 16
    max_streams: int = 32
    max_file_bytes: int = 8 * 10**9

    @classmethod
    def from_config(cls, config) -> Limits:
        """The limits of a ``Config`` (its media section; the file size from ``preprocess.max_file_gb``)."""
        m = config.media
        return cls(max_frame_pixels=int(m.max_frame_pixels), max_duration=float(m.max_duration),
                   max_sample_rate=int(m.max_sample_rate), max_channels=int(m.max_channels),
                   max_streams=int(m.max_streams),
                   max_file_bytes=int(config.preprocess.max_file_gb * 1e9) if config.preprocess.max_file_gb > 0
                   else 0)


# Decoded frames the video decoder may hold at once (frame threads, reference frames), in bytes: above it, fewer
# decoder threads. H.264/HEVC output is bit-exact whatever the thread count, so windows do not change. Measured
# on 40 frames of 7680x4320 H.264: 16 frame threads (FFmpeg's choice on 16 cores) peak at 1581 MB, 3 at 366 MB.
_DECODER_BUDGET = 640 * 2**20
# At most this many decoder threads per video (0: FFmpeg's choice, cores + 1). A preprocessing run with a worker
# process per core sets 1 (``set_decoder_threads``): the cores are busy with other videos anyway, and frame
# threads cost CPU of their own (the 30 s benchmark clip decodes in 1.37 CPU-s on one thread, 1.63-1.70 with
# FFmpeg's three). Pixels do not depend on it.
_DECODE_THREADS = 0


def set_decoder_threads(n: int) -> None:
    """Caps the decoder threads of every video this process opens from now on (0: no cap)."""
    global _DECODE_THREADS
    _DECODE_THREADS = max(0, int(n))

# Audio decoded before the first video frame is held until that frame's time is known; past this much the file
# is refused (one whose video starts that late, or never, would otherwise fill memory).
_MAX_PENDING_AUDIO_S = 120.0


# Video timestamps may run this far past the duration a header declares (or twice it) before decoding stops.
_OVERRUN_S = 600.0


def _clock(seconds: float) -> str:
    """``1:02:03`` / ``2:03`` / ``4.5 s``: a duration for a reason."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    h, rem = divmod(int(round(seconds)), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@dataclass(frozen=True)
class ProbeInfo:
    """What a container holds. ``width``/``height`` are as displayed (rotation applied)."""

    path: str
    format: str
    size_bytes: int
    duration: float
    has_video: bool
    width: int = 0
    height: int = 0
    rotation: int = 0
    fps: float = 0.0
    video_codec: str = ""
    frames: int = 0
    has_audio: bool = False
    audio_codec: str = ""
    sample_rate: int = 0
    channels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass
class VideoSample:
    index: int  # k: the k-th output frame, at time k / fps
    time: float
    frame: LazyFrame  # upright; converted to RGB on demand

    @property
    def image(self) -> np.ndarray:
        """The whole frame, (H, W, 3) uint8 RGB, upright."""
        return self.frame.array()


@dataclass
class AudioChunk:
    time: float  # start time of samples[0]
    samples: np.ndarray  # (n,) float32 mono


def _one_line(e: BaseException) -> str:
    """FFmpeg's message without the errno prefix and the file name it repeats."""
    if isinstance(e, av.error.FFmpegError) and getattr(e, "strerror", None):
        return str(e.strerror)[:300]
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:300]


def _open(path: str | os.PathLike, max_bytes: int = 0) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"file not found: {p}")
    if p.is_dir():
        raise MediaError(f"is a folder, not a video: {p}")
    size = p.stat().st_size
    if size == 0:
        raise MediaError("empty file (0 bytes)")
    if max_bytes and size > max_bytes:
        raise MediaError(f"file is {size / 1e9:.1f} GB, over the {max_bytes / 1e9:g} GB limit "
                         "(preprocess.max_file_gb)")
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise MediaError(f"not a readable media file ({_one_line(e)})") from None
    except (UnicodeDecodeError, ValueError, OSError) as e:
        raise MediaError(f"cannot open ({_one_line(e)})") from None


def probe(path: str | os.PathLike) -> ProbeInfo:
    """Reads a file's streams and returns their properties (decodes one frame to learn the rotation)."""
    container = _open(path)
    try:
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        info = dict(path=str(path), format=container.format.name, size_bytes=Path(path).stat().st_size,
                    duration=duration, has_video=v is not None)
        if v is not None:
            rate = v.average_rate or v.guessed_rate or v.base_rate
            fps = float(rate) if rate else 0.0
            if not duration and v.duration and v.time_base:
                info["duration"] = float(v.duration * v.time_base)
            rotation = 0
            if v.codec_context is None:
                raise MediaError(f"no decoder for its video codec ({_codec_tag(v)})")
            w, h = v.codec_context.width, v.codec_context.height
            try:
                for frame in container.decode(v):
                    rotation = int(getattr(frame, "rotation", 0) or 0)
                    w, h = frame.width, frame.height
                    break
            except av.error.FFmpegError:
                pass
            if rotation % 180 != 0:
                w, h = h, w
            info.update(width=w, height=h, rotation=rotation, fps=round(fps, 3),
                        video_codec=v.codec_context.name, frames=int(v.frames or 0))
        if a is not None and a.codec_context is not None:
            info.update(has_audio=True, audio_codec=a.codec_context.name,
                        sample_rate=int(a.codec_context.sample_rate or 0),
                        channels=int(a.codec_context.channels or 0))
        return ProbeInfo(**info)
    finally:
        container.close()


class LazyFrame:
    """An upright RGB frame that converts from YUV only the parts that are asked for.

    Face crops and detector regions are a small part of a frame; converting the whole frame to RGB for
    every sampled frame would cost more than decoding it. ``region`` converts just a rectangle (mapping it
    through the display rotation), ``array`` the whole frame (cached). Frames larger than ``max_side``, or in
    pixel formats other than even-sized yuv420p, are converted eagerly.
    """

    def __init__(self, frame: av.VideoFrame, max_side: int = 0) -> None:
        self.k = int(round(int(getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
        w, h = frame.width, frame.height
        scale = min(1.0, max_side / max(w, h)) if max_side else 1.0
        self._rgb: np.ndarray | None = None
        self._yuv = False
        if scale >= 1.0 and frame.format.name == "yuv420p" and w % 2 == 0 and h % 2 == 0:
            # Zero-copy views of the decoder's planes (the frame keeps its buffers alive).
            self._frame = frame
            self._planes = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:ph, :pw]
                            for p, (ph, pw) in zip(frame.planes, ((h, w), (h // 2, w // 2), (h // 2, w // 2)))]
            self._yuv = True
            self._sh, self._sw = h, w
        else:
            img = frame.to_ndarray(format="rgb24")
            if scale < 1.0:
                size = (max(2, int(round(w * scale))), max(2, int(round(h * scale))))
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            self._sh, self._sw = img.shape[:2]
            self._rgb = self._rotate(img)
        uh, uw = (self._sw, self._sh) if self.k % 2 else (self._sh, self._sw)
        self.shape = (uh, uw, 3)

    def _rotate(self, img: np.ndarray) -> np.ndarray:
        # PyAV's rotation is the display matrix's counter-clockwise angle; ffmpeg shows the frame turned by
        # -rotation, i.e. np.rot90 by rotation / 90 quarter turns (np.rot90 turns counter-clockwise).
        return np.ascontiguousarray(np.rot90(img, self.k)) if self.k else img

    def array(self) -> np.ndarray:
        """The whole frame, (H, W, 3) uint8 RGB, upright."""
        if self._rgb is None:
            self._rgb = self.region(0, self.shape[0], 0, self.shape[1])
        return self._rgb

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.array()
        return a.astype(dtype) if dtype is not None else a

    def region(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows ``y0:y1`` and columns ``x0:x1`` of the upright frame (inside it), RGB."""
        if self._rgb is not None:
            return self._rgb[y0:y1, x0:x1]
        H, W = self._sh, self._sw
        # where the upright rectangle lies in the stored frame
        if self.k == 0:
            r0, r1, c0, c1 = y0, y1, x0, x1
        elif self.k == 1:
            r0, r1, c0, c1 = x0, x1, W - y1, W - y0
        elif self.k == 2:
            r0, r1, c0, c1 = H - y1, H - y0, W - x1, W - x0
        else:
            r0, r1, c0, c1 = H - x1, H - x0, y0, y1
        # grow to even bounds (chroma is subsampled 2x2), convert, then cut the exact rectangle
        e0, e1, f0, f1 = r0 & ~1, min(H, (r1 + 1) & ~1), c0 & ~1, min(W, (c1 + 1) & ~1)
        if e1 <= e0 or f1 <= f0:
            return np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
        y, u, v = self._planes
        ys = y[e0:e1, f0:f1]
        us = u[e0 // 2:e1 // 2, f0 // 2:f1 // 2]
        vs = v[e0 // 2:e1 // 2, f0 // 2:f1 // 2]
        h, w = ys.shape
        packed = np.concatenate([ys.reshape(-1), us.reshape(-1), vs.reshape(-1)]).reshape(h * 3 // 2, w)
        rgb = cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_I420)[r0 - e0:r1 - e0, c0 - f0:c1 - f0]
        return self._rotate(rgb)


class _Skipper:
    """Leaves undecoded the frames preprocessing would never use, where that cannot change a pixel.

    Resampling 25 or 30 fps to 15 shows two source frames in five (one in two) to no output time. Those that
    no other frame references (H.264/HEVC non-reference frames: most B-frames) need not be decoded at all:
    FFmpeg's ``skip_frame = NONREF`` drops them, and since nothing refers to them every other frame decodes
    to the same pixels. A frame is skipped only when the output clock provably never shows it: its span up
    to the next frame on screen holds no output time. That next frame must be known, so packets are read
    ``DEPTH`` ahead and a frame's two successors are taken from every packet read whose frame is not yet out;
    a frame read later can only come between them when more than 16 frames read before it follow it on
    screen, which the standards' reorder limit (num_reorder_frames, sps_max_num_reorder_pics <= 16) forbids
    (``TRAILING`` packets at the end of the look-ahead must all come after both successors). Until eight
    frames have come out of the decoder with exactly the timestamps of their packets, in order, and after
    any frame that does not, nothing is skipped (a frame without a timestamp, out of order, or missing).

    On the benchmark clip (25 fps x264, ``bench/preprocess.py``) 147 of 750 frames are skipped; on a clip
    without B-frames (every frame a reference) none are, and nothing changes.
    """

    CODECS = ("h264", "hevc")
    DEPTH = 24  # video packets read ahead
    TRAILING = 17  # the last packets read ahead: all later on screen than a skipped frame's successors
    TRUST_AFTER = 8  # frames out of the decoder, as expected, before any is skipped

    def __init__(self, vstream) -> None:
        import bisect

        self._bisect = bisect
        self.ctx = vstream.codec_context
        self.time_base = vstream.time_base
        self.pending: list[int] = []  # pts of video packets read whose frame has not come out yet, sorted
        self.expected: list[int] = []  # pts of packets decoded without skipping, not yet out, sorted
        self.maybe: list[int] = []  # pts of packets sent with skipping on (a reference frame still comes out)
        self.good = 0
        self.broken = False
        self.skipping = False

    @property
    def trusted(self) -> bool:
        return not self.broken and self.good >= self.TRUST_AFTER

    def demux(self, container, streams) -> Iterator[tuple[av.Packet, tuple[int, int] | None]]:
        """The container's packets in order, each video packet with the pts of the two frames after it on
        screen when they are certain (else None)."""
        from collections import deque

        buf: deque = deque()
        video: deque[int | None] = deque()  # pts of the video packets in buf
        seen: set[int] = set()

        def release():
            packet = buf.popleft()
            if packet.stream.type != "video":
                return packet, None
            pts = video.popleft()
            return packet, self._after(pts, video)

        for packet in container.demux(*streams):
            if packet.stream.type == "video":
                pts = packet.pts
                if pts is None or pts in seen or packet.is_corrupt or packet.is_discard:
                    self.broken = True  # no pts, a duplicate, a damaged packet: decode every frame
                elif not self.broken:
                    seen.add(pts)
                    if len(seen) > 4096:  # a duplicate further apart than this is not looked for
                        seen.clear()
                    self._bisect.insort(self.pending, pts)
                video.append(pts)
                buf.append(packet)
                while len(video) > self.DEPTH:
                    while buf[0].stream.type != "video":
                        yield buf.popleft(), None
                    yield release()
            else:
                buf.append(packet)
        while buf:
            if buf[0].stream.type == "video":
                packet = buf.popleft()
                video.popleft()
                yield packet, None  # the last frames: their successors are not certain
            else:
                yield buf.popleft(), None

    def _after(self, pts: int | None, ahead) -> tuple[int, int] | None:
        if self.broken or pts is None or len(ahead) < self.DEPTH:
            return None
        i = self._bisect.bisect_right(self.pending, pts)
        if i == 0 or self.pending[i - 1] != pts or i + 1 >= len(self.pending):
            return None
        n1, n2 = self.pending[i], self.pending[i + 1]
        tail = list(ahead)[-self.TRAILING:]
        if any(p is None or p <= n2 for p in tail):
            return None
        return n1, n2

    def submit(self, pts: int | None, skip: bool) -> None:
        """Sets the decoder up for the video packet about to be sent (FFmpeg copies the setting to the frame
        thread that takes the packet)."""
        if skip != self.skipping:
            self.ctx.skip_frame = "NONREF" if skip else "DEFAULT"
            self.skipping = skip
        if pts is None or self.broken:
            return
        self._bisect.insort(self.maybe if skip else self.expected, pts)

    def output(self, frame, in_order: bool) -> None:
        """A frame came out of the decoder: checks it is the one expected (else skipping stops for good)."""
        if self.broken:
            return
        pts = frame.pts
        if pts is None or not in_order or (frame.time_base and frame.time_base != self.time_base):
            self.broken = True
            return
        # every frame decoded without skipping comes out in pts order: one still waiting below pts is missing
        bisect = self._bisect
        i = bisect.bisect_left(self.expected, pts)
        hit = i < len(self.expected) and self.expected[i] == pts
        j = bisect.bisect_right(self.maybe, pts)
        if i > 0 or not (hit or j and self.maybe[j - 1] == pts):
            self.broken = True
            return
        del self.expected[:i + hit]
        del self.maybe[:j]  # skipped frames before this one never come out
        del self.pending[:bisect.bisect_right(self.pending, pts)]
        self.good += 1


def decode(
    path: str | os.PathLike,
    fps: float = 15.0,
    sample_rate: int = 16000,
    max_side: int = 1280,
    audio: bool = True,
    max_seconds: float = 0.0,
) -> Iterator[VideoSample | AudioChunk]:
    """Streams resampled frames and audio chunks from one pass over the file.

    Args:
        path: the media file.
        fps: output frame rate; frame ``k`` is the source frame on screen at ``k / fps``.
        sample_rate: output audio rate (mono float32).
        max_side: downscale frames whose longer side is larger (0 = never).
        audio: also decode the audio stream if there is one.
        max_seconds: stop after this much video time (0 = all).

    Raises:
        MediaError: the file cannot be opened or has no video stream. An error in the middle of a stream
            ends the iteration early instead; use ``MediaReader`` directly to read it from ``.error``.
    """
    reader = MediaReader(path, fps=fps, sample_rate=sample_rate, max_side=max_side, audio=audio,
                         max_seconds=max_seconds)
    yield from reader


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _codec_tag(stream) -> str:
    """What a stream without a decoder says it holds: its FourCC or tag, for a reason."""
    try:
        tag = str(stream.codec_tag or "").strip("\x00 ")
    except Exception:  # noqa: BLE001 - a name for a message only
        tag = ""
    return f"tag {tag!r}" if tag and tag.isprintable() else "unknown"


def _seconds(value, time_base) -> float:
    """``value * time_base`` in seconds; 0 where unknown, negative or absurd (a corrupt header)."""
    try:
        t = float(value * time_base) if value and time_base else 0.0
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        return 0.0
    return t if 0 < t < 1e9 else 0.0


class MediaReader:
    """Iterable over ``VideoSample`` and ``AudioChunk`` items; see ``decode``. ``limits`` (default
    ``Limits()``) are checked on the headers before decoding; a file beyond them raises ``MediaError``. After
    iteration, ``error`` holds a mid-stream decoding error (or ``None``), ``video_end``/``audio_end`` the
    times reached, ``stopped_at`` why decoding stopped early at a limit, ``truncated`` a note when the file
    was cut short, and ``notes()`` all of these as one-line notes for a verdict."""

    def __init__(self, path: str | os.PathLike, fps: float = 15.0, sample_rate: int = 16000,
                 max_side: int = 1280, audio: bool = True, max_seconds: float = 0.0,
                 limits: Limits | None = None, skip_unused: bool = True) -> None:
        self.path = str(path)
        self.skip_unused = skip_unused  # leave unused non-reference frames undecoded (``_Skipper``)
        self.frames_skipped = 0  # packets sent to the decoder with skipping on (a reference frame decodes anyway)
        self.fps = float(fps)
        self.sample_rate = int(sample_rate)
        self.max_side = int(max_side)
        self.want_audio = audio
        self.max_seconds = float(max_seconds)
        self.limits = limits if limits is not None else Limits()
        self.error: str | None = None
        self.video_end = 0.0
        self.audio_end = 0.0
        self.frames_decoded = 0
        self.frames_out = 0
        self.audio_samples = 0
        self.has_audio = False
        self.stopped_at: str | None = None  # why decoding stopped at a time limit, if it did
        self._declared_video = 0.0  # the video stream's duration as its header declares it (0 = unknown)
        self._declared_all = 0.0  # the container's (all streams)
        self._audio_streams = 0
        self._notes: list[str] = []

    @property
    def truncated(self) -> str | None:
        """``truncated: decoded 1.2 s of 20.0 s`` when decoding ended well before the duration the headers
        declare (a file cut short: an interrupted upload or copy), else ``None``. Tolerant (0.5 s or 10 %) of
        headers that estimate the duration, and silent when decoding stopped at a limit."""
        if self.stopped_at:
            return None
        if self._declared_video > 0:
            reached, expected = self.video_end, self._declared_video
        elif self._declared_all > 0 and (self.has_audio or not self._audio_streams):
            reached, expected = max(self.video_end, self.audio_end), self._declared_all
        else:
            return None
        if reached >= expected - max(0.5, 0.1 * expected):
            return None
        return f"truncated: decoded {reached:.1f} s of {expected:.1f} s"

    def notes(self) -> list[str]:
        """What the verdict should say about how decoding went: a cut file, a limit reached, a decoding
        error (one line each)."""
        out = [n for n in (self.truncated, self.error) if n] + self._notes
        if self.stopped_at:
            out.append(self.stopped_at)
        return out

    def _check(self, container, vstream, astream) -> None:
        """Refuses, from the headers alone, a file that asks for more than ``limits`` allow."""
        lim = self.limits
        n = len(container.streams)
        if lim.max_streams and n > lim.max_streams:
            raise MediaError(f"{n} streams, over the limit of {lim.max_streams} (media.max_streams)")
        w, h = int(vstream.codec_context.width or 0), int(vstream.codec_context.height or 0)
        if lim.max_frame_pixels and w * h > lim.max_frame_pixels:
            raise MediaError(f"frames of {w}x{h} ({w * h / 1e6:.1f} MP), over the {lim.max_frame_pixels / 1e6:.1f} "
                             "MP limit (media.max_frame_pixels)")
        declared = max(self._declared_video, self._declared_all)
        if lim.max_duration and declared > lim.max_duration:
            raise MediaError(f"{_clock(declared)} long by its header, over the {_clock(lim.max_duration)} limit "
                             "(media.max_duration)")
        if astream is not None:
            sr, ch = int(astream.codec_context.sample_rate or 0), int(astream.codec_context.channels or 0)
            if lim.max_sample_rate and sr > lim.max_sample_rate:
                raise MediaError(f"audio at {sr} Hz, over the {lim.max_sample_rate} Hz limit "
                                 "(media.max_sample_rate)")
            if lim.max_channels and ch > lim.max_channels:
                raise MediaError(f"audio with {ch} channels, over the limit of {lim.max_channels} "
                                 "(media.max_channels)")
        if w * h:
            # fewer frame threads for very large frames: each thread holds frames of its own
            auto = min(16, _cores() + 1)  # what FFmpeg's thread_count=0 picks
            threads = max(1, min(auto, _DECODER_BUDGET // int(w * h * 1.5 * 4)))
            if _DECODE_THREADS:
                threads = min(threads, _DECODE_THREADS)
            if threads < auto:
                vstream.codec_context.thread_count = threads

    def __iter__(self) -> Iterator[VideoSample | AudioChunk]:
        container = _open(self.path, self.limits.max_file_bytes)
        try:
            if not container.streams.video:
                kind = ("audio-only file" if container.streams.audio else
                        "no audio or video stream: a file cut inside its header?")
                raise MediaError(f"no video stream ({kind})")
            vstream = container.streams.video[0]
            if vstream.codec_context is None:  # a codec id this FFmpeg has no decoder for (or a corrupt one)
                raise MediaError(f"no decoder for its video codec ({_codec_tag(vstream)})")
            fmt = container.format.name
            if fmt in ("image2", "image2pipe") or fmt.endswith("_pipe"):  # FFmpeg's demuxers of still images
                raise MediaError(f"a still image ({vstream.codec_context.name}), not a video")
            self._declared_video = _seconds(vstream.duration, vstream.time_base)
            self._declared_all = _seconds(container.duration, Fraction(1, av.time_base))
            self._audio_streams = len(container.streams.audio)
            astream = container.streams.audio[0] if (self.want_audio and container.streams.audio) else None
            if astream is not None and astream.codec_context is None:
                self._notes.append(f"audio not decoded: no decoder for its codec ({_codec_tag(astream)})")
                astream = None
            self._check(container, vstream, astream)
            vstream.thread_type = "AUTO"  # frame threads: decoding dominates preprocessing
            self.has_audio = astream is not None
            streams = [vstream] + ([astream] if astream is not None else [])
            yield from self._run(container, vstream, astream, streams)
        finally:
            container.close()

    def _time(self, frame: av.frame.Frame, stream: av.stream.Stream) -> float | None:
        if frame.pts is None:
            return None
        tb = frame.time_base or stream.time_base
        return float(frame.pts * tb) if tb else None

    def _run(self, container, vstream, astream, streams) -> Iterator[VideoSample | AudioChunk]:
        skipper = (_Skipper(vstream) if self.skip_unused and vstream.codec_context.name in _Skipper.CODECS
                   and vstream.time_base else None)
        origin: float | None = None  # time of the first video frame: zero of the output clock
        pending_audio: list[tuple[float, np.ndarray]] = []  # audio decoded before the first video frame
        resampler = None
        audio_next: float | None = None  # expected start of the next audio chunk (output clock)
        prev: tuple[float, av.VideoFrame] | None = None
        prev_img: np.ndarray | None = None
        prev_dur = 1.0 / self.fps
        k = 0
        caps = [(self.max_seconds, "preprocess.max_seconds"), (self.limits.max_duration, "media.max_duration")]
        limit, limit_name = min(((c, n) for c, n in caps if c > 0), default=(math.inf, ""))
        max_pixels = self.limits.max_frame_pixels
        declared = max(self._declared_video, self._declared_all)
        pending_samples = 0
        nominal = 1.0 / float(vstream.average_rate) if vstream.average_rate else 1.0 / self.fps

        def emit_until(t_new: float) -> Iterator[VideoSample]:
            """Emits output frames k whose time is before t_new (the next source frame's time)."""
            nonlocal k, prev_img
            t_prev, f_prev = prev
            while k / self.fps + _EPS < t_new and k / self.fps < limit:
                tk = k / self.fps
                if tk + _EPS >= t_prev:
                    if prev_img is None:
                        prev_img = LazyFrame(f_prev, self.max_side)
                    self.frames_out += 1
                    yield VideoSample(index=k, time=tk, frame=prev_img)
                k += 1

        def audio_items(t_in: float | None, samples: np.ndarray) -> Iterator[AudioChunk]:
            nonlocal audio_next
            if samples.size == 0:
                return
            if audio_next is None:
                audio_next = (t_in - origin) if t_in is not None else 0.0
            elif t_in is not None:
                # A gap in the audio track (dropped packets, VFR audio): pad with silence so that later
                # samples stay on the video clock. Small drifts from resampler delay are ignored.
                gap = (t_in - origin) - audio_next
                if gap > 0.1:
                    pad = np.zeros(int(round(gap * self.sample_rate)), np.float32)
                    yield AudioChunk(audio_next, pad)
                    audio_next += pad.size / self.sample_rate
            start = audio_next
            if start < 0:  # audio before the first frame: drop it
                drop = min(samples.size, int(round(-start * self.sample_rate)))
                samples = samples[drop:]
                start += drop / self.sample_rate
            audio_next = start + samples.size / self.sample_rate
            if samples.size:
                self.audio_samples += samples.size
                self.audio_end = audio_next
                yield AudioChunk(start, samples)

        def unused(pts: int, after: tuple[int, int]) -> bool:
            """Whether the frame with ``pts``, followed on screen by frames ``after``, is never emitted: no output
            time k / fps falls in its span (``emit_until``'s own test), and neither it nor the next two are
            near a point where decoding stops (so the stop, ``prev_dur`` and ``video_end`` stay the same)."""
            tb = vstream.time_base
            t0 = float(pts * tb) - origin
            t1 = float(after[0] * tb) - origin
            t2 = float(after[1] * tb) - origin
            if t0 < 0 or not t2 < limit or declared and t2 > max(2 * declared, declared + _OVERRUN_S):
                return False
            j = max(0, math.floor((t0 - _EPS) * self.fps) - 1)
            while j / self.fps + _EPS < t1:
                if j / self.fps + _EPS >= t0:
                    return False
                j += 1
            return True

        def resample(frame: av.AudioFrame | None) -> np.ndarray:
            nonlocal resampler
            if resampler is None:
                resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
            outs = resampler.resample(frame)
            if not outs:
                return np.zeros(0, np.float32)
            return np.concatenate([o.to_ndarray().reshape(-1) for o in outs]).astype(np.float32, copy=False)

        packets = skipper.demux(container, streams) if skipper is not None else (
            (p, None) for p in container.demux(*streams))
        try:
            for packet, after in packets:
                if packet.stream.type == "video":
                    if skipper is not None:
                        skip = after is not None and origin is not None and skipper.trusted and unused(packet.pts, after)
                        skipper.submit(packet.pts, skip)
                        self.frames_skipped += skip
                    for frame in packet.decode():
                        if max_pixels and frame.width * frame.height > max_pixels:
                            raise MediaError(f"a frame of {frame.width}x{frame.height} at {self.video_end:.2f} s, "
                                             f"over the {max_pixels / 1e6:.1f} MP limit (media.max_frame_pixels)")
                        t = self._time(frame, vstream)
                        if skipper is not None:
                            skipper.output(frame, t is not None and (prev is None or t - (origin or 0.0) > prev[0]))
                        if t is None:
                            t = (prev[0] + prev_dur) if prev else 0.0
                        self.frames_decoded += 1
                        if origin is None:
                            origin = t
                            for ta, s in pending_audio:
                                yield from audio_items(ta, s)
                            pending_audio.clear()
                        t -= origin
                        if declared and t > max(2 * declared, declared + _OVERRUN_S):
                            # a timestamp far past what the header declares (a corrupt or crafted file): the
                            # frame before it would be repeated up to here, costing time for nothing
                            self.stopped_at = (f"timestamps jump to {_clock(t)}, past the {_clock(declared)} the "
                                               "header declares: the rest of the file was not decoded")
                            break
                        if prev is not None:
                            if t <= prev[0]:  # out-of-order or duplicate timestamp: keep the first
                                continue
                            prev_dur = t - prev[0]
                            yield from emit_until(t)
                        prev, prev_img = (t, frame), None
                        self.video_end = t
                        if t >= limit:
                            self.stopped_at = (f"stopped at the {_clock(limit)} limit ({limit_name}): the rest "
                                               "of the file was not decoded")
                            break
                    else:
                        continue
                    break
                elif packet.stream.type == "audio" and astream is not None:
                    for frame in packet.decode():
                        ta = self._time(frame, astream)
                        try:
                            samples = resample(frame)
                        except (av.error.FFmpegError, ValueError) as e:
                            raise MediaError(f"unsupported audio ({_one_line(e)})") from None
                        if origin is None:
                            pending_audio.append((ta, samples))
                            pending_samples += samples.size
                            if pending_samples > _MAX_PENDING_AUDIO_S * self.sample_rate:
                                raise MediaError(f"no video frame in the first {_MAX_PENDING_AUDIO_S:.0f} s of "
                                                 "audio")
                        else:
                            yield from audio_items(ta, samples)
        except av.error.FFmpegError as e:
            self.error = f"decoding stopped at {self.video_end:.2f} s ({_one_line(e)})"
        if prev is not None:
            dur = prev_dur if prev_dur > 0 else nominal
            yield from emit_until(min(prev[0] + dur, limit))
            self.video_end = min(prev[0] + dur, limit)  # output frames stop at the limit
        if origin is not None and resampler is not None:
            try:
                yield from audio_items(None, resample(None))
            except av.error.FFmpegError:
                pass


def read_all(path: str | os.PathLike, fps: float = 15.0, sample_rate: int = 16000, max_side: int = 1280,
             audio: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Convenience for short clips and tests: all frames ``(N, H, W, 3)``, the waveform, and the fps.
    Holds everything in memory; preprocessing uses the streaming ``MediaReader`` instead."""
    frames: list[np.ndarray] = []
    chunks: list[tuple[float, np.ndarray]] = []
    for item in decode(path, fps=fps, sample_rate=sample_rate, max_side=max_side, audio=audio):
        if isinstance(item, VideoSample):
            frames.append(item.image)
        else:
            chunks.append((item.time, item.samples))
    wave = np.zeros(0, np.float32)
    if chunks:
        end = max(int(round(t * sample_rate)) + s.size for t, s in chunks)
        wave = np.zeros(end, np.float32)
        for t, s in chunks:
            i = int(round(t * sample_rate))
            wave[i:i + s.size] = s
    stack = np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
    return stack, wave, fps


def write_video(
    path: str | os.PathLike,
    frames,
    fps: float = 25.0,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    audio_channels: int = 1,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    crf: int = 20,
    rotation: int = 0,
    pix_fmt: str = "yuv420p",
    frame_times: list[float] | None = None,
    reproducible: bool = False,
) -> None:
    """Encodes RGB frames (an iterable of ``(H, W, 3)`` uint8) and an optional waveform into a file.

    Used by the built-in benchmark, tests and benchmarks. ``audio`` is ``(n,)`` or ``(n, channels)`` float
    in [-1, 1]. ``rotation`` writes a display matrix (a phone clip stored sideways). ``frame_times`` gives
    each frame's presentation time in seconds, for variable-frame-rate clips. ``reproducible``: the same
    bytes every time. By default libx264's macroblock-tree rate control makes the first encode in a process
    differ from later ones of the same frames (by tens of levels in decoded pixels on a noisy clip); this turns
    it off, fixes the encoders' thread counts and makes the muxer bit-exact (Matroska otherwise writes random
    UIDs).
    """
    rate = Fraction(fps).limit_denominator(1001)
    fixed = {"threads": "2"} if reproducible else {}
    with av.open(str(path), mode="w", options={"fflags": "+bitexact"} if reproducible else {}) as out:
        vs = None
        if audio is not None:
            layout = "mono" if audio_channels == 1 else "stereo"
            as_ = out.add_stream(audio_codec, rate=sample_rate, layout=layout)
        for i, img in enumerate(frames):
            if vs is None:
                h, w = img.shape[:2]
                vs = out.add_stream(video_codec, rate=rate)
                vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
                if video_codec in ("libx264", "h264"):
                    vs.options = {"crf": str(crf), "preset": "veryfast",
                                  **({**fixed, "x264-params": "mbtree=0"} if reproducible else {})}
                elif video_codec in ("libvpx-vp9", "libvpx"):
                    vs.options = {"crf": str(crf + 10), "b": "0", "deadline": "realtime", "cpu-used": "8", **fixed}
                if frame_times is not None:
                    vs.codec_context.time_base = Fraction(1, 1000)
                if rotation:
                    vs.set_display_rotation(rotation)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if frame_times is not None:
                frame.pts = int(round(frame_times[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in vs.encode(frame):
                out.mux(packet)
        if vs is not None:
            for packet in vs.encode():
                out.mux(packet)
        if audio is not None:
            wave = np.asarray(audio, np.float32)
            if wave.ndim == 1:
                wave = wave[:, None]
            wave = np.clip(wave, -1.0, 1.0)
            fmt = as_.codec_context.format.name if as_.codec_context.format else "fltp"
            step = as_.codec_context.frame_size or 1024
            for start in range(0, wave.shape[0], step):
                chunk = wave[start:start + step]
                if fmt.endswith("p"):
                    arr = np.ascontiguousarray(chunk.T)
                else:
                    arr = np.ascontiguousarray(chunk.reshape(1, -1))
                af = av.AudioFrame.from_ndarray(arr.astype(np.float32) if "flt" in fmt else
                                                (arr * 32767).astype(np.int16), format=fmt,
                                                layout=as_.layout.name)
                af.sample_rate = sample_rate
                af.pts = start
                af.time_base = Fraction(1, sample_rate)
                for packet in as_.encode(af):
                    out.mux(packet)
            for packet in as_.encode():
                out.mux(packet)


class Prefetch:
    """Iterates ``source`` in a background thread, ``size`` items ahead.

    Decoding (FFmpeg, which releases the GIL) then overlaps with the consumer's face detection and
    cropping (OpenCV and MediaPipe, which release it too), so one video's wall time approaches the larger
    of the two instead of their sum. Exceptions are re-raised in the consumer; closing the iterator early
    stops the thread.
    """

    _END = object()

    def __init__(self, source, size: int = 8) -> None:
        import queue
        import threading

        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._source = source
        self._thread = threading.Thread(target=self._run, daemon=True, name="dfdetect-decode")
        self._thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._put(("error", e))

    def __iter__(self):
        try:
            while True:
                kind, value = self._q.get()
                if kind == "item":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
