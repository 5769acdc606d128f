"""Model files one can trust: a sha256 for every file an export holds, checked before anything is loaded, and
``.keras`` files refused when they name code that is not Keras' own or dfdetect's registered layers.

A model folder is something people download and pass around; ``dfdetect serve`` loads one on a network-facing
machine. Two things can go wrong with such a folder:

* a file was changed after export (corrupted in a copy, or replaced): ``dfdetect export`` records the sha256 of
  every file beside the card in ``model_card.json["files"]``, and ``predict``/``serve`` verify the files they
  read against it before loading (``verify_files``). The card is the root of this check: whoever trusts a model
  trusts its card (publish the card's own sha256 beside a download).
* a ``.keras`` file whose config names other code: a ``Lambda`` layer carries Python bytecode, and a config
  may name any module and class. Keras 3.15 resolves classes only among what is registered and refuses
  bytecode in ``safe_mode``, but with an obscure ``TypeError``, and what a Keras version resolves is its own
  business. ``check_keras_file`` reads ``config.json`` from the zip without Keras and refuses anything but
  Keras' own classes and dfdetect's registered layers (``dfdetect>Name``) with a message that says why, before
  Keras sees the file; Keras' ``safe_mode=True`` stays as a second line.

A ``.tflite`` file holds only LiteRT's built-in operators and a SavedModel only TensorFlow ops: neither runs
Python, which is why the default prediction path (LiteRT) needs only the hash check.

Example:
    >>> card["files"] = file_hashes("saved_models/demo-export")            # doctest: +SKIP  (at export)
    >>> verify_files("saved_models/demo-export", card, ["model.tflite"])   # doctest: +SKIP  (before loading)
    >>> check_keras_file("saved_models/demo-export/model.keras")           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dfdetect.errors import UsageError

# files that describe the others: the card cannot hold its own hash, and the Markdown copy is for people
UNHASHED = frozenset({"model_card.json", "model_card.md"})
PACKAGE_PREFIX = "dfdetect>"  # keras.saving.register_keras_serializable(package="dfdetect")
NOT_VERIFIED = ("the model card records no file hashes (exported before dfdetect recorded them): its files are "
                "not verified; export the run again to record them")
# Keras classes that carry or name arbitrary Python code even though they are Keras' own
CODE_CARRIERS = frozenset({"Lambda", "__lambda__", "function", "TFSMLayer"})


class ModelIntegrityError(UsageError):
    """A model file does not match the sha256 its card records, or is missing; the CLI exits 2."""


class UnsafeModelError(UsageError):
    """A ``.keras`` file names code that is neither Keras' nor dfdetect's registered layers; never loaded."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_hashes(model_dir: str | Path) -> dict[str, str]:
    """``{relative/posix/path: sha256}`` of every file under ``model_dir`` except the card itself, sorted."""
    root = Path(model_dir)
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).as_posix() not in UNHASHED}


def verify_files(model_dir: str | Path, card: dict[str, Any], names: Iterable[str] | None = None,
                 missing_ok: bool = False) -> str:
    """Checks the files a loader is about to read (``names``: relative paths, or folder prefixes such as
    ``saved_model/``; default every file the card lists) against the card's sha256. Returns ``""`` when all
    match, or a one-line notice when the card records no hashes (an older export); raises
    ``ModelIntegrityError`` naming the file when one is missing or differs. ``missing_ok``: a named file that
    is absent is left to the loader (which says what to do about it); a file that is there must match."""
    recorded = card.get("files")
    if not recorded:
        return NOT_VERIFIED
    root = Path(model_dir)
    wanted = list(recorded) if names is None else _expand(recorded, names, root)
    for name in wanted:
        expected = recorded.get(name)
        path = root / name
        if expected is None:
            raise ModelIntegrityError(f"{path} is not listed in {root / 'model_card.json'}: the folder was "
                                      "changed after export; export the run again")
        if not path.is_file():
            if missing_ok:
                continue
            raise ModelIntegrityError(f"{path} is missing: the model card lists it (export the run again or "
                                      "restore the file)")
        got = sha256_file(path)
        if got != expected:
            raise ModelIntegrityError(f"{path} does not match the sha256 in its model card (expected "
                                      f"{expected[:12]}..., got {got[:12]}...): it was changed or corrupted "
                                      "after export; export the run again or restore the file")
    return ""


def _expand(recorded: dict[str, str], names: Iterable[str], root: Path) -> list[str]:
    out: list[str] = []
    for name in names:
        if name.endswith("/"):  # a folder: every file the card lists under it, and every file on disk there
            listed = [k for k in recorded if k.startswith(name)]
            on_disk = [p.relative_to(root).as_posix() for p in sorted((root / name).rglob("*")) if p.is_file()]
            out += listed + [k for k in on_disk if k not in recorded]  # an added file is refused too
        else:
            out.append(name)
    return out


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every serialized object (a dict with ``class_name``) in a Keras config, depth first."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


def unsafe_objects(config: dict[str, Any], registered: Iterable[str] | None = None) -> list[str]:
    """The objects of a Keras model config that loading would run foreign code for, as ``module.Class``.

    Args:
        config: the parsed ``config.json`` of a ``.keras`` file.
        registered: the registered names allowed for dfdetect's own classes (``dfdetect>MaskSteps``...);
            default: any ``dfdetect>`` name whose module is ``dfdetect`` or below it (Keras refuses unknown
            registered names itself when it loads).
    """
    allowed = None if registered is None else set(registered)
    bad = []
    for obj in _objects(config):
        cls, module, reg = str(obj.get("class_name")), obj.get("module"), obj.get("registered_name")
        if cls == "__keras_tensor__" and module is None:
            continue  # a reference between layers, not a class
        name = f"{module}.{cls}"
        if cls in CODE_CARRIERS:
            bad.append(name)
        elif isinstance(module, str) and (module == "keras" or module.startswith("keras.")):
            if reg not in (None, cls, "Functional") and not str(reg).startswith("keras"):
                bad.append(f"{name} (registered as {reg})")  # a Keras module path with a foreign registration
        elif isinstance(module, str) and (module == "dfdetect" or module.startswith("dfdetect.")) \
                and isinstance(reg, str) and reg == PACKAGE_PREFIX + cls \
                and (allowed is None or reg in allowed):
            continue
        else:
            bad.append(name)
    return sorted(set(bad))


def check_keras_file(path: str | Path, registered: Iterable[str] | None = None) -> None:
    """Refuses (``UnsafeModelError``) a ``.keras`` file that names a ``Lambda`` layer or any class outside
    Keras and dfdetect's registered layers, reading its ``config.json`` without Keras: nothing in it runs."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UnsafeModelError(f"{path} is not a readable .keras file ({type(e).__name__}: {e})") from None
    bad = unsafe_objects(config, registered)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise UnsafeModelError(f"{path} names code outside Keras and dfdetect's registered layers ({shown}): "
                               "refused without loading it (safe mode); a Lambda layer or a custom class would "
                               "run Python from the file")
