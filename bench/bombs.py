"""Resource bombs (issue #17): each generated here, small on disk, then cut into windows in a fresh process.

    python bench/bombs.py [--out DIR] [--preset smoke] [--only huge_frame,long_duration]

Prints per bomb the status and reason, the seconds ``extract_windows`` took, the child process's peak RSS
(its own ``VmHWM``: Python, MediaPipe and decoding together, what a worker costs) and the peak RSS
while cutting this file (the high-water mark reset after start-up, through ``/proc/self/clear_refs``). The target (issue #17): each handled in under 60 s
with peak RSS under 2 GB per worker. The bombs:

* ``huge_frame``: 8192x8192 H.264 (two frames): refused from the stream header (``media.max_frame_pixels``);
* ``8k_frames``: 7680x4320 H.264 (2 s at 5 fps), the largest frame allowed by default: decoded, downscaled;
  the one that measures peak memory when decoding large frames;
* ``long_duration``: a 16x16 clip ten hours long (one frame a minute), 20 KB: refused from the header
  (``media.max_duration``);
* ``hires_audio``: 384 kHz 8-channel PCM beside a small video: resampled to 16 kHz mono;
* ``many_streams``: a small video with 200 audio streams: refused (``media.max_streams``);
* ``big_file``: a valid clip followed by a sparse hole to 9 GB (no disk used): refused by its size
  (``preprocess.max_file_gb``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _yuv_clip(path: Path, w: int, h: int, n: int, fps: float = 5, audio: dict | None = None,
              extra_audio_streams: int = 0, pts_step: int = 1) -> Path:
    """An H.264 clip of ``n`` frames (stripes that move, ultrafast: cheap to encode at any size), optionally
    with PCM audio ``{"rate": .., "channels": .., "seconds": ..}`` and more (silent) audio streams."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        if pts_step != 1:
            vs.codec_context.time_base = Fraction(1, 1000)
        streams = []
        if audio:
            layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}[audio["channels"]]
            streams.append((out.add_stream("pcm_s16le", rate=audio["rate"], layout=layout), audio))
        for _ in range(extra_audio_streams):
            streams.append((out.add_stream("pcm_s16le", rate=8000, layout="mono"),
                            {"rate": 8000, "channels": 1, "seconds": n / fps}))
        y = np.full((h * 3 // 2, w), 128, np.uint8)
        for i in range(n):
            y[:h] = 96
            y[(i * 8) % 64:h:64] = 220
            f = av.VideoFrame.from_ndarray(y, format="yuv420p")
            if pts_step != 1:
                f.pts, f.time_base = int(i * pts_step * 1000), Fraction(1, 1000)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        for s, a in streams:
            total, ch, step = int(a["seconds"] * a["rate"]), a["channels"], 4096
            t = np.arange(total) / a["rate"]
            wave = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
            for start in range(0, total, step):
                chunk = np.repeat(wave[start:start + step][None], ch, 0).T.reshape(1, -1)
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="s16", layout=s.layout.name)
                f.sample_rate, f.pts, f.time_base = a["rate"], start, Fraction(1, a["rate"])
                for p in s.encode(f):
                    out.mux(p)
            for p in s.encode():
                out.mux(p)
    return path


def make(kind: str, folder: str | Path) -> Path:
    """Writes bomb ``kind`` into ``folder`` and returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "huge_frame":
        return _yuv_clip(folder / "huge_frame.mp4", 8192, 8192, 2)
    if kind == "8k_frames":
        return _yuv_clip(folder / "8k_frames.mp4", 7680, 4320, 10)
    if kind == "long_duration":
        return _yuv_clip(folder / "long_duration.mkv", 16, 16, 601, fps=Fraction(1, 60), pts_step=60)
    if kind == "hires_audio":
        return _yuv_clip(folder / "hires_audio.mkv", 64, 64, 15, audio={"rate": 384000, "channels": 8,
                                                                         "seconds": 3.0})
    if kind == "many_streams":
        return _yuv_clip(folder / "many_streams.mkv", 64, 64, 10, extra_audio_streams=200)
    if kind == "big_file":
        path = _yuv_clip(folder / "big_file.mp4", 64, 64, 10)
        with open(path, "r+b") as f:
            f.truncate(9 * 10**9)  # sparse: no blocks written
        return path
    raise ValueError(f"unknown bomb {kind!r}; known: {', '.join(BOMBS)}")


BOMBS = ("huge_frame", "8k_frames", "long_duration", "hires_audio", "many_streams", "big_file")

_CHILD = r"""
import json, resource, sys, time
from dfdetect.config import load_config
from dfdetect.faces import FaceDetector
from dfdetect.media import MediaError
from dfdetect.windows import VideoSummary, extract_windows
config = load_config(sys.argv[2], json.loads(sys.argv[3]))
det = FaceDetector(config.faces)


def hwm():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so a child would inherit its parent's peak
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


base = hwm()

try:  # reset the high-water mark, so that what extraction itself peaks at is seen (Linux)
    open("/proc/self/clear_refs", "w").write("5")
    reset = True
except OSError:
    reset = False
t = time.monotonic()
summary = VideoSummary()
try:
    n = sum(1 for _ in extract_windows(sys.argv[1], config, det, summary))
    status, reason = "ok", "; ".join(summary.warnings)
except MediaError as e:
    status, reason, n = "failed", str(e), 0
took = time.monotonic() - t
print(json.dumps({"status": status, "reason": reason, "windows": n, "seconds": round(took, 2),
                  "frames": summary.frames, "duration": round(summary.duration, 2),
                  "peak_rss_mb": round(max(base, hwm()) / 1024, 1),
                  "rss_before_mb": round(base / 1024, 1),
                  "extract_peak_mb": round(hwm() / 1024, 1) if reset else None}))
"""


def run_child(path: str | Path, preset: str = "smoke", overrides: list[str] | None = None,
              timeout: float = 300) -> dict:
    """Cuts ``path`` into windows in a fresh Python process; returns its result, wall time and peak RSS
    (``VmHWM`` of that process: everything it loaded and decoded). A child that dies is ``failed``
    with how it died, as a worker that dies in a preprocessing run is."""
    t = time.monotonic()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), preset, json.dumps(overrides or [])],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    wall = round(time.monotonic() - t, 2)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
        return {"status": "failed", "reason": f"worker process died (exit {proc.returncode}): {tail}",
                "wall": wall}
    return {**json.loads(lines[-1]), "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="keep the bombs here (default: a temporary folder)")
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--only", default=",".join(BOMBS))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        print(f"{'bomb':14} {'size':>9} {'status':7} {'s':>6} {'peak RSS':>9} {'in extract':>10}  reason")
        for kind in args.only.split(","):
            path = make(kind, folder)
            r = run_child(path, args.preset)
            size = path.stat().st_size
            print(f"{kind:14} {size / 1e6:8.2f}M {r['status']:7} {r.get('seconds', r['wall']):6.2f} "
                  f"{r.get('peak_rss_mb', 0):7.0f}MB {r.get('extract_peak_mb') or 0:8.0f}MB  {r['reason'] or '-'}",
                  flush=True)
            if kind == "big_file":
                path.unlink()


if __name__ == "__main__":
    main()
