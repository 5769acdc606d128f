"""`python train.py` — the original README's entry point.

With no arguments it runs the main training job end to end on the built-in benchmark: builds it into
data/raw/synth (if missing), preprocesses it into data/processed/synth (if missing), and trains the
cpu-small preset into saved_models/<config>-<time>. Any `dfdetect train` option can be given instead:

    python train.py --data data/processed/mydata --config colab-gpu --out saved_models/run1

The settings that decide how windows are cut (media, faces, window) come from how --data was preprocessed
(its preprocess_config.yaml), whatever the preset says; a --set that contradicts them is refused.
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--real-only", action="store_true", help="real videos and pseudo-fakes only (dfdetect train)")
    ap.add_argument("--allow-leaks", action="store_true",
                    help="warn instead of stopping when one identity is on two sides of the split (dfdetect train)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show the native libraries' start-up logs (hidden by default; dfdetect --verbose)")
    args = ap.parse_args(argv)
    if args.verbose:  # every dfdetect command this script runs follows it (dfdetect.quiet)
        from dfdetect.quiet import quiet_env

        quiet_env(True)

    from dfdetect.cli import main as cli
    from dfdetect.errors import UsageError

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
    try:
        adopted = _adopted(args.config, args.set, data)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or f"saved_models/{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    cmd = ["train", "--data", str(data), "--out", out, "--config", args.config, "--strategy", args.strategy]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.real_only:
        cmd.append("--real-only")
    if args.allow_leaks:
        cmd.append("--allow-leaks")
    for s in args.set + adopted:
        cmd += ["--set", s]
    return cli(cmd)


def _adopted(config: str, sets: list[str], data: Path) -> list[str]:
    """``section.field=value`` for each setting of how ``data`` was cut that the config sets otherwise
    (``dfdetect.preprocess.config_for_data``, which prints them): the preset's values are only defaults, and
    the run's config.yaml must cut windows as its data was cut. A ``--set`` that disagrees is refused."""
    from dfdetect.config import load_config
    from dfdetect.preprocess import CUTTING_FIELDS, config_for_data

    if not data.is_dir():
        return []  # `dfdetect train` says what is missing
    base = load_config(config, sets)
    cfg = config_for_data(base, data, explicit=sets)
    return [f"{section}.{name}={json.dumps(getattr(getattr(cfg, section), name))}"
            for section, names in CUTTING_FIELDS.items() for name in names
            if getattr(getattr(cfg, section), name) != getattr(getattr(base, section), name)]


if __name__ == "__main__":
    sys.exit(main())
