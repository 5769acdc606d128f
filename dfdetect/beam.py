"""``dfdetect preprocess --runner beam``: the local preprocessing run as an Apache Beam pipeline.

The same per-video work (``dfdetect.preprocess.process_video``), the same shard format and the same manifest, on
Beam's DirectRunner (``--direct_num_workers 2 --direct_running_mode multi_processing``) or, unchanged, on
Dataflow, Flink or Spark with their standard pipeline options. How it stays safe to kill and to rerun:

* the launcher (this process) lists the inputs, skips those a manifest already has (as the local runner does),
  and cuts the rest, in path order, into batches of ``videos_per_shard``: Create -> Reshuffle -> ParDo;
* a worker runs each video of its batch through ``process_video`` in a child process (a decoder that crashes
  fails that video, not the worker nor the job: Dataflow fails a whole job after four failures of one bundle),
  appends its windows to the batch's shard, and renames the finished shard from ``OUT/.beam/tmp/`` into
  ``OUT/shards/beam-KEY-TOKEN-NNN.tfrecord``; the batch's manifest and window rows then go the same way to
  ``OUT/.beam/done/KEY.json``: that rename is the batch's commit. No half-written file ever has a final name;
* when the pipeline ends (or fails, or is interrupted), the launcher merges the committed batches into
  ``manifest.csv`` and ``windows.csv`` (each written under a temporary name and renamed) and deletes every Beam
  shard that no manifest row names: one from a worker killed between its shard and its commit, or from a
  retried bundle whose other attempt committed (``TOKEN`` is per attempt, so attempts never overwrite each
  other's shard under a commit that describes different bytes).

A rerun does the same merge and clean-up first, then processes only what is left. OUT may be a ``gs://``
folder (any file system Beam has: the gcp extra brings GCS); inputs may be ``gs://`` videos, folders (listed
recursively) or CSV lists (``path[,label,group,...]``), fetched to the worker's disk one video at a time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import traceback
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from dfdetect.config import Config, get_config
from dfdetect.errors import UsageError, default_log, log_traceback, one_line
from dfdetect.media import VIDEO_EXTENSIONS
from dfdetect.preprocess import (
    MANIFEST_COLUMNS,
    WINDOW_COLUMNS,
    RunSummary,
    _check_config,
    _init_worker,
    _read_csv_rows,
    _records_from_csv,
    _worker_entry,
    append_file,
    collect_inputs,
    count_skipped,
    crashed_result,
    disk_full,
    done_before,
    is_url,
    log_path,
    manifest_row,
    recover,
)
from dfdetect.records import VideoRecord

INSTALL_HINT = 'pip install "dfdetect[beam]"'
MANIFEST, WINDOWS = "manifest.csv", "windows.csv"
SHARD_PREFIX = "beam-"  # not the local runner's "shard-": its crash recovery truncates and deletes only its own
WORK = ".beam"  # committed batches (done/) and files being written (tmp/): never read as data
VIDEOS_PER_SHARD = 20  # default batch: 20 clips of 10 s make a ~110 MB shard (cpu-small: 0.6 MB a window)
MIN_BATCHES = 64  # by default a small input is cut finer, so that every worker gets some of it


def require_beam() -> Any:
    """``apache_beam``, or a ``UsageError`` (exit 2) that says how to install it."""
    try:
        import apache_beam
    except ImportError as e:
        raise UsageError(f"--runner beam needs Apache Beam, which cannot be imported ({one_line(e)}): "
                         f"{INSTALL_HINT}") from None
    return apache_beam


# ---------------------------------------------------------------------------------------------------------
# Files under OUT, local or in a bucket (Beam's FileSystems)
# ---------------------------------------------------------------------------------------------------------

def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts]) if is_url(base) else str(Path(base, *parts))


def _fs() -> Any:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _read_bytes(path: str) -> bytes:
    with _fs().open(path, compression_type="uncompressed") as f:
        return f.read()


def _exists(path: str) -> bool:
    return _fs().exists(path)


def _glob(pattern: str) -> list[str]:
    """Paths matching ``pattern`` (``*`` within a folder), sorted; none when the folder does not exist."""
    if not is_url(pattern):
        folder = Path(pattern).parent
        return sorted(str(p) for p in folder.glob(Path(pattern).name)) if folder.is_dir() else []
    return sorted(m.path for m in _fs().match([pattern])[0].metadata_list)


def _delete(paths: list[str]) -> None:
    if paths:
        _fs().delete(paths)


def _publish(local: Path, dest: str, out: str) -> None:
    """Puts a finished local file at ``dest`` under a temporary name first, then renames it: a reader sees the
    whole file or none. A local OUT stages in OUT/.beam/tmp (same disk, so the rename is atomic)."""
    if not is_url(dest):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, dest)
        return
    fs = _fs()
    tmp = _join(out, WORK, "tmp", f"{Path(dest).name}.{uuid.uuid4().hex[:8]}")
    with open(local, "rb") as src, fs.create(tmp, compression_type="uncompressed") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    fs.rename([tmp], [dest])  # GCS: a server-side copy onto the final name, which appears whole


def _write_text(text: str, dest: str, out: str) -> None:
    """Writes a small text file atomically (local: fsynced, then renamed)."""
    staging = Path(tempfile.mkdtemp(prefix="dfdetect-beam-")) if is_url(out) else Path(out, WORK, "tmp")
    staging.mkdir(parents=True, exist_ok=True)
    local = staging / f"{Path(dest).name}.{uuid.uuid4().hex[:8]}"
    with open(local, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    try:
        _publish(local, dest, out)
    finally:
        local.unlink(missing_ok=True)
        if is_url(out):
            shutil.rmtree(staging, ignore_errors=True)


def _csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _read_rows(path: str) -> list[dict[str, str]]:
    """Rows of a manifest or windows CSV (a last line cut off by a crash is dropped, as the local runner does)."""
    if not is_url(path):
        return _read_csv_rows(Path(path))
    if not _exists(path):
        return []
    text = _read_bytes(path).decode()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------------------------------------
# Inputs in a bucket
# ---------------------------------------------------------------------------------------------------------

def _expand_url(item: str) -> list[VideoRecord]:
    """A ``gs://`` video, folder (listed recursively) or CSV list -> records."""
    fs = _fs()
    if item.lower().endswith(".csv"):
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "list.csv"
            local.write_bytes(_read_bytes(item))
            return _records_from_csv(local, base=item.rsplit("/", 1)[0])
    if Path(item).suffix.lower() in VIDEO_EXTENSIONS:
        return [VideoRecord(path=item)]  # a missing one becomes a failed row, as locally
    found = fs.match([item.rstrip("/") + "/**"])[0].metadata_list
    videos = sorted(m.path for m in found if Path(m.path).suffix.lower() in VIDEO_EXTENSIONS)
    return [VideoRecord(path=p) for p in videos] or [VideoRecord(path=item)]


