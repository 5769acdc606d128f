"""tf.distribute really runs: two local worker processes under MultiWorkerMirroredStrategy (``TF_CONFIG``) train,
leave the run folder to the chief, resume a killed run at the next epoch and do nothing for a finished one;
MirroredStrategy over two logical CPU devices trains and splits each batch between its replicas.

Epochs are capped at a few steps (``train.steps_per_epoch``): two TensorFlow processes share the machine's cores,
and what is tested is the plumbing (collectives, sharding, who writes), not learning."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

STEPS = 3  # steps per epoch of the capped smoke epochs
START_TIMEOUT = 300  # seconds for a cluster's first epoch (two TensorFlow start-ups and graph traces)
RUN_TIMEOUT = 360  # seconds for a whole cluster run: a hang (a worker waiting for a dead peer) fails, not blocks


def _epochs(run: Path) -> list[int]:
    path = run / "history.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (all sockets held open until every port is chosen)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    """The same ``dfdetect train --strategy multi_worker`` command started as worker 0 (the chief) and worker
    1, each with its own ``TF_CONFIG``, output log and temporary folder (where a non-chief worker writes)."""

    def __init__(self, data: Path, run: Path, epochs: int, scratch: Path) -> None:
        hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
        cmd = [sys.executable, "-m", "dfdetect.cli", "train", "--data", str(data), "--out", str(run), "--config",
               "smoke", "--epochs", str(epochs), "--no-progress", "--strategy", "multi_worker",
               "--set", f"train.steps_per_epoch={STEPS}"]
        self.logs, self.tmp, self.procs = [], [], []
        for i in range(2):
            tmp = scratch / f"tmp{i}"
            tmp.mkdir(parents=True)
            env = dict(os.environ, TMPDIR=str(tmp), CUDA_VISIBLE_DEVICES="",
                       TF_CONFIG=json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}))
            log = scratch / f"worker{i}.log"
            with open(log, "w") as out:
                self.procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                   start_new_session=True))
            self.logs.append(log)
            self.tmp.append(tmp)

    @property
    def chief_pid(self) -> int:
        return self.procs[0].pid

    def output(self, i: int) -> str:
        return self.logs[i].read_text()

    def wait(self, timeout: float) -> list[int]:
        """Both exit codes; kills both and fails when either is still running after ``timeout`` seconds."""
        deadline = time.time() + timeout
        try:
            return [p.wait(timeout=max(1.0, deadline - time.time())) for p in self.procs]
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the cluster did not finish within {timeout} s (a hang?); worker 1 said:\n"
                        f"{self.output(1)[-3000:]}")

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _event_file_pids(run: Path) -> set[int]:
    """The process ids in the TensorBoard event files' names (``events.out.tfevents.TIME.HOST.PID.N.v2``)."""
    return {int(p.name.split(".")[-3]) for p in (run / "logs").rglob("events.out.tfevents.*")}


@pytest.mark.slow
def test_two_workers_train_resume_and_leave_the_run_to_the_chief(smoke_data, tmp_path):
    from dfdetect.train import load_run_model

    run = tmp_path / "run"
    # 1. two epochs asked for; both workers killed once the first is in history.csv (its backup is written first)
    first = Cluster(smoke_data, run, epochs=2, scratch=tmp_path / "first")
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline and not _epochs(run) and all(p.poll() is None for p in first.procs):
        time.sleep(0.2)
    first.kill()
    assert _epochs(run) == [0], f"the kill did not land after the first epoch; chief said:\n{first.output(0)[-3000:]}"
    assert (run / "backup" / "training_metadata.json").exists()
    assert _event_file_pids(run) == {first.chief_pid}  # the non-chief's TensorBoard logs went elsewhere

    # 2. the same command again: both workers restore the chief's backup and run the second epoch only
    second = Cluster(smoke_data, run, epochs=2, scratch=tmp_path / "second")
    assert second.wait(RUN_TIMEOUT) == [0, 0], second.output(0)[-3000:] + second.output(1)[-3000:]
    assert _epochs(run) == [0, 1]  # one row per epoch: one writer, and the first epoch was not run again
    for i in range(2):
        out = second.output(i)
        assert "Epoch 2/2" in out and "Epoch 1/2" not in out, f"worker {i} did not resume at the second epoch"
    # worker 1 knew it was not the chief and wrote into a temporary folder, which it deleted
    assert "not the chief" not in second.output(0)
    assert f"go to {second.tmp[1]}{os.sep}dfdetect-worker-" in second.output(1)
    for name in ("config.yaml", "history.csv", "best.keras", "final.keras", "summary.json"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    # summary.json covers every epoch of the run, the one before the kill included
    assert summary["replicas"] == 2 and summary["epochs_run"] == 2 and summary["epochs_resumed"] == 1
    assert not (run / "backup").exists()  # removed by the chief at the end of a finished run
    # only chiefs wrote TensorBoard logs here; the non-chief's temporary folder is gone
    assert _event_file_pids(run) == {first.chief_pid, second.chief_pid}
    assert list(second.tmp[1].glob("dfdetect-worker-*")) == []
    model = load_run_model(run)
    assert model.count_params() == summary["params"]

    # 3. once more: a finished run, so neither worker trains again (nor waits for the other)
    stamp = (run / "best.keras").stat().st_mtime_ns
    third = Cluster(smoke_data, run, epochs=2, scratch=tmp_path / "third")
    assert third.wait(120) == [0, 0], third.output(0)[-3000:] + third.output(1)[-3000:]
    assert all("already trained" in third.output(i) for i in range(2))
    assert (run / "best.keras").stat().st_mtime_ns == stamp and _epochs(run) == [0, 1]


MIRRORED = """
import json, sys
import tensorflow as tf

# two logical CPU devices, configured before TensorFlow initialises
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import dfdetect.pipeline as pipeline

made = []
real_make_dataset = pipeline.make_dataset


def spy(*args, **kwargs):  # records the datasets train() builds
    ds = real_make_dataset(*args, **kwargs)
    made.append((kwargs, ds))
    return ds


pipeline.make_dataset = spy
from dfdetect.config import get_config
from dfdetect.train import get_strategy, train

data, run = sys.argv[1], sys.argv[2]
summary = train(data, run, get_config("smoke").override(train={"steps_per_epoch": 2}), strategy="mirrored",
                epochs=1, verbose=0)
strategy = get_strategy("mirrored")
kwargs, ds = next((k, d) for k, d in made if k.get("training"))
inputs = next(iter(strategy.experimental_distribute_dataset(ds)))[0]
print(json.dumps({"replicas": summary["replicas"], "devices": list(strategy.extended.worker_devices),
                  "drop_remainder": kwargs.get("drop_remainder"), "batch": ds.element_spec[0]["frames"].shape[0],
                  "per_replica": [int(t.shape[0]) for t in strategy.experimental_local_results(inputs["frames"])]}))
"""


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_splits_the_batch(smoke_data, tmp_path):
    from dfdetect.config import get_config

    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-c", MIRRORED, str(smoke_data), str(run)], capture_output=True,
                         text=True, timeout=400, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    batch = get_config("smoke").train.batch_size
    assert seen["replicas"] == 2 and len(seen["devices"]) == 2 and all("CPU" in d for d in seen["devices"])
    # a fixed global batch (the remainder dropped), split evenly: the global batch size is the config's
    assert seen["drop_remainder"] is True and seen["batch"] == batch
    assert seen["per_replica"] == [batch // 2, batch // 2]
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and math.isfinite(float(rows[0]["loss"]))
