"""AV-Deepfake1M: ``{train,val,test}_metadata.json`` lists with ``file``, ``original``, ``split``,
``modify_type`` (``real``, ``visual_modified``, ``audio_modified``, ``both_modified``; some releases write
``both-modified``), ``fake_segments`` and, where given, the per-modality ``visual_fake_segments`` /
``audio_fake_segments`` (into ``video_segments`` / ``audio_segments``). Videos live under ``<split>/<file>``
(or ``<file>``).

Every segment list is checked like LAV-DF's (``lavdf.check_segments``) against the video's length
(``video_frames`` at 25 fps, else ``duration``): rows with segments before 0, past the end or overlapping are
reported as ``file:line: entry N (video)`` and kept repaired; rows with a segment that ends before it starts
or lies wholly outside the video are reported and skipped. Segments listed for a modality that
``modify_type`` says is real are reported and ignored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader, split_name
from dfdetect.datasets.lavdf import EntryLines, check_segments, entry_seconds
from dfdetect.records import VideoRecord

MODIFY = {"real": (0, 0), "visual_modified": (1, 0), "audio_modified": (0, 1), "both_modified": (1, 1)}
FPS = 25.0  # AV-Deepfake1M's videos (``video_frames`` counts frames at this rate)


class AVDeepfake1M(Reader):
    name = "av-deepfake1m"
    dataset = "AV-Deepfake1M"

    @classmethod
    def matches(cls, root: Path) -> bool:
        return any(root.glob("*_metadata.json"))

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        for meta in sorted(root.glob("*_metadata.json")):
            split = meta.name.split("_")[0].lower()
            lines = EntryLines(meta)
            for i, e in enumerate(self.load_json(meta)):
                video = e.get("file", "?") if isinstance(e, dict) else "?"
                if not isinstance(e, dict) or "file" not in e:
                    self.problem(lines.where(i, video), "entry without a 'file'")
                    continue
                kind = str(e.get("modify_type", "")).strip().lower().replace("-", "_")
                if kind not in MODIFY:
                    self.problem(lines.where(i, video), f"unknown modify_type {e.get('modify_type')!r}")
                    continue
                vf, af = MODIFY[kind]
                duration, issues = entry_seconds(e, ("video_frames", "duration"), fps=FPS)
                segs, more = check_segments(e.get("fake_segments"), duration, "fake_segments")
                issues += more
                skip = segs is None
                own: dict[str, tuple | None] = {}
                for attr, key, fake in (("video_segments", "visual_fake_segments", vf),
                                        ("audio_segments", "audio_fake_segments", af)):
                    own[attr] = None  # not given apart
                    if e.get(key) is None:
                        continue
                    mine, more = check_segments(e[key], duration, key)
                    issues += more
                    skip |= mine is None
                    if mine and not fake:
                        issues.append(f"{key} {e[key]!r} given although modify_type {kind!r} leaves that "
                                      "modality real: ignored")
                        mine = ()
                    own[attr] = mine
                if issues:
                    self.problem(lines.where(i, video), "; ".join(issues))
                if skip:
                    continue
                p = root / e.get("split", split) / e["file"]
                if not p.is_file() and (root / e["file"]).is_file():
                    p = root / e["file"]
                original = e.get("original") or e["file"]
                yield VideoRecord(path=str(p), label="real" if kind == "real" else "fake", video_fake=vf,
                                  audio_fake=af, group=str(Path(original).parent), dataset=self.dataset,
                                  category=kind, method="" if kind == "real" else kind,
                                  split=split_name(e.get("split", split)), fake_segments=segs, **own)
