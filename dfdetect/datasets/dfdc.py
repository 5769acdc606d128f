"""DFDC (per-part ``metadata.json``: ``{"x.mp4": {"label": "FAKE", "split": "train", "original": "y.mp4"}}``)
and the DFDC preview (``dataset.json`` keyed by relative path, ``"set"`` for the split). DFDC labels only
"fake or not": the per-modality labels stay unknown (its fakes can be visual, audio or both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader, normalise_label, split_name
from dfdetect.records import VideoRecord


class DFDC(Reader):
    name = "dfdc"
    dataset = "DFDC"

    @staticmethod
    def _metadata_files(root: Path) -> list[Path]:
        own = [root / "metadata.json"] if (root / "metadata.json").is_file() else []
        return own + sorted(root.glob("*/metadata.json"))

    @classmethod
    def matches(cls, root: Path) -> bool:
        for meta in cls._metadata_files(root)[:1]:
            head = meta.read_text(errors="replace")[:2000].lstrip()
            return head.startswith("{") and '"label"' in head and ".mp4" in head
        return False

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        for meta in self._metadata_files(root):
            data = self.load_json(meta)
            if not isinstance(data, dict):
                self.problem(str(meta), "expected an object keyed by file name")
                continue
            for name, entry in data.items():
                where = f"{meta}: {name}"
                label = normalise_label(entry.get("label", "")) if isinstance(entry, dict) else None
                if label is None:
                    self.problem(where, f"unknown label {entry.get('label') if isinstance(entry, dict) else entry!r}")
                    continue
                original = entry.get("original") or name
                yield VideoRecord(path=str(meta.parent / name), label=label,
                                  group=f"{meta.parent.name}/{Path(original).stem}", dataset=self.dataset,
                                  method="" if label == "real" else "dfdc",
                                  split=split_name(entry.get("split", "")))


class DFDCPreview(Reader):
    name = "dfdc-preview"
    dataset = "DFDC-preview"

    @classmethod
    def matches(cls, root: Path) -> bool:
        return (root / "dataset.json").is_file()

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        meta = root / "dataset.json"
        data = self.load_json(meta)
        for rel, entry in data.items():
            label = normalise_label(entry.get("label", "")) if isinstance(entry, dict) else None
            if label is None:
                self.problem(f"{meta}: {rel}", f"unknown label {entry!r}")
                continue
            parts = Path(rel).parts
            # original_videos/<id>/<clip>.mp4 and method_X/<id>/<...>/<clip>.mp4: <id> is the person
            group = parts[1] if len(parts) > 2 else Path(rel).stem
            yield VideoRecord(path=str(root / rel), label=label, group=group, dataset=self.dataset,
                              method="" if label == "real" else parts[0], category=parts[0],
                              split=split_name(entry.get("set", "")))
