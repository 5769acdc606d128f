import dataclasses

import pytest

from dfdetect.config import PRESETS, get_config, load_config


def test_presets_exist_and_differ():
    assert {"cpu-small", "colab-gpu"} <= set(PRESETS)
    assert get_config("colab-gpu").media.fps != get_config("cpu-small").media.fps
    cfg = get_config("cpu-small")
    assert cfg.media.fps >= 12  # lip motion needs at least 12 fps
    assert cfg.frames_per_window == round(cfg.window.seconds * cfg.media.fps)


def test_frozen_and_override():
    cfg = get_config("cpu-small")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.media.fps = 3  # type: ignore[misc]
    new = cfg.override(media={"fps": 12}, window={"seconds": 1.5})
    assert new.media.fps == 12.0 and new.window.seconds == 1.5
    assert cfg.media.fps != 12.0  # the preset is untouched
    with pytest.raises(ValueError, match="unknown config field"):
        cfg.override(media={"fsp": 12})


def test_yaml_round_trip_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("preset: colab-gpu\nfaces:\n  crop_size: 96\n")
    cfg = load_config(path, ["media.fps=20", "window.trim_leading_silence=false"])
    assert cfg.faces.crop_size == 96 and cfg.media.fps == 20.0
    assert cfg.window.trim_leading_silence is False
    assert cfg.window.hop_seconds == get_config("colab-gpu").window.hop_seconds
    cfg.to_yaml(tmp_path / "out.yaml")
    again = load_config(tmp_path / "out.yaml")
    assert again == cfg
    with pytest.raises(ValueError, match="neither a preset"):
        load_config("no-such-preset")
