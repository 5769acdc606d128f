"""What every dataset reader shares: layout detection, problem reporting, path resolution."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dfdetect.errors import UsageError
from dfdetect.media import VIDEO_EXTENSIONS
from dfdetect.records import VideoRecord


class DatasetError(UsageError, ValueError):
    """A dataset that cannot be read (no known layout, unreadable metadata): the user's to fix, exit 2."""


class SplitLeakError(DatasetError):
    """A split that puts one identity component (a person, with every clip that borrows their face or voice) on
    two sides: training would select its best epoch on people it trains on. Exit 2; ``--allow-leaks`` warns."""


class DatasetProblem(DatasetError):
    """A bad row in ``strict`` mode: what non-strict reading lists in ``problems`` (``datasets inspect``
    exits 3 for it either way)."""


class Reader:
    """One public dataset's layout. Subclasses set ``name`` and implement ``matches`` and ``_read``.

    ``records(root)`` yields ``VideoRecord``s; rows it cannot use are skipped and described in
    ``problems`` (``file:line: reason``), or raise ``DatasetProblem`` when ``strict``.
    """

    name = "base"
    dataset = ""
    # True where the dataset's own split is complete by design (the built-in benchmark): never carved into
    splits_final = False

    def __init__(self, strict: bool = False, check_files: bool = True) -> None:
        self.strict = strict
        self.check_files = check_files
        self.problems: list[str] = []
        self.skipped = 0

    @classmethod
    def matches(cls, root: Path) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self, root: Path) -> Iterator[VideoRecord]:  # pragma: no cover - abstract
        raise NotImplementedError

    def problem(self, where: str, reason: str) -> None:
        msg = f"{where}: {reason}"
        if self.strict:
            raise DatasetProblem(msg)
        self.problems.append(msg)
        self.skipped += 1

    def records(self, root: str | Path) -> Iterator[VideoRecord]:
        root = Path(root)
        seen: set[str] = set()
        for rec in self._read(root):
            if rec.path in seen:
                self.problem(rec.path, "listed twice (duplicate), kept once")
                continue
            seen.add(rec.path)
            if self.check_files and not Path(rec.path).is_file():
                self.problem(rec.path, "listed video is missing")
                continue
            yield rec

    # -- helpers ---------------------------------------------------------------------------------------
    def load_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        except OSError as e:
            raise DatasetError(f"{path}: cannot read ({e.strerror})") from None


def videos_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


LABEL_SPELLINGS = {"real": ("real", "original", "pristine", "genuine", "0", "false"),
                   "fake": ("fake", "manipulated", "deepfake", "synthesis", "1", "true")}

# Split names as datasets and people write them (LAV-DF says ``dev``; DFDC's parts ``validation``).
SPLIT_SPELLINGS = {"train": ("train", "training", "trn"),
                   "val": ("val", "valid", "validation", "dev", "development", "eval"),
                   "test": ("test", "testing", "tst", "holdout", "heldout")}


def normalise_label(value: Any) -> str | None:
    """'real'/'fake' from the spellings datasets use (real/original/pristine/genuine/0/false,
    fake/manipulated/deepfake/synthesis/1/true, any case); None when unknown."""
    v = str(value).strip().lower()
    for label, spellings in LABEL_SPELLINGS.items():
        if v in spellings:
            return label
    return None


def normalise_split(value: Any) -> str | None:
    """'train'/'val'/'test' from the spellings datasets use (``validation``, ``dev``, ``testing``...), ``""``
    for no split (empty), None when unknown."""
    v = str(value or "").strip().lower()
    if not v:
        return ""
    for split, spellings in SPLIT_SPELLINGS.items():
        if v in spellings:
            return split
    return None


def split_name(value: Any) -> str:
    """A dataset's split as ``train``/``val``/``test`` where it is one of their spellings, else as written
    (lower case): an unknown name stays visible in ``datasets inspect`` and is never trained on."""
    known = normalise_split(value)
    return str(value or "").strip().lower() if known is None else known
