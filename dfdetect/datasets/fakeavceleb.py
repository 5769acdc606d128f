"""FakeAVCeleb: ``meta_data.csv`` whose rows carry 10 values under a 9-name header (file name, then folder).

Categories: A RealVideo-RealAudio, B RealVideo-FakeAudio, C FakeVideo-RealAudio, D FakeVideo-FakeAudio.
Group = source identity (the ``source`` column, e.g. ``id00076``); identities = every id the row names
(``source``, ``target1``, ``target2``: a fake carries its targets' face or voice), so a split keeps a fake, its
source and its targets on one side.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader
from dfdetect.records import UNKNOWN, VideoRecord

CATEGORIES = {"A": (0, 0), "B": (0, 1), "C": (1, 0), "D": (1, 1)}  # (video_fake, audio_fake)
HEADER = ["source", "target1", "target2", "method", "category", "type", "race", "gender", "path"]


class FakeAVCeleb(Reader):
    name = "fakeavceleb"
    dataset = "FakeAVCeleb"

    @classmethod
    def matches(cls, root: Path) -> bool:
        meta = root / "meta_data.csv"
        if not meta.is_file():
            return False
        with open(meta, newline="") as f:
            head = f.readline().strip().lower().split(",")
        return head[:5] == HEADER[:5]

    def av_mismatch(self, category: str, method: str) -> int:
        # Only real clips are known to be in sync; FakeAVCeleb does not label lip-sync agreement.
        return 0 if category == "A" else UNKNOWN

    def resolve(self, root: Path, folder: str, filename: str) -> Path:
        folder = folder.replace("\\", "/").strip("/")
        parts = folder.split("/")
        candidates = [root / folder / filename]
        if parts and parts[0].lower().startswith("fakeavceleb"):
            candidates.insert(0, root / "/".join(parts[1:]) / filename)
            candidates.append(root.parent / folder / filename)
        for c in candidates:
            if c.is_file():
                return c
        return candidates[0]

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        meta = root / "meta_data.csv"
        with open(meta, newline="") as f:
            rows = list(csv.reader(f))
        for lineno, row in enumerate(rows[1:], start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            where = f"{meta}:{lineno}"
            if len(row) == 10:
                source, t1, t2, method, cat, typ, race, gender, filename, folder = (c.strip() for c in row)
            elif len(row) == 9:  # a corrected file with one path column holding folder/file
                source, t1, t2, method, cat, typ, race, gender, full = (c.strip() for c in row)
                folder, _, filename = full.rpartition("/")
            else:
                self.problem(where, f"expected 10 values (9 header names + folder), got {len(row)}")
                continue
            cat = cat.upper()
            if cat not in CATEGORIES:
                self.problem(where, f"unknown category {cat!r} (expected A, B, C or D)")
                continue
            vf, af = CATEGORIES[cat]
            yield VideoRecord(
                path=str(self.resolve(root, folder, filename)),
                label="real" if cat == "A" else "fake",
                video_fake=vf, audio_fake=af, av_mismatch=self.av_mismatch(cat, method),
                group=source, dataset=self.dataset, category=cat, method=method,
                identities=tuple(dict.fromkeys(i for i in (source, t1, t2) if i and i != "-")),
            )