def collect(inputs: Iterable[str | Path], allow_leaks: bool = False) -> list[VideoRecord]:
    """``collect_inputs`` (its splits and leak check) with ``gs://`` items listed through Beam's file systems."""
    items: list[str | Path | VideoRecord] = []
    for item in inputs:
        items.extend(_expand_url(str(item)) if is_url(item) else [item])
    return collect_inputs(items, allow_leaks=allow_leaks)


# ---------------------------------------------------------------------------------------------------------
# A worker: one batch of videos -> shard(s) + a committed batch
# ---------------------------------------------------------------------------------------------------------

# One child process per worker process, shared by the DoFn instances of its threads (Dataflow runs several
# bundles per Python process at once): one video at a time per process, as the local runner has one per core.
_CHILD: dict[str, Any] = {}
_CHILD_LOCK = threading.Lock()


def _run_isolated(record: VideoRecord, config: Config, tmp: str, source: str | None, log_dir: str | None,
                  ) -> dict[str, Any]:
    """``process_video`` in a child process; a child that dies fails this video, and the next gets a new one."""
    import multiprocessing as mp

    with _CHILD_LOCK:
        pool = _CHILD.get("pool")
        if pool is None:
            pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"),  # TF is not fork-safe
                                       initializer=_init_worker, initargs=(config, log_dir))
            _CHILD["pool"] = pool
        try:
            return pool.submit(_worker_entry, record, tmp, source).result()
        except BrokenProcessPool:
            _CHILD.pop("pool", None)
            pool.shutdown(wait=False, cancel_futures=True)
            return crashed_result(record, tmp)


def _close_child() -> None:
    """Ends this process's child (a DoFn's teardown; the next video, if any, starts another)."""
    with _CHILD_LOCK:  # after the video in flight, if any
        pool = _CHILD.pop("pool", None)
        if pool is not None:
            pool.shutdown(wait=True)


