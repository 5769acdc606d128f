"""The data contract every stage shares: ``VideoRecord`` (one input video and what is known about it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

UNKNOWN = -1  # a per-modality label that the dataset does not give; its head gets zero weight

LABELS = ("real", "fake")


@dataclass(frozen=True)
class VideoRecord:
    """One video and its labels, as every dataset reader yields it.

    Args:
        path: the video file.
        label: ``real``, ``fake`` or ``""`` when unknown (plain inference).
        video_fake, audio_fake, av_mismatch: per-modality labels, 0, 1 or ``UNKNOWN``.
        group: source identity or original video; splits never put one group on two sides.
        identities: every person whose face or voice the clip contains, where the dataset says (FakeAVCeleb's
            ``source``, ``target1``, ``target2``; Celeb-DF's ``idA`` and ``idB`` of ``idA_idB_0001.mp4``). Splits
            keep each connected component of groups and these ids on one side
            (``dfdetect.datasets.group_components``).
        dataset: the dataset's short name.
        category: dataset category, e.g. FakeAVCeleb ``A``-``D``.
        method: manipulation method when known.
        split: ``train``/``val``/``test`` when the dataset defines it.
        fake_segments: manipulated time spans in seconds, for partial fakes (any modality: LAV-DF's
            ``fake_periods``, AV-Deepfake1M's ``fake_segments``).
        video_segments, audio_segments: the spans where that modality was manipulated, when the dataset says
            so apart (AV-Deepfake1M's ``visual_fake_segments`` / ``audio_fake_segments``). ``None``: not given
            apart; a modality whose label is fake is then fake over ``fake_segments`` (or everywhere, for a
            clip without segments) -- see ``modality_segments``.
    """

    path: str
    label: str = ""
    video_fake: int = UNKNOWN
    audio_fake: int = UNKNOWN
    av_mismatch: int = UNKNOWN
    group: str = ""
    dataset: str = ""
    category: str = ""
    method: str = ""
    split: str = ""
    fake_segments: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    video_segments: tuple[tuple[float, float], ...] | None = None
    audio_segments: tuple[tuple[float, float], ...] | None = None
    identities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in ("", *LABELS):
            raise ValueError(f"label must be 'real', 'fake' or empty, got {self.label!r}")
        for name in ("video_fake", "audio_fake", "av_mismatch"):
            if getattr(self, name) not in (0, 1, UNKNOWN):
                raise ValueError(f"{name} must be 0, 1 or {UNKNOWN}, got {getattr(self, name)!r}")
        ids = (self.identities,) if isinstance(self.identities, str) else self.identities  # one id, not its letters
        object.__setattr__(self, "identities", tuple(str(i) for i in ids if str(i)))
        segs = tuple((float(a), float(b)) for a, b in self.fake_segments)
        object.__setattr__(self, "fake_segments", segs)
        for name in ("video_segments", "audio_segments"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, tuple((float(a), float(b)) for a, b in v))

    def modality_segments(self, modality: str) -> tuple[tuple[float, float], ...] | None:
        """Where ``modality`` (``any``, ``video`` or ``audio``) is fake, in seconds; ``None`` when unknown.

        An empty tuple with a fake label means *everywhere* (a wholly manipulated clip); with a real label,
        nowhere. Use ``frame_labels`` in ``dfdetect.shards`` for per-frame labels."""
        if modality == "any":
            return None if self.fake == UNKNOWN else (self.fake_segments if self.fake else ())
        if modality not in ("video", "audio"):
            raise ValueError(f"modality must be any, video or audio, got {modality!r}")
        label = self.video_fake if modality == "video" else self.audio_fake
        if label == UNKNOWN:
            return None
        if not label:
            return ()
        own = self.video_segments if modality == "video" else self.audio_segments
        return own if own else self.fake_segments

    @property
    def fake(self) -> int:
        """1 fake, 0 real, ``UNKNOWN`` when unlabelled."""
        return {"real": 0, "fake": 1}.get(self.label, UNKNOWN)

    def to_row(self) -> dict[str, Any]:
        """A flat dict for CSV: segments and identities as JSON (identities ``""`` when none)."""
        row = asdict(self)
        row["identities"] = json.dumps(list(self.identities)) if self.identities else ""
        for name in ("fake_segments", "video_segments", "audio_segments"):
            v = getattr(self, name)
            row[name] = "" if v is None else json.dumps([list(x) for x in v])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> VideoRecord:
        """Inverse of ``to_row``; tolerant of missing columns and pandas NaN."""

        def clean(v: Any) -> Any:
            return "" if v is None or (isinstance(v, float) and v != v) else v

        known = {k: clean(row.get(k, "")) for k in cls.__dataclass_fields__ if k in row}
        for name in ("video_fake", "audio_fake", "av_mismatch"):
            v = known.get(name, "")
            known[name] = UNKNOWN if v == "" else int(float(v))
        ids = known.get("identities", "")
        known["identities"] = tuple(json.loads(ids)) if ids else ()
        segs = known.get("fake_segments", "")
        known["fake_segments"] = tuple(tuple(s) for s in json.loads(segs)) if segs else ()
        for name in ("video_segments", "audio_segments"):
            v = known.get(name, "")
            known[name] = tuple(tuple(s) for s in json.loads(v)) if v else None
        for k in ("path", "label", "group", "dataset", "category", "method", "split"):
            if k in known:
                known[k] = str(known[k])
        return cls(**known)
