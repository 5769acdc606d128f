"""LAV-DF: ``metadata.json`` (or ``metadata.min.json``), a list of
``{"file", "n_fakes", "fake_periods": [[start, end], ...], "modify_video", "modify_audio", "split", "original"}``.
``fake_periods`` become ``fake_segments`` (temporal localisation); group = the original video."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader
from dfdetect.records import VideoRecord


def _segments(periods, where: str, reader: Reader) -> tuple[tuple[float, float], ...] | None:
    try:
        segs = tuple((float(a), float(b)) for a, b in (periods or []))
    except (TypeError, ValueError):
        reader.problem(where, f"malformed fake periods {periods!r}")
        return None
    if any(b < a for a, b in segs):
        reader.problem(where, f"a fake period ends before it starts: {periods!r}")
        return None
    return segs


class LAVDF(Reader):
    name = "lavdf"
    dataset = "LAV-DF"

    @staticmethod
    def _meta(root: Path) -> Path | None:
        for name in ("metadata.json", "metadata.min.json"):
            if (root / name).is_file():
                return root / name
        return None

    @classmethod
    def matches(cls, root: Path) -> bool:
        meta = cls._meta(root)
        if meta is None:
            return False
        head = meta.read_text(errors="replace")[:3000]
        return head.lstrip().startswith("[") and "fake_periods" in head and "modify_video" in head

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        meta = self._meta(root)
        for i, e in enumerate(self.load_json(meta)):
            where = f"{meta}: entry {i} ({e.get('file', '?') if isinstance(e, dict) else '?'})"
            if not isinstance(e, dict) or "file" not in e:
                self.problem(where, "entry without a 'file'")
                continue
            segs = _segments(e.get("fake_periods"), where, self)
            if segs is None:
                continue
            mv, ma = bool(e.get("modify_video")), bool(e.get("modify_audio"))
            fake = mv or ma or bool(segs)
            original = e.get("original") or e["file"]
            yield VideoRecord(path=str(root / e["file"]), label="fake" if fake else "real", video_fake=int(mv),
                              audio_fake=int(ma), group=Path(original).stem, dataset=self.dataset,
                              category={(0, 0): "real", (1, 0): "video", (0, 1): "audio", (1, 1): "both"}[(mv, ma)],
                              method="lavdf" if fake else "", split=str(e.get("split", "")).lower(),
                              fake_segments=segs)
