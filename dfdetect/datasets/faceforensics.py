"""FaceForensics++: ``original_sequences/youtube/<c>/videos/071.mp4`` and
``manipulated_sequences/<Method>/<c>/videos/071_054.mp4`` (target_source), compression ``c0``/``c23``/``c40``,
splits in ``splits/{train,val,test}.json`` as lists of id pairs. A pair is one group: the two originals and
their two fakes always share a split. No audio track: audio labels stay unknown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dfdetect.datasets.base import Reader, videos_under
from dfdetect.records import UNKNOWN, VideoRecord


class FaceForensics(Reader):
    name = "faceforensics"
    dataset = "FF++"

    def __init__(self, *args, compression: str = "c23", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.compression = compression

    @classmethod
    def matches(cls, root: Path) -> bool:
        return (root / "original_sequences").is_dir() and (root / "manipulated_sequences").is_dir()

    def _pairs(self, root: Path) -> tuple[dict[str, str], dict[str, str]]:
        group_of, split_of = {}, {}
        for split in ("train", "val", "test"):
            f = root / "splits" / f"{split}.json"
            if not f.is_file():
                continue
            for pair in self.load_json(f):
                if not (isinstance(pair, list) and len(pair) == 2):
                    self.problem(str(f), f"expected [id, id] pairs, got {pair!r}")
                    continue
                key = "_".join(sorted(pair))
                for i in pair:
                    group_of[i], split_of[i] = key, split
        return group_of, split_of

    def _read(self, root: Path) -> Iterator[VideoRecord]:
        group_of, split_of = self._pairs(root)
        found = False
        for kind, base in (("real", root / "original_sequences"), ("fake", root / "manipulated_sequences")):
            for method_dir in sorted(p for p in base.iterdir() if p.is_dir()):
                comp = method_dir / self.compression
                if not comp.is_dir():
                    continue
                for video in videos_under(comp):
                    found = True
                    first = video.stem.split("_")[0]
                    yield VideoRecord(
                        path=str(video), label=kind, video_fake=int(kind == "fake"), audio_fake=UNKNOWN,
                        group=group_of.get(first, first), dataset=self.dataset, category=method_dir.name,
                        method="" if kind == "real" else method_dir.name, split=split_of.get(first, ""))
        if not found:
            self.problem(str(root), f"no videos at compression {self.compression!r} (try c0, c23 or c40)")