def _fetch(record: VideoRecord, folder: Path) -> tuple[str | None, dict[str, Any] | None]:
    """A local copy of a ``gs://`` video: (path, None), or (None, the result of a video that is not there or
    cannot be read: ``failed`` when missing, else ``error``, which the next run retries)."""
    from apache_beam.io.filesystem import BeamIOError

    from dfdetect.preprocess import video_id

    local = folder / f"input{Path(record.path).suffix}"
    # the fields process_video gives a file it could not open, so that the row reads like the local runner's
    base = {"video_id": video_id(record.path), "windows": 0, "window_rows": [], "tmp": "", "face_ratio": 0.0,
            "has_audio": 0, "duration": 0.0, "max_faces": 0, "trimmed_s": 0.0, "seconds": 0.0}
    try:
        if not _exists(record.path):
            return None, {**base, "status": "failed", "reason": f"file not found: {record.path}"}
        with _fs().open(record.path, compression_type="uncompressed") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (BeamIOError, OSError) as e:  # a transient bucket error is no verdict on the file
        return None, {**base, "status": "error", "reason": f"internal error: cannot fetch it: {one_line(e)}",
                      "traceback": traceback.format_exc()}
    return str(local), None


def process_batch(key: str, records: list[VideoRecord], config: Config, out: str) -> dict[str, Any]:
    """Processes a batch into ``OUT/shards/beam-KEY-TOKEN-NNN.tfrecord`` and commits it as
    ``OUT/.beam/done/KEY.json`` (its manifest rows, window rows and tracebacks); returns its counts."""
    token = uuid.uuid4().hex[:8]  # per attempt: see the module docstring
    scratch = Path(tempfile.mkdtemp(prefix="dfdetect-beam-"))
    staging = scratch if is_url(out) else Path(out, WORK, "tmp")
    staging.mkdir(parents=True, exist_ok=True)
    log_dir = None if is_url(out) else str(Path(out) / "logs")
    limit = config.preprocess.shard_mb * 1024 * 1024
    rows: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    tracebacks: dict[str, str] = {}
    shards: list[Path] = []
    try:
        for rec in records:
            tmp = str(scratch / "video.tfrecord")
            source, res = (None, None)
            if is_url(rec.path):
                source, res = _fetch(rec, scratch)
            if res is None:
                res = _run_isolated(rec, config, tmp, source, log_dir)
            if res["status"] == "disk_full":
                # no row for a video whose windows could not be written: the bundle fails (nothing of it is
                # committed) and the runner retries it, or the run stops saying the disk is full
                raise disk_full(tmp)
            row = manifest_row(rec, res)
            if res["status"] == "ok" and res["windows"] > 0:
                if not shards or shards[-1].stat().st_size >= limit:
                    shards.append(staging / f"{SHARD_PREFIX}{key}-{token}-{len(shards):03d}.tfrecord.part")
                offset, length = append_file(Path(tmp), shards[-1])
                rel = f"shards/{shards[-1].name.removesuffix('.part')}"
                row.update(shard=rel, offset=offset, length=length)
                windows.extend({**w, "shard": rel} for w in res["window_rows"])
            if res["status"] == "error":
                tracebacks[rec.path] = res.get("traceback", "")
            rows.append(row)
            Path(tmp).unlink(missing_ok=True)
            if source:
                Path(source).unlink(missing_ok=True)
        for shard in shards:  # every shard in place before the commit that names it
            _publish(shard, _join(out, "shards", shard.name.removesuffix(".part")), out)
        batch = {"key": key, "rows": rows, "windows": windows, "tracebacks": tracebacks}
        _write_text(json.dumps(batch), _join(out, WORK, "done", f"{key}.json"), out)  # the commit point
    finally:
        for shard in shards:
            shard.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"key": key, "videos": len(rows), "windows": len(windows)}


def _dofn(config: Config, out: str) -> Any:
    """The ParDo's DoFn (its class made here: ``apache_beam`` is imported only when a Beam run starts). Its
    methods call module functions only: Beam pickles this local class by value, and state it named directly
    (``_CHILD``) would travel as a copy per DoFn instead of being the worker process's own."""
    beam = require_beam()

    class ProcessBatch(beam.DoFn):
        def __init__(self, config: Config, out: str) -> None:
            self.config, self.out = config, out

        def process(self, element: tuple[str, list[VideoRecord]]) -> Iterator[dict[str, Any]]:
            key, records = element
            yield process_batch(key, records, self.config, self.out)

        def teardown(self) -> None:
            _close_child()

    return ProcessBatch(config, out)


