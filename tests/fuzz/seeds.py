"""A seed corpus of small valid clips for fuzzing the path from bytes to windows, made with PyAV.

Each seed is a real encode (a second or two of a face photograph moving, a tone), a few KB: mp4 (H.264 +
AAC), webm (VP9 + Opus), mkv (H.264 + FLAC, variable frame rate), mov (H.264 + AAC, a display rotation),
avi (MJPEG, no audio, odd size: the eager RGB branch), wav (audio only) and png (a still image). Generating
them takes about a second, so none is committed: ``make_seeds(folder)`` writes them where they are needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np

SIDE = 64


def _frames(n: int, size: tuple[int, int] = (SIDE, SIDE)) -> list[np.ndarray]:
    import cv2

    from dfdetect.sample_media import face_photo

    face = cv2.resize(face_photo("astronaut")[20:260, 140:380], size, interpolation=cv2.INTER_AREA)
    return [np.roll(face, i % 5, axis=1) for i in range(n)]


def _tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    w = 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return np.stack([w] * channels, 1) if channels > 1 else w


def make_seeds(folder: str | Path) -> list[Path]:
    """Writes the seed clips into ``folder`` (created) and returns their paths. Deterministic bytes."""
    from dfdetect.media import write_video

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    def clip(name: str, **kw) -> None:
        p = out / name
        write_video(p, reproducible=True, **kw)
        paths.append(p)

    clip("h264_aac.mp4", frames=_frames(18), fps=12, audio=_tone(1.5, 16000), sample_rate=16000, crf=35)
    clip("vp9_opus.webm", frames=_frames(18), fps=12, audio=_tone(1.5, 48000), sample_rate=48000,
         video_codec="libvpx-vp9", audio_codec="libopus", crf=40)
    clip("h264_flac_vfr.mkv", frames=_frames(16), fps=12, audio=_tone(1.5, 22050, 2), sample_rate=22050,
         audio_channels=2, audio_codec="flac", crf=38, frame_times=[i / 12 + (0.03 if i % 3 else 0) for i in range(16)])
    clip("h264_aac_rot90.mov", frames=_frames(14), fps=10, audio=_tone(1.4, 44100), sample_rate=44100, crf=38,
         rotation=90)
    clip("mjpeg_odd.avi", frames=_frames(12, (63, 47)), fps=8, video_codec="mjpeg", pix_fmt="yuvj422p")
    wav = out / "tone.wav"
    with av.open(str(wav), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000, layout="mono")
        f = av.AudioFrame.from_ndarray((_tone(0.3, 8000)[None] * 32767).astype(np.int16), format="s16",
                                       layout="mono")
        f.sample_rate, f.pts = 8000, 0
        for p in list(s.encode(f)) + list(s.encode()):
            c.mux(p)
    paths.append(wav)
    png = out / "still.png"
    import cv2

    cv2.imwrite(str(png), _frames(1, (32, 32))[0][..., ::-1])
    paths.append(png)
    return paths


if __name__ == "__main__":
    for path in make_seeds(sys.argv[1] if len(sys.argv) > 1 else "fuzz_corpus"):
        print(f"{path.stat().st_size:7d}  {path}")
