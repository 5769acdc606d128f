"""Readers for public deepfake datasets, all yielding the same ``VideoRecord``s.

``detect(path)`` recognises a dataset root by its own layout and field names; ``inspect(path)`` summarises
it (what ``dfdetect datasets inspect`` prints); ``carve_splits`` gives every record train/val/test by identity
component (``group_components``: groups joined by every id a clip names), so a fake and its original, a fake and
the person whose face or voice it borrows, or two clips of one identity never land on two sides;
``check_leaks`` refuses a split that does (preprocess and train run it before anything else).
"""

from __future__ import annotations

import json
import sys
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dfdetect.datasets.avdeepfake1m import AVDeepfake1M
from dfdetect.datasets.base import DatasetError, DatasetProblem, Reader, SplitLeakError, split_name
from dfdetect.datasets.celebdf import CelebDF
from dfdetect.datasets.deepfaketimit import DeepfakeTIMIT
from dfdetect.datasets.dfdc import DFDC, DFDCPreview
from dfdetect.datasets.faceforensics import FaceForensics
from dfdetect.datasets.fakeavceleb import FakeAVCeleb
from dfdetect.datasets.generic import CSVList, RealFakeFolders
from dfdetect.datasets.lavdf import LAVDF
from dfdetect.datasets.synth_reader import SynthBenchmark
from dfdetect.records import VideoRecord

# Most specific first: the synth benchmark is also a FakeAVCeleb layout.
READERS: list[type[Reader]] = [SynthBenchmark, FakeAVCeleb, LAVDF, AVDeepfake1M, DFDCPreview, DFDC, FaceForensics,
                               CelebDF, DeepfakeTIMIT, CSVList, RealFakeFolders]

__all__ = ["READERS", "DatasetError", "DatasetProblem", "Reader", "SplitLeakError", "assign_splits", "carve_splits",
           "check_leaks", "data_leaks", "detect", "group_components", "inspect", "leak_message", "read", "split_leaks"]


def detect(path: str | Path, strict: bool = False, check_files: bool = True) -> Reader | None:
    """A reader instance for the layout at ``path``, or None for a plain folder of videos."""
    root = Path(path)
    for cls in READERS:
        try:
            if cls.matches(root):
                return cls(strict=strict, check_files=check_files)
        except OSError:
            continue
    return None


def read(path: str | Path, strict: bool = False) -> tuple[list[VideoRecord], Reader]:
    """All records of a dataset root, and the reader (its ``problems`` say what was skipped)."""
    reader = detect(path, strict=strict)
    if reader is None:
        raise DatasetError(f"{path}: no known dataset layout (known: {', '.join(c.name for c in READERS)})")
    return list(reader.records(path)), reader


SPLITS = ("train", "val", "test")
# datasets whose own split is kept as it is, with no val/test carved into it (``Reader.splits_final``)
FINAL_SPLITS = frozenset(c.dataset for c in READERS if c.splits_final)


def _keys(r: VideoRecord) -> list[str]:
    """What ties a record to others: its group (its path when it has none) and every identity it contains."""
    return [r.group or r.path, *r.identities]


def group_components(records: Iterable[VideoRecord]) -> list[str]:
    """The identity component of each record: groups joined (union-find) whenever one clip names several
    (FakeAVCeleb's fake of ``source`` with ``target1``'s face joins both people's clips). A component is named
    by its smallest key, so the name does not depend on the order of the records; a record without identities
    keeps its group (or path) as its component, as before components existed."""
    records = list(records)
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        parent.setdefault(k, k)
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:  # path compression: DFDC's 119k clips stay near-linear
            parent[k], k = root, parent[k]
        return root

    for r in records:
        keys = _keys(r)
        a = find(keys[0])
        for k in keys[1:]:
            b = find(k)
            if a != b:
                a, b = min(a, b), max(a, b)  # the smallest key names the component
                parent[b] = a
    return [find(_keys(r)[0]) for r in records]


def _hashed(name: str, seed: int, targets: dict[str, float]) -> str:
    """A split for ``name`` by hashing it with ``seed``: stable when other records come and go."""
    h = zlib.crc32(f"{seed}:{name}".encode()) / 2 ** 32 * sum(targets.values())
    for split, share in targets.items():
        if h < share:
            return split
        h -= share
    return next(reversed(targets))


def _share_out(sizes: dict[str, int], targets: dict[str, float], seed: int) -> tuple[dict[str, str], list[str]]:
    """Each component (name -> clips) on one side of ``targets`` (split -> share), by hash; a component bigger
    than its hashed side's whole target goes to train instead (one person's 800 clips would be the whole val
    split). Returns the sides and the names of the components kept in train for their size."""
    total = sum(sizes.values())
    norm = sum(targets.values())
    out, big = {}, []
    for name in sorted(sizes):
        side = _hashed(name, seed, targets)
        if side != "train" and len(sizes) > 1 and sizes[name] > targets[side] / norm * total:
            side = "train"
            big.append(name)
        out[name] = side
    return out, big


