"""The notebooks: committed without outputs, paired with their py:percent scripts, and executed in order with
SMOKE=True (each must produce its artefacts). The time each took is printed."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

NB = Path(__file__).resolve().parent.parent / "notebooks"
ORDER = ["01_preprocess_faces", "02_tfdata_pipeline", "03_train_multimodal", "04_evaluate_report",
         "05_export_and_predict"]


def test_five_ordered_notebooks_without_outputs_and_in_sync():
    import jupytext

    assert sorted(p.stem for p in NB.glob("*.ipynb")) == ORDER
    for name in ORDER:
        nb = json.loads((NB / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            assert not cell.get("outputs") and not cell.get("execution_count"), f"{name} carries outputs"
        assert nb["cells"][0]["cell_type"] == "markdown"
        assert "parameters" in nb["cells"][1].get("metadata", {}).get("tags", []), f"{name}: parameters cell"
        paired = jupytext.read(NB / f"{name}.py")
        sources = [c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in nb["cells"]]
        assert sources == [c["source"] for c in paired["cells"]], f"{name}.ipynb is out of date with {name}.py"


def test_notebooks_hold_no_definitions():
    """Notebooks stay thin: a function or class a notebook needs lives in dfdetect/ (LiveCurves did not)."""
    import ast

    for name in ORDER:
        nb = json.loads((NB / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            tree = ast.parse("\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))))
            defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            assert not defined, f"{name} defines {defined}: move them into the dfdetect package"


def test_colab_badges_and_install_cells_agree_with_the_repository():
    import re
    import tomllib

    from dfdetect.colab import NOTEBOOKS, REPOSITORY, badge_url, badges

    root = NB.parent
    assert tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Repository"] == REPOSITORY
    assert list(NOTEBOOKS) == ORDER
    readme = (root / "README.md").read_text()
    assert badges() in readme, "README's Colab table is out of date: paste dfdetect.colab.badges()"
    for name in ORDER:
        url = badge_url(name)
        # the badge opens this very file on GitHub's main branch
        assert url.endswith(f"/blob/main/notebooks/{name}.ipynb") and (NB / f"{name}.ipynb").exists()
        nb = json.loads((NB / f"{name}.ipynb").read_text())
        params = "".join(nb["cells"][1]["source"])
        assert re.search(rf'^REPO_URL = "{re.escape(REPOSITORY)}"', params, re.M), f"{name}: REPO_URL"
        assert re.search(r"^MOUNT_DRIVE = False", params, re.M), f"{name}: MOUNT_DRIVE"
        first = "".join(nb["cells"][2]["source"])  # the Colab cell comes straight after the parameters
        assert "google.colab" in first and "git+{REPO_URL}" in first and "setup(MOUNT_DRIVE)" in first
    assert badge_url("x", "https://github.com/a/b.git", "dev") == (
        "https://colab.research.google.com/github/a/b/blob/dev/notebooks/x.ipynb")


def test_colab_setup_is_a_no_op_elsewhere(tmp_path, monkeypatch):
    from dfdetect.colab import setup

    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert setup(mount_drive=True) == tmp_path  # the project root, and no chdir
    assert Path.cwd() == tmp_path / "notebooks"


@pytest.mark.slow
def test_notebooks_run_in_order(tmp_path, capsys):
    import papermill as pm

    work = tmp_path / "project"
    shutil.copytree(NB, work / "notebooks")
    for sub in ("data/raw", "data/processed", "saved_models", "reports"):
        (work / sub).mkdir(parents=True)
    times = {}
    for name in ORDER:
        t = time.time()
        pm.execute_notebook(str(work / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.out.ipynb"),
                            parameters={"SMOKE": True}, cwd=str(work / "notebooks"), kernel_name="python3",
                            progress_bar=False)
        times[name] = time.time() - t
    with capsys.disabled():
        print("\nnotebook times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    out = {name: _text_outputs(tmp_path / f"{name}.out.ipynb") for name in ORDER}
    import pandas as pd

    # 01: every clip of the 24-clip smoke benchmark preprocessed, with faces, into windows
    processed = work / "data" / "processed" / "synth-smoke"
    manifest = pd.read_csv(processed / "manifest.csv")
    assert len(manifest) == 24 and (manifest["status"] == "ok").all(), manifest[["path", "status", "reason"]]
    assert manifest["face_ratio"].median() > 0.9 and manifest["windows"].sum() == len(
        pd.read_csv(processed / "windows.csv"))
    # 02: a batch of the smoke shapes, and a measured input rate
    assert "'frames': ((4, 12, 64, 64, 3), dtype('uint8'))" in out["02_tfdata_pipeline"]
    rate = re.search(r"input pipeline: (\d+) windows/s", out["02_tfdata_pipeline"])
    assert rate and int(rate.group(1)) > 0
    # 03: one epoch trained, a finite loss logged
    history = pd.read_csv(work / "saved_models" / "cpu-small-smoke" / "history.csv")
    assert len(history) == 1 and np.isfinite(history["loss"]).all()
    # 04: the metrics it shows are the report's, over the test split's videos
    metrics = json.loads((work / "reports" / "cpu-small-smoke" / "metrics.json").read_text())
    assert metrics["videos"] == int(((manifest["split"] == "test") & (manifest["windows"] > 0)).sum())
    assert f"'auc': {round(metrics['video']['auc'], 3)}" in out["04_evaluate_report"]
    assert (work / "reports" / "cpu-small-smoke" / "report.html").stat().st_size > 50_000
    # 05: the exported model predicted a held-out clip: an ok verdict with windows, explained in 3 PNGs
    card = json.loads((work / "saved_models" / "cpu-small-smoke-export" / "model_card.json").read_text())
    assert card["threshold"] == pytest.approx(metrics["val_threshold"] or 0.5)
    assert re.search(r"'status': 'ok'.*'label': '(real|fake|uncertain)'", out["05_export_and_predict"], re.S)
    assert len(list((work / "reports" / "cpu-small-smoke" / "why").glob("*.png"))) == 3


def _text_outputs(path: Path) -> str:
    """Everything an executed notebook showed as text (streams and text/plain results), joined."""
    parts = []
    for cell in json.loads(path.read_text())["cells"]:
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain", "")
            parts.append(text if isinstance(text, str) else "".join(text))
    return "\n".join(parts)


def test_notebooks_extra_brings_jupyter():
    """`pip install -e ".[notebooks]"` (and environment.yml) bring what running the notebooks locally needs:
    a Jupyter UI, the kernel, jupytext for the paired scripts and papermill, which this file executes them with."""
    import re
    import tomllib

    root = NB.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = {re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower() for req in extras["notebooks"]}
    assert {"notebook", "ipykernel", "jupytext", "papermill"} <= names
    dev = {re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower() for req in extras["dev"]}
    assert {"jupytext", "papermill", "ipykernel"} <= dev  # the tests' own needs stay in dev
    assert "notebooks" in (root / "environment.yml").read_text()
