"""What following every face costs: decoding + face tracking + crops (``extract_windows``) with one face track
(``faces.max_tracks=1``, what preprocessing runs) and with up to four (what ``dfdetect predict`` runs), on a
one-face and a two-face 10 s 1280x720 25 fps H.264 + AAC clip, preset ``cpu-small``.

    python bench/several_faces.py [--repeats 10] [--seconds 10]

Prints per clip and track count: median wall and CPU seconds over interleaved repeats (after one warm-up), the
windows cut (each face gets its own, so the model's calls grow with the faces), the face tracks, and the
detector's whole-frame scans (shared by every track).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()

    from preprocess import make_clip

    from dfdetect.config import get_config
    from dfdetect.faces import FaceDetector
    from dfdetect.sample_media import several_faces_clip
    from dfdetect.windows import VideoSummary, extract_windows

    tmp = Path(tempfile.mkdtemp(prefix="several-faces-"))
    clips = {"one face": make_clip(tmp / "one.mp4", args.seconds),
             "two faces": several_faces_clip(tmp / "two.mp4", seconds=args.seconds, size=(1280, 720))}
    config = get_config("cpu-small")
    results: dict[tuple[str, int], list[tuple[float, float, int, int, int]]] = {}
    with FaceDetector(config.faces) as det:
        for name, clip in clips.items():
            for rep in range(args.repeats + 1):
                for tracks in (1, 4):
                    cfg = config.override(faces={"max_tracks": tracks})
                    summary, calls = VideoSummary(), det.calls
                    t, cpu = time.perf_counter(), time.process_time()
                    n = sum(1 for _ in extract_windows(str(clip), cfg, det, summary))
                    if rep:  # the first round warms caches
                        results.setdefault((name, tracks), []).append(
                            (time.perf_counter() - t, time.process_time() - cpu, n, len(summary.tracks),
                             det.calls - calls))
    print(f"{'clip':10} {'max_tracks':>10} {'wall s':>7} {'CPU s':>6} {'windows':>7} {'tracks':>6} {'scans':>5}")
    for (name, tracks), rows in results.items():
        wall = sorted(r[0] for r in rows)[len(rows) // 2]
        cpu = sorted(r[1] for r in rows)[len(rows) // 2]
        print(f"{name:10} {tracks:>10} {wall:7.3f} {cpu:6.3f} {rows[0][2]:>7} {rows[0][3]:>6} {rows[0][4]:>5}")
    for name in clips:
        ratio = sorted(r[0] for r in results[(name, 4)])[args.repeats // 2] / \
            sorted(r[0] for r in results[(name, 1)])[args.repeats // 2]
        print(f"{name}: wall with every face / with one: {ratio:.2f}x")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
