"""The learning check: does this installation's pipeline learn, and do its figures point the right way?

A tiny built-in benchmark is trained twice with the ``smoke`` model — once on its labels, once on them inverted
(``train.invert_labels``) — and both runs are scored on held-out clips through ``evaluate_run``, the code that
writes ``metrics.json``. A working pipeline ranks fakes above reals in the first run and below in the second.
``tests/test_learning.py`` runs it with a fixed seed; ``bench/learning.py`` over several seeds (where the
tests' floors come from). A number from it is a pipeline check, never a claim about real-world deepfakes.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from dfdetect.config import Config, get_config

EPOCHS = 16
# No early stopping and no checkpoint choice (the final model is scored), so nothing held out is used in training.
CONFIG = get_config("smoke").override(train={"epochs": EPOCHS, "patience": EPOCHS, "batch_size": 8})
HELD_OUT = 0.45  # share of groups held out: a few dozen videos, enough real ones for a video AUC to mean something


def held_out(group: str) -> bool:
    """Whether a group (identity + utterance) is held out; a group never straddles the two sides."""
    return zlib.crc32(group.encode()) / 2 ** 32 < HELD_OUT


def build_data(root: str | Path, n: int = 96, seed: int = 5, config: Config = CONFIG, workers: int = 2,
               progress: bool = False) -> Path:
    """Builds ``n`` easy benchmark clips under ``root/raw``, re-splits them train/test by group, and
    preprocesses them into ``root/processed`` (returned). Resumable like its parts."""
    import pandas as pd

    from dfdetect.preprocess import preprocess
    from dfdetect.synth import synthesize

    root = Path(root)
    synthesize(root / "raw", n=n, seed=seed, difficulty="easy", workers=workers, progress=progress)
    splits = pd.read_csv(root / "raw" / "splits.csv")
    splits["split"] = ["test" if held_out(g) else "train" for g in splits["group"]]
    splits.to_csv(root / "raw" / "splits.csv", index=False)
    preprocess([root / "raw"], root / "processed", config=config, workers=workers, progress=progress)
    return root / "processed"


def train_and_score(data: str | Path, root: str | Path, invert: bool = False, config: Config = CONFIG,
                    seed: int = 0) -> dict:
    """Trains ``config`` on ``data`` (labels inverted when ``invert``) into ``root/run`` and returns the
    ``metrics.json`` that ``evaluate_run`` writes for the held-out split with the final model."""
    from dfdetect.evaluate import evaluate_run
    from dfdetect.train import train

    root = Path(root)
    train(data, root / "run", config.override(train={"invert_labels": invert, "seed": seed}), verbose=0)
    evaluate_run(root / "run", data, root / "report", split="test", which="final", bootstrap=0, progress=False)
    return json.loads((root / "report" / "metrics.json").read_text())
