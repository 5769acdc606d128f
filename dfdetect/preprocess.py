"""``dfdetect preprocess``: videos -> face-crop windows with aligned audio in TFRecord shards + a manifest.

Crash safety, the whole design in a few lines:

* a worker streams one video's windows into its own temporary file (memory stays flat);
* the main process appends that file to the current shard, fsyncs, then appends the video's rows to
  ``windows.csv`` and finally its row to ``manifest.csv`` (the commit point);
* on a rerun, shards are truncated to the last committed byte, uncommitted window rows dropped, and every
  video with a manifest row skipped: a killed run resumes with no duplicate and no half-written record;
* a bad file (or a worker process that died in the decoder) is a ``failed`` row with a one-line reason;
* an unexpected exception on one file is a bug, not a verdict on the file: an ``error`` row (``internal error:
  Type: message``), its traceback in ``OUT/logs/preprocess.log``, the batch goes on, the run ends with exit
  code 1, and the next run retries that file;
* a full disk (ENOSPC/EDQUOT, in a worker or the main process) stops the run with one line (``DiskFull``, exit
  2) after cutting the failed video's partial writes back off: no row, shard byte or window row of it remains,
  and the same command resumes once space is freed.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import io
import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dfdetect.config import Config, FaceConfig, get_config
from dfdetect.errors import BadArgument, MissingInput, UsageError, checkpoint, log_traceback, one_line
from dfdetect.media import VIDEO_EXTENSIONS, MediaError
from dfdetect.records import VideoRecord

MANIFEST_COLUMNS = [
    "path", "status", "reason", "windows", "face_ratio", "has_audio",
    "video_id", "duration", "max_faces", "trimmed_s", "warnings", "seconds",
    "shard", "offset", "length",
    "label", "video_fake", "audio_fake", "av_mismatch", "group", "dataset", "category", "method", "split",
    "fake_segments", "video_segments", "audio_segments",
    "identities",  # last: older manifests lack it (recover rewrites them with it, empty); train's leak check reads it
]
WINDOW_COLUMNS = ["video_id", "path", "index", "start", "face_ratio", "audio_ratio", "window_fake", "shard",
                  "label", "group", "category", "split"]


class DiskFull(UsageError, OSError):
    """The output's file system is full (or over quota): the run stops (exit 2, the user's to fix) with every
    committed video whole and nothing half-written left in ``windows.csv``, the manifest or a shard; the same
    command resumes once space is freed."""

    def __str__(self) -> str:
        return str(self.strerror)  # the sentence alone, without OSError's "[Errno 28]"


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(e: BaseException) -> bool:
    """Whether ``e`` says the disk is full: an ``OSError`` with ENOSPC/EDQUOT, or an error from a library that
    reports it only in words (TensorFlow's file writer raises ``ResourceExhaustedError: ...; No space left
    on device``)."""
    if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
        return True
    text = str(e)
    return any(os.strerror(code) in text for code in _FULL_ERRNOS)


def disk_full(what: str | Path, done: int | None = None) -> DiskFull:
    """The one-line error a full disk stops a run with."""
    kept = f" (videos committed: {done}, each whole)" if done is not None else ""
    return DiskFull(errno.ENOSPC, f"disk full while writing {what}{kept}: free space and run the same command "
                                  "again to resume")


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------

def video_id(path: str) -> str:
    """A stable id for a video: its stem plus a short hash of its absolute path (a URL such as ``gs://...``
    as written: resolving it against this machine's folder would give each Beam worker another id)."""
    p = Path(path)
    where = str(path) if is_url(path) else str(p.resolve())
    digest = hashlib.sha1(where.encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in p.stem)[:40]
    return f"{stem}-{digest}"


def is_url(path: str | Path) -> bool:
    """``gs://bucket/x.mp4`` and the like: a file that Beam's file systems read, not this machine's."""
    return "://" in str(path)


def _records_from_csv(path: Path, base: str | None = None, problems: list[str] | None = None) -> list[VideoRecord]:
    """A CSV list's records (``dfdetect.datasets.generic.read_csv_list``, the parser the ``csv`` dataset reader
    uses too). ``base``: the folder relative paths are under (default the CSV's own; a URL for a CSV read from a
    bucket, fetched to a local copy first). Rows it cannot use are skipped, ``file:line: reason`` appended to
    ``problems`` (printed to stderr when None): one bad label no longer stops a run of thousands."""
    from dfdetect.datasets.generic import read_csv_list

    found: list[str] = []
    records = list(read_csv_list(path, base=base, problem=lambda where, reason: found.append(f"{where}: {reason}")))
    if problems is None:
        _report_skipped(found, "CSV list")
    else:
        problems.extend(found)
    return records


def _report_skipped(problems: list[str], what: str, limit: int = 20) -> None:
    """Prints the first ``limit`` skipped rows and how many more there were."""
    for p in problems[:limit]:
        print(f"  {what} row skipped: {p}", file=sys.stderr)
    if len(problems) > limit:
        print(f"  ... and {len(problems) - limit} more {what} rows skipped", file=sys.stderr)


def collect_inputs(inputs: Iterable[str | Path | VideoRecord], allow_leaks: bool | None = False,
                   seed: int = 0) -> list[VideoRecord]:
    """Videos, folders (searched recursively, or read by a dataset reader when one recognises the
    layout) and CSV lists (``path[,label,group,...]``, paths relative to the CSV) -> records, in a stable
    order. A path that does not exist is kept: it becomes a ``failed`` row, not a crash. A ``VideoRecord``
    (the Beam runner's listing of a bucket) is taken as it is, then deduplicated and split like the rest.

    Every record ends in train/val/test by identity component (``dfdetect.datasets.carve_splits``: a dataset's
    missing val/test carved from its train split, unsplit inputs hashed with ``seed``); what was carved is
    printed to stderr. Then the leak check (``check_leaks``): a split that puts one identity component on two
    sides is refused (``SplitLeakError``, exit 2), or with ``allow_leaks`` warned about; None skips the check
    (a caller that adds records of its own checks them all)."""
    from dfdetect.datasets import carve_splits, check_leaks

    records: list[VideoRecord] = []
    for item in inputs:
        if isinstance(item, VideoRecord):
            records.append(item)
            continue
        p = Path(item)
        if p.is_dir():
            recs = _dataset_records(p)
            if recs is None:
                recs = [VideoRecord(path=str(f)) for f in sorted(p.rglob("*"))
                        if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS]
            records.extend(recs)
        elif p.suffix.lower() == ".csv" and p.is_file():
            records.extend(_records_from_csv(p))
        else:
            records.append(VideoRecord(path=str(p)))
    seen: set[str] = set()
    unique = []
    for r in records:
        if r.path not in seen:
            seen.add(r.path)
            unique.append(r)
    # Inputs without a split from their dataset (or a dataset without val/test) get one by identity component,
    # so training selects its epoch on people it never trains on.
    split, notes = carve_splits(unique, seed=seed)
    for note in notes:
        print(f"  splits: {note}", file=sys.stderr)
    if allow_leaks is not None:
        check_leaks(split, allow=allow_leaks, where="preprocess")
    return split


def _dataset_records(folder: Path) -> list[VideoRecord] | None:
    """Records from a recognised dataset layout (``dfdetect.datasets``), or None for a plain folder."""
    try:
        from dfdetect import datasets
    except ImportError:  # pragma: no cover
        return None
    # check_files=False: a listed video that is missing becomes a `failed` row in the manifest
    reader = datasets.detect(folder, check_files=False)
    if reader is None:
        return None
    records = list(reader.records(folder))
    for p in reader.problems[:20]:
        print(f"  dataset problem: {p}", file=sys.stderr)
    return records


# ---------------------------------------------------------------------------------------------------------
# One video (runs in a worker process)
# ---------------------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(config: Config, log_dir: str | None = None, decode_threads: int = 0) -> None:
    """Sets up a process that preprocesses videos (the face detector, once). ``decode_threads``: at most this
    many FFmpeg threads per video (0: FFmpeg's choice; ``_iter_parallel`` passes 1 with a worker per core)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dfdetect.media import set_decoder_threads

    set_decoder_threads(decode_threads)
    if log_dir:
        # MediaPipe, TFLite and TensorFlow write their C++ logs straight to file descriptor 2; in worker
        # processes send them to a per-worker log file so the console shows the progress bar and results.
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(str(Path(log_dir) / f"worker-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 2)
        os.close(fd)
    from dfdetect.shards import native_crc32c

    if native_crc32c() is None:  # windows are then written with TensorFlow's TFRecordWriter
        from dfdetect.quiet import import_tensorflow_quietly

        import_tensorflow_quietly()  # once per worker, not inside the first video's time
    # (otherwise TensorFlow is never imported here: its import took 8 s of CPU on a loaded 2-core machine,
    # which every worker of a run paid before its first video)

    from dfdetect.faces import FaceDetector

    _WORKER["detector"] = FaceDetector(config.faces)
    _WORKER["config"] = config


def _close_worker() -> None:
    det = _WORKER.pop("detector", None)
    if det is not None:
        det.close()


class _WindowWriter:
    """Serialises windows (frame compression, ``tf.train.Example``) and writes them to one TFRecord file in a
    thread of its own, so that it overlaps decoding and face tracking: in one thread it was about a fifth of a
    video's preprocessing time (zlib releases the GIL). Windows go through a short queue (memory stays
    bounded) and are written in order; an error in the thread is raised by ``put`` or on exit."""

    def __init__(self, path: str, record: VideoRecord, vid: str, seconds: float, depth: int = 4) -> None:
        import queue
        import threading

        self.path, self.record, self.vid, self.seconds = path, record, vid, seconds
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dfdetect-window-writer", daemon=True)

    def _run(self) -> None:
        from dfdetect.shards import record_writer, serialize_window

        cache: dict[int, bytes] = {}  # overlapping windows compress each frame once
        try:
            with record_writer(self.path) as writer:
                while (w := self.queue.get()) is not None:
                    writer.write(serialize_window(w, self.record, self.vid, self.seconds, cache))
        except BaseException as e:  # noqa: BLE001 - handed to the producer, which raises it
            self.error = e
            while self.queue.get() is not None:  # drain, so that the producer never blocks on a dead writer
                pass

    def put(self, window) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(window)

    def __enter__(self) -> _WindowWriter:
        self.thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and exc is None:
            raise self.error


def process_video(record: VideoRecord, config: Config, tmp_path: str, source: str | None = None) -> dict[str, Any]:
    """Extracts one video's windows into ``tmp_path`` (a TFRecord file). Returns its manifest fields and
    window rows. Never raises for a file: a bad one is ``failed`` with its reason, an unexpected exception is
    ``error`` with ``internal error: ...`` and the ``traceback`` in the result.

    ``source``: a local copy to read instead of ``record.path`` (a video in a bucket); the windows and rows
    still name ``record.path``."""
    from dfdetect.shards import window_fake
    from dfdetect.windows import VideoSummary, extract_windows, usable

    t0 = time.time()
    vid = video_id(record.path)
    summary = VideoSummary()
    result: dict[str, Any] = {"video_id": vid, "status": "ok", "reason": "", "windows": 0, "tmp": tmp_path,
                              "window_rows": []}
    try:
        p = Path(source or record.path)
        if p.is_file():
            gb = p.stat().st_size / 1e9
            if gb > config.preprocess.max_file_gb:
                raise MediaError(f"file is {gb:.1f} GB, over the {config.preprocess.max_file_gb:g} GB limit "
                                 f"(preprocess.max_file_gb)")
        detector = _WORKER.get("detector")
        if detector is None:
            _init_worker(config)
            detector = _WORKER["detector"]
        written = 0
        with _WindowWriter(tmp_path, record, vid, config.window.seconds) as writer:
            for w in extract_windows(source or record.path, config, detector, summary):
                if not usable(w, config):
                    continue  # too little face: nothing for a face+voice model to learn from (predict skips it too)
                w.index = written
                writer.put(w)
                result["window_rows"].append({
                    "video_id": vid, "path": record.path, "index": written, "start": round(w.start, 4),
                    "face_ratio": round(w.face_ratio, 4), "audio_ratio": round(w.audio_ratio, 4),
                    "window_fake": window_fake(record, w.start, config.window.seconds),
                    "label": record.label, "group": record.group, "category": record.category,
                    "split": record.split,
                })
                written += 1
        result["windows"] = written
        notes = list(summary.warnings)
        if summary.face_frames == 0:
            notes.append("no face found")
        elif written == 0:
            notes.append("no window with enough face frames")
        if not summary.has_audio:
            notes.append("no audio")
        result["reason"] = "; ".join(notes)
    except MediaError as e:
        result.update(status="failed", reason=str(e), windows=0, window_rows=[])
    except Exception as e:  # noqa: BLE001 - a bug, not bad media: say so, keep the batch going
        if is_disk_full(e):  # no verdict on the file: the run stops (DiskFull) without a row for it
            result.update(status="disk_full", reason=f"disk full while writing {tmp_path}", windows=0,
                          window_rows=[])
            return result
        result.update(status="error", reason=f"internal error: {one_line(e)}", windows=0, window_rows=[],
                      traceback=traceback.format_exc())
    result.update(
        face_ratio=round(summary.face_ratio, 4), has_audio=int(summary.has_audio),
        duration=round(summary.duration, 3), max_faces=summary.max_faces, trimmed_s=round(summary.trimmed, 3),
        seconds=round(time.time() - t0, 3),
    )
    return result


def _worker_entry(record: VideoRecord, tmp_path: str, source: str | None = None) -> dict[str, Any]:
    return process_video(record, _WORKER["config"], tmp_path, source)


def crashed_result(record: VideoRecord, tmp_path: str) -> dict[str, Any]:
    """The result of a video whose worker process died while it was the only one in flight."""
    return {"video_id": video_id(record.path), "status": "failed",
            "reason": "the decoder crashed on this file (worker process died)",
            "windows": 0, "window_rows": [], "tmp": tmp_path}


# ---------------------------------------------------------------------------------------------------------
# The run (main process)
# ---------------------------------------------------------------------------------------------------------

@dataclass
class RunSummary:
    out_dir: Path
    manifest: Path
    total: int = 0
    skipped: int = 0  # already done in an earlier run
    ok: int = 0
    failed: int = 0  # bad inputs (status failed)
    windows: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    errors: int = 0  # inputs that hit a bug (status error; retried by the next run)
    crashes: list[tuple[str, str]] = field(default_factory=list)
    log: Path | None = None  # where the tracebacks of ``crashes`` are

    @property
    def exit_code(self) -> int:
        """1 if an input hit a bug, else 3 if an input was bad, else 0 (the CLI's contract)."""
        return 1 if self.errors else 3 if self.failed else 0


def _tag(shard_index: int, num_shards: int) -> str:
    """The part of a file name that says which ``--shard-index`` part wrote it ("" for a single machine)."""
    return "" if num_shards == 1 else f"-{shard_index:03d}-of-{num_shards:03d}"


def _names(shard_index: int, num_shards: int) -> tuple[str, str, str]:
    tag = _tag(shard_index, num_shards)
    return f"manifest{tag}.csv", f"windows{tag}.csv", f"shard{tag}-"


def log_path(out_dir: str | Path, shard_index: int = 0, num_shards: int = 1) -> Path:
    """Where a run writes the tracebacks of unexpected errors: ``OUT/logs/preprocess.log`` (one file per
    ``--shard-index`` part when machines share the job)."""
    return Path(out_dir) / "logs" / f"preprocess{_tag(shard_index, num_shards)}.log"


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV we append to; a last line cut off by a crash (no newline) is dropped."""
    if not path.exists():
        return []
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def _rewrite_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        tmp.unlink(missing_ok=True)  # the old file stays as it was
        raise
    os.replace(tmp, path)


class _Appender:
    """A CSV file we append rows to, each batch written, fsynced, and on failure (a full disk) cut back to the
    size it had before it, so the file only ever holds whole rows (the commit log)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        new = not path.exists() or path.stat().st_size == 0
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if new:
            self._append(self._text([], header=True))

    def _text(self, rows: list[dict[str, Any]], header: bool = False) -> bytes:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore")
        if header:
            w.writeheader()
        w.writerows(rows)
        return buf.getvalue().encode()

    def _append(self, data: bytes) -> None:
        size = os.fstat(self.fd).st_size
        try:
            _write_all(self.fd, data)
            os.fsync(self.fd)
        except OSError:
            os.ftruncate(self.fd, size)  # no half row left behind (shrinking needs no space)
            raise

    def write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._append(self._text(rows))

    def truncate(self, size: int) -> None:
        """Cuts the file back to ``size`` bytes (undoing rows of a video whose commit failed)."""
        os.ftruncate(self.fd, size)
        os.fsync(self.fd)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        os.close(self.fd)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write to a nearly full disk may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def load_manifest(out_dir: str | Path):
    """Every manifest of a preprocessed folder (all ``--shard-index`` parts) as one DataFrame, the last row
    per video winning (a retried failure replaces its old row)."""
    import pandas as pd

    parts = sorted(Path(out_dir).glob("manifest*.csv"))
    if not parts:
        raise MissingInput(f"no manifest*.csv in {out_dir}: run `dfdetect preprocess` first")
    df = pd.concat([pd.read_csv(p, keep_default_na=False) for p in parts], ignore_index=True)
    return df.drop_duplicates("path", keep="last").reset_index(drop=True)


def load_windows(out_dir: str | Path):
    """Every window row of a preprocessed folder as one DataFrame."""
    import pandas as pd

    parts = sorted(Path(out_dir).glob("windows*.csv"))
    if not parts:
        return pd.DataFrame(columns=WINDOW_COLUMNS)
    return pd.concat([pd.read_csv(p, keep_default_na=False) for p in parts], ignore_index=True)


# ---------------------------------------------------------------------------------------------------------
# How the windows were cut: written by every preprocess run, read by train (and evaluate, export, predict)
# ---------------------------------------------------------------------------------------------------------

DATA_CONFIG = "preprocess_config.yaml"

# The settings that decide how a video becomes windows (their shapes, crops, start times and which are kept).
# A model must be trained and served with the values its data was cut with. Not window.max_windows: it caps how
# many windows a video gives, not how they are cut.
CUTTING_FIELDS: dict[str, tuple[str, ...]] = {
    "media": ("fps", "sample_rate", "max_side"),
    "faces": tuple(f.name for f in dataclasses.fields(FaceConfig)),
    "window": ("seconds", "hop_seconds", "min_face_ratio", "trim_leading_silence", "silence_dbfs"),
}


class DataConfigError(UsageError, ValueError):
    """A config that disagrees with how its data was preprocessed (or parts of one folder cut differently):
    the user's to fix (exit 2)."""


def data_config_path(out_dir: str | Path, shard_index: int = 0, num_shards: int = 1) -> Path:
    """The settings file a preprocess run (or ``--shard-index`` part) writes: ``OUT/preprocess_config.yaml``,
    or ``OUT/preprocess_config-I-of-N.yaml`` for a part, so parts that wrote into separate folders later
    merged into one keep their own record."""
    return Path(out_dir) / f"preprocess_config{_tag(shard_index, num_shards)}.yaml"


def _data_config_files(out_dir: str | Path) -> list[Path]:
    return sorted(Path(out_dir).glob("preprocess_config*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DataConfigError(f"cannot read {path}: {one_line(e)}") from None
    if not isinstance(data, dict):
        raise DataConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _cutting(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cutting settings of a config dict or a settings file, typed like the config's fields (a file's
    ``fps: 12`` is 12.0); fields a file does not record are left out."""
    sections = {s: {k: v for k, v in _mapping(settings.get(s)).items() if k in names}
                for s, names in CUTTING_FIELDS.items()}
    typed = get_config().override(**sections)  # the config's own type coercion (a bad value: ConfigError)
    return {s: {k: getattr(getattr(typed, s), k) for k in fields} for s, fields in sections.items() if fields}


def _differences(config: dict[str, dict[str, Any]], data: dict[str, dict[str, Any]],
                 ) -> list[tuple[str, Any, Any]]:
    """``(section.field, config value, data value)`` for every field ``data`` records that ``config`` sets
    otherwise, in ``CUTTING_FIELDS`` order."""
    out = []
    for section, names in CUTTING_FIELDS.items():
        for name in names:
            if name in data.get(section, {}) and config[section][name] != data[section][name]:
                out.append((f"{section}.{name}", config[section][name], data[section][name]))
    return out


class _Unrecorded:
    """A field a settings file does not record (written by an older dfdetect): equal to no value."""

    def __repr__(self) -> str:
        return "(not recorded)"


_UNRECORDED = _Unrecorded()


def _cutting_full(data: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``data`` with the fields it does not record filled with ``_UNRECORDED``."""
    return {s: {k: data.get(s, {}).get(k, _UNRECORDED) for k in names} for s, names in CUTTING_FIELDS.items()}


def _listed(diffs: list[tuple[str, Any, Any]]) -> str:
    return ", ".join(f"{key} {a!r} (config) vs {b!r} (data)" for key, a, b in diffs)


_WARNED: set[str] = set()


def data_config(data_dir: str | Path) -> dict[str, dict[str, Any]]:
    """How the windows of a preprocessed folder were cut: ``{"media": {...}, "faces": {...}, "window": {...}}``
    with the ``CUTTING_FIELDS`` its ``preprocess_config*.yaml`` records.

    A folder written before these files existed gives ``{}`` (nothing known) and a one-line warning on stderr.
    Raises ``DataConfigError`` when ``--shard-index`` parts of the folder were cut differently, and
    ``MissingInput`` when ``data_dir`` is not a folder."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise MissingInput(f"{data_dir} is not a folder: run `dfdetect preprocess ... --out DIR` first")
    files = _data_config_files(folder)
    if not files:
        if str(folder.resolve()) not in _WARNED:
            _WARNED.add(str(folder.resolve()))
            print(f"warning: {data_dir} has no {DATA_CONFIG} (preprocessed by an older dfdetect): cannot check "
                  "that this config cuts windows the way its data was cut", file=sys.stderr, flush=True)
        return {}
    first = _cutting(_read_yaml(files[0]))
    for other in files[1:]:
        diffs = _differences(_cutting_full(first), _cutting(_read_yaml(other)))
        if diffs:
            raise DataConfigError(
                f"the parts of {data_dir} were preprocessed with different settings: "
                + ", ".join(f"{key} {a!r} ({files[0].name}) vs {b!r} ({other.name})" for key, a, b in diffs)
                + "; preprocess the parts again with one config into a new folder")
    return first


def check_data_config(config: Config, data_dir: str | Path) -> None:
    """Raises ``DataConfigError`` naming every cutting field (``CUTTING_FIELDS``) on which ``config``
    disagrees with how ``data_dir`` was preprocessed, with both values. A folder without a settings file (an
    older dfdetect) is warned about and not checked."""
    data = data_config(data_dir)
    diffs = _differences(_cutting(config.to_dict()), data)
    if diffs:
        raise DataConfigError(
            f"this run's config disagrees with how {data_dir} was preprocessed: {_listed(diffs)}; train with "
            "the data's settings (`dfdetect train` and `python train.py` adopt them unless a --set says "
            "otherwise: drop that --set), or preprocess again with this config into a new --out folder")


def config_for_data(config: Config, data_dir: str | Path, explicit: Iterable[str] = ()) -> Config:
    """``config`` with the cutting settings of ``data_dir`` (``data_config``) in place of its own: a preset's
    values are only defaults, the data decides how windows are cut, and the run's ``config.yaml`` (which export
    copies for predict) then cuts windows exactly as the training data was cut. Prints one line naming what
    was adopted when something differed.

    ``explicit``: the ``section.field=value`` overrides the user typed (``--set``); one that disagrees with
    the data raises ``DataConfigError`` instead of being silently replaced."""
    data = data_config(data_dir)
    diffs = _differences(_cutting(config.to_dict()), data)
    if not diffs:
        return config
    typed = {item.partition("=")[0].strip() for item in explicit}
    refused = [d for d in diffs if d[0] in typed]
    if refused:
        raise DataConfigError(
            f"--set disagrees with how {data_dir} was preprocessed: {_listed(refused)}; drop the --set to "
            "train with the data's settings, or preprocess again with it into a new --out folder")
    updates: dict[str, dict[str, Any]] = {}
    for key, _, value in diffs:
        section, name = key.split(".")
        updates.setdefault(section, {})[name] = value
    print(f"adopted how {data_dir} was preprocessed: "
          + ", ".join(f"{key} {b!r} (config {config.name} had {a!r})" for key, a, b in diffs), flush=True)
    return config.override(**updates)


def _folder_disagreements(out: Path, current: dict[str, Any], skip: Path | None = None) -> list[str]:
    """``section.field mine (config) vs theirs (file)`` for each settings file in ``out`` (but ``skip``)."""
    diffs = []
    for path in _data_config_files(out):
        if path == skip:
            continue
        old = _read_yaml(path)
        for s in current:
            theirs = _mapping(old.get(s))
            for k in dict.fromkeys([*current[s], *theirs]):
                a, b = current[s].get(k, _UNRECORDED), theirs.get(k, _UNRECORDED)
                if a != b:
                    diffs.append(f"{s}.{k} {a!r} (config) vs {b!r} ({path.name})")
    return diffs


def _check_config(out: Path, config: Config, shard_index: int = 0, num_shards: int = 1) -> None:
    """Windows of different shapes must not share a folder: every run and ``--shard-index`` part compares its
    settings with each settings file already there, then records its own (``data_config_path``, written
    atomically, never overwritten) and compares again, so two parts started at once with different settings
    cannot both go on. A folder holding data from before settings files existed gets none (what cut it is
    unknown)."""
    current = {k: config.to_dict()[k] for k in ("media", "faces", "window")}

    def refuse(diffs: list[str]) -> BadArgument:
        return BadArgument(f"{out} was preprocessed with different settings: {', '.join(diffs)}; "
                           "use a new --out folder or the same --config")

    diffs = _folder_disagreements(out, current)
    if diffs:
        raise refuse(diffs)
    if not _data_config_files(out) and any(out.glob("manifest*.csv")):
        print(f"warning: {out} holds windows preprocessed by an older dfdetect, without {DATA_CONFIG}: "
              "not writing one, since what cut them is unknown", file=sys.stderr, flush=True)
        return
    path = data_config_path(out, shard_index, num_shards)
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump({**current, "preset": config.name}, sort_keys=False))
    created = True
    try:
        os.link(tmp, path)  # atomic, and never replaces a file written meanwhile
    except FileExistsError:
        created = False
    except OSError:  # a file system without hard links (some network mounts)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    diffs = _folder_disagreements(out, current, skip=path if created else None)  # a part started meanwhile
    if diffs:
        if created:
            path.unlink(missing_ok=True)
        raise refuse(diffs)


def recover(out: Path, manifest_path: Path, windows_path: Path, sprefix: str) -> dict[str, dict[str, str]]:
    """Brings a folder back to its last commit after a run that may have been killed: the manifest without a
    cut-off last row (the last row per path winning), the shards named ``sprefix*`` truncated to their
    committed bytes (or removed when nothing in them was committed), ``windows.csv`` without the rows of
    uncommitted videos. Returns the committed manifest rows by path."""
    committed = {}
    for row in _read_csv_rows(manifest_path):
        committed[row["path"]] = row
    if manifest_path.exists():
        _rewrite_csv(manifest_path, MANIFEST_COLUMNS, list(committed.values()))
    ends: dict[str, int] = {}
    for row in committed.values():
        if row.get("shard"):
            ends[row["shard"]] = max(ends.get(row["shard"], 0), int(row["offset"]) + int(row["length"]))
    for shard in sorted((out / "shards").glob(f"{sprefix}*.tfrecord")):
        rel = f"shards/{shard.name}"
        if rel not in ends:
            shard.unlink()  # nothing committed in it
        elif shard.stat().st_size != ends[rel]:
            with open(shard, "r+b") as f:  # drop the records of the video that was being appended
                f.truncate(ends[rel])
    ok_ids = {row["video_id"] for row in committed.values() if row.get("status") == "ok"}
    if windows_path.exists():
        kept = [r for r in _read_csv_rows(windows_path) if r["video_id"] in ok_ids]
        _rewrite_csv(windows_path, WINDOW_COLUMNS, kept)
    return committed


def done_before(row: dict[str, str] | None, retry_failed: bool = False) -> bool:
    """Whether an input with this committed manifest row (None: none) is skipped by a rerun."""
    if row is None or row.get("status") not in ("ok", "failed"):
        return False  # an `error` row was a bug, not a verdict on the file (nor is a disk full): try it again
    return not (retry_failed and row.get("status") != "ok")


def count_skipped(summary: RunSummary, records: list[VideoRecord], committed: dict[str, dict[str, str]],
                  retry_failed: bool = False) -> None:
    """Adds the inputs an earlier run finished (and this one skips) to ``summary``'s counts."""
    for r in records:
        row = committed.get(r.path)
        if row is not None and done_before(row, retry_failed):
            if row["status"] == "ok":
                summary.ok += 1
                summary.windows += int(row["windows"] or 0)
            else:
                summary.failed += 1
                summary.failures.append((r.path, row["reason"]))


def manifest_row(record: VideoRecord, result: dict[str, Any]) -> dict[str, Any]:
    """A video's manifest row: its record's fields and ``process_video``'s (shard, offset, length: the caller's)."""
    return {**record.to_row(), **{k: v for k, v in result.items() if k in MANIFEST_COLUMNS}}


def append_file(src: Path, dst: Path) -> tuple[int, int]:
    """Appends ``src`` to ``dst`` and fsyncs; returns (offset, length) of what was appended. On failure (a full
    disk) ``dst`` is cut back to its old size, or removed if this call created it: no partial record is left."""
    existed = dst.exists()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        offset = os.fstat(fd).st_size
        try:
            with open(src, "rb") as f:
                while chunk := f.read(1 << 20):
                    _write_all(fd, chunk)
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, offset)
            if not existed and offset == 0:
                dst.unlink(missing_ok=True)
            raise
        return offset, os.fstat(fd).st_size - offset
    finally:
        os.close(fd)


def _cut_back(shard: Path, size: int) -> None:
    """Truncates ``shard`` to ``size`` bytes (removes it at 0: a shard with no committed record)."""
    if size == 0:
        shard.unlink(missing_ok=True)
    else:
        with open(shard, "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())


def _decode_threads(workers: int) -> int:
    """Decoder threads per video with ``workers`` worker processes: the cores shared out (at least 1), or 0
    (FFmpeg's choice) for a single worker. Two workers on 2 cores: one thread each, which on four 30 s clips
    saves the CPU FFmpeg's frame threads cost (about 0.3 CPU-s per clip) where no core is idle to use them."""
    if workers <= 1:
        return 0
    from dfdetect.media import _cores

    return max(1, _cores() // workers)


def _iter_parallel(todo: list[VideoRecord], config: Config, workers: int, tmp_dir: Path,
                   ) -> Iterator[tuple[VideoRecord, dict[str, Any]]]:
    """Runs videos across worker processes; survives a worker that crashes (segfault, OOM kill)."""
    ctx = mp.get_context("spawn")  # TensorFlow and MediaPipe are not fork-safe
    pending = deque(todo)
    suspects: deque[VideoRecord] = deque()

    def tmp_for(rec: VideoRecord) -> str:
        return str(tmp_dir / f"{video_id(rec.path)}.tfrecord")

    while pending or suspects:
        # A video that was in flight when a worker died is retried alone, so the culprit is known.
        alone = bool(suspects)
        queue = deque([suspects.popleft()]) if alone else pending
        n = 1 if alone else workers
        pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                   initargs=(config, str(tmp_dir.parent / "logs"), _decode_threads(n)))
        futures: dict[Any, VideoRecord] = {}
        try:
            while queue or futures:
                while queue and len(futures) < 2 * n:
                    rec = queue.popleft()
                    futures[pool.submit(_worker_entry, rec, tmp_for(rec))] = rec
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    rec = futures[fut]
                    res = fut.result()  # BrokenProcessPool propagates to the handler below
                    del futures[fut]
                    yield rec, res
        except BrokenProcessPool:
            for fut, rec in futures.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    yield rec, fut.result()
                elif alone:
                    yield rec, crashed_result(rec, tmp_for(rec))
                else:
                    suspects.append(rec)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _iter_inprocess(todo: list[VideoRecord], config: Config, tmp_dir: Path,
                    ) -> Iterator[tuple[VideoRecord, dict[str, Any]]]:
    _init_worker(config)
    try:
        for rec in todo:
            yield rec, process_video(rec, config, str(tmp_dir / f"{video_id(rec.path)}.tfrecord"))
    finally:
        _close_worker()


def preprocess(
    inputs: Iterable[str | Path] | list[VideoRecord],
    out_dir: str | Path,
    config: Config | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    workers: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    allow_leaks: bool = False,
) -> RunSummary:
    """Preprocesses videos into ``out_dir`` (resumable). See the module docstring.

    Args:
        inputs: paths (videos, folders, CSV lists) or ``VideoRecord``s.
        out_dir: output folder: ``manifest.csv``, ``windows.csv``, ``shards/``.
        config: settings (default preset ``cpu-small``).
        shard_index, num_shards: take every ``num_shards``-th input starting at ``shard_index``, so several
            machines can share one job; each writes its own manifest and shards.
        workers: worker processes (default ``config.preprocess.workers``; 0 = one per core; 1 = in this
            process, without crash isolation).
        retry_failed: process again the inputs that failed in an earlier run (inputs that hit an internal
            error, status ``error``, are retried anyway).
        progress: show a progress bar.
        allow_leaks: warn about a split that puts one identity component on two sides instead of refusing it
            (``dfdetect.datasets.SplitLeakError``, exit 2).

    A full disk stops the run with ``DiskFull`` (exit 2): every video committed until then is whole, nothing
    half-written is left, and the same call resumes once space is freed.
    """
    config = config or get_config()
    if not 0 <= shard_index < num_shards:
        raise BadArgument(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    items = list(inputs)
    records = [r if isinstance(r, VideoRecord) else None for r in items]
    if any(r is None for r in records):
        records = collect_inputs([i for i in items if not isinstance(i, VideoRecord)], allow_leaks=None) + [
            r for r in items if isinstance(r, VideoRecord)]
    # before any work, the output folder included, and over every input (not this machine's part alone): a
    # leaking split is refused here, not found after days of preprocessing; train checks the manifest again
    from dfdetect.datasets import check_leaks

    check_leaks(records, allow=allow_leaks, where="preprocess")
    out = Path(out_dir)
    try:
        return _run_local(records, out, config, shard_index, num_shards, workers, retry_failed, progress)
    except DiskFull:
        raise
    except OSError as e:  # a full disk elsewhere (the settings file, recover's rewrites): the same one line
        if is_disk_full(e):
            raise disk_full(e.filename or out) from None
        raise


def _run_local(records: list[VideoRecord], out: Path, config: Config, shard_index: int, num_shards: int,
               workers: int | None, retry_failed: bool, progress: bool) -> RunSummary:
    """``preprocess``'s work once its inputs are known and checked."""
    from tqdm.auto import tqdm

    (out / "shards").mkdir(parents=True, exist_ok=True)
    _check_config(out, config, shard_index, num_shards)
    mname, wname, sprefix = _names(shard_index, num_shards)
    manifest_path, windows_path = out / mname, out / wname

    records = sorted(records, key=lambda r: r.path)[shard_index::num_shards]

    committed = recover(out, manifest_path, windows_path, sprefix)
    tmp_dir = out / f".tmp-{shard_index}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)

    todo = [r for r in records if not done_before(committed.get(r.path), retry_failed)]
    summary = RunSummary(out_dir=out, manifest=manifest_path, total=len(records), skipped=len(records) - len(todo),
                         log=log_path(out, shard_index, num_shards))
    count_skipped(summary, records, committed, retry_failed)

    # --- the current shard ---------------------------------------------------------------------------
    existing = sorted((out / "shards").glob(f"{sprefix}*.tfrecord"))
    shard_no = int(existing[-1].stem.rsplit("-", 1)[-1]) if existing else 0
    limit = config.preprocess.shard_mb * 1024 * 1024

    def shard_path(n: int) -> Path:
        return out / "shards" / f"{sprefix}{n:05d}.tfrecord"

    manifest = _Appender(manifest_path, MANIFEST_COLUMNS)
    windows_log = _Appender(windows_path, WINDOW_COLUMNS)
    n_workers = config.preprocess.workers if workers is None else workers
    n_workers = n_workers or (os.cpu_count() or 1)
    n_workers = max(1, min(n_workers, len(todo) or 1))
    stream = (_iter_inprocess(todo, config, tmp_dir) if n_workers == 1
              else _iter_parallel(todo, config, n_workers, tmp_dir))
    bar = tqdm(total=len(todo), unit="video", desc="preprocess", disable=not progress, dynamic_ncols=True)
    try:
        for rec, res in stream:
            if res["status"] == "disk_full":  # the worker could not write the video's windows: stop, no row
                raise disk_full(res["tmp"], summary.ok + summary.failed)
            row = manifest_row(rec, res)
            tmp = Path(res["tmp"])
            mark, where, appended = windows_log.size(), manifest_path, None
            try:
                if res["status"] == "ok" and res["windows"] > 0:
                    target = shard_path(shard_no)
                    if target.exists() and target.stat().st_size >= limit:
                        shard_no += 1
                        target = shard_path(shard_no)
                    where = target
                    offset, length = append_file(tmp, target)
                    appended = (target, offset)
                    rel = f"shards/{target.name}"
                    row.update(shard=rel, offset=offset, length=length)
                    where = windows_path
                    windows_log.write([{**w, "shard": rel} for w in res["window_rows"]])
                if res["status"] == "error":  # the traceback is on disk before the row that points to it
                    summary.log = log_traceback(summary.log, f"internal error on {rec.path}",
                                                res.get("traceback", ""))
                where = manifest_path
                manifest.write([row])  # the commit point
            except OSError as e:
                # undo this video's half-done commit now, so the folder holds whole videos only even before
                # a rerun's recover() (each writer already cut back its own failed write)
                windows_log.truncate(mark)
                if appended is not None:
                    _cut_back(*appended)
                if is_disk_full(e):
                    raise disk_full(where, summary.ok + summary.failed) from None
                raise
            tmp.unlink(missing_ok=True)
            if res["status"] == "ok":
                summary.ok += 1
                summary.windows += res["windows"]
            elif res["status"] == "error":
                summary.errors += 1
                summary.crashes.append((rec.path, res["reason"]))
            else:
                summary.failed += 1
                summary.failures.append((rec.path, res["reason"]))
            bar.update(1)
            bar.set_postfix(ok=summary.ok, failed=summary.failed, errors=summary.errors, windows=summary.windows,
                            refresh=False)
            checkpoint()  # a Ctrl-C swallowed inside a library still stops the run between videos
    finally:
        bar.close()
        manifest.close()
        windows_log.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return summary