# ---------------------------------------------------------------------------------------------------------
# The launcher
# ---------------------------------------------------------------------------------------------------------

def batches(records: list[VideoRecord], size: int) -> list[tuple[str, list[VideoRecord]]]:
    """Consecutive batches of ``size`` records, each keyed by a hash of its paths."""
    out = []
    for i in range(0, len(records), size):
        part = records[i:i + size]
        key = hashlib.sha1("\n".join(r.path for r in part).encode()).hexdigest()[:12]
        out.append((key, part))
    return out


def _merge(out: str, summary: RunSummary | None = None) -> int:
    """Merges the committed batches under OUT/.beam/done into manifest.csv and windows.csv (a path's new row
    replaces its old one; new rows follow in path order), then deletes them. Counts their videos into
    ``summary`` when given. Returns how many videos were merged."""
    done = _glob(_join(out, WORK, "done", "*.json"))
    if not done:
        return 0
    committed = {row["path"]: row for row in _read_rows(_join(out, MANIFEST))}
    new_rows: list[dict[str, Any]] = []
    new_windows: list[dict[str, Any]] = []
    traces: dict[str, str] = {}
    for path in done:
        batch = json.loads(_read_bytes(path))
        new_rows.extend(batch["rows"])
        new_windows.extend(batch["windows"])
        traces.update(batch["tracebacks"])
    new_rows.sort(key=lambda r: r["path"])
    new_windows.sort(key=lambda w: (w["path"], int(w["index"])))
    log = Path(log_path(out)) if not is_url(out) else default_log("preprocess")
    for path, text in sorted(traces.items()):  # the traceback is on disk before the row that points to it
        log = log_traceback(log, f"internal error on {path}", text)
    replaced = {r["video_id"] for r in new_rows}
    kept = [w for w in _read_rows(_join(out, WINDOWS)) if w["video_id"] not in replaced]
    _write_text(_csv_text(WINDOW_COLUMNS, kept + new_windows), _join(out, WINDOWS), out)
    for row in new_rows:
        committed[row["path"]] = row
    _write_text(_csv_text(MANIFEST_COLUMNS, list(committed.values())), _join(out, MANIFEST), out)
    _delete(done)
    if summary is not None:
        summary.log = log
        for row in new_rows:
            if row["status"] == "ok":
                summary.ok += 1
                summary.windows += int(row["windows"] or 0)
            elif row["status"] == "error":
                summary.errors += 1
                summary.crashes.append((row["path"], row["reason"]))
            else:
                summary.failed += 1
                summary.failures.append((row["path"], row["reason"]))
    return len(new_rows)


def _clean(out: str) -> None:
    """Deletes Beam shards no manifest row names and whatever a killed worker left in OUT/.beam/tmp."""
    named = {row.get("shard", "") for part in _glob(_join(out, "manifest*.csv")) for row in _read_rows(part)}
    orphans = [p for p in _glob(_join(out, "shards", f"{SHARD_PREFIX}*.tfrecord"))
               if f"shards/{p.replace(os.sep, '/').rsplit('/', 1)[-1]}" not in named]
    _delete(orphans + _glob(_join(out, WORK, "tmp", "*")))
    if not is_url(out):  # leave no empty work folders behind (a bucket has no folders)
        for folder in (Path(out, WORK, "tmp"), Path(out, WORK, "done"), Path(out, WORK)):
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty, or not there


def _check_settings(out: str, config: Config) -> None:
    """The local runner's settings check (``_check_config``): one folder, one way of cutting windows. A bucket
    folder's settings files are checked in a local copy, and a new one uploaded."""
    if not is_url(out):
        _check_config(Path(out), config)
        return
    with tempfile.TemporaryDirectory() as tmp:
        names = [p.rsplit("/", 1)[-1] for p in _glob(_join(out, "preprocess_config*.yaml"))]
        for name in names:
            Path(tmp, name).write_bytes(_read_bytes(_join(out, name)))
        for part in _glob(_join(out, "manifest*.csv")):
            Path(tmp, part.rsplit("/", 1)[-1]).touch()  # only whether there are any
        _check_config(Path(tmp), config)
        for written in Path(tmp).glob("preprocess_config*.yaml"):
            if written.name not in names:
                _write_text(written.read_text(), _join(out, written.name), out)


