"""Prediction speed: a 10 s 1280x720 25 fps H.264+AAC talking-head clip.

    python bench/predict.py [--model DIR]     # default: the latest export under saved_models/

Prints the seconds `Detector.predict_video` takes with the model already loaded (target <= 1.5 s on 2 cores),
and the wall time of the whole `dfdetect predict` command from a cold start (Python, TensorFlow, MediaPipe and
the model loaded from scratch).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="exported model folder")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()

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
