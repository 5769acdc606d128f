"""Training really runs; the JAX backend trains too. (A kill -9 and its resume: tests/test_chaos.py.)"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys

import pytest

from dfdetect.config import get_config
from dfdetect.evaluate import video_scores, window_scores
from dfdetect.train import load_run_model, train

CFG = get_config("smoke")


def _epochs(run) -> list[int]:
    path = run / "history.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_train_writes_a_run_folder_and_scores(smoke_data, tmp_path):
    run = tmp_path / "run"
    summary = train(smoke_data, run, CFG, epochs=1, verbose=0)
    for name in ("config.yaml", "history.csv", "best.keras", "final.keras", "summary.json"):
        assert (run / name).exists(), name
    assert summary["epochs_run"] == 1 and summary["train_windows"] > 0
    model = load_run_model(run)
    w = window_scores(model, smoke_data, CFG, "test")
    assert len(w) > 0 and w["fake_score"].between(0, 1).all()
    v = video_scores(w)
    assert v["path"].is_unique and (v["windows"] >= 1).all()
    # a rerun of a finished run does not train again; another config in the same folder is refused
    stamp = (run / "best.keras").stat().st_mtime_ns
    again = train(smoke_data, run, CFG, epochs=1, verbose=0)
    assert again["already_finished"] and (run / "best.keras").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="another config"):
        train(smoke_data, run, CFG.override(train={"learning_rate": 0.1}), epochs=1, verbose=0)


@pytest.mark.engine  # JAX is a dev extra: skipped without it, except in CI (see tests/conftest.py)
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_one_training_step_on_jax(tmp_path):
    code = """
import numpy as np, keras
from dfdetect.config import get_config
from dfdetect.model import FRAME_HEADS, HEADS, build_model
from dfdetect.train import compile_model
assert keras.backend.backend() == "jax"
cfg = get_config("smoke")
model = compile_model(build_model(cfg), cfg)
rng = np.random.default_rng(0)
T, C, S = cfg.frames_per_window, cfg.faces.crop_size, cfg.samples_per_window
x = {"frames": rng.integers(0, 255, (4, T, C, C, 3)).astype("uint8"),
     "audio": rng.normal(0, 0.1, (4, S)).astype("float32"), "mask": np.ones((4, T), "float32")}
y = {h: rng.integers(0, 2, (4, 1)).astype("float32") for h in HEADS}
y.update({h: rng.integers(0, 2, (4, T, 1)).astype("float32") for h in FRAME_HEADS})  # one label per step
logs = model.train_on_batch(x, y, return_dict=True)
assert np.isfinite(logs["frame_fake_loss"]), logs
assert np.isfinite(logs["loss"]), logs
print("jax-ok", logs["loss"])
"""
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0 and "jax-ok" in out.stdout, out.stderr[-3000:]
