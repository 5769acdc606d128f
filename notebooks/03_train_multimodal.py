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
# # 03 · Train the multimodal model
#
# Builds the Keras functional model (face + mouth CNN streams in `TimeDistributed`, in-model log-mel + CNN for
# the voice, per-step fusion with a sync correlation, BiLSTM, attention pooling, four heads) and trains it:
# best epoch by validation AUC, resumable, TensorBoard and CSV logs. On Colab choose `CONFIG = "colab-gpu"`.
#
# **Reads:** `data/processed/<name>/`. **Writes:** `saved_models/<run>/`.

# %% tags=["parameters"]
NAME = "synth"
CONFIG = "cpu-small"
RUN = "cpu-small"
EPOCHS = 0  # 0 = the preset's
SMOKE = False
PSEUDO_FAKES = 0.0  # share of real training windows made pseudo-fakes (train.pseudo_fakes); 0 = off
REAL_ONLY = False  # train on the real videos alone, their fakes made on the fly (dfdetect train --real-only)
BACKBONE = None  # e.g. "EfficientNetB0": a keras.applications face encoder (model.frame_encoder) for real data
BACKBONE_WEIGHTS = "imagenet"  # the backbone's starting weights; None: from scratch (no download)
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

# %% [markdown]
# ## Real data on a GPU: an ImageNet backbone
#
# The small face CNN trains from scratch, which is enough for the built-in benchmark. On real footage
# (FakeAVCeleb, AV-Deepfake1M) the standard for face-forgery detection is an ImageNet-pretrained backbone, fine-tuned:
# set `CONFIG = "colab-gpu"` and `BACKBONE = "EfficientNetB0"` (any `keras.applications` name: EfficientNet,
# EfficientNetV2, ConvNeXt, MobileNet, Xception, DenseNet...). That sets `model.frame_encoder` and
# `model.backbone_weights="imagenet"`; the model feeds the backbone the pixels its weights were trained on
# (EfficientNet rescales 0-255 itself; the others get their `preprocess_input` scaling inside the model) and runs it
# once on every frame of the batch. The weights are downloaded once into `~/.keras/models`. Without internet access
# training stops with an error that says so: copy the file (e.g. `efficientnetb0_notop.h5`) into `~/.keras/models`
# from a machine that has it, or set `BACKBONE_WEIGHTS = None` to train the backbone from scratch.
# `python bench/gpu_check.py --set model.frame_encoder=EfficientNetB0` (from a clone) measures the GPU first.

# %%

import matplotlib.pyplot as plt

from dfdetect.callbacks import LiveCurves  # redraws the loss and AUC curves after every epoch
from dfdetect.config import get_config
from dfdetect.model import build_model
from dfdetect.preprocess import config_for_data
from dfdetect.train import train

data = root / "data" / "processed" / (f"{NAME}-smoke" if SMOKE else NAME)
# how the windows are cut (media, faces, window) comes from how notebook 01 preprocessed the data
config = config_for_data(get_config("smoke" if SMOKE else CONFIG), data)
if REAL_ONLY or PSEUDO_FAKES:
    config = config.override(train={"real_only": REAL_ONLY, "pseudo_fakes": PSEUDO_FAKES or 0.5})
if BACKBONE:
    config = config.override(model={"frame_encoder": BACKBONE, "backbone_weights": BACKBONE_WEIGHTS})
run = root / "saved_models" / (f"{RUN}-smoke" if SMOKE else RUN)
build_model(config).summary(line_length=100)

# %% [markdown]
# ## What pseudo-fakes look like
#
# With `PSEUDO_FAKES` (or `REAL_ONLY`) the training pipeline turns real windows into fakes on the fly, so the
# model learns what *any* manipulation leaves behind, not one generator's fingerprint: a face blended with a
# colour-, sharpness- and position-jittered copy of itself (a seam, a colour and a sharpness mismatch, as in
# Self-Blended Images), and a voice resynthesised with scrambled phase or smoothed harmonics (as vocoders
# leave). Below: real training windows next to their pseudo-fakes.

# %%
from dfdetect.pseudo_fakes import pseudo_fake_figure  # noqa: E402

fig = pseudo_fake_figure(data, n=2 if SMOKE else 3)
plt.show()


# %%
summary = train(data, run, config, epochs=EPOCHS or (1 if SMOKE else None), verbose=2,
                extra_callbacks=[LiveCurves()])
summary
