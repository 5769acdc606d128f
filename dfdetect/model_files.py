"""Obtaining and verifying the MediaPipe face-detector model files (``dfdetect models fetch``).

Recent mediapipe wheels ship no ``.tflite`` for the Tasks ``FaceDetector``. Sources, tried in order:

1. a path the user gives (``source=``),
2. the cache (``$DFDETECT_MODELS`` or ``saved_models/mediapipe`` beside the project, else the user cache),
3. the official MediaPipe asset address (the bucket the mediapipe build itself pins these files from),
4. the ``mediapipe==0.10.21`` wheel from the package index (``pip download --no-deps``), which contains both
   files, for machines that can reach only a package index.

Every file is checked against its sha256 before use; a mismatch is an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelFile:
    name: str
    filename: str
    sha256: str
    url: str
    wheel_member: str


MODELS: dict[str, ModelFile] = {
    "short": ModelFile(
        name="short",
        filename="face_detection_short_range.tflite",
        sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        url="https://storage.googleapis.com/mediapipe-assets/face_detection_short_range.tflite",
        wheel_member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
    ),
    "full": ModelFile(
        name="full",
        filename="face_detection_full_range_sparse.tflite",
        sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        url="https://storage.googleapis.com/mediapipe-assets/face_detection_full_range_sparse.tflite",
        wheel_member="mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    ),
}
WHEEL_SPEC = "mediapipe==0.10.21"
ENV_VAR = "DFDETECT_MODELS"


class ModelFileError(RuntimeError):
    """A model file could not be obtained or failed its checksum."""


def cache_dir() -> Path:
    """Where verified model files live: ``$DFDETECT_MODELS``, else ``saved_models/mediapipe`` in the
    current project (when run from a checkout), else ``~/.cache/dfdetect/mediapipe``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    project = Path(__file__).resolve().parent.parent
    if (project / "saved_models").is_dir() and os.access(project / "saved_models", os.W_OK):
        return project / "saved_models" / "mediapipe"
    return Path.home() / ".cache" / "dfdetect" / "mediapipe"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, model: ModelFile, origin: str) -> None:
    got = sha256_of(path)
    if got != model.sha256:
        raise ModelFileError(
            f"{model.filename} from {origin} has sha256 {got}, expected {model.sha256}; refusing to use it"
        )


def _install(src: Path, model: ModelFile, origin: str, dest_dir: Path) -> Path:
    _verify(src, model, origin)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / model.filename
    tmp = dest.with_suffix(".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def _from_url(model: ModelFile, dest_dir: Path, timeout: float) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / model.filename
        with urllib.request.urlopen(model.url, timeout=timeout) as r, open(target, "wb") as f:
            shutil.copyfileobj(r, f)
        return _install(target, model, model.url, dest_dir)


def _download_wheel(tmp: Path, timeout: float) -> Path:
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(tmp)]
    attempts = [
        base + [WHEEL_SPEC],
        # Any wheel of that release holds the same files: fall back to a CPython 3.11 Linux wheel when this
        # interpreter (say 3.13) has none.
        base + ["--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                WHEEL_SPEC],
    ]
    errors = []
    for cmd in attempts:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        wheels = sorted(tmp.glob("mediapipe-*.whl"))
        if wheels:
            return wheels[0]
        errors.append((proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"])
    raise ModelFileError(f"pip download {WHEEL_SPEC} failed: {errors}")


def _from_wheel(models: list[ModelFile], dest_dir: Path, timeout: float) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        wheel = _download_wheel(tmp, timeout)
        out = []
        with zipfile.ZipFile(wheel) as zf:
            for model in models:
                target = tmp / model.filename
                with zf.open(model.wheel_member) as src, open(target, "wb") as f:
                    shutil.copyfileobj(src, f)
                out.append(_install(target, model, f"{wheel.name}:{model.wheel_member}", dest_dir))
        return out


def model_path(name: str = "short", fetch: bool = True) -> Path:
    """The verified path of a face-detector model, fetching it if allowed and needed."""
    if name not in MODELS:
        raise ValueError(f"unknown face model {name!r}; known: {', '.join(MODELS)}")
    model = MODELS[name]
    path = cache_dir() / model.filename
    if path.exists():
        _verify(path, model, str(path))
        return path
    if not fetch:
        raise ModelFileError(f"{model.filename} is not in {cache_dir()}; run `dfdetect models fetch`")
    return fetch_models([name])[name]


def fetch_models(
    names: list[str] | None = None,
    source: str | Path | None = None,
    dest_dir: str | Path | None = None,
    use_url: bool = True,
    use_wheel: bool = True,
    timeout: float = 120.0,
    log=print,
) -> dict[str, Path]:
    """Makes sure each named model file is in the cache, verified; returns name -> path.

    Args:
        names: model names (``short``, ``full``); all by default.
        source: a file or folder the user already has (checked before anything is downloaded).
        dest_dir: the cache folder (default ``cache_dir()``).
        use_url, use_wheel: allow those sources.
    """
    dest = Path(dest_dir) if dest_dir else cache_dir()
    wanted = [MODELS[n] for n in (names or list(MODELS))]
    found: dict[str, Path] = {}
    missing: list[ModelFile] = []
    for model in wanted:
        if source is not None:
            src = Path(source)
            candidates = [src] if src.is_file() else [src / model.filename, src / Path(model.url).name]
            for cand in candidates:
                if cand.is_file():
                    try:
                        found[model.name] = _install(cand, model, str(cand), dest)
                    except ModelFileError:
                        if src.is_file():
                            raise
                        continue
                    log(f"{model.name}: copied from {cand}")
                    break
            if model.name in found:
                continue
        cached = dest / model.filename
        if cached.exists():
            _verify(cached, model, str(cached))
            found[model.name] = cached
            log(f"{model.name}: cached at {cached}")
            continue
        missing.append(model)

    still: list[ModelFile] = []
    for model in missing:
        if use_url:
            try:
                found[model.name] = _from_url(model, dest, timeout=min(timeout, 20.0))
                log(f"{model.name}: downloaded from {model.url}")
                continue
            except ModelFileError:
                raise
            except Exception as e:  # network errors: fall through to the next source
                log(f"{model.name}: official address unreachable ({type(e).__name__}); trying the wheel")
        still.append(model)

    if still:
        if not use_wheel:
            raise ModelFileError(f"could not obtain {[m.filename for m in still]}")
        for model, path in zip(still, _from_wheel(still, dest, timeout)):
            found[model.name] = path
            log(f"{model.name}: extracted from {WHEEL_SPEC} into {path}")
    return found
