"""LAV-DF: ``metadata.json`` (or ``metadata.min.json``), a list of
``{"file", "n_fakes", "fake_periods": [[start, end], ...], "duration", "modify_video", "modify_audio", "split",
"original"}``. ``fake_periods`` become ``fake_segments`` (temporal localisation); group = the original video.

Segments are checked (``check_segments``, shared with AV-Deepfake1M) and never trusted silently: a row whose
segments start before 0, run past the video's end, or overlap is reported (``file:line: entry N (video)``,
N the index in the JSON list) and kept with its segments clipped to ``[0, duration]`` and merged; a row with
a segment that ends before it starts or lies wholly outside the video is reported and skipped."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dfdetect.datasets.base import Reader, split_name
from dfdetect.records import VideoRecord

Segments = tuple[tuple[float, float], ...]

# Metadata rounds times to milliseconds: an end this close past the duration is rounding, clipped unreported.
ROUNDING_S = 0.001 + 1e-9


def _fmt(a: float, b: float) -> str:
    return f"[{a:g}, {b:g}]"


def check_segments(periods: Any, duration: float | None = None,
                   name: str = "fake_periods") -> tuple[Segments | None, list[str]]:
    """Validates a metadata field of ``[start, end]`` pairs in seconds against the video's ``duration`` (None:
    unknown). Returns the usable segments (sorted, clipped to ``[0, duration]``, overlapping ones merged), or
    None when the row cannot be trusted at all, and what was wrong, one phrase per issue (empty: all well).

    Skipped (None): not a list of number pairs; a segment that ends before it starts; one wholly before 0 or
    at/after the end; segments given but none longer than 0 s. Repaired and reported: a start before 0, an end
    past the duration (beyond the metadata's millisecond rounding), overlaps, zero-length segments (dropped).
    ``None`` or a missing field is no segments."""
    if periods is None:
        return (), []
    try:
        if isinstance(periods, (str, bytes, dict)):
            raise TypeError
        segs = [(float(a), float(b)) for a, b in periods]
    except (TypeError, ValueError):
        return None, [f"malformed {name} {periods!r} (expected [[start, end], ...] in seconds): row skipped"]
    if not all(math.isfinite(a) and math.isfinite(b) for a, b in segs):
        return None, [f"{name} {periods!r} holds a value that is not a finite number: row skipped"]
    for a, b in segs:
        if b < a:
            return None, [f"{name}: segment {_fmt(a, b)} ends before it starts: row skipped"]
        if b <= 0 and b > a:
            return None, [f"{name}: segment {_fmt(a, b)} lies wholly before 0 s: row skipped"]
        if duration is not None and a >= duration and b > a:
            return None, [f"{name}: segment {_fmt(a, b)} lies wholly beyond the video's end ({duration:g} s): "
                          "row skipped"]
    issues: list[str] = []
    kept = []
    for a, b in segs:
        if b == a:
            issues.append(f"{name}: segment {_fmt(a, b)} is 0 s long: dropped")
            continue
        a2, b2 = max(a, 0.0), (b if duration is None else min(b, duration))
        wrong = ["starts before 0 s"] if a < 0 else []
        if duration is not None and b > duration + ROUNDING_S:
            wrong.append(f"runs past the video's end ({duration:g} s)")
        if wrong:
            issues.append(f"{name}: segment {_fmt(a, b)} {' and '.join(wrong)}: clipped to {_fmt(a2, b2)}")
        kept.append((a2, b2))
    if segs and not kept:
        return None, issues + [f"{name}: no segment longer than 0 s is left: row skipped"]
    merged: list[tuple[float, float]] = []
    for a, b in sorted(kept):
        if merged and a < merged[-1][1]:
            pa, pb = merged[-1]
            merged[-1] = (pa, max(pb, b))
            issues.append(f"{name}: segments {_fmt(pa, pb)} and {_fmt(a, b)} overlap: merged into "
                          f"{_fmt(*merged[-1])}")
        else:
            merged.append((a, b))
    return tuple(merged), issues


def entry_seconds(entry: dict, fields: tuple[str, ...], fps: float = 25.0) -> tuple[float | None, list[str]]:
    """The video's duration in seconds from the first of ``fields`` an entry has (``duration`` in seconds,
    ``video_frames`` at ``fps``), and an issue when that value is not a positive number (None: segments are
    then not checked against the video's end)."""
    for f in fields:
        if entry.get(f) is None:
            continue
        try:
            v = float(entry[f])
        except (TypeError, ValueError):
            v = math.nan
        if not (math.isfinite(v) and v > 0):
            return None, [f"{f} {entry[f]!r} is not a positive number: segments not checked against the "
                          "video's end"]
        return (v / fps if f == "video_frames" else v), []
    return None, []


class EntryLines:
    """The line on which each entry of a JSON list file starts, for problem reports. Found on first use (one
    more pass over the file, made only when a row has a problem); None for an entry it cannot place."""

    _WS = re.compile(r"[ \t\n\r]*")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: list[int] | None = None

    def __call__(self, index: int) -> int | None:
        if self._lines is None:
            self._lines = self._scan()
        return self._lines[index] if 0 <= index < len(self._lines) else None

    def _scan(self) -> list[int]:
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError):
            return []
        ws, decoder = self._WS, json.JSONDecoder()
        pos = ws.match(text, 0).end()
        if not text.startswith("[", pos):
            return []
        pos = ws.match(text, pos + 1).end()
        starts = []
        try:
            while pos < len(text) and text[pos] != "]":
                starts.append(pos)
                _, pos = decoder.raw_decode(text, pos)
                pos = ws.match(text, pos).end()
                if text.startswith(",", pos):
                    pos = ws.match(text, pos + 1).end()
        except json.JSONDecodeError:
            pass
        lines, line, last = [], 1, 0
        for s in starts:
            line += text.count("\n", last, s)
            last = s
            lines.append(line)
        return lines

    def where(self, index: int, video: Any = "?") -> str:
        """``file:line: entry N (video)`` (``file: entry N (video)`` where the line is unknown)."""
        line = self(index)
        return f"{self.path}{f':{line}' if line else ''}: entry {index} ({video})"


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
        lines = EntryLines(meta)
        for i, e in enumerate(self.load_json(meta)):
            video = e.get("file", "?") if isinstance(e, dict) else "?"
            if not isinstance(e, dict) or "file" not in e:
                self.problem(lines.where(i, video), "entry without a 'file'")
                continue
            duration, issues = entry_seconds(e, ("duration", "video_frames"))
            segs, more = check_segments(e.get("fake_periods"), duration)
            if issues + more:
                self.problem(lines.where(i, video), "; ".join(issues + more))
            if segs is None:
                continue
            mv, ma = bool(e.get("modify_video")), bool(e.get("modify_audio"))
            fake = mv or ma or bool(segs)
            original = e.get("original") or e["file"]
            yield VideoRecord(path=str(root / e["file"]), label="fake" if fake else "real", video_fake=int(mv),
                              audio_fake=int(ma), group=Path(original).stem, dataset=self.dataset,
                              category={(0, 0): "real", (1, 0): "video", (0, 1): "audio", (1, 1): "both"}[(mv, ma)],
                              method="lavdf" if fake else "", split=split_name(e.get("split", "")),
                              fake_segments=segs)
