"""The built-in benchmark (``dfdetect synth``): FakeAVCeleb's ``meta_data.csv`` plus what only a generator
knows: lip-sync mismatch labels, LAV-DF-style ``fake_segments``, per-modality ``video_segments`` /
``audio_segments`` (``metadata.json``'s ``visual_fake_segments`` / ``audio_fake_segments``) and grouped
splits."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from dfdetect.datasets.fakeavceleb import FakeAVCeleb
from dfdetect.records import VideoRecord


class SynthBenchmark(FakeAVCeleb):
    name = "dfdetect-synth"
    dataset = "dfdetect-synth"
    splits_final = True  # a tiny benchmark has no val on purpose; its tests and floors were measured on this split

    def __init__(self, *args, split_column: str = "split", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.split_column = split_column

    @classmethod
    def matches(cls, root: Path) -> bool:
        return (root / "synth.json").is_file() and super().matches(root)

    def av_mismatch(self, category: str, method: str) -> int:
        # metadata.json's own ``av_mismatch`` takes precedence in ``_read``; this covers a benchmark without it
        return int(method in ("lipsync", "desync", "reenact"))

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        lav = {e["file"]: e for e in self.load_json(root / "metadata.json")}
        # faces=people (default since it existed) holds people out, swap sources from their own side: the ids a
        # clip names split like FakeAVCeleb's. The portraits-only benchmark (photos; older ones without the key)
        # puts every portrait on every side on purpose, its split unit the identity-utterance group alone.
        by_person = self.load_json(root / "synth.json").get("faces") == "people"
        splits = {}
        if (root / "splits.csv").is_file():
            with open(root / "splits.csv", newline="") as f:
                splits = {r["path"]: r for r in csv.DictReader(f)}
        for rec in super()._read(root):
            rel = Path(rec.path).relative_to(root).as_posix() if Path(rec.path).is_relative_to(root) else rec.path
            entry, sp = lav.get(rel, {}), splits.get(rel, {})
            segs = tuple(tuple(p) for p in entry.get("fake_periods", [])) if rec.method.startswith("partial") else ()
            # per-modality spans, where the benchmark wrote them (built before they existed: None, not given)
            own = {name: tuple(tuple(p) for p in entry[key]) if entry.get(key) is not None else None
                   for name, key in (("video_segments", "visual_fake_segments"),
                                     ("audio_segments", "audio_fake_segments"))}
            mismatch = int(entry["av_mismatch"]) if "av_mismatch" in entry else rec.av_mismatch
            yield replace(rec, fake_segments=segs, group=sp.get("group", rec.group),
                          split=sp.get(self.split_column, ""), av_mismatch=mismatch,
                          identities=rec.identities if by_person else (), **own)
