"""Readers for public deepfake datasets, all yielding ``VideoRecord``s (filled in by the dataset readers)."""

from __future__ import annotations

from pathlib import Path


def detect(folder: str | Path):
    """The reader whose layout ``folder`` matches, or None for a plain folder of videos."""
    return None
