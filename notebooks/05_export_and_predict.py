# %% [markdown]
# # 05 · Export and predict
#
# Exports the run as a SavedModel (named serving signature) + `.keras` + model card, then scores one held-out
# video: verdict, per-modality scores, the timeline of window scores with fake segments, and explanations
# (face heat maps, spectrogram saliency).
#
# **Reads:** `saved_models/<run>/`, `reports/<run>/`. **Writes:** `saved_models/<run>-export/`, `reports/<run>/why/`.

# %% tags=["parameters"]
NAME = "synth"
RUN = "cpu-small"
VIDEO = ""  # a video to score; empty = a held-out fake from the benchmark
SMOKE = False

# %%
from pathlib import Path

from IPython.display import Image, display

from dfdetect.explain import explain_video
from dfdetect.export import export_model
from dfdetect.predict import Detector
from dfdetect.preprocess import load_manifest

root = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
sfx = "-smoke" if SMOKE else ""
run = root / "saved_models" / f"{RUN}{sfx}"
exported = export_model(run, root / "saved_models" / f"{RUN}{sfx}-export", report_dir=root / "reports" / f"{RUN}{sfx}")
(exported / "model_card.md").read_text()

# %%
if not VIDEO:
    m = load_manifest(root / "data" / "processed" / f"{NAME}{sfx}")
    held_out = m[(m.split == "test") & (m.status == "ok")]
    fakes = held_out[held_out.label == "fake"]
    VIDEO = (fakes if len(fakes) else held_out).path.iloc[0]
with Detector(exported) as det:
    verdict, files = explain_video(det, VIDEO, root / "reports" / f"{RUN}{sfx}" / "why")
{k: v for k, v in verdict.to_dict().items() if k != "timeline"}

# %%
for f in files:
    display(Image(filename=str(f)))
