"""Training: ``dfdetect train --data DIR --config NAME --out RUN`` and ``python train.py``.

Masked binary cross-entropy per head (a head whose label is unknown for a window gets zero weight; the
frame-level heads per time step, heavier near segment boundaries), AUC metrics, the best epoch by validation
AUC (the mean of the ``fake`` head's and the frame-level ``frame_fake`` head's) kept as ``RUN/best.keras``,
crash-safe resumption (``ResumableRun``: a run killed at any moment resumes at its first unfinished epoch with
its best score, early-stopping patience and history), early stopping, TensorBoard and CSV logs, optional mixed
precision, and a ``tf.distribute`` strategy (one device, mirrored GPUs, or several machines through
``TF_CONFIG``).

A run folder holds ``config.yaml``, ``history.csv``, ``best.keras``, ``final.keras``, ``summary.json`` and
``logs/`` (TensorBoard).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import keras

from dfdetect.config import Config, load_config
from dfdetect.errors import BadArgument, MissingInput
from dfdetect.model import FRAME_HEADS, HEADS, build_model

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")


def get_strategy(name: str = "auto"):
    """A ``tf.distribute`` strategy by name. ``auto``: mirrored across GPUs when there are several, else
    the default (one device); ``multi_worker`` reads the cluster from ``TF_CONFIG``."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise BadArgument(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if keras.backend.backend() != "tensorflow":
        return None  # other backends: plain single-device training
    if name == "multi_worker":
        # first: listing logical devices starts TensorFlow's runtime, after which a multi-worker strategy
        # cannot configure its collective ops ("must be configured at program startup")
        if "TF_CONFIG" not in os.environ:
            raise BadArgument("multi_worker needs TF_CONFIG describing the cluster (see the README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    # mirrored: MirroredStrategy() takes the GPUs, or the first CPU alone without any; where several logical CPU
    # devices have been configured (tf.config.set_logical_device_configuration, as the tests do), it mirrors over those
    cpus = tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in cpus] if not gpus and len(cpus) > 1 else None)


def compile_model(model: keras.Model, config: Config) -> keras.Model:
    tc = config.train
    heads = [h for h in (*HEADS, *FRAME_HEADS) if h in model.output]
    model.compile(
        optimizer=keras.optimizers.AdamW(tc.learning_rate, weight_decay=tc.weight_decay, clipnorm=1.0),
        loss={h: keras.losses.BinaryCrossentropy() for h in heads},
        weighted_metrics={h: [keras.metrics.AUC(name="auc")] for h in heads},
    )
    return model


class SelectionScore(keras.callbacks.Callback):
    """Adds ``{prefix}select_auc`` to the epoch logs: the mean of the ``fake`` head's AUC and the ``frame_fake``
    head's (frame-level) AUC, what the best epoch is chosen by and early stopping watches. On a benchmark the
    window-level AUC reaches 1.0 within a few epochs while the frame heads still learn where segments start
    and end; choosing by it alone would keep that early epoch."""

    def __init__(self, prefix: str = "val_") -> None:
        super().__init__()
        self.prefix = prefix

    def on_epoch_end(self, epoch, logs=None) -> None:
        if logs is None:
            return
        parts = [logs.get(f"{self.prefix}{h}_auc") for h in ("fake", "frame_fake")]
        parts = [float(x) for x in parts if x is not None]
        if parts:
            logs[f"{self.prefix}select_auc"] = sum(parts) / len(parts)


