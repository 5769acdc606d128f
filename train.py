"""`python train.py` — the original README's entry point.

With no arguments it runs the main training job end to end on the built-in benchmark: builds it into
data/raw/synth (if missing), preprocesses it into data/processed/synth (if missing), and trains the
cpu-small preset into saved_models/<config>-<time>. Any `dfdetect train` option can be given instead:

    python train.py --data data/processed/mydata --config colab-gpu --out saved_models/run1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/processed/synth", help="preprocessed folder")
    ap.add_argument("--config", default="cpu-small", help="preset name or YAML file")
    ap.add_argument("--out", help="run folder (default saved_models/<config>-<time>)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--strategy", default="auto")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    args = ap.parse_args(argv)

    from dfdetect.cli import main as cli

    data = Path(args.data)
    if not (data / "shards").is_dir() and args.data == "data/processed/synth":
        raw = Path("data/raw/synth")
        if not (raw / "meta_data.csv").exists():
            code = cli(["synth", "--out", str(raw)])
            if code:
                return code
        code = cli(["preprocess", str(raw), "--out", str(data), "--config", args.config])
        if code not in (0, 3):
            return code
    out = args.out or f"saved_models/{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    cmd = ["train", "--data", str(data), "--out", out, "--config", args.config, "--strategy", args.strategy]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    for s in args.set:
        cmd += ["--set", s]
    return cli(cmd)


if __name__ == "__main__":
    sys.exit(main())
