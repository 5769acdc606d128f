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
# # 02 · The tf.data pipeline
#
# Reads the shards written by notebook 01 into batches: parse, cache, shuffle, label-preserving augmentation
# (one flip / colour / crop per window, audio gain and noise), class-balanced weights, unknown labels masked.
# Shows a batch and measures how fast the pipeline delivers windows.
#
# **Reads:** `data/processed/<name>/`. **Writes:** nothing.

# %% tags=["parameters"]
NAME = "synth"
CONFIG = "cpu-small"
SMOKE = False
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
import time

import matplotlib.pyplot as plt

from dfdetect.config import get_config
from dfdetect.pipeline import make_dataset, numpy_batch, window_table

config = get_config("smoke" if SMOKE else CONFIG)
data = root / "data" / "processed" / (f"{NAME}-smoke" if SMOKE else NAME)
window_table(data).groupby(["split", "label"]).size().unstack(fill_value=0)

# %%
train_ds = make_dataset(data, config, "train", training=True, repeat=True)
inputs, targets, weights = numpy_batch(train_ds)
{k: (v.shape, v.dtype) for k, v in inputs.items()}

# %%
n = min(6, len(inputs["frames"]))
fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.6))
for i, ax in enumerate(axes):
    ax.imshow(inputs["frames"][i][len(inputs["frames"][i]) // 2])
    ax.set_title(f"fake={int(targets['fake'][i][0])} w={weights['fake'][i]:.2f}", fontsize=8)
    ax.axis("off")

# %%
it = iter(train_ds)
for _ in range(3):
    next(it)
t, count = time.perf_counter(), 0
for _ in range(5 if SMOKE else 30):
    count += len(next(it)[0]["frames"])
print(f"input pipeline: {count / (time.perf_counter() - t):.0f} windows/s")
