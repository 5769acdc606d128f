"""Chaos: ``kill -9`` at random (seeded) moments of ``dfdetect preprocess`` and ``dfdetect train``, then the same
command again; the result must be exactly what an uninterrupted run gives.

    python bench/chaos.py                                  # 10 preprocess + 5 train trials (about 30 min on 2 cores)
    python bench/chaos.py --trials-preprocess 3 --trials-train 2 --seed 1

Data: the built-in benchmark (``dfdetect.synth``, three portraits, ``--n`` clips, the test suite's ``smoke_data``), preprocessed with the ``smoke``
preset. A pipeline check on generated clips, never a claim about real-world deepfakes.

Kill moments (``kill_moment``): the uninterrupted reference run is watched for its commits (manifest rows; epochs
in the training backup); a trial picks a random k and a random delay within the time the reference took from its
k-th commit to the next, and sends SIGKILL to the whole process group (worker processes included) that long after
its own k-th commit: kills land at every stage of a run (start-up, mid-video, mid-append, mid-epoch, mid-save) on
a loaded machine too.

Preprocess trial: a fresh output folder; ``dfdetect preprocess RAW --workers W`` killed; rerun to completion;
compared with an uninterrupted reference run. "Exactly" means (``compare_preprocess``):

* the manifest: the same rows by path, every column equal except ``seconds`` (timing) and ``shard``/``offset``/
  ``length`` (where a video landed: with several workers videos finish, and are appended, in any order);
* ``windows.csv``: the same rows by (video_id, index), every column equal except ``shard``;
* the windows themselves: the same set of (video_id, index) -> SHA-256 of the ``tf.train.Example`` serialised
  deterministically (protobuf map order is not fixed, so raw record bytes of equal examples may differ);
* and the folder is whole: every shard reads to its end, each manifest row's bytes hold exactly its windows,
  no byte of a shard is outside a committed row, no window twice, no temporary file left.

Train trial: a fresh run folder; ``dfdetect train`` (``--epochs E``, a few steps per epoch, ``train.patience``)
killed at a random moment; rerun to completion. Checked (``check_training``): history.csv has epochs
0..K-1 once each; the epochs committed before the kill are in it unchanged (not trained again) and the rerun
started at the next one; K is E, or early stopping's rule recomputed over the whole history stops at K-1 (its
patience count survived the crash); summary.json covers every epoch, its best is the maximum of the monitored
score over all of them; ``best.keras``, evaluated again on the val split, scores that maximum (so no worse epoch
replaced it after the resume); the backup is gone.

Prints a table of trials (moment killed, what the kill left, the verdict) and totals; exits 1 on any loss.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")

CONFIG = "smoke"
VOLATILE_MANIFEST = ("seconds", "shard", "offset", "length")  # timing and placement, not content
VOLATILE_WINDOWS = ("shard",)
ATTEMPTS = 3  # kill moments drawn per trial until one lands before the run ends


# --- commands --------------------------------------------------------------------------------------------

def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dfdetect.cli", *args]


def preprocess_cmd(raw: Path, out: Path, workers: int) -> list[str]:
    return cli("preprocess", str(raw), "--out", str(out), "--config", CONFIG, "--workers", str(workers),
               "--no-progress")


def train_cmd(data: Path, run: Path, epochs: int, sets: list[str]) -> list[str]:
    extra = [a for s in sets for a in ("--set", s)]
    return cli("train", "--data", str(data), "--out", str(run), "--config", CONFIG, "--epochs", str(epochs),
               "--no-progress", *extra)


def run_to_end(cmd: list[str], log: Path, timeout: float = 900) -> tuple[int, float]:
    """Runs ``cmd`` (output appended to ``log``); returns (exit code, seconds)."""
    t0 = time.time()
    with open(log, "a") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
    return code, time.time() - t0


def run_watched(cmd: list[str], log: Path, progress: Callable[[], int], timeout: float = 900,
                ) -> tuple[int, list[float]]:
    """Runs ``cmd`` to the end, polling ``progress()`` (units committed so far); returns the exit code and the
    seconds from the start at which each unit was first seen committed, the end last."""
    t0, seen = time.time(), []
    with open(log, "a") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        while proc.poll() is None and time.time() - t0 < timeout:
            seen += [time.time() - t0] * max(0, progress() - len(seen))
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
    return code, [*seen, time.time() - t0]


def kill_moment(times: list[float], rng: random.Random) -> tuple[int, float]:
    """A random moment of a run like the reference one (``run_watched``'s ``times``): after ``k`` committed
    units, ``delay`` seconds into the time the reference took for the next one (k = 0: from the start, where
    start-up is). Anchored to commits rather than to the clock, so that a kill lands mid-run on a loaded
    machine too, at each stage about as often."""
    k = rng.randrange(len(times) - 1) if len(times) > 1 else 0
    gap = times[k] - (times[k - 1] if k else 0.0)
    return k, rng.uniform(0.0, gap)


def run_and_kill(cmd: list[str], log: Path, progress: Callable[[], int], k: int, delay: float,
                 timeout: float = 900) -> tuple[bool, float]:
    """Starts ``cmd`` in a process group of its own and sends SIGKILL to the whole group (worker processes
    included) ``delay`` seconds after ``progress()`` first reaches ``k``. Returns whether the kill landed (False:
    the command had exited by then) and when, in seconds from the start."""
    t0 = time.time()
    with open(log, "a") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        while proc.poll() is None and progress() < k and time.time() - t0 < timeout:
            time.sleep(0.02)
        try:
            proc.wait(timeout=delay)
            return False, time.time() - t0
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True, time.time() - t0


# --- preprocess: what a folder holds ---------------------------------------------------------------------

def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _example_digest(record: bytes) -> tuple[tuple[str, int], str]:
    import tensorflow as tf

    ex = tf.train.Example.FromString(record)
    feat = ex.features.feature
    key = (feat["video_id"].bytes_list.value[0].decode(), int(feat["index"].int64_list.value[0]))
    return key, hashlib.sha256(ex.SerializeToString(deterministic=True)).hexdigest()


def snapshot_preprocess(out: Path) -> dict[str, Any]:
    """A preprocessed folder's content, keyed so that the order videos were appended in does not matter, and
    the integrity problems found in it (``problems``)."""
    from dfdetect.shards import iter_records

    problems: list[str] = []
    manifest: dict[str, dict[str, str]] = {}
    for row in _rows(out / "manifest.csv"):
        if row["path"] in manifest:
            problems.append(f"manifest: {row['path']} twice")
        manifest[row["path"]] = row
    windows: dict[tuple[str, int], dict[str, str]] = {}
    for row in _rows(out / "windows.csv"):
        key = (row["video_id"], int(row["index"]))
        if key in windows:
            problems.append(f"windows.csv: {key} twice")
        windows[key] = row
    records: dict[tuple[str, int], str] = {}
    committed: dict[str, int] = {}  # committed bytes per shard
    for row in manifest.values():
        if not row.get("shard"):
            continue
        shard = out / row["shard"]
        committed[row["shard"]] = committed.get(row["shard"], 0) + int(row["length"])
        with open(shard, "rb") as f:
            f.seek(int(row["offset"]))
            part = f.read(int(row["length"]))
        piece = Path(tempfile.mkstemp(suffix=".tfrecord")[1])
        try:
            piece.write_bytes(part)
            n = 0
            for rec in iter_records(piece):  # raises on a cut or corrupt record
                key, digest = _example_digest(rec)
                if key[0] != row["video_id"]:
                    problems.append(f"{row['shard']}@{row['offset']}: a window of {key[0]} in {row['path']}'s bytes")
                if key in records:
                    problems.append(f"window {key} twice in the shards")
                records[key] = digest
                n += 1
        except Exception as e:  # noqa: BLE001 - a corrupt shard is a finding, not a crash of the bench
            problems.append(f"{row['shard']}@{row['offset']}: unreadable ({type(e).__name__})")
            n = -1
        finally:
            piece.unlink()
        if n != int(row["windows"]):
            problems.append(f"{row['path']}: {n} records in its bytes, manifest says {row['windows']}")
    for shard in sorted((out / "shards").glob("*.tfrecord")):
        rel = f"shards/{shard.name}"
        if shard.stat().st_size != committed.get(rel, 0):
            problems.append(f"{rel}: {shard.stat().st_size} bytes, {committed.get(rel, 0)} committed")
    left = [p.name for p in out.iterdir() if p.name.startswith(".tmp-") or p.suffix == ".tmp"]
    if left:
        problems.append(f"temporary files left: {left}")
    return {"manifest": manifest, "windows": windows, "records": records, "problems": problems}


def compare_preprocess(ref: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Differences between two snapshots (``snapshot_preprocess``) and ``got``'s integrity problems; [] when the
    folders hold exactly the same videos and windows."""
    diffs = list(got["problems"])
    for name, volatile in (("manifest", VOLATILE_MANIFEST), ("windows", VOLATILE_WINDOWS)):
        a, b = ref[name], got[name]
        if a.keys() != b.keys():
            diffs.append(f"{name}: {len(a.keys() - b.keys())} rows missing, {len(b.keys() - a.keys())} extra")
        for key in sorted(a.keys() & b.keys()):
            cols = [c for c in a[key] if c not in volatile and a[key][c] != b[key].get(c)]
            if cols:
                diffs.append(f"{name} {key}: {', '.join(f'{c} {a[key][c]!r} vs {b[key].get(c)!r}' for c in cols)}")
    if ref["records"] != got["records"]:
        changed = sum(ref["records"].get(k) != v for k, v in got["records"].items())
        diffs.append(f"windows' bytes: {len(ref['records'])} vs {len(got['records'])} records, {changed} differ")
    return diffs


def kill_state(out: Path) -> str:
    """What a killed preprocess run left: committed rows, and uncommitted shard bytes / temporary files."""
    rows = _rows(out / "manifest.csv")
    committed = sum(int(r["length"] or 0) for r in rows)
    on_disk = sum(p.stat().st_size for p in (out / "shards").glob("*.tfrecord")) if (out / "shards").exists() else 0
    tmp = list(out.glob(".tmp-*/*.tfrecord"))
    bits = [f"{len(rows)} committed"]
    if on_disk > committed:
        bits.append(f"{on_disk - committed} B uncommitted")
    if tmp:
        bits.append(f"{len(tmp)} tmp")
    return ", ".join(bits)


# --- train: what a run folder holds ----------------------------------------------------------------------

def committed_training(run: Path) -> dict[str, Any]:
    """The state a run folder has committed (its backup: ``history``, ``stopped``...); empty before the first
    epoch."""
    path = run / "backup" / "training_metadata.json"
    return json.loads(path.read_text()) if path.exists() else {"history": [], "stopped": False}


def early_stop_epoch(scores: list[float], patience: int) -> int | None:
    """The epoch ``keras.callbacks.EarlyStopping(mode="max", patience)`` stops at over ``scores``, or None."""
    best, wait = None, 0
    for epoch, s in enumerate(scores):
        wait += 1
        if best is None or s > best:
            best, wait = s, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch
    return None


def evaluate_best(run: Path, data: Path) -> float:
    """``best.keras`` scored again on the val split, the way training chose it (the monitored score)."""
    from dfdetect.config import load_config
    from dfdetect.pipeline import make_dataset
    from dfdetect.train import compile_model, load_run_model

    config = load_config(run / "config.yaml")
    model = compile_model(load_run_model(run), config)
    ds = make_dataset(data, config, "val", training=False, role="select", log=None)
    logs = model.evaluate(ds, verbose=0, return_dict=True)
    parts = [logs[k] for k in ("fake_auc", "frame_fake_auc") if k in logs]
    return float(sum(parts) / len(parts))


def check_training(run: Path, data: Path, epochs: int, patience: int, committed: dict[str, Any] | None,
                   rerun_log: str, evaluate: bool = True) -> list[str]:
    """Losses in a run folder trained to the end after a kill that left ``committed`` (``committed_training``;
    None: no kill) (module docstring); [] when none."""
    problems = []
    before = committed["history"] if committed else []
    more = bool(before) and not committed["stopped"] and len(before) < epochs  # epochs left for the rerun
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    got = [int(r["epoch"]) for r in rows]
    if got != list(range(len(got))):
        problems.append(f"history epochs {got}")
    summary = json.loads((run / "summary.json").read_text())
    monitor = summary["monitor"]
    scores = [float(r[monitor]) for r in rows]
    for old in before:
        new = next((r for r in rows if int(r["epoch"]) == old["epoch"]), None)
        if new is None or not math.isclose(float(new[monitor]), old[monitor], rel_tol=0, abs_tol=1e-9):
            problems.append(f"epoch {old['epoch']} trained again or lost after the kill")
    if more and f"Epoch {len(before) + 1}/" not in rerun_log:
        problems.append(f"the rerun did not start at epoch {len(before) + 1}")
    if before and f"Epoch {len(before)}/" in rerun_log:
        problems.append(f"the rerun trained epoch {len(before)} again")
    stop = early_stop_epoch(scores, patience)
    expected = epochs if stop is None else min(stop + 1, epochs)
    if len(got) != expected:
        problems.append(f"{len(got)} epochs; {expected} expected (early stopping patience {patience})")
    if summary["epochs_run"] != len(got):
        problems.append(f"summary.json epochs_run {summary['epochs_run']}, history has {len(got)}")
    finite = [s for s in scores if math.isfinite(s)]
    best = max(finite) if finite else math.nan
    if finite and not math.isclose(summary["best"], best, abs_tol=1e-9):
        problems.append(f"summary best {summary['best']:.4f}, the max over all epochs is {best:.4f}")
    if evaluate and finite:
        score = evaluate_best(run, data)
        if abs(score - best) > 1e-4:
            problems.append(f"best.keras scores {score:.4f}, the best epoch {best:.4f}")
    if (run / "backup").exists():
        problems.append("backup/ left behind")
    stray = [p.name for p in run.iterdir() if ".tmp" in p.name]
    if stray:
        problems.append(f"temporary files left: {stray}")
    return problems


# --- the campaign ----------------------------------------------------------------------------------------

def build_data(work: Path, n: int, seed: int) -> Path:
    from dfdetect.synth import synthesize

    raw = work / "raw"
    synthesize(raw, n=n, seed=seed, workers=2, progress=False, faces="photos")
    return raw


def preprocess_trials(raw: Path, work: Path, trials: int, workers: int, rng: random.Random,
                      table: list[list[str]]) -> tuple[Path, int]:
    """The reference run and ``trials`` kill/rerun trials; returns the reference folder and the failures."""
    ref = work / "pp-ref"
    code, times = run_watched(preprocess_cmd(raw, ref, workers), work / "pp-ref.log",
                              lambda: len(_rows(ref / "manifest.csv")))
    ref_s = times[-1]
    if code not in (0, 3):
        raise SystemExit(f"the reference preprocess run failed (exit {code}): see {work / 'pp-ref.log'}")
    reference = snapshot_preprocess(ref)
    if reference["problems"]:
        raise SystemExit(f"the reference folder has problems: {reference['problems']}")
    print(f"preprocess reference: {len(reference['manifest'])} videos, {len(reference['records'])} windows, "
          f"{ref_s:.1f} s (exit {code})", flush=True)
    failures = 0
    for i in range(trials):
        out, log = work / f"pp-{i}", work / f"pp-{i}.log"
        cmd = preprocess_cmd(raw, out, workers)
        for _ in range(ATTEMPTS):  # a trial is a kill: a moment the run outlived (a faster run) is drawn again
            shutil.rmtree(out, ignore_errors=True)
            k, delay = kill_moment(times, rng)
            killed, at = run_and_kill(cmd, log, lambda out=out: len(_rows(out / "manifest.csv")), k, delay)
            if killed:
                break
        found = kill_state(out) if killed else "finished before the kill"
        rerun, _ = run_to_end(cmd, log)
        diffs = [] if rerun == code else [f"rerun exit {rerun}, reference {code}"]
        diffs += compare_preprocess(reference, snapshot_preprocess(out))
        failures += bool(diffs)
        table.append(["preprocess", str(i), f"{at:.1f} s ({k} rows + {delay:.1f} s)", found, "; ".join(diffs[:3]) or "exact",
                      "FAIL" if diffs else "pass"])
        print(" | ".join(table[-1]), flush=True)
        shutil.rmtree(out, ignore_errors=True)
    return ref, failures


def train_trials(data: Path, work: Path, trials: int, epochs: int, sets: list[str], patience: int,
                 rng: random.Random, table: list[list[str]]) -> int:
    ref = work / "train-ref"
    code, times = run_watched(train_cmd(data, ref, epochs, sets), work / "train-ref.log",
                              lambda: len(committed_training(ref)["history"]))
    ref_s = times[-1]
    if code != 0:
        raise SystemExit(f"the reference train run failed (exit {code}): see {work / 'train-ref.log'}")
    ref_problems = check_training(ref, data, epochs, patience, None, "")
    if ref_problems:
        raise SystemExit(f"the uninterrupted run fails the checks: {ref_problems}")
    ref_epochs = json.loads((ref / "summary.json").read_text())["epochs_run"]
    print(f"train reference: {ref_epochs} epochs in {ref_s:.1f} s", flush=True)
    failures = 0
    for i in range(trials):
        run, log = work / f"train-{i}", work / f"train-{i}.log"
        cmd = train_cmd(data, run, epochs, sets)
        for _ in range(ATTEMPTS):
            shutil.rmtree(run, ignore_errors=True)
            k, delay = kill_moment(times, rng)
            killed, at = run_and_kill(cmd, log, lambda run=run: len(committed_training(run)["history"]), k, delay)
            if killed:
                break
        committed = committed_training(run)
        found = f"{len(committed['history'])} epoch(s) committed" if killed else "finished before the kill"
        if killed and (run / "summary.json").exists():
            found = "after summary.json (finished, not yet exited)"
        elif killed and (run / "best.keras").exists():
            found += ", best.keras"
        mark = log.stat().st_size
        rerun, _ = run_to_end(cmd, log)
        rerun_log = log.read_text()[mark:]
        problems = [] if rerun == 0 else [f"rerun exit {rerun}"]
        if rerun == 0:
            problems += check_training(run, data, epochs, patience, committed if killed else None, rerun_log)
        failures += bool(problems)
        table.append(["train", str(i), f"{at:.1f} s ({k} epochs + {delay:.1f} s)", found, "; ".join(problems[:3]) or "lossless",
                      "FAIL" if problems else "pass"])
        print(" | ".join(table[-1]), flush=True)
        shutil.rmtree(run, ignore_errors=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials-preprocess", type=int, default=10)
    ap.add_argument("--trials-train", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="the kill moments")
    ap.add_argument("--n", type=int, default=24, help="benchmark clips (24 of the three portraits, seed 3: a val "
                    "split with real and fake clips, which the best epoch is chosen on)")
    ap.add_argument("--data-seed", type=int, default=3, help="the benchmark's seed")
    ap.add_argument("--workers", type=int, default=2, help="preprocess worker processes")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="train.steps_per_epoch")
    ap.add_argument("--patience", type=int, default=2, help="train.patience (early stopping)")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--data", type=Path, default=None, help="train on this preprocessed folder (skips building "
                    "the benchmark and the preprocess trials)")
    args = ap.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="dfdetect-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    table: list[list[str]] = []
    t0 = time.time()
    try:
        if args.data is None:
            raw = build_data(work, args.n, args.data_seed)
            data, pp_fail = preprocess_trials(raw, work, args.trials_preprocess, args.workers, rng, table)
        else:
            data, pp_fail, args.trials_preprocess = args.data, 0, 0
        sets = [f"train.steps_per_epoch={args.steps}", f"train.patience={args.patience}"]
        tr_fail = train_trials(data, work, args.trials_train, args.epochs, sets, args.patience, rng, table)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    head = ["run", "trial", "killed at", "the kill left", "after the rerun", "verdict"]
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    print()
    for r in [head, ["-" * w for w in widths], *table]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    kills = sum("before the kill" not in r[3] for r in table)
    print(f"\npreprocess: {args.trials_preprocess - pp_fail}/{args.trials_preprocess} lossless; train: "
          f"{args.trials_train - tr_fail}/{args.trials_train} lossless; {kills} kills landed; "
          f"{time.time() - t0:.0f} s")
    return 1 if pp_fail or tr_fail else 0


if __name__ == "__main__":
    sys.exit(main())
