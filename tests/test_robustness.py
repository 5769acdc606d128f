"""Perturbations do what they say, at increasing strength; the sweep runs end to end on a tiny run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfdetect import robustness as R
from dfdetect.sample_media import face_photo


@pytest.fixture(scope="module")
def window():
    import cv2

    face = cv2.resize(face_photo("astronaut")[40:300, 120:380], (64, 64))
    frames = np.stack([np.roll(face, i, axis=1) for i in range(6)])
    t = np.arange(16000) / 16000
    audio = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    return frames, audio


@pytest.mark.parametrize("name", list(R.VIDEO))
def test_video_perturbations_grow_with_level(window, name):
    frames, _ = window
    diffs = []
    for level in (1, 5):
        out = R.VIDEO[name][0](frames, level, np.random.default_rng(0))
        assert out.shape == frames.shape and out.dtype == np.uint8
        diffs.append(np.abs(out.astype(float) - frames).mean())
    assert diffs[1] > diffs[0] > 0, (name, diffs)


def test_saturation_level5_is_grey(window):
    out = R.saturation(window[0], 5, None).astype(int)
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 2 and np.abs(out[..., 1] - out[..., 2]).max() <= 2


@pytest.mark.parametrize("name", list(R.AUDIO))
def test_audio_perturbations(window, name):
    _, audio = window
    out = R.AUDIO[name][0](audio, 1, np.random.default_rng(0))
    assert out.shape == audio.shape and out.dtype == np.float32
    assert 0 < np.abs(out - audio).mean() < np.abs(audio).mean()  # changed, still the same signal
    if name == "audio_noise":
        snr = 10 * np.log10(np.mean(audio ** 2) / np.mean((out - audio) ** 2))
        assert abs(snr - 20) < 1


def test_sweep_runs(smoke_run, smoke_data, tmp_path):
    df = R.run_robustness(smoke_run, smoke_data, tmp_path / "rob", names=["contrast", "audio_noise"], progress=False)
    assert list(df.perturbation.unique()) == ["clean", "contrast", "audio_noise"]
    assert len(df) == 1 + 5 + 3
    assert (tmp_path / "rob" / "robustness.png").stat().st_size > 5000
    assert pd.read_csv(tmp_path / "rob" / "robustness.csv").shape == df.shape