def _counts(splits: Iterable[str]) -> str:
    c = Counter(splits)
    return ", ".join(f"{s} {c[s]}" for s in SPLITS if c.get(s))


def carve_splits(records: Iterable[VideoRecord], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                 seed: int = 0, keep_existing: bool = True) -> tuple[list[VideoRecord], list[str]]:
    """Every record ends in ``train``/``val``/``test``, each identity component (``group_components``) on one
    side, so early stopping and the best checkpoint never look at a training person. Returns the records and
    one line per thing carved (for the log and ``datasets inspect``).

    * A dataset whose own split has ``train`` but no ``val`` (Celeb-DF: train/test) or neither ``val`` nor
      ``test`` (DFDC: ``train`` everywhere) gets them carved out of the components that are wholly in its
      train split, ``fractions`` of them by seeded hash (val: ``fractions[1] / (fractions[0] + fractions[1])``
      of train's components when the dataset has its own test).
    * A record without a split joins its component's side when the component has one, else its component is
      hashed into train/val/test by ``fractions`` (the datasets without splits: FakeAVCeleb, folders, lists).
    * A component the dataset itself puts on two sides is left as it is: ``split_leaks`` reports it.

    Deterministic: the same records and ``seed`` give the same split, and a component's side depends only on
    its name and size, so adding inputs moves no other component. With ``keep_existing=False`` the dataset's
    own splits are ignored and everything is split by component."""
    records = list(records)
    comp = group_components(records)
    split = [split_name(r.split) if keep_existing else "" for r in records]
    targets_all = dict(zip(SPLITS, fractions))
    notes: list[str] = []

    def sides_of() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for c, s in zip(comp, split):
            if s:
                found.setdefault(c, set()).add(s)
        return found

    # 1. datasets with a train split but no val (and/or test): carve them out of the wholly-train components
    sides = sides_of()
    present: dict[str, set[str]] = {}
    for r, s in zip(records, split):
        if s:
            present.setdefault(r.dataset, set()).add(s)
    for ds in sorted(present):
        missing = [s for s in ("val", "test") if s not in present[ds]]
        if "train" not in present[ds] or not missing or ds in FINAL_SPLITS:
            continue
        idx = [i for i, r in enumerate(records) if r.dataset == ds and split[i] == "train" and sides[comp[i]] == {"train"}]
        sizes = Counter(comp[i] for i in idx)
        targets = {"train": fractions[0], **{s: targets_all[s] for s in missing}}
        side, big = _share_out(sizes, targets, seed)
        for i in idx:
            split[i] = side[comp[i]]
        mixed = sum(1 for c, ss in sides.items() if "train" in ss and len(ss) > 1)
        notes.append(f"{ds or 'dataset'}: no {'/'.join(missing)} split of its own: carved from its train split by "
                     f"identity component (seed {seed}): {_counts(split[i] for i in idx)} clips of "
                     f"{len(sizes)} components" + (f"; {len(big)} components too big for val/test stay in train "
                     f"(largest {max(big, key=sizes.get)!r}, {max(sizes[b] for b in big)} clips)" if big else "")
                     + (f"; {mixed} components its own split puts on two sides are left there" if mixed else ""))
    # 2. records without a split: their component's side, or a side for the component by hash
    sides = sides_of()
    idx = [i for i, s in enumerate(split) if not s]
    if idx:
        joined = 0
        sizes = Counter(comp[i] for i in idx if comp[i] not in sides)
        side, big = _share_out(sizes, targets_all, seed)
        # a component with a side already: its most common one (a leaking component has several)
        have: dict[str, Counter] = {}
        for c, s in zip(comp, split):
            if s:
                have.setdefault(c, Counter())[s] += 1
        for i in idx:
            if comp[i] in have:
                split[i] = have[comp[i]].most_common(1)[0][0]
                joined += 1
            else:
                split[i] = side[comp[i]]
        notes.append(f"{len(idx)} clips without a split: {_counts(split[i] for i in idx)} by identity component "
                     f"(seed {seed}, {len(sizes)} components)" + (f", {joined} joining their component's side"
                                                                    if joined else "")
                     + (f"; {len(big)} components too big for val/test stay in train" if big else ""))
    for s in SPLITS:
        if records and s not in split and not {r.dataset for r in records} <= FINAL_SPLITS:
            notes.append(f"no {s} clip at all: the identity components are too few or too big for a {s} split")
    return [r if r.split == s else replace(r, split=s) for r, s in zip(records, split)], notes


