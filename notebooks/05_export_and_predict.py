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
# # 05 · Export and predict
#
# Exports the run as a SavedModel (named serving signature) + `.keras` + familiarity statistics + model card,
# then scores one held-out video: verdict, per-modality scores, the per-frame score track with the fake segments
# it finds (start and end to the frame, score, and which modality was faked), and explanations (face heat maps, spectrogram saliency). Every verdict also says whether the video
# is like the model's training data (`in_distribution`, `familiarity`); when it is not, the label is
# `uncertain` instead of a score that means nothing. The last cells show that on a clip the model never saw.
#
# **Reads:** `saved_models/<run>/`, `reports/<run>/`. **Writes:** `saved_models/<run>-export/`, `reports/<run>/why/`.

# %% tags=["parameters"]
NAME = "synth"
RUN = "cpu-small"
VIDEO = ""  # a video to score; empty = a held-out partial fake from the benchmark
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

from IPython.display import Image, display

from dfdetect.explain import explain_video
from dfdetect.export import export_model
from dfdetect.predict import Detector, track_text, verdict_text
from dfdetect.preprocess import load_manifest

sfx = "-smoke" if SMOKE else ""
run = root / "saved_models" / f"{RUN}{sfx}"
exported = export_model(run, root / "saved_models" / f"{RUN}{sfx}-export", report_dir=root / "reports" / f"{RUN}{sfx}")
(exported / "model_card.md").read_text()

# %%
if not VIDEO:
    m = load_manifest(root / "data" / "processed" / f"{NAME}{sfx}")
    held_out = m[(m.split == "test") & (m.status == "ok")]
    fakes = held_out[held_out.label == "fake"]
    partial = fakes[fakes.method.astype(str).str.startswith("partial")]
    VIDEO = (partial if len(partial) else fakes if len(fakes) else held_out).path.iloc[0]
with Detector(exported) as det:
    verdict, files = explain_video(det, VIDEO, root / "reports" / f"{RUN}{sfx}" / "why")
print(verdict_text(verdict))
print(track_text(verdict))
{k: v for k, v in verdict.to_dict().items() if k not in ("timeline", "track")}

# %%
for f in files:
    display(Image(filename=str(f)))

# %% [markdown]
# ## Knowing what it does not know
#
# A clip unlike the training data: another person's face (a real LFW photograph) in a webcam-like scene with
# an odd voice. The model still produces a score, but its familiarity is low, so the verdict is `uncertain`.
# `Detector(..., abstain=False)` (or `dfdetect predict --no-abstain`) gives the raw label anyway.

# %%
from dfdetect.wild_media import unfamiliar_clip  # noqa: E402

odd = unfamiliar_clip(root / "data" / "raw" / "unfamiliar-lfw-closeup.mp4", "lfw-closeup", seed=0)
with Detector(exported) as det:
    v = det.predict_video(odd)
{k: getattr(v, k) for k in ("label", "in_distribution", "familiarity", "score", "raw_label", "reason")}

# %% [markdown]
# ## Several people
#
# DFDC clips often show two people of whom only one is swapped. Every face is tracked and scored on its own;
# the verdict is the most suspicious face's (the DFDC winner's rule), `face` says which, and `faces` lists each
# one with where it was in the frame. Here two real photographed people side by side.

# %%
import pandas as pd  # noqa: E402

from dfdetect.sample_media import several_faces_clip  # noqa: E402

two = several_faces_clip(root / "data" / "raw" / "two-people.mp4", seconds=3.0)
with Detector(exported) as det:
    v = det.predict_video(two)
print(verdict_text(v))
pd.DataFrame(v.faces)
