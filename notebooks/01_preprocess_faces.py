# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Preprocess: faces and voices into aligned windows
#
# Reads videos (the built-in benchmark by default, or your dataset: FakeAVCeleb, DFDC, FF++, Celeb-DF, LAV-DF,
# AV-Deepfake1M, ...), detects and tracks the face with MediaPipe, and writes 2 s windows of face crops with the
# 16 kHz audio of the same span to `data/processed/<name>/` (TFRecord shards + `manifest.csv`).
#
# **Reads:** `DATA_ROOT` (or builds `data/raw/synth`). **Writes:** `data/processed/<name>/`.

# %% tags=["parameters"]
DATA_ROOT = ""  # a dataset root or folder of videos; empty = build the built-in benchmark
NAME = "synth"  # output folder name under data/processed/
CONFIG = "cpu-small"  # preset: cpu-small (laptop) or colab-gpu
SMOKE = False  # a tiny run (CI, a first try)
MOUNT_DRIVE = False  # Colab: keep data, models and reports in Google Drive (MyDrive/dfdetect)
REPO_URL = "https://github.com/dfdetect/dfdetect"  # Colab: where dfdetect is installed from

# %%
# Colab: install dfdetect (Colab's GPU TensorFlow stays; one OpenCV wheel) and, with MOUNT_DRIVE, work in a
# Drive folder so the files this notebook writes are there for the next one. Does nothing elsewhere.
import importlib.util
import subprocess

if importlib.util.find_spec("google.colab") and not importlib.util.find_spec("dfdetect"):
    subprocess.run("pip uninstall -q -y opencv-python opencv-python-headless", shell=True, check=False)
    subprocess.run(["pip", "install", "-q", f"dfdetect @ git+{REPO_URL}"], check=True)
    importlib.invalidate_caches()
from dfdetect.colab import setup  # noqa: E402

root = setup(MOUNT_DRIVE)

# %%
from pathlib import Path

from dfdetect import datasets
from dfdetect.config import get_config
from dfdetect.model_files import fetch_models
from dfdetect.preprocess import load_manifest, load_windows, preprocess
from dfdetect.synth import synthesize

config = get_config("smoke" if SMOKE else CONFIG)
suffix = "-smoke" if SMOKE else ""
fetch_models(log=print)

# %% [markdown]
# The input: your dataset, or the built-in benchmark (talking clips made from real photographs, with
# FakeAVCeleb-style labels).

# %%
if DATA_ROOT:
    raw = Path(DATA_ROOT)
else:
    raw = root / "data" / "raw" / f"synth{suffix}"
    synthesize(raw, n=24 if SMOKE else 400, seed=0)
datasets.inspect(raw)

# %%
out = root / "data" / "processed" / f"{NAME}{suffix}"
summary = preprocess([raw], out, config=config)
manifest = load_manifest(out)
manifest[["path", "status", "reason", "windows", "face_ratio", "has_audio", "category"]].head(10)

# %% [markdown]
# What one window looks like: face crops (a cross where no face was found) and the log-mel spectrogram of the
# voice over the same two seconds.

# %%
import matplotlib.pyplot as plt
import numpy as np

from dfdetect.shards import read_windows

windows = load_windows(out)
first_shard = out / windows["shard"].iloc[0]
w = read_windows(first_shard)[0]
T = len(w["frames"])
fig, axes = plt.subplots(2, 8, figsize=(14, 4))
for j, i in enumerate(np.linspace(0, T - 1, 8).astype(int)):
    axes[0, j].imshow(w["frames"][i])
    axes[0, j].set_title(f"{w['start'] + i / config.media.fps:.2f} s" + ("" if w["mask"][i] else " ✗"), fontsize=8)
    axes[0, j].axis("off")
for ax in axes[1]:
    ax.remove()
spec = fig.add_subplot(2, 1, 2)
spec.specgram(w["audio"], Fs=config.media.sample_rate, NFFT=512, noverlap=352, cmap="magma")
spec.set(xlabel="seconds in the window", ylabel="Hz", title=f"{Path(w['path']).name} ({w['category']}, {w['method']})")
plt.tight_layout()
