"""Colab helpers for the notebooks: a working folder on Google Drive, so that what one notebook writes
(``data/processed/``, ``saved_models/``, ``reports/``) is still there when the next one opens in its own runtime.

The install itself cannot live here (dfdetect is not installed yet when a notebook starts on Colab); each
notebook's cell after its parameters pip-installs dfdetect from ``REPO_URL`` itself, then calls :func:`setup`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPOSITORY = "https://github.com/dfdetect/dfdetect"  # pyproject's [project.urls] Repository; tests keep them equal
NOTEBOOKS = ("01_preprocess_faces", "02_tfdata_pipeline", "03_train_multimodal", "04_evaluate_report",
             "05_export_and_predict")


def in_colab() -> bool:
    return importlib.util.find_spec("google.colab") is not None


def badge_url(notebook: str, repository: str = REPOSITORY, branch: str = "main") -> str:
    """The "Open in Colab" link of ``notebooks/<notebook>.ipynb`` on GitHub."""
    owner_repo = repository.rstrip("/").removeprefix("https://github.com/").removesuffix(".git")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/notebooks/{notebook}.ipynb"


def badges(repository: str = REPOSITORY) -> str:
    """The README's badge table (Markdown), one row per notebook."""
    img = "https://colab.research.google.com/assets/colab-badge.svg"
    rows = [f"| `{nb}` | [![Open In Colab]({img})]({badge_url(nb, repository)}) |" for nb in NOTEBOOKS]
    return "\n".join(["| notebook | Colab |", "|---|---|", *rows])


def setup(mount_drive: bool = False, drive_dir: str = "MyDrive/dfdetect") -> Path:
    """On Colab: optionally mounts Google Drive and makes ``/content/drive/<drive_dir>`` the working folder
    (created if missing), so the notebooks chain through files across runtimes. Elsewhere: nothing.
    Returns the project root the notebooks write under."""
    if not in_colab():
        return Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
    root = Path("/content")
    if mount_drive:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount("/content/drive")
        root = Path("/content/drive") / drive_dir
        root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    return root
