"""Start-up of `dfdetect predict` on a 10 s 1280x720 25 fps H.264+AAC talking-head clip (issue #16).

    python bench/startup.py --model DIR [--repo DIR] [--fmt tflite|keras|saved_model] [--threads N] [--runs 3]

Prints, for a cold process:
  * the import time per top-level package (``python -X importtime`` of the whole cold command, self times
    summed per package);
  * the phases of one cold prediction in a fresh interpreter: interpreter start, imports, model load (the
    Detector less its face detector), face detector, first window scored, decode + faces, model calls, total;
  * the cold wall time, best of ``--runs``, of `dfdetect predict CLIP --model M` and of the root
    `python predict.py --video_path CLIP --model M`;
  * the warm per-video time (``Detector.predict_video`` with everything loaded, best of ``--runs``).

``--repo`` measures another checkout (``git archive COMMIT | tar -x -C DIR``: the "before" figures).
Targets: cold <= 5 s, warm <= 0.3 s on 2 cores. The cores may be shared: run ``uptime`` and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# One cold prediction, timed from inside a fresh interpreter (run by `phases`).
PHASES = r"""
import sys, time, json
t0 = time.perf_counter()
import dfdetect.predict as P
import dfdetect.faces as F
t_imp = time.perf_counter()
face_s = [0.0]
_init = F.FaceDetector.__init__
def timed_init(self, *a, **k):
    t = time.perf_counter(); _init(self, *a, **k); face_s[0] += time.perf_counter() - t
F.FaceDetector.__init__ = timed_init
fmt = sys.argv[3] or None
det = P.Detector(sys.argv[2], fmt=fmt, threads=int(sys.argv[4]) or None)
t_load = time.perf_counter()
calls = []
_score = det.score_windows
def timed_score(*a, **k):
    t = time.perf_counter(); out = _score(*a, **k); calls.append((t, time.perf_counter())); return out
det.score_windows = timed_score
t_pred = time.perf_counter()
v = det.predict_video(sys.argv[1])
t_end = time.perf_counter()
det.close()
model_s = sum(b - a for a, b in calls)
print(json.dumps({"imports": t_imp - t0, "model_load": t_load - t_imp - face_s[0], "face_detector": face_s[0],
                  "first_window": (calls[0][1] - t_pred) if calls else None, "model_calls": model_s,
                  "decode_faces": (t_end - t_pred) - model_s, "predict": t_end - t_pred, "after_start": t_end - t0,
                  "fmt": det.fmt, "windows": v.windows, "status": v.status,
                  "heavy": sorted({m.split('.')[0] for m in sys.modules
                                   if m.split('.')[0] in ('tensorflow', 'keras', 'matplotlib', 'pandas', 'sklearn')})}))
