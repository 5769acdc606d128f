"""`python predict.py --video_path X` — the original README's entry point (see `dfdetect predict --help`)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Is this video a deepfake? Prints the verdict; exit 3 if the file "
                                             "could not be read.")
    ap.add_argument("--video_path", required=True, nargs="+", help="video file(s) or folder(s)")
    ap.add_argument("--model", help="exported model folder (default: the latest under saved_models/)")
    ap.add_argument("--json", action="store_true", help="one JSON object per video")
    ap.add_argument("--threshold", type=float)
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show the native libraries' start-up logs (hidden by default; dfdetect --verbose)")
    args = ap.parse_args(argv)
    if args.verbose:  # every dfdetect command this script runs follows it (dfdetect.quiet)
        from dfdetect.quiet import quiet_env

        quiet_env(True)

    from dfdetect.cli import main as cli

    cmd = ["predict", *args.video_path]
    if args.model:
        cmd += ["--model", args.model]
    if args.json:
        cmd.append("--json")
    if args.threshold is not None:
        cmd += ["--threshold", str(args.threshold)]
    return cli(cmd)


if __name__ == "__main__":
    sys.exit(main())
