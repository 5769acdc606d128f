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
MOUNT_DRIVE = False  # Colab: mount Google Drive to read a dataset from it
REPO_URL = ""  # Colab: the git URL of your dfdetect checkout, cloned and installed when dfdetect is missing

# %%
# Colab: install dfdetect from REPO_URL (requirements.txt keeps Colab's GPU TensorFlow) and optionally mount
# Drive. Does nothing elsewhere.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("google.colab") and not importlib.util.find_spec("dfdetect") and REPO_URL:
    subprocess.run(["git", "clone", "-q", REPO_URL, "/content/dfdetect"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "/content/dfdetect/requirements.txt"],
                   check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", "/content/dfdetect"], check=True)
    os.chdir("/content/dfdetect")
    sys.path.insert(0, "/content/dfdetect")
if MOUNT_DRIVE and importlib.util.find_spec("google.colab"):
    from google.colab import drive

    drive.mount("/content/drive")

# %%
from pathlib import Path

from dfdetect import datasets
from dfdetect.config import get_config
from dfdetect.model_files import fetch_models
from dfdetect.preprocess import load_manifest, load_windows, preprocess
from dfdetect.synth import synthesize

root = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
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
