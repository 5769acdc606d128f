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

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt

from dfdetect.config import get_config
from dfdetect.pipeline import make_dataset, numpy_batch, window_table

root = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
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
