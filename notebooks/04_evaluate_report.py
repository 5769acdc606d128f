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
# # 04 · Evaluate and report
#
# Scores the test split with the trained model, aggregates windows per video, and writes `metrics.json`,
# `per_video.csv` and a self-contained `report.html` (ROC/PR, histograms, confusion matrices, per category,
# calibration, training curves, worst errors). The plots are shown here too.
#
# **Reads:** `saved_models/<run>/`, `data/processed/<name>/`. **Writes:** `reports/<run>/`.

# %% tags=["parameters"]
NAME = "synth"
RUN = "cpu-small"
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
import base64
import json
import re

import pandas as pd
from IPython.display import Image, display

from dfdetect.evaluate import evaluate_run

sfx = "-smoke" if SMOKE else ""
data = root / "data" / "processed" / f"{NAME}{sfx}"
run = root / "saved_models" / f"{RUN}{sfx}"
report = root / "reports" / f"{RUN}{sfx}"
results = evaluate_run(run, data, report, bootstrap=100 if SMOKE else 1000)
{k: round(v, 3) for k, v in results["video"].items() if k in ("auc", "auc_ci_low", "auc_ci_high", "eer", "ap",
                                                               "accuracy@0.5", "f1@0.5", "log_loss", "ece")}

# %%
json.dumps(results["per_category"], indent=1)

# %% [markdown]
# ## Where: temporal localisation
#
# The frame-level heads' scores of overlapping windows are stitched into one per-frame track per video, segment
# proposals are ranked, and every test video (real and wholly fake ones too) is scored the way LAV-DF and
# AV-Deepfake1M score it: segment AP at IoU 0.5-0.95, AR@N averaged over IoU 0.5:0.05:0.95, frame-level AUC,
# per modality. On the built-in benchmark these are pipeline checks, not claims about real-world deepfakes.

# %%
pd.DataFrame(results.get("localisation", {})).round(3)

# %%
html = (report / "report.html").read_text()
for b64 in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)[:6]:
    display(Image(data=base64.b64decode(b64)))
