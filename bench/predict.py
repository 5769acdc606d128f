"""Prediction speed: a 10 s 1280x720 25 fps H.264+AAC talking-head clip.

    python bench/predict.py [--model DIR]     # default: the latest export under saved_models/

Prints the seconds `Detector.predict_video` takes with the model already loaded (target <= 1.5 s on 2 cores),
and the wall time of the whole `dfdetect predict` command from a cold start (Python, TensorFlow, MediaPipe and
the model loaded from scratch).

    python bench/predict.py --batch [N] [--model DIR] [--workers W[,W...]] [--repeats R] [--clips DIR]

Batch throughput (issue #16): N clips of the built-in benchmark (`synthesize(n=N, seed=0)`, default 50; or the
videos under --clips), the model loaded once, scored serially (`iter_verdicts(workers=0)`: decode, track, score,
one video after another) and overlapped (`iter_verdicts(workers=W)`, default `dfdetect.batch.DEFAULT_WORKERS`:
worker processes decode and track while this one scores; `--workers 1,2` compares several), R times each,
interleaved. Prints videos/s for each (worker start-up included), each one's ratio to serial (target >= 1.5 on
2 cores), whether they gave the same verdicts (scores within 1e-6), and a profile: the seconds decoding + face tracking alone and scoring alone take in this process,
the CPU time of each run, and how long the main process waited for windows. Figures from the built-in benchmark
are a pipeline check, never a claim about real-world deepfakes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as dfdetect.quiet: TF logs notices as errors
sys.path.insert(0, str(Path(__file__).resolve().parent))


def same_verdicts(a, b, tol: float = 1e-6) -> list[str]:
    """Where two lists of verdicts differ (status, reason of a failure, label, segments, scores beyond ``tol``);
    empty when they agree."""
    diffs = []
    for x, y in zip(a, b, strict=True):
        if (x.path, x.status, x.label, x.windows) != (y.path, y.status, y.label, y.windows):
            diffs.append(f"{x.path}: {(x.status, x.label, x.windows)} vs {(y.status, y.label, y.windows)}")
            continue
        if x.status != "ok":
            if x.reason != y.reason:
                diffs.append(f"{x.path}: reason {x.reason!r} vs {y.reason!r}")
            continue
        for k in ("score", "video_fake", "audio_fake", "av_mismatch", "familiarity"):
            p, q = getattr(x, k), getattr(y, k)
            if (p is None) != (q is None) or (p is not None and abs(p - q) > tol):
                diffs.append(f"{x.path}: {k} {p} vs {q}")
        if len(x.segments) != len(y.segments) or any(
                s["modality"] != t["modality"] or abs(s["start"] - t["start"]) > tol or
                abs(s["end"] - t["end"]) > tol for s, t in zip(x.segments, y.segments)):
            diffs.append(f"{x.path}: segments {x.segments} vs {y.segments}")
    return diffs


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (the workers, once joined)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def batch(args: argparse.Namespace) -> None:
    """``--batch``: serial against overlapped on the same clips, the model loaded once."""
    import statistics

    from dfdetect.batch import DEFAULT_WORKERS, BatchStats, iter_verdicts
    from dfdetect.media import VIDEO_EXTENSIONS
    from dfdetect.predict import Detector
    from dfdetect.synth import synthesize
    from dfdetect.windows import VideoSummary, extract_windows

    counts = [DEFAULT_WORKERS] if args.workers is None else [int(w) for w in args.workers.split(",")]
    modes = {"serial": 0, **{f"{w} worker{'s' * (w > 1)}": w for w in counts}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.clips) if args.clips else Path(tmp) / "clips"
        if not args.clips:
            t = time.perf_counter()
            synthesize(root, n=args.batch, seed=0, workers=2, progress=False)
            print(f"generated {args.batch} benchmark clips in {time.perf_counter() - t:.0f} s")
        clips = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)[: args.batch]
        with Detector(args.model) as det:
            det.predict_video(clips[0])  # warm-up: graph tracing, detector start
            runs: dict[str, list[float]] = {k: [] for k in modes}
            cpu: dict[str, list[float]] = {k: [] for k in modes}
            verdicts: dict[str, list] = {}
            stats: dict[str, BatchStats] = {}
            for _ in range(args.repeats):  # interleaved: the cores are shared, load drifts
                for name, w in modes.items():
                    st = stats[name] = BatchStats()
                    c, t = cpu_seconds(), time.perf_counter()
                    verdicts[name] = list(iter_verdicts(det, clips, workers=w, stats=st))
                    runs[name].append(time.perf_counter() - t)
                    cpu[name].append(cpu_seconds() - c)
            # profile: each stage alone in this process, over the same clips
            cfg = det.scan_config()
            t = time.perf_counter()
            cut = []
            for p in clips:
                summary = VideoSummary()
                try:
                    cut.append((p, list(extract_windows(str(p), cfg, det.faces, summary)), summary))
                except Exception:  # noqa: BLE001 - a bad clip: scored as failed in the runs above
                    pass
            decode_alone = time.perf_counter() - t
            t = time.perf_counter()
            for p, ws, summary in cut:
                det.predict_windows(p, iter(ws), summary)
            score_alone = time.perf_counter() - t
            model_dir = det.model_dir
    n = len(clips)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (shared); model {model_dir}")
    print(f"{n} benchmark clips (a pipeline check, not a claim about real-world deepfakes), "
          f"{sum(v.windows for v in verdicts['serial'])} windows; median of {args.repeats} interleaved run(s)")
    for k in runs:
        pairs = [a / b for a, b in zip(runs["serial"], runs[k])]  # each run against the serial run beside it
        ratio = "" if k == "serial" else (f"  ratio {med['serial'] / med[k]:.2f}x (run by run "
                                          f"{', '.join(f'{r:.2f}' for r in pairs)}; target >= 1.5)")
        print(f"  {k:10s} {n / med[k]:6.2f} videos/s  ({med[k]:.1f} s; runs "
              f"{', '.join(f'{x:.1f}' for x in runs[k])} s; CPU {statistics.median(cpu[k]):.1f} s){ratio}")
    for k in list(modes)[1:]:
        diffs = same_verdicts(verdicts["serial"], verdicts[k])
        print(f"  verdicts, serial vs {k}: {'the same (scores within 1e-6)' if not diffs else f'{len(diffs)} DIFFER'}")
        for d in diffs[:10]:
            print(f"    {d}")
    print(f"profile: decoding + face tracking alone {decode_alone:.1f} s, scoring alone {score_alone:.1f} s "
          f"(sum {decode_alone + score_alone:.1f} s; perfect overlap would take the larger)")
    for k in list(modes)[1:]:
        st = stats[k]
        print(f"  last run with {k}: the main process waited {st.wait_s:.1f} s for windows; workers cut "
              f"windows for {st.decode_s:.1f} s; {st.in_process} video(s) cut in the main process while the "
              f"workers started; {st.respawns} respawns")

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="exported model folder")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, nargs="?", const=50, metavar="N",
                    help="batch throughput on N benchmark clips (default 50): serial against overlapped")
    ap.add_argument("--workers", help="--batch: decoding worker processes, or several to compare (1,2); "
                                      "default: dfdetect.batch.DEFAULT_WORKERS")
    ap.add_argument("--repeats", type=int, default=1, help="--batch: interleaved runs of each (median shown)")
    ap.add_argument("--clips", help="--batch: score the videos under this folder instead of generating them")
    args = ap.parse_args()
    if args.batch is not None:
        batch(args)
        return

    from preprocess import make_clip  # bench/preprocess.py: the same generated 720p clip

    from dfdetect.predict import Detector

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds)
        with Detector(args.model) as det:
            det.predict_video(clip)  # warm-up: graph tracing, detector start
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                v = det.predict_video(clip)
                runs.append(time.perf_counter() - t)
            model_dir = det.model_dir
        cmd = [sys.executable, "-m", "dfdetect.cli", "predict", str(clip), "--model", str(model_dir), "--json"]
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        cold = time.perf_counter() - t
        assert out.returncode == 0, out.stderr[-2000:]
    print(f"\nmachine: {os.cpu_count()} cores; model {model_dir}")
    print(f"predict_video, {args.seconds:g} s 1280x720 clip, model loaded: {min(runs):.2f} s "
          f"(best of 3; {v.windows} windows)   (target <= 1.5 s)")
    print(f"dfdetect predict, cold start, same clip:    {cold:.2f} s")


if __name__ == "__main__":
    main()
