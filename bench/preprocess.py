"""Preprocessing speed and memory on a generated 1280x720 25 fps H.264 + AAC talking-head clip.

    python bench/preprocess.py              # 30 s and 5 min clips (about 4 minutes on 2 cores)
    python bench/preprocess.py --quick      # 10 s and 60 s clips
    python bench/preprocess.py --repeats 3  # medians of 3 runs of each figure (a busy machine)

Prints: decode-only seconds (PyAV decoding every packet of both streams), full preprocessing seconds for one
video in one process (decode + resample + detect/track + crop + zlib + TFRecord), their ratio (target <= 1.5),
how many frames full preprocessing decoded (it leaves unused non-reference frames undecoded: media._Skipper),
video-seconds processed per wall-second by `preprocess` with 2 workers, process start-up included (target
>= 15), and the peak RSS of one process preprocessing the short clip and the long one (target: long <= 1.2 x
short, i.e. streaming). The time of day and the load average are printed with them: other work on the machine
moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")


def make_clip(path: Path, seconds: float) -> Path:
    import numpy as np

    from dfdetect.media import write_video
    from dfdetect.sample_media import moving_face_frames, tone

    fps = 25
    n = int(seconds * fps)
    period = 250  # frames of motion generated once and replayed (generation is not what we measure)
    frames, _ = moving_face_frames("astronaut", n=period, size=(1280, 720), scale=1.4)
    rng = np.random.default_rng(0)
    # Camera footage carries sensor noise that changes every frame; without it an H.264 clip of a still
    # background is unrealistically cheap to decode. Eight noise fields, cycled, stand in for it.
    noise = [rng.integers(0, 10, (720, 1280, 3), dtype=np.uint8) for _ in range(8)]
    voice = tone(10.0)
    audio = np.tile(voice, int(np.ceil(seconds / 10.0)))[: int(seconds * 16000)]

    def gen():
        for i in range(n):
            yield frames[i % period] + noise[i % len(noise)]

    write_video(path, gen(), fps=fps, audio=audio, crf=23)
    return path


def decode_only(path: Path) -> float:
    import av

    t = time.perf_counter()
    with av.open(str(path)) as c:
        c.streams.video[0].thread_type = "AUTO"
        for packet in c.demux(c.streams.video[0], c.streams.audio[0]):
            for _ in packet.decode():
                pass
    return time.perf_counter() - t


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM, which starts again at exec. (ru_maxrss does not: a child started by
    subprocess inherits its parent's over exec, and this bench's parent holds the generated clips' frames, so
    both clips used to read the parent's ~1 GB.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: kB on Linux, bytes on macOS


def one_video(path: str) -> dict:
    """Runs in a fresh process: full preprocessing of one video, its time and peak RSS."""
    from dfdetect import windows
    from dfdetect.config import get_config
    from dfdetect.preprocess import _close_worker, _init_worker, process_video
    from dfdetect.records import VideoRecord

    readers = []

    class Reader(windows.MediaReader):  # to count the frames decoded
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            readers.append(self)

    windows.MediaReader = Reader
    cfg = get_config("cpu-small")
    _init_worker(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = process_video(VideoRecord(path=path), cfg, str(Path(tmp) / "w.tfrecord"))
        seconds = time.perf_counter() - t
    _close_worker()
    rss_mb = peak_rss_mb()
    return {"seconds": seconds, "rss_mb": rss_mb, "windows": res["windows"], "status": res["status"],
            "face_ratio": res["face_ratio"], "decoded": sum(r.frames_decoded for r in readers),
            "tensorflow": "tensorflow" in sys.modules}


def frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)


def median_run(fn, repeats: int):
    """``fn()`` run ``repeats`` times: the run with the median seconds (a dict's "seconds", or a float)."""
    runs = [fn() for _ in range(repeats)]
    key = (lambda r: r["seconds"]) if isinstance(runs[0], dict) else (lambda r: r)
    return sorted(runs, key=key)[(len(runs) - 1) // 2]


def when() -> str:
    one, five, _ = os.getloadavg()
    return f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def in_subprocess(path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 s and 60 s clips instead of 30 s and 5 min")
    ap.add_argument("--repeats", type=int, default=1, help="run each figure this many times, print the medians")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_video(args.one)))
        return

    short_s, long_s = (10.0, 60.0) if args.quick else (30.0, 300.0)
    reps = max(1, args.repeats)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        print(f"generating 1280x720 25 fps H.264+AAC clips: {short_s:g} s and {long_s:g} s ...", flush=True)
        short = make_clip(tmp / "short.mp4", short_s)
        long = make_clip(tmp / "long.mp4", long_s)

        start = when()
        print(f"measuring from {start}", flush=True)
        decode_only(short)  # warm the page cache
        dec = median_run(lambda: min(decode_only(short) for _ in range(2)), reps)
        dec_long = median_run(lambda: decode_only(long), reps)
        full_short = median_run(lambda: in_subprocess(short), reps)
        full_long = median_run(lambda: in_subprocess(long), reps)
        ratio = full_short["seconds"] / dec
        ratio_long = full_long["seconds"] / dec_long
        frames_short, frames_long = frame_count(short), frame_count(long)

        from dfdetect.config import get_config
        from dfdetect.preprocess import preprocess

        copies = []
        for i in range(4):
            p = tmp / f"copy{i}.mp4"
            os.link(short, p)
            copies.append(p)
        def throughput_run() -> float:
            out = tmp / f"out-{time.monotonic_ns()}"
            t = time.perf_counter()
            summary = preprocess(copies, out, config=get_config("cpu-small"), workers=2, progress=False)
            wall = time.perf_counter() - t
            assert summary.ok == 4, summary.failures
            return wall

        wall = median_run(throughput_run, reps)
        throughput = 4 * short_s / wall
        end = when()

    cores = os.cpu_count()
    print(f"\nmachine: {cores} cores; preset cpu-small (15 fps, 2 s windows, 112 px crops)"
          + (f"; medians of {reps} runs" if reps > 1 else ""))
    print(f"measured from {start}\n         to   {end}")
    print(f"decode only ({short_s:g} s clip):            {dec:7.2f} s")
    print(f"full preprocessing ({short_s:g} s clip, 1 proc): {full_short['seconds']:7.2f} s  "
          f"({full_short['windows']} windows, face ratio {full_short['face_ratio']:.2f})")
    print(f"ratio full / decode:                 {ratio:7.2f}   (target <= 1.5)")
    print(f"frames decoded by full preprocessing: {full_short['decoded']} of {frames_short} ({short_s:g} s clip), "
          f"{full_long['decoded']} of {frames_long} ({long_s:g} s clip); TensorFlow imported: "
          f"{'yes' if full_short['tensorflow'] else 'no'}")
    print(f"same on the {long_s:g} s clip:              {ratio_long:7.2f}   "
          f"({full_long['seconds']:.1f} s vs {dec_long:.1f} s decode only)")
    print(f"throughput, 2 workers, 4 clips:      {throughput:7.1f} video-s per wall-s   (target >= 15; "
          f"{wall:.1f} s for 4 x {short_s:g} s)")
    print(f"peak RSS, {short_s:g} s clip:                {full_short['rss_mb']:7.0f} MB")
    print(f"peak RSS, {long_s:g} s clip:               {full_long['rss_mb']:7.0f} MB  "
          f"({full_long['seconds']:.1f} s, {full_long['windows']} windows)")
    print(f"RSS ratio long / short:              {full_long['rss_mb'] / full_short['rss_mb']:7.2f}   "
          f"(target <= 1.2)")


if __name__ == "__main__":
    main()
