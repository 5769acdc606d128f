"""Two generic layouts: a folder with ``real/`` and ``fake/`` subfolders, and a CSV list
``path,label[,group,...]`` (``labels.csv`` in a folder, or the CSV file itself)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader, normalise_label, videos_under
from dfdetect.records import VideoRecord

REAL = ("real", "original", "pristine")
FAKE = ("fake", "manipulated", "deepfake")


class RealFakeFolders(Reader):
    name = "real-fake-folders"
    dataset = "folder"

    @staticmethod
    def _dirs(root: Path) -> list[tuple[Path, str]]:
        out = []
        for p in sorted(root.iterdir()) if root.is_dir() else []:
            if p.is_dir() and p.name.lower() in REAL:
                out.append((p, "real"))
            elif p.is_dir() and p.name.lower() in FAKE:
                out.append((p, "fake"))
        return out

    @classmethod
    def matches(cls, root: Path) -> bool:
        return {label for _, label in cls._dirs(root)} == {"real", "fake"}

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        for d, label in self._dirs(root):
            for video in videos_under(d):
                rel = video.relative_to(d)
                # a subfolder (e.g. a person or source video) is the group; otherwise the file itself
                group = rel.parts[0] if len(rel.parts) > 1 else video.stem
                yield VideoRecord(path=str(video), label=label, group=group, dataset=root.name)


class CSVList(Reader):
    name = "csv"
    dataset = "csv"

    @staticmethod
    def _file(root: Path) -> Path | None:
        if root.is_file() and root.suffix.lower() == ".csv":
            return root
        f = root / "labels.csv"
        return f if f.is_file() else None

    @classmethod
    def matches(cls, root: Path) -> bool:
        f = cls._file(root)
        if f is None:
            return False
        with open(f, newline="") as fh:
            head = [h.strip().lower() for h in fh.readline().split(",")]
        return "path" in head and "label" in head

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        f = self._file(root)
        base = f.parent
        with open(f, newline="") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), start=2):
                row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                label = normalise_label(row.get("label", ""))
                if label is None:
                    self.problem(f"{f}:{lineno}", f"unknown label {row.get('label')!r} (expected real/fake or 0/1)")
                    continue
                p = Path(row["path"])
                p = p if p.is_absolute() else base / p
                extra = {k: row[k] for k in ("category", "method", "split") if row.get(k)}
                yield VideoRecord(path=str(p), label=label, group=row.get("group") or p.stem,
                                  dataset=row.get("dataset") or f.stem, **extra)
