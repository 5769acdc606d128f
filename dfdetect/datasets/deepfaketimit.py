"""DeepfakeTIMIT: ``higher_quality/<subject>/*.avi`` and ``lower_quality/<subject>/*.avi`` are fakes
(face swaps, original audio); real videos come from VidTIMIT and, when present, sit in ``real/`` or
``VidTIMIT/``. Labels come from the folders; group = subject."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader, videos_under
from dfdetect.records import VideoRecord

FAKE_DIRS = ("higher_quality", "lower_quality")
REAL_DIRS = ("real", "VidTIMIT", "vidtimit")


class DeepfakeTIMIT(Reader):
    name = "deepfaketimit"
    dataset = "DeepfakeTIMIT"

    @classmethod
    def matches(cls, root: Path) -> bool:
        return any((root / d).is_dir() for d in FAKE_DIRS)

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        for d, label in [(d, "fake") for d in FAKE_DIRS] + [(d, "real") for d in REAL_DIRS]:
            base = root / d
            if not base.is_dir():
                continue
            for video in videos_under(base):
                subject = video.relative_to(base).parts[0] if len(video.relative_to(base).parts) > 1 else video.stem
                yield VideoRecord(path=str(video), label=label, video_fake=int(label == "fake"), audio_fake=0,
                                  av_mismatch=0 if label == "real" else -1, group=subject, dataset=self.dataset,
                                  category=d, method="faceswap" if label == "fake" else "")
