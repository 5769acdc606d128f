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

# %%
import base64
import json
import re
from pathlib import Path

from IPython.display import Image, display

from dfdetect.evaluate import evaluate_run

root = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
sfx = "-smoke" if SMOKE else ""
data = root / "data" / "processed" / f"{NAME}{sfx}"
run = root / "saved_models" / f"{RUN}{sfx}"
report = root / "reports" / f"{RUN}{sfx}"
results = evaluate_run(run, data, report, bootstrap=100 if SMOKE else 1000)
{k: round(v, 3) for k, v in results["video"].items() if k in ("auc", "auc_ci_low", "auc_ci_high", "eer", "ap",
                                                               "accuracy@0.5", "f1@0.5", "log_loss", "ece")}

# %%
json.dumps(results["per_category"], indent=1)

# %%
html = (report / "report.html").read_text()
for b64 in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)[:6]:
    display(Image(data=base64.b64decode(b64)))