"""


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(repo))
    env.pop("DFDETECT_VERBOSE", None)
    return env


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wall(cmd: list[str], repo: Path, runs: int) -> tuple[float, list[float], float]:
    """Best and all wall times of ``cmd`` run ``runs`` times from ``repo`` (it must exit 0), and the CPU
    seconds (user + system) of the best run: on shared cores the CPU time is the steadier figure."""
    times, cpu = [], []
    for _ in range(runs):
        c, t = _children_cpu(), time.perf_counter()
        out = subprocess.run(cmd, cwd=repo, env=_env(repo), capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        cpu.append(_children_cpu() - c)
        assert out.returncode == 0, (cmd, out.stderr[-2000:])
    best = min(range(runs), key=lambda i: times[i])
    return times[best], times, cpu[best]


def import_times(clip: Path, model: str, repo: Path) -> tuple[dict[str, float], float]:
    """Self import time per top-level package (seconds) of the cold `dfdetect predict`, and their total."""
    cmd = [sys.executable, "-X", "importtime", "-m", "dfdetect.cli", "predict", str(clip), "--model", model, "--json"]
    out = subprocess.run(cmd, cwd=repo, env=_env(repo), capture_output=True, text=True)
    per: dict[str, float] = defaultdict(float)
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            per[m.group(2).split(".")[0]] += int(m.group(1)) / 1e6
    return dict(sorted(per.items(), key=lambda kv: -kv[1])), sum(per.values())


def phases(clip: Path, model: str, repo: Path, fmt: str, threads: int) -> dict:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    start = time.perf_counter() - t
    cmd = [sys.executable, "-c", PHASES, str(clip), model, fmt, str(threads)]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=repo, env=_env(repo), capture_output=True, text=True)
    total = time.perf_counter() - t
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(interpreter=start, total=total)
    return res


def warm(clip: Path, model: str, fmt: str, threads: int, runs: int) -> tuple[float, list[float], dict]:
    """Best of ``runs`` ``predict_video`` times with the model loaded (after one warm-up), in this process
    (this checkout), and the model-call share of the best run."""
    from dfdetect.predict import Detector

    with Detector(model, fmt=fmt or None, threads=threads or None) as det:
        det.predict_video(clip)
        calls = []
        score = det.score_windows

        def timed(*a, **k):
            t = time.perf_counter()
            out = score(*a, **k)
            calls.append(time.perf_counter() - t)
            return out

        det.score_windows = timed
        times, model_s, cpu = [], [], []
        for _ in range(runs):
            calls.clear()
            c, t = time.process_time(), time.perf_counter()
            v = det.predict_video(clip)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            model_s.append(sum(calls))
        best = min(range(runs), key=lambda i: times[i])
        return times[best], times, {"model_calls": model_s[best], "windows": v.windows, "fmt": det.fmt,
                                    "cpu": cpu[best]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="exported model folder")
    ap.add_argument("--repo", default=str(HERE.parent), help="checkout to measure (default: this one)")
    ap.add_argument("--fmt", default="", help="Detector fmt (default: its own choice)")
    ap.add_argument("--threads", type=int, default=0, help="LiteRT threads (default: Detector's)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--skip-warm", action="store_true", help="cold figures only (another checkout's API)")
    ap.add_argument("--warm-only", action="store_true", help="the warm per-video time only")
    args = ap.parse_args()
    repo, model = Path(args.repo).resolve(), str(Path(args.model).resolve())

    from preprocess import make_clip  # bench/preprocess.py: the same generated 720p clip as bench/predict.py

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} (shared); repo {repo}; model {model}")
        if args.warm_only:
            best, all_, info = warm(clip, model, args.fmt, args.threads, args.runs)
            print(f"warm predict_video ({info['fmt']}, {info['windows']} windows): {best:.3f} s best of {args.runs} "
                  f"({', '.join(f'{t:.3f}' for t in all_)}); CPU {info['cpu']:.3f} s; model calls "
                  f"{info['model_calls']:.3f} s   (target <= 0.3 s); load after {os.getloadavg()[0]:.2f}")
            return
        per, total = import_times(clip, model, repo)
        print(f"\nimports of a cold `dfdetect predict` (python -X importtime, self time per package): {total:.2f} s")
        for name, s in list(per.items())[:12]:
            print(f"  {name:<24} {s:6.2f} s")
        ph = phases(clip, model, repo, args.fmt, args.threads) if not args.skip_warm else None
        if ph:
            print(f"\none cold prediction, phases (fmt {ph['fmt']}, {ph['windows']} windows; heavy modules loaded: "
                  f"{', '.join(ph['heavy']) or 'none'}):")
            for k in ("interpreter", "imports", "model_load", "face_detector", "first_window", "decode_faces",
                      "model_calls", "total"):
                print(f"  {k:<14} {ph[k]:6.2f} s")
        cli_best, cli_all, cli_cpu = wall([sys.executable, "-m", "dfdetect.cli", "predict", str(clip), "--model", model],
                                 repo, args.runs)
        root_best, root_all, root_cpu = wall([sys.executable, "predict.py", "--video_path", str(clip), "--model", model],
                                   repo, args.runs)
        print(f"\ncold `dfdetect predict CLIP --model M`: {cli_best:.2f} s best of {args.runs} "
              f"({', '.join(f'{t:.2f}' for t in cli_all)}); CPU {cli_cpu:.2f} s   (target <= 5 s)")
        print(f"cold `python predict.py --video_path CLIP --model M`: {root_best:.2f} s best of {args.runs} "
              f"({', '.join(f'{t:.2f}' for t in root_all)}); CPU {root_cpu:.2f} s")
        if not args.skip_warm:
            best, all_, info = warm(clip, model, args.fmt, args.threads, args.runs)
            print(f"warm predict_video ({info['fmt']}, {info['windows']} windows): {best:.3f} s best of {args.runs} "
                  f"({', '.join(f'{t:.3f}' for t in all_)}); CPU {info['cpu']:.3f} s; model calls {info['model_calls']:.3f} s"
                  "   (target <= 0.3 s)")
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