def run(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    config: Config | None = None,
    beam_args: list[str] | None = None,
    runner: str | None = None,
    retry_failed: bool = False,
    videos_per_shard: int | None = None,
    allow_leaks: bool = False,
) -> RunSummary:
    """Preprocesses ``inputs`` into ``out_dir`` with a Beam pipeline (see the module docstring).

    Args:
        inputs: videos, folders, CSV lists (local or ``gs://``).
        out_dir: output folder, local or ``gs://``: ``manifest.csv``, ``windows.csv``, ``shards/``.
        config: settings (default preset ``cpu-small``).
        beam_args: Beam pipeline options, e.g. ``["--direct_num_workers=2",
            "--direct_running_mode=multi_processing"]`` or Dataflow's ``--project``, ``--region``...
        runner: a Beam runner name (``DataflowRunner``...) to use instead of the one ``beam_args`` name (default
            Beam's DirectRunner).
        retry_failed: process again the inputs that failed in an earlier run.
        videos_per_shard: videos per batch: the unit of work, of commit and of a shard file (default
            ``VIDEOS_PER_SHARD``, or fewer so that there are at least ``MIN_BATCHES`` batches).
        allow_leaks: warn about a split that puts one identity component on two sides instead of refusing it.
    """
    beam = require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    config = config or get_config()
    if videos_per_shard is not None and videos_per_shard < 1:
        raise UsageError(f"--videos-per-shard must be 1 or more, got {videos_per_shard}")
    args = list(beam_args or []) + ([f"--runner={runner}"] if runner else [])
    options = PipelineOptions(args)
    _fs().set_options(options)  # credentials and project for gs:// on this machine
    out = str(out_dir)
    remote = options.view_as(StandardOptions).runner == "DataflowRunner"
    if remote and not is_url(out):
        raise UsageError(f"--out {out} is on this machine, which Dataflow's workers cannot write: give a bucket "
                         "folder, e.g. --out gs://BUCKET/data")
    records = sorted(collect(inputs, allow_leaks=allow_leaks), key=lambda r: r.path)
    local = [r.path for r in records if not is_url(r.path)]
    if remote and local:
        raise UsageError(f"{local[0]} (and {len(local) - 1} more) is on this machine, which Dataflow's workers "
                         "cannot read: copy the videos to a bucket and give gs:// paths (a CSV list may stay here)")
    if not is_url(out):
        Path(out, "shards").mkdir(parents=True, exist_ok=True)
    _check_settings(out, config)
    if not is_url(out):  # a local run's crash leftovers (its own shards, a cut-off row) first
        recover(Path(out), Path(out, MANIFEST), Path(out, WINDOWS), "shard-")
    _merge(out)  # batches committed by a run that did not get to merge them are done work
    _clean(out)

    committed: dict[str, dict[str, str]] = {}
    for part in _glob(_join(out, "manifest*.csv")):  # --num-shards parts of a local run count as done too
        committed.update({row["path"]: row for row in _read_rows(part)})
    todo = [r for r in records if not done_before(committed.get(r.path), retry_failed)]
    summary = RunSummary(out_dir=Path(out) if not is_url(out) else out, manifest=_join(out, MANIFEST),
                         total=len(records), skipped=len(records) - len(todo),
                         log=log_path(out) if not is_url(out) else None)
    count_skipped(summary, records, committed, retry_failed)
    if not todo:
        return summary  # nothing to do: no pipeline (a Dataflow job takes minutes to start)
    size = videos_per_shard or min(VIDEOS_PER_SHARD, -(-len(todo) // MIN_BATCHES))
    work = batches(todo, size)
    print(f"beam: {len(todo)} videos in {len(work)} batches ({summary.skipped} done in an earlier run), runner "
          f"{options.view_as(StandardOptions).runner or 'DirectRunner'}",
          file=sys.stderr, flush=True)
    try:
        pipeline = beam.Pipeline(options=options)
        _ = (pipeline
             | "Batches" >> beam.Create(work)
             | "Spread" >> beam.Reshuffle()  # one batch per worker at a time, not all in Create's bundle
             | "Preprocess" >> beam.ParDo(_dofn(config, out)))
        result = pipeline.run()
        state = result.wait_until_finish()
        if state is not None and str(state).rsplit(".", 1)[-1] not in ("DONE", "UNKNOWN"):
            raise RuntimeError(f"the Beam pipeline ended in state {state}")
    finally:  # what finished is kept, even when the job failed or was interrupted
        _merge(out, summary)
        _clean(out)
    return summary