def assign_splits(records: Iterable[VideoRecord], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  seed: int = 0, keep_existing: bool = True) -> list[VideoRecord]:
    """``carve_splits``'s records alone: every record in train/val/test, each identity component on one side.
    Records that already have a split (from the dataset) keep it when ``keep_existing``."""
    return carve_splits(records, fractions, seed, keep_existing)[0]


def split_leaks(records: Iterable[VideoRecord]) -> dict[str, set[str]]:
    """Identity components (``group_components``) found in more than one split (should be empty), by the
    component's name."""
    records = list(records)
    seen: dict[str, set[str]] = {}
    for r, c in zip(records, group_components(records)):
        if r.split:
            seen.setdefault(c, set()).add(r.split)
    return {g: s for g, s in seen.items() if len(s) > 1}


def leak_message(records: Iterable[VideoRecord], leaks: dict[str, set[str]] | None = None, limit: int = 3) -> str:
    """One line naming the leaking components, the groups/ids in each and their splits."""
    records = list(records)
    leaks = split_leaks(records) if leaks is None else leaks
    members: dict[str, set[str]] = {}
    for r, c in zip(records, group_components(records)):
        if c in leaks:
            members.setdefault(c, set()).update(k for k in _keys(r) if k != r.path)
    parts = []
    for c in sorted(leaks)[:limit]:
        ids = sorted(members.get(c, set()) - {c})
        also = f" (with {', '.join(ids[:4])}{', ...' if len(ids) > 4 else ''})" if ids else ""
        parts.append(f"group {c!r}{also} is in {'/'.join(s for s in SPLITS if s in leaks[c]) or sorted(leaks[c])}")
    more = f" and {len(leaks) - limit} more" if len(leaks) > limit else ""
    return f"{len(leaks)} identity group(s) on several splits: {'; '.join(parts)}{more}"


def check_leaks(records: Iterable[VideoRecord], allow: bool = False, where: str = "") -> str | None:
    """Refuses (``SplitLeakError``, exit 2) records whose split puts one identity component on two sides, or
    with ``allow`` prints the same line as a warning and returns it. None when there is no leak."""
    records = list(records)
    leaks = split_leaks(records)
    if not leaks:
        return None
    msg = f"{where}{': ' if where else ''}split leak: {leak_message(records, leaks)}"
    if not allow:
        raise SplitLeakError(f"{msg}; fix the split (or re-split by identity) or pass --allow-leaks to go on")
    print(f"warning: {msg} (--allow-leaks: going on)", file=sys.stderr, flush=True)
    return msg


def _cell(v: Any) -> str:
    """A manifest cell as text: pandas gives NaN where an older part of the folder lacks the column."""
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def data_leaks(data_dir: str | Path, allow: bool = False) -> str | None:
    """``check_leaks`` on a preprocessed folder: the manifest's videos that gave windows (status ``ok``), by
    group and the ids its ``identities`` column names (a folder written before that column: groups alone).
    None when there is no leak or no manifest (nothing to check)."""
    from dfdetect.preprocess import load_manifest

    if not any(Path(data_dir).glob("manifest*.csv")):
        return None
    m = load_manifest(data_dir)
    if "status" in m:
        m = m[m["status"].astype(str) == "ok"]
    records = []
    for row in m.to_dict("records"):
        ids = _cell(row.get("identities")).strip()
        records.append(VideoRecord(path=_cell(row.get("path")), group=_cell(row.get("group")),
                                   split=_cell(row.get("split")), identities=tuple(json.loads(ids)) if ids else ()))
    return check_leaks(records, allow=allow, where=f"{data_dir}")


def inspect(path: str | Path, strict: bool = False) -> dict[str, Any]:
    """``{"layout", "videos", "labels": {"real", "fake"}, "categories", "splits", "problems"}``."""
    reader = detect(path, strict=strict)
    if reader is None:
        raise DatasetError(f"{path}: no known dataset layout (known: {', '.join(c.name for c in READERS)})")
    records = list(reader.records(path))
    labels = Counter(r.label for r in records)
    problems = list(reader.problems)
    carved, notes = carve_splits(records)
    leaks = split_leaks(carved)
    if leaks:
        problems.append(f"split leak: {leak_message(carved, leaks, limit=10)}")
    return {
        "layout": reader.name,
        "videos": len(records),
        "labels": {"real": labels.get("real", 0), "fake": labels.get("fake", 0)},
        "categories": dict(sorted(Counter(r.category for r in records if r.category).items())),
        "splits": dict(sorted(Counter(r.split for r in records if r.split).items())),
        "groups": len({r.group for r in records if r.group}),
        "components": len(set(group_components(records))),
        "segments": sum(1 for r in records if r.fake_segments),
        "carved": notes,
        "splits_used": dict(sorted(Counter(r.split for r in carved).items())),
        "problems": problems,
    }
