"""AV-Deepfake1M: ``{train,val,test}_metadata.json`` lists with ``file``, ``original``, ``split``,
``modify_type`` (``real``, ``visual_modified``, ``audio_modified``, ``both_modified``; some releases write
``both-modified``) and ``fake_segments``. Videos live under ``<split>/<file>`` (or ``<file>``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader
from dfdetect.datasets.lavdf import _segments
from dfdetect.records import VideoRecord

MODIFY = {"real": (0, 0), "visual_modified": (1, 0), "audio_modified": (0, 1), "both_modified": (1, 1)}


class AVDeepfake1M(Reader):
    name = "av-deepfake1m"
    dataset = "AV-Deepfake1M"

    @classmethod
    def matches(cls, root: Path) -> bool:
        return any(root.glob("*_metadata.json"))

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        for meta in sorted(root.glob("*_metadata.json")):
            split = meta.name.split("_")[0].lower()
            for i, e in enumerate(self.load_json(meta)):
                where = f"{meta}: entry {i}"
                if not isinstance(e, dict) or "file" not in e:
                    self.problem(where, "entry without a 'file'")
                    continue
                kind = str(e.get("modify_type", "")).strip().lower().replace("-", "_")
                if kind not in MODIFY:
                    self.problem(f"{where} ({e['file']})", f"unknown modify_type {e.get('modify_type')!r}")
                    continue
                segs = _segments(e.get("fake_segments"), where, self)
                if segs is None:
                    continue
                vf, af = MODIFY[kind]
                p = root / e.get("split", split) / e["file"]
                if not p.is_file() and (root / e["file"]).is_file():
                    p = root / e["file"]
                original = e.get("original") or e["file"]
                yield VideoRecord(path=str(p), label="real" if kind == "real" else "fake", video_fake=vf,
                                  audio_fake=af, group=str(Path(original).parent), dataset=self.dataset,
                                  category=kind, method="" if kind == "real" else kind,
                                  split=str(e.get("split", split)).lower(), fake_segments=segs)
