"""Two generic layouts: a folder with ``real/`` and ``fake/`` subfolders, and a CSV list
``path,label[,group,...]`` (``labels.csv`` in a folder, or the CSV file itself).

``read_csv_list`` is the one parser of CSV lists: the ``csv`` reader here and ``dfdetect preprocess list.csv``
both use it, so a list means the same to both."""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader, normalise_label, normalise_split, videos_under
from dfdetect.media import VIDEO_EXTENSIONS
from dfdetect.records import UNKNOWN, VideoRecord

LABEL_HELP = "real/fake, original/manipulated, true/false or 0/1"
SPLIT_HELP = "train, val (validation, dev) or test (testing), or empty"


def _is_url(path: str) -> bool:
    return "://" in path  # gs://bucket/x.mp4: absolute, read through Beam's file systems


def _modality(value: str) -> int | None:
    """A per-modality label cell: 0/1 (or a label word), empty or -1 for unknown; None when unreadable."""
    v = value.strip().lower()
    if v in ("", "-1", "unknown", "?"):
        return UNKNOWN
    label = normalise_label(v)
    return None if label is None else int(label == "fake")


def _identities(value: str) -> list[str]:
    """``["id1", "id2"]`` (as the manifest writes it) or ``id1|id2`` / ``id1;id2`` (as people type it)."""
    v = value.strip()
    if v.startswith("["):
        return [str(i) for i in json.loads(v)]
    return [i.strip() for i in v.replace(";", "|").split("|") if i.strip()]


def read_csv_list(path: str | Path, base: str | None = None, require_label: bool = False,
                  problem: Callable[[str, str], None] | None = None) -> Iterator[VideoRecord]:
    """Records of a CSV list ``path[,label,group,split,identities,dataset,category,method,...]``.

    ``path`` is relative to ``base`` (default: the CSV's folder; a ``gs://`` URL for a list read from a bucket);
    without a ``path`` header the first column is the path (and a first line that is itself a video makes the
    file a header-less list of ``path[,label[,group]]``). Labels take every spelling ``normalise_label`` knows,
    splits every one ``normalise_split`` knows. A row that cannot be used (unknown label or split, no path,
    a bad per-modality label or segment list) is skipped and passed to ``problem(where, reason)`` with
    ``where`` = ``file:line``; an empty label is an unlabelled video unless ``require_label``. Group defaults
    to the file's stem, dataset to the CSV's stem."""
    f = Path(path)
    report = problem or (lambda where, reason: None)
    with open(f, newline="") as fh:
        reader = csv.reader(fh)
        cells0 = next(reader, [])
        header = [h.strip().lower() for h in cells0]
        first: list[tuple[int, list[str]]] = []
        if header and "path" not in header and Path(header[0]).suffix.lower() in VIDEO_EXTENSIONS:
            first = [(1, cells0)]  # no header at all: the first line is already a video
            header = ["path", "label", "group"]
        elif header and "path" not in header:
            header[0] = "path"
        # reader.line_num is read as each row is: the physical line, right across quoted line breaks
        for lineno, cells in itertools.chain(first, ((reader.line_num, c) for c in reader)):
            if not any(c.strip() for c in cells):
                continue
            where = f"{f}:{lineno}"
            row = {k: cells[i].strip() if i < len(cells) else "" for i, k in enumerate(header) if k}
            rec = _record(row, f, base, require_label, where, report)
            if rec is not None:
                yield rec


def _record(row: dict[str, str], f: Path, base: str | None, require_label: bool, where: str,
            report: Callable[[str, str], None]) -> VideoRecord | None:
    """One CSV row -> a record, or None after reporting why not."""
    raw = row.get("path", "")
    if not raw:
        report(where, "no path")
        return None
    if _is_url(raw):
        resolved = raw
    elif base is not None and _is_url(base) and not Path(raw).is_absolute():
        resolved = f"{base.rstrip('/')}/{raw}"
    else:
        p = Path(raw)
        resolved = str(p if p.is_absolute() else Path(base or f.parent) / p)
    label = normalise_label(row["label"]) if row.get("label") else ""
    if label is None:
        report(where, f"unknown label {row['label']!r} (expected {LABEL_HELP})")
        return None
    if not label and require_label:
        report(where, f"no label (expected {LABEL_HELP})")
        return None
    split = normalise_split(row.get("split", ""))
    if split is None:
        report(where, f"unknown split {row['split']!r} (expected {SPLIT_HELP})")
        return None
    out: dict[str, object] = {**row, "path": resolved, "label": label, "split": split,
                              "group": row.get("group") or Path(raw).stem, "dataset": row.get("dataset") or f.stem}
    for name in ("video_fake", "audio_fake", "av_mismatch"):
        value = _modality(row.get(name, ""))
        if value is None:
            report(where, f"unknown {name} {row[name]!r} (expected 0, 1 or empty for unknown)")
            return None
        out[name] = value
    try:
        out["identities"] = json.dumps(_identities(row.get("identities", "")))
        return VideoRecord.from_row(out)
    except (ValueError, TypeError) as e:  # a malformed segment or identity list (JSON), a bad segment pair
        report(where, f"unusable row ({type(e).__name__}: {e})")
        return None

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
        yield from read_csv_list(self._file(root), require_label=True, problem=self.problem)
