"""Celeb-DF (v2): ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and
``List_of_testing_videos.txt`` whose lines are ``<label> <relative path>`` where **1 means real** and 0 fake
(the opposite of most datasets). Videos listed there are the test split; the rest train (a val split is
carved from train by ``dfdetect.datasets.carve_splits``). Group = the source identity (``id0`` of
``id0_0001.mp4`` and of the fake ``id0_id16_0001.mp4``); identities = every celebrity the clip shows (``id0``
and ``id16``: the fake carries id16's face), so a split keeps both people's clips on one side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader, videos_under
from dfdetect.records import UNKNOWN, VideoRecord

FOLDERS = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}


class CelebDF(Reader):
    name = "celebdf"
    dataset = "Celeb-DF-v2"

    @classmethod
    def matches(cls, root: Path) -> bool:
        return (root / "Celeb-synthesis").is_dir() or (root / "List_of_testing_videos.txt").is_file()

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        test: dict[str, str] = {}
        listing = root / "List_of_testing_videos.txt"
        if listing.is_file():
            for lineno, line in enumerate(listing.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                flag, _, rel = line.strip().partition(" ")
                if flag not in ("0", "1") or not rel:
                    self.problem(f"{listing}:{lineno}", f"expected '<1|0> <path>', got {line.strip()!r}")
                    continue
                test[rel.strip()] = "real" if flag == "1" else "fake"
        for folder, label in FOLDERS.items():
            d = root / folder
            if not d.is_dir():
                continue
            for video in videos_under(d):
                rel = video.relative_to(root).as_posix()
                if rel in test and test[rel] != label:
                    self.problem(f"{listing}: {rel}", f"listed as {test[rel]} but stored under {folder}/")
                    continue
                ids = tuple(p for p in video.stem.split("_") if p.startswith("id")) if folder != "YouTube-real" else ()
                ident = ids[0] if ids else (f"yt{video.stem}" if folder == "YouTube-real" else video.stem.split("_")[0])
                yield VideoRecord(path=str(video), label=label, video_fake=int(label == "fake"),
                                  audio_fake=UNKNOWN, group=ident, identities=ids, dataset=self.dataset,
                                  category=folder,
                                  method="" if label == "real" else "celeb-synthesis",
                                  split="test" if rel in test else "train")
        missing = [r for r in test if not (root / r).is_file()]
        for rel in missing:
            self.problem(f"{listing}: {rel}", "listed video is missing")
