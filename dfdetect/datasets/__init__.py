"""Readers for public deepfake datasets, all yielding the same ``VideoRecord``s.

``detect(path)`` recognises a dataset root by its own layout and field names; ``inspect(path)`` summarises
it (what ``dfdetect datasets inspect`` prints); ``assign_splits`` makes group-aware splits, so a fake and its
original, or two clips of one identity, never land on two sides.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dfdetect.datasets.avdeepfake1m import AVDeepfake1M
from dfdetect.datasets.base import DatasetError, DatasetProblem, Reader
from dfdetect.datasets.celebdf import CelebDF
from dfdetect.datasets.deepfaketimit import DeepfakeTIMIT
from dfdetect.datasets.dfdc import DFDC, DFDCPreview
from dfdetect.datasets.faceforensics import FaceForensics
from dfdetect.datasets.fakeavceleb import FakeAVCeleb
from dfdetect.datasets.generic import CSVList, RealFakeFolders
from dfdetect.datasets.lavdf import LAVDF
from dfdetect.datasets.synth_reader import SynthBenchmark
from dfdetect.records import VideoRecord

# Most specific first: the synth benchmark is also a FakeAVCeleb layout.
READERS: list[type[Reader]] = [SynthBenchmark, FakeAVCeleb, LAVDF, AVDeepfake1M, DFDCPreview, DFDC, FaceForensics,
                               CelebDF, DeepfakeTIMIT, CSVList, RealFakeFolders]

__all__ = ["READERS", "DatasetError", "DatasetProblem", "Reader", "assign_splits", "detect", "inspect", "read", "split_leaks"]


def detect(path: str | Path, strict: bool = False, check_files: bool = True) -> Reader | None:
    """A reader instance for the layout at ``path``, or None for a plain folder of videos."""
    root = Path(path)
    for cls in READERS:
        try:
            if cls.matches(root):
                return cls(strict=strict, check_files=check_files)
        except OSError:
            continue
    return None


def read(path: str | Path, strict: bool = False) -> tuple[list[VideoRecord], Reader]:
    """All records of a dataset root, and the reader (its ``problems`` say what was skipped)."""
    reader = detect(path, strict=strict)
    if reader is None:
        raise DatasetError(f"{path}: no known dataset layout (known: {', '.join(c.name for c in READERS)})")
    return list(reader.records(path)), reader


def assign_splits(records: Iterable[VideoRecord], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  seed: int = 0, keep_existing: bool = True) -> list[VideoRecord]:
    """Gives every record a split by hashing its group, so a group never straddles two splits. Records that
    already have a split (from the dataset) keep it when ``keep_existing``."""
    out = []
    for r in records:
        if keep_existing and r.split:
            out.append(r)
            continue
        key = r.group or r.path
        h = zlib.crc32(f"{seed}:{key}".encode()) / 2 ** 32
        split = "train" if h < fractions[0] else ("val" if h < fractions[0] + fractions[1] else "test")
        out.append(replace(r, split=split))
    return out


def split_leaks(records: Iterable[VideoRecord]) -> dict[str, set[str]]:
    """Groups that appear in more than one split (should be empty)."""
    seen: dict[str, set[str]] = {}
    for r in records:
        if r.group and r.split:
            seen.setdefault(r.group, set()).add(r.split)
    return {g: s for g, s in seen.items() if len(s) > 1}


def inspect(path: str | Path, strict: bool = False) -> dict[str, Any]:
    """``{"layout", "videos", "labels": {"real", "fake"}, "categories", "splits", "problems"}``."""
    reader = detect(path, strict=strict)
    if reader is None:
        raise DatasetError(f"{path}: no known dataset layout (known: {', '.join(c.name for c in READERS)})")
    records = list(reader.records(path))
    labels = Counter(r.label for r in records)
    problems = list(reader.problems)
    for group, splits in sorted(split_leaks(records).items()):
        problems.append(f"group {group!r} appears in several splits: {sorted(splits)}")
    return {
        "layout": reader.name,
        "videos": len(records),
        "labels": {"real": labels.get("real", 0), "fake": labels.get("fake", 0)},
        "categories": dict(sorted(Counter(r.category for r in records if r.category).items())),
        "splits": dict(sorted(Counter(r.split for r in records if r.split).items())),
        "groups": len({r.group for r in records if r.group}),
        "segments": sum(1 for r in records if r.fake_segments),
        "problems": problems,
    }
