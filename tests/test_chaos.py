"""Hostile conditions for the two long jobs (issue #17): ``kill -9`` at random (seeded) moments of ``dfdetect
preprocess`` with two workers and of ``dfdetect train``, a full disk during preprocessing, and the resume state
of training in unit tests. ``bench/chaos.py`` runs the same checks over more trials; its comparison functions
are used here, so the bench and CI agree on what "lossless" means."""

from __future__ import annotations

import csv
import errno
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from dfdetect.config import get_config
from dfdetect.sample_media import talking_clip

CFG = get_config("smoke")
ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("chaos_bench", ROOT / "bench" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chaos = _bench()


# --- training's resume state (a tiny model: seconds) -----------------------------------------------------

class Scripted(keras.callbacks.Callback):
    """Puts a scripted ``score`` into the epoch logs (what SelectionScore does for real), remembers each epoch's
    weights, and raises ``Crash`` at the start of epoch ``crash_at`` (a kill after the epochs before it)."""

    def __init__(self, scores: list[float], crash_at: int | None = None) -> None:
        super().__init__()
        self.scores, self.crash_at = scores, crash_at
        self.weights: dict[int, list[np.ndarray]] = {}
        self.ran: list[int] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        if epoch == self.crash_at:
            raise Crash(epoch)
        self.ran.append(epoch)

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs["score"] = self.scores[epoch]
        self.weights[epoch] = [w.copy() for w in self.model.get_weights()]


class Crash(Exception):
    """A kill -9 at the start of an epoch, in-process."""


class Killed(Exception):
    """A kill -9 at a chosen write, in-process."""


def _fit(run: Path, scores: list[float], crash_at: int | None = None, patience: int = 10) -> Scripted:
    """One ``fit`` of a tiny model with the run's callbacks as ``train`` orders them; a new model each call,
    as a new process would build."""
    from dfdetect.train import ResumableRun

    keras.utils.set_random_seed(len(list(run.glob("backup/*"))))  # another start than the first fit's
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    script = Scripted(scores, crash_at)
    early = keras.callbacks.EarlyStopping(monitor="score", mode="max", patience=patience)
    callbacks = [script, early, ResumableRun(run, "score", early)]
    try:
        model.fit(x, y, epochs=len(scores), batch_size=8, callbacks=callbacks, verbose=0)
    except (Crash, Killed):
        pass
    return script


def _best_weights(run: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run / "best.keras", compile=False).get_weights()


def _history(run: Path) -> list[tuple[int, float]]:
    with open(run / "history.csv") as f:
        return [(int(r["epoch"]), float(r["score"])) for r in csv.DictReader(f)]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_resumed_run_keeps_its_best_checkpoint_and_history(tmp_path):
    scores = [0.5, 0.9, 0.3, 0.4]
    first = _fit(tmp_path, scores, crash_at=2)  # killed after epochs 0 and 1; the best is epoch 1 (0.9)
    assert first.ran == [0, 1] and _same(_best_weights(tmp_path), first.weights[1])
    # what a kill mid-write leaves: a half-written weights file and a temporary history file
    (tmp_path / "backup" / ".epoch-0003.weights.h5.99.tmp.weights.h5").write_bytes(b"\x89HDF half")
    (tmp_path / ".history.csv.99.tmp").write_text("epoch,sc")
    second = _fit(tmp_path, scores)
    assert second.ran == [2, 3]  # resumed at the first epoch not finished
    # epochs 2 and 3 score worse than epoch 1: best.keras is still epoch 1's model (Keras's ModelCheckpoint,
    # its best value reset by the restart, wrote epoch 2's)
    assert _same(_best_weights(tmp_path), first.weights[1])
    assert _history(tmp_path) == list(enumerate(scores))  # every epoch once, those before the crash included
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["epoch-0004.weights.h5",
                                                                       "training_metadata.json"]
    assert not list(tmp_path.glob(".*tmp*"))
    state = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert (state["epoch"], state["best"], state["best_epoch"]) == (4, 0.9, 1)


def test_early_stopping_patience_survives_a_crash(tmp_path):
    scores = [0.9, 0.5, 0.4, 0.3, 0.2, 0.1]
    _fit(tmp_path, scores, crash_at=2, patience=2)  # epoch 1 was the first without improvement: wait 1
    second = _fit(tmp_path, scores, patience=2)
    # uninterrupted, early stopping ends the run after epoch 2 (two epochs without improvement); with its wait
    # reset by the restart it would have gone on to epoch 4
    assert second.ran == [2] and [e for e, _ in _history(tmp_path)] == [0, 1, 2]
    state = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert state["stopped"] and state["early_wait"] == 2
    # killed after early stopping ended it (before train() wrote summary.json): a rerun trains nothing more
    third = _fit(tmp_path, scores, patience=2)
    assert third.ran == [] and [e for e, _ in _history(tmp_path)] == [0, 1, 2]


def test_kill_between_the_commit_and_best_keras_rewrites_it_on_resume(tmp_path, monkeypatch):
    import dfdetect.train as train_mod

    real = train_mod._save_atomic

    def dies_before_best(model, path):
        if path.name == "best.keras" and path.exists():
            raise Killed("after epoch 1's commit, before its best.keras")
        real(model, path)

    monkeypatch.setattr(train_mod, "_save_atomic", dies_before_best)
    scores = [0.5, 0.9, 0.3]
    first = _fit(tmp_path, scores)
    assert first.ran == [0, 1]  # killed at the end of epoch 1
    state = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert (state["epoch"], state["best_epoch"]) == (2, 1)  # committed: epoch 1 is the best...
    assert _same(_best_weights(tmp_path), first.weights[0])  # ...but best.keras is still epoch 0's model
    monkeypatch.setattr(train_mod, "_save_atomic", real)
    second = _fit(tmp_path, scores)
    assert second.ran == [2]
    # the resume wrote best.keras from the restored weights, which are epoch 1's; epoch 2 (worse) left it
    assert _same(_best_weights(tmp_path), first.weights[1])
    assert _history(tmp_path) == list(enumerate(scores))


# --- preprocess: kill -9 and a full disk (real decoding, two worker processes) ---------------------------

@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four short talking clips and the folder an uninterrupted preprocess run makes of them."""
    from dfdetect.preprocess import preprocess

    root = tmp_path_factory.mktemp("chaos")
    src = root / "videos"
    src.mkdir()
    for i in range(4):
        talking_clip(src / f"v{i}.mp4", photo=["astronaut", "grace_hopper"][i % 2], seconds=2.5, seed=i)
    ref = root / "ref"
    preprocess([src], ref, config=CFG, workers=1, progress=False)
    snap = chaos.snapshot_preprocess(ref)
    assert not snap["problems"] and len(snap["manifest"]) == 4 and len(snap["records"]) >= 8
    return src, ref, snap


def _kill_when(cmd: list[str], ready, delay: float, timeout: float = 180) -> bool:
    """Starts ``cmd`` and SIGKILLs its process group ``delay`` seconds after ``ready()`` first holds; False
    when it exited first."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    time.sleep(delay)
    landed = proc.poll() is None
    if landed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return landed


def test_preprocess_killed_three_times_ends_exactly_like_an_uninterrupted_run(clips, tmp_path):
    src, _, reference = clips
    out = tmp_path / "out"
    cmd = chaos.preprocess_cmd(src, out, workers=2)
    rng = random.Random(17)

    def working() -> bool:  # a worker is writing a video's windows, and not every video is committed
        rows = chaos._rows(out / "manifest.csv")
        return bool(list(out.glob(".tmp-*/*.tfrecord"))) and len(rows) < 4

    landed = [_kill_when(cmd, working, rng.uniform(0, 1.0)) for _ in range(3)]
    assert landed[0], "the first kill did not land mid-run"
    # whatever the kills left, the folder reads as whole videos only (the rerun's recover() does the rest)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert chaos.compare_preprocess(reference, chaos.snapshot_preprocess(out)) == []


def _mount_tmpfs(where: Path, size: int) -> bool:
    """A size-limited tmpfs at ``where`` (root, or passwordless sudo); False where neither can mount."""
    where.mkdir(parents=True, exist_ok=True)
    for prefix in ([], ["sudo", "-n"]):
        if prefix and shutil.which("sudo") is None:
            continue
        cmd = [*prefix, "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            if prefix:
                subprocess.run([*prefix, "chmod", "777", str(where)], check=True)
            return True
    return False


def _umount(where: Path) -> None:
    for prefix in ([], ["sudo", "-n"]):
        if subprocess.run([*prefix, "umount", "-l", str(where)], capture_output=True).returncode == 0:
            return


def test_full_disk_stops_cleanly_and_the_rerun_after_freeing_space_completes(clips, tmp_path, capsys):
    """A real ENOSPC: a size-limited tmpfs, filled by a ballast file. The command line runs in this process
    (``--workers 1``: no start-up to pay twice; the windows are still written by the per-video writer into
    ``.tmp-0`` on the full disk, then appended by the main loop, the two places a full disk strikes)."""
    from dfdetect.cli import main

    src, ref, reference = clips
    need = sum(p.stat().st_size for p in ref.rglob("*") if p.is_file())
    disk = tmp_path / "disk"
    size = 2 * need + (1 << 20)
    if not _mount_tmpfs(disk, size):
        pytest.skip("cannot mount a size-limited tmpfs here (needs root or passwordless sudo)")
    try:
        # ballast leaves room for about half the windows: the disk fills mid-run
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (size - need // 2))
        out = disk / "out"
        args = chaos.preprocess_cmd(src, out, workers=1)[3:]
        capsys.readouterr()
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2, err[-2000:]  # the user's to fix (dfdetect.errors), not a bug (1)
        line = err.strip().splitlines()[-1]
        assert line.startswith("error: disk full while writing ") and line.endswith(
            "free space and run the same command again to resume"), line
        left = chaos.snapshot_preprocess(out)
        assert left["problems"] == []  # no corrupt shard, no half row, no orphan bytes, no temporary file
        assert len(left["manifest"]) < 4  # it did stop before the end
        for path, row in left["manifest"].items():  # what it committed is exactly the reference's
            assert row["status"] == reference["manifest"][path]["status"] == "ok"
        assert all(reference["records"][k] == v for k, v in left["records"].items())
        ballast.unlink()  # space freed
        assert main(args) == 0, capsys.readouterr().err[-2000:]
        assert chaos.compare_preprocess(reference, chaos.snapshot_preprocess(out)) == []
    finally:
        _umount(disk)


def test_a_full_disk_at_the_commit_cuts_back_the_partial_rows(clips, tmp_path, monkeypatch):
    """ENOSPC halfway through appending a manifest row, the commit point (in-process: no mount needed)."""
    import dfdetect.preprocess as pp

    src, _, reference = clips
    out = tmp_path / "out"
    real = pp._write_all
    writes = {"manifest": 0}

    def half_then_full(fd: int, data: bytes) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("manifest.csv"):
            writes["manifest"] += 1
            if writes["manifest"] == 3:  # header, first video, then the second video's row
                real(fd, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(pp, "_write_all", half_then_full)
    with pytest.raises(pp.DiskFull, match=r"^disk full while writing .*manifest\.csv \(videos committed: 1, each whole\): free"):
        pp.preprocess([src], out, config=CFG, workers=1, progress=False)
    left = chaos.snapshot_preprocess(out)
    assert left["problems"] == [] and len(left["manifest"]) == 1
    assert len(left["windows"]) == len(left["records"])  # the second video's window rows were cut back too
    monkeypatch.setattr(pp, "_write_all", real)
    pp.preprocess([src], out, config=CFG, workers=1, progress=False)
    assert chaos.compare_preprocess(reference, chaos.snapshot_preprocess(out)) == []


# --- train: kill -9 twice, then to the end ---------------------------------------------------------------

def test_train_killed_twice_resumes_losslessly(smoke_data, tmp_path):
    run = tmp_path / "run"
    epochs, patience = 4, 2
    cmd = chaos.train_cmd(smoke_data, run, epochs, ["train.steps_per_epoch=4", f"train.patience={patience}"])
    rng = random.Random(5)
    committed = []
    for k in (1, 2):  # a kill after k committed epochs and a random part of the next
        def ready(k=k) -> bool:
            return len(chaos.committed_training(run)["history"]) >= k

        # the delay stays well under an epoch (4 steps and validation): with up to 2 s, an idle CI machine
        # finished the run (summary written, backup removed) before the kill, which then found nothing committed
        assert _kill_when(cmd, ready, rng.uniform(0, 0.3), timeout=300), f"kill {k} landed after the run ended"
        assert not (run / "summary.json").exists(), f"kill {k} came after the run had finished"
        committed.append(chaos.committed_training(run))
        assert len(committed[-1]["history"]) >= k
    log = tmp_path / "rerun.log"
    code, _ = chaos.run_to_end(cmd, log, timeout=600)
    assert code == 0, log.read_text()[-3000:]
    # the epochs committed at the second kill are in the history unchanged, the rerun started after them, the
    # summary and best.keras (evaluated again) hold the best of all epochs, early stopping's rule holds
    assert chaos.check_training(run, smoke_data, epochs, patience, committed[-1], log.read_text()) == []
    summary = json.loads((run / "summary.json").read_text())
    monitor = summary["monitor"]
    with open(run / "history.csv") as f:
        final = {int(r["epoch"]): float(r[monitor]) for r in csv.DictReader(f)}
    # and those of the first kill too: neither rerun trained them again
    assert all(final[r["epoch"]] == r[monitor] for r in committed[0]["history"])
    assert summary["epochs_run"] == len(final) and summary["epochs_resumed"] == len(committed[-1]["history"])