def _fsync_dir(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (a kill -9 needs only the rename's atomicity; a power cut needs this)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and ``os.replace``: a process killed at any moment
    leaves the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _save_atomic(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary ``.keras`` file and ``os.replace`` (a kill mid-save leaves the
    previous file whole; Keras's own save writes in place)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")  # Keras wants the .keras suffix
    model.save(tmp)
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ResumableRun(keras.callbacks.Callback):
    """The crash-safe state of a training run, in place of Keras's ``BackupAndRestore``, ``ModelCheckpoint``
    and ``CSVLogger``: after a kill -9 at any moment, the same call resumes at the first epoch not finished and
    loses nothing it had done.

    At the end of each epoch it writes, in this order: the weights (and optimizer state) to a new file
    ``backup/epoch-NNNN.weights.h5``; then ``backup/training_metadata.json`` (through ``os.replace``, the commit
    point) naming that file and holding the epoch count, every epoch's logs, the best score so far and its epoch,
    and ``EarlyStopping``'s wait and best; then ``best.keras`` when the epoch improved on the best score, and
    ``history.csv`` (every epoch once) from that state, both replaced atomically. On resume it restores the
    weights, the epoch, the best score (so ``best.keras`` is only replaced by a better epoch), ``EarlyStopping``'s
    patience count, and rewrites ``history.csv``; when the last committed epoch was the best and the kill came
    before ``best.keras`` was replaced, it writes ``best.keras`` from the restored weights, which are that epoch's.

    Keras's callbacks lose this on a crash: ``BackupAndRestore`` keeps neither ``ModelCheckpoint``'s best value
    (the first epoch after a resume overwrote ``best.keras`` whatever its score) nor ``EarlyStopping``'s wait,
    and writes its weights file in place (a kill mid-write left a file the rerun could not load).

    ``early``: the run's ``EarlyStopping``, listed before this callback (this restores it after it resets
    itself in ``on_train_begin``, and records it after it has seen the epoch)."""

    STATE = "training_metadata.json"

    def __init__(self, run: Path, monitor: str, early: keras.callbacks.EarlyStopping | None = None) -> None:
        super().__init__()
        self.run, self.monitor, self.early = Path(run), monitor, early
        self.backup = self.run / "backup"
        self.history: list[dict[str, float]] = []
        self.best = -math.inf
        self.best_epoch: int | None = None
        self.stopped = False
        self.resumed_epochs = 0

    # --- state on disk -----------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any] | None:
        path = self.backup / self.STATE
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        if "weights" not in state:
            raise MissingInput(f"{path} was written by Keras's BackupAndRestore (an older dfdetect), whose state "
                               "this version cannot resume: delete the run folder to train again")
        return state

    def on_train_begin(self, logs=None) -> None:
        state = self._load_state()
        self._remove_stray_files(state)
        if state is None:
            self._write_history()
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        self.model.load_weights(self.backup / state["weights"])
        self.history = state["history"]
        self.best = -math.inf if state["best"] is None else float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.stopped = bool(state["stopped"])
        self.resumed_epochs = int(state["epoch"])
        if self.early is not None:
            self.early.wait, self.early.best = int(state["early_wait"]), state["early_best"]
            self.early.best_epoch = state["best_epoch"] or 0
        # the epoch to start at; none left when early stopping had ended the run before the crash
        self.model._initial_epoch = self.params["epochs"] if self.stopped else self.resumed_epochs
        if self.best_epoch is not None and self.best_epoch == self.resumed_epochs - 1:
            _save_atomic(self.model, self.run / "best.keras")  # the kill may have come before it was written
        self._write_history()
        print(f"resumed {self.run} after epoch {self.resumed_epochs} (best {self.monitor} {self.best:.4f} at "
              f"epoch {(self.best_epoch or 0) + 1})" + ("; early stopping had ended it" if self.stopped else ""),
              flush=True)

    def on_epoch_end(self, epoch, logs=None) -> None:
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        self.history = [r for r in self.history if r["epoch"] != epoch] + [row]
        score = row.get(self.monitor, math.nan)
        improved = score > self.best  # NaN never improves (ModelCheckpoint's save_best_only did the same)
        if improved:
            self.best, self.best_epoch = score, epoch
        self.stopped = bool(self.model.stop_training)
        self.backup.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        tmp = self.backup / f".{weights}.{os.getpid()}.tmp.weights.h5"
        self.model.save_weights(tmp, overwrite=True)
        _fsync_file(tmp)
        os.replace(tmp, self.backup / weights)
        state = {
            "epoch": epoch + 1, "weights": weights, "history": self.history,
            "best": None if self.best == -math.inf else self.best, "best_epoch": self.best_epoch,
            "early_wait": self.early.wait if self.early is not None else 0,
            "early_best": None if self.early is None or self.early.best is None else float(self.early.best),
            "stopped": self.stopped,
        }
        write_atomic(self.backup / self.STATE, json.dumps(state))  # the commit point of this epoch
        if improved:
            _save_atomic(self.model, self.run / "best.keras")
        self._write_history()
        self._remove_stray_files(state)

    # --- files -------------------------------------------------------------------------------------------
    def _remove_stray_files(self, state: dict[str, Any] | None) -> None:
        """Weights files the state does not name: older epochs', or a half-written one a kill left behind."""
        keep = state["weights"] if state else None
        for f in self.backup.glob("*.h5") if self.backup.exists() else []:
            if f.name != keep:
                f.unlink(missing_ok=True)
        for f in self.run.glob(".*.tmp*"):
            f.unlink(missing_ok=True)

    def _write_history(self) -> None:
        """``history.csv``: one row per epoch, ``epoch`` then the logs' names in sorted order (CSVLogger's
        layout), rewritten from the committed state so that a resumed run never repeats or drops a row."""
        keys = sorted({k for r in self.history for k in r} - {"epoch"})
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=["epoch", *keys], lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(self.history, key=lambda r: r["epoch"]))
        write_atomic(self.run / "history.csv", out.getvalue())


MIN_VAL_REAL_VIDEOS = 2  # a real-only run's validation AUC needs real videos to make negatives from


def check_real_only(data_dir: str | Path) -> None:
    """Refuses data a real-only run cannot use (``BadArgument`` when the train split has no real video or the
    val split fewer than ``MIN_VAL_REAL_VIDEOS``) and prints how many windows of real videos it trains on
    and how many fake videos it ignores."""
    from dfdetect.pipeline import window_table

    w = window_table(data_dir)
    real = w["label"].astype(str) == "real"
    counts = {}
    for split in ("train", "val"):
        in_split = w["split"].astype(str) == split
        counts[split] = (int((in_split & real).sum()), int(w.loc[in_split & real, "video_id"].nunique()),
                         int(w.loc[in_split & ~real, "video_id"].nunique()))
    (n_train, v_train, f_train), (n_val, v_val, f_val) = counts["train"], counts["val"]
    if v_train == 0:
        raise BadArgument(f"--real-only: {data_dir} has no real video in its train split ({f_train} fake videos "
                          "there are ignored in a real-only run): it needs real clips to make pseudo-fakes from")
    if v_val < MIN_VAL_REAL_VIDEOS:
        raise BadArgument(f"--real-only: {data_dir} has {v_val} real video(s) in its val split, fewer than the "
                          f"{MIN_VAL_REAL_VIDEOS} a validation AUC needs (the best epoch is chosen on real val "
                          "videos and their pseudo-fakes): give the val split more real clips")
    print(f"real-only: training on {n_train} windows of {v_train} real videos (validation: {n_val} windows of "
          f"{v_val}); {f_train} fake training videos and {f_val} fake val videos ignored", flush=True)


def _is_chief(strategy) -> bool:
    """Whether this process writes the run folder: always, except on the non-chief workers of a multi-worker
    cluster (TF_CONFIG's ``chief`` task, or worker 0 where there is none, is the one that checkpoints)."""
    return strategy is None or bool(getattr(strategy.extended, "should_checkpoint", True))


def _shard_by_window(ds):
    """``ds`` split between the workers of a cluster window by window (each reads every shard and keeps its
    share). AUTO would shard by file, which fails with fewer shard files than workers (a small dataset is one
    file) and cannot split the pipeline's second reader (the voices of sync negatives) the same way."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _build_from_spec(model: keras.Model, dataset, strategy) -> None:
    """Builds ``model``'s variables, metrics and optimizer from ``dataset``'s element spec, and turns off the
    build ``fit`` would do. Under MultiWorkerMirroredStrategy that build (keras-team/keras#20329, open in Keras
    3.15) reads the first batch only for its shapes, yet reduces it across workers with ``strategy.reduce``,
    which that strategy does for one tensor but not for a dict of inputs ("ValueError: Attempt to convert a
    value ({'frames': PerReplica..."). A TensorSpec has the shape and dtype the build needs."""
    with strategy.scope():
        model._symbolic_build(data_batch=dataset.element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


@contextlib.contextmanager
def _multi_worker_step_logs():
    """While it is open, ``fit`` and ``evaluate`` run under a MultiWorkerMirroredStrategy. Keras 3.15's
    TensorFlow trainer averages each step's logs over the workers with ``strategy.reduce("MEAN", v, axis=0)``,
    which fails on the scalars logs are ("Invalid reduction dimension 0 for input with 0 dimensions";
    tensorflow/tensorflow#72388, where the advice is Keras 2). Here a step's scalar logs are this worker's own:
    they only feed the progress bar, since at the end of an epoch Keras reads the logs that history.csv, the
    checkpoints and early stopping see from the metrics themselves, whose variables tf.distribute sums over every
    worker (both workers log the same epoch). Anything else still goes through Keras's own code."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not tf_trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)

        def one(v):
            local = strategy.experimental_local_results(v)
            return local[0] if local[0].shape.rank == 0 else original(v, strategy, reduction)

        return keras.tree.map_structure(one, values)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original


def _scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _finished_run(out: Path, config: Config) -> dict[str, Any] | None:
    """The summary of a run that already finished in ``out`` with this config (a rerun has nothing to do:
    `dfdetect demo` and scripts can be rerun after a crash without training again); an error if ``out`` holds
    a finished run of another config."""
    summary, stored = out / "summary.json", out / "config.yaml"
    if not (summary.exists() and (out / "best.keras").exists() and stored.exists()):
        return None
    if load_config(stored) != config:
        raise BadArgument(f"{out} holds a finished run with another config: choose another output folder, or "
                         "delete it to train again")
    print(f"{out} is already trained (summary.json): nothing to do; delete it to train again", flush=True)
    return {**json.loads(summary.read_text()), "already_finished": True}


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    config: Config,
    strategy: str = "auto",
    epochs: int | None = None,
    verbose: int | str = "auto",
    extra_callbacks: list | None = None,
    allow_leaks: bool = False,
) -> dict[str, Any]:
    """Trains ``config``'s model on ``data_dir`` (``train`` split; ``val`` for model selection) into
    ``out_dir``. Rerunning the same call after a crash resumes from the last finished epoch; after a finished
    run it returns that run's summary.

    Refuses (``DataConfigError``, before anything is built or written) a ``config`` that disagrees with how
    ``data_dir`` was preprocessed (``dfdetect.preprocess.check_data_config``): the run's ``config.yaml`` is what
    export and predict cut windows with, so it must hold the data's settings. ``config_for_data`` makes a
    preset agree with its data.

    Refuses (``SplitLeakError``, exit 2; a warning with ``allow_leaks``) data whose manifest puts one identity
    component on two splits: the best epoch would be chosen on people it trains on."""
    from dfdetect.datasets import data_leaks
    from dfdetect.pipeline import count_windows, make_dataset, training_table
    from dfdetect.preprocess import check_data_config

    check_data_config(config, data_dir)
    data_leaks(data_dir, allow=allow_leaks)  # the split preprocess checked, as the folder now holds it
    out = Path(out_dir)
    finished = _finished_run(out, config)  # every worker of a cluster reads the chief's folder: all return here
    if finished is not None:
        return finished
    # before any other TensorFlow work: a multi-worker strategy configures collective ops, which TensorFlow
    # allows only before its runtime starts ("Collective ops must be configured at program startup")
    strat = get_strategy(strategy)
    replicas = strat.num_replicas_in_sync if strat is not None else 1
    chief = _is_chief(strat)
    # Every worker runs the same callbacks and saves: a .keras save reads the metrics' variables, which
    # tf.distribute synchronises across workers, so a save on the chief alone would wait for the others. Only the
    # chief's files land in the run folder; a non-chief worker writes into a temporary folder deleted at the end
    # (tf.distribute's multi-worker guide does the same), so that no two processes write one file.
    run = out if chief else Path(tempfile.mkdtemp(prefix="dfdetect-worker-"))
    run.mkdir(parents=True, exist_ok=True)
    if chief:
        config.to_yaml(out / "config.yaml")
    else:
        print(f"not the chief: this worker's checkpoints and logs go to {run}, deleted at the end; the chief "
              f"writes {out}", flush=True)
        if (out / "backup").exists():
            # a resumed cluster: every worker restores the chief's last backup, or they would start at other epochs
            shutil.copytree(out / "backup", run / "backup")
    tc = config.train
    keras.utils.set_random_seed(tc.seed)
    if tc.mixed_precision:
        keras.mixed_precision.set_global_policy(tc.mixed_precision)

    n_train = count_windows(data_dir, "train")
    n_val = count_windows(data_dir, "val")
    if n_train == 0:
        raise BadArgument(f"{data_dir} has no training windows (split 'train' in windows.csv)")
    if tc.real_only:
        check_real_only(data_dir)  # refuses data without enough real videos, and says what is ignored
    if tc.real_only or tc.exclude_methods:
        n_train, n_val = (len(training_table(data_dir, s, config)) for s in ("train", "val"))
        if tc.exclude_methods:
            print(f"left out of training and selection: {', '.join(tc.exclude_methods)} "
                  f"({n_train} train and {n_val} val windows remain)", flush=True)
        if n_train == 0:
            raise BadArgument(f"{data_dir}: no training window is left once train.exclude_methods / real_only "
                              "have removed theirs")
    if tc.pseudo_fakes > 0 and "face" in tc.pseudo_fake_kinds:
        from dfdetect.pseudo_fakes import keypoint_counts

        kp = keypoint_counts(data_dir, "train")
        print(f"face pseudo-fakes: {kp['with_keypoints']} of {kp['real']} real training windows have mouth "
              f"keypoints; {kp['without_keypoints']} without get none", flush=True)
    batch = tc.batch_size
    steps = tc.steps_per_epoch or max(1, math.ceil(n_train / batch))
    train_ds = make_dataset(data_dir, config, "train", training=True, repeat=True, drop_remainder=replicas > 1)
    # a real-only run chooses its epoch on the val split's real videos and their negatives, never a real fake
    val_ds = make_dataset(data_dir, config, "val", training=False, role="select") if n_val else None
    if strategy == "multi_worker":
        train_ds = _shard_by_window(train_ds)
        val_ds = _shard_by_window(val_ds) if val_ds is not None else None
    prefix = "val_" if val_ds is not None else ""
    frame_heads = config.model.frame_heads
    monitor = f"{prefix}select_auc" if frame_heads else f"{prefix}fake_auc"

    with _scope(strat):
        model = compile_model(build_model(config), config)
    if strategy == "multi_worker":
        _build_from_spec(model, train_ds, strat)

    early = keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=tc.patience)
    state = ResumableRun(run, monitor, early)
    callbacks = [
        *([SelectionScore(prefix)] if frame_heads else []),  # first: the callbacks below read what it adds
        early,
        state,  # after EarlyStopping: it restores EarlyStopping's state and records it with each epoch
    ]
    if keras.backend.backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(str(run / "logs"), write_graph=False, profile_batch=0))
    callbacks += extra_callbacks or []
    try:
        t0 = time.time()
        with _multi_worker_step_logs() if strategy == "multi_worker" else contextlib.nullcontext():
            # shuffle=False: train_ds (tf.data) shuffles itself; Keras ignores the flag for a Dataset and its
            # default True only printed a UserWarning on every `dfdetect train`
            model.fit(train_ds, epochs=epochs or tc.epochs, steps_per_epoch=steps, shuffle=False,
                      validation_data=val_ds, callbacks=callbacks, verbose=verbose)
        seconds = time.time() - t0
        _save_atomic(model, run / "final.keras")
        rows = state.history  # every epoch of the run, those before a crash included
        ran = len(rows) - state.resumed_epochs
        scores = [r[monitor] for r in rows if monitor in r]
        summary = {
            "data": str(data_dir), "config": config.name, "train_windows": n_train, "val_windows": n_val,
            "epochs_run": len(rows), "epochs_resumed": state.resumed_epochs, "seconds": round(seconds, 1),
            "windows_per_second": round(ran * steps * batch / max(seconds, 1e-9), 1),
            "monitor": monitor, "best": max(scores) if scores else float("nan"), "best_epoch": state.best_epoch,
            "stopped_early": state.stopped, "backend": keras.backend.backend(), "replicas": replicas,
            "params": int(model.count_params()),
        }
        if not (run / "best.keras").exists():  # no epoch had a finite score: the last model stands in
            _save_atomic(model, run / "best.keras")
        write_atomic(run / "summary.json", json.dumps(summary, indent=1))  # the run is finished from here on
        shutil.rmtree(run / "backup", ignore_errors=True)  # only now: a crash before summary.json resumes
    finally:
        if not chief:
            shutil.rmtree(run, ignore_errors=True)
    return summary


def load_run_model(run_dir: str | Path, which: str = "best") -> keras.Model:
    """The ``best`` (or ``final``) model of a run folder, loaded with ``safe_mode=True``."""
    import dfdetect.layers  # noqa: F401  (registers the custom layers)

    path = Path(run_dir) / f"{which}.keras"
    if not path.exists():
        raise MissingInput(f"{path} not found: is {run_dir} a training run folder?")
    return keras.saving.load_model(path, safe_mode=True, compile=False)
