"""Train/serve consistency: one rule for which windows are kept (``windows.usable``), and the settings a
folder was preprocessed with are read back: train refuses a config that disagrees with them, ``config_for_data``
adopts them (a ``--set`` that contradicts them is refused), and the run's config.yaml, which export copies for
predict, then cuts windows exactly as the training data was cut."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdetect.config import get_config, load_config
from dfdetect.errors import UsageError
from dfdetect.preprocess import (
    DataConfigError,
    check_data_config,
    config_for_data,
    data_config,
    load_windows,
    preprocess,
)
from dfdetect.train import train

SMOKE = get_config("smoke")  # 12 fps, 1 s windows, 64 px crops
CUT = SMOKE.override(window={"min_face_ratio": 0.5})  # the smoke preset with one cutting field changed


def _settings_only(out: Path, config, **kw) -> Path:
    """A preprocessed folder with no video in it: just the settings file (and empty manifests)."""
    preprocess([], out, config=config, progress=False, **kw)
    return out


# --------------------------------------------------------------------------------------------------------
# Refusal, adoption, explicit overrides, old folders, parts (settings files only: fast)
# --------------------------------------------------------------------------------------------------------

def test_a_disagreeing_config_is_refused_naming_each_field_with_both_values(tmp_path):
    data = _settings_only(tmp_path / "data", SMOKE.override(media={"fps": 15}, faces={"crop_size": 112}))
    with pytest.raises(DataConfigError) as e:
        check_data_config(SMOKE, data)
    msg = str(e.value)
    assert isinstance(e.value, UsageError)  # the CLI exits 2
    assert f"disagrees with how {data} was preprocessed" in msg
    assert "media.fps 12.0 (config) vs 15.0 (data)" in msg and "faces.crop_size 64 (config) vs 112 (data)" in msg
    assert "window." not in msg and "media.sample_rate" not in msg and "\n" not in msg  # only what differs
    assert "preprocess again" in msg  # says what to do
    # train refuses before building or writing anything
    with pytest.raises(DataConfigError, match=r"media\.fps 12\.0 \(config\) vs 15\.0 \(data\)"):
        train(data, tmp_path / "run", SMOKE, epochs=1, verbose=0)
    assert not (tmp_path / "run").exists()
    # what does not decide how windows are cut is not checked
    check_data_config(SMOKE.override(media={"fps": 15}, faces={"crop_size": 112},
                                     window={"max_windows": 3}, train={"epochs": 9}, model={"lstm_units": 4}),
                      data)


def test_config_for_data_adopts_the_data_settings_and_says_so(tmp_path, capsys):
    data = _settings_only(tmp_path / "data", SMOKE.override(media={"fps": 15}, window={"hop_seconds": 0.5}))
    assert data_config(data)["media"] == {"fps": 15.0, "sample_rate": 16000, "max_side": 1280}
    assert "max_windows" not in data_config(data)["window"]
    capsys.readouterr()
    cfg = config_for_data(SMOKE, data)
    assert cfg.media.fps == 15.0 and cfg.window.hop_seconds == 0.5
    assert cfg.model == SMOKE.model and cfg.train == SMOKE.train and cfg.faces == SMOKE.faces
    check_data_config(cfg, data)  # now agrees
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "media.fps 15.0 (config smoke had 12.0)" in lines[0]
    assert "window.hop_seconds 0.5 (config smoke had 1.0)" in lines[0]
    # nothing to adopt: the same config, nothing printed
    assert config_for_data(cfg, data) is cfg and capsys.readouterr().out == ""


def test_an_explicit_override_that_contradicts_the_data_is_refused(tmp_path):
    data = _settings_only(tmp_path / "data", SMOKE.override(media={"fps": 15}))
    sets = ["media.fps=20"]
    with pytest.raises(DataConfigError) as e:
        config_for_data(load_config("smoke", sets), data, explicit=sets)
    assert "media.fps 20.0 (config) vs 15.0 (data)" in str(e.value) and "--set" in str(e.value)
    # an explicit value the data agrees with, or one of a field that does not cut windows, is fine
    sets = ["media.fps=15", "train.epochs=3", "window.max_windows=2"]
    cfg = config_for_data(load_config("smoke", sets), data, explicit=sets)
    assert (cfg.media.fps, cfg.train.epochs, cfg.window.max_windows) == (15.0, 3, 2)
    # the same from `python train.py`: exit 2, the field named on stderr
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", Path(__file__).parents[1] / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script._adopted("smoke", [], data) == ["media.fps=15.0"]
    assert script.main(["--data", str(data), "--config", "smoke", "--set", "media.fps=20"]) == 2


def test_a_folder_without_settings_file_warns_once_and_is_not_checked(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.csv").write_text("path,status\n")
    check_data_config(SMOKE.override(media={"fps": 30}), old)
    assert config_for_data(SMOKE, old) is SMOKE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "preprocess_config.yaml" in err[0]
    # a resumed preprocess does not claim to know how the old windows were cut
    preprocess([], old, config=SMOKE, progress=False)
    assert not list(old.glob("preprocess_config*.yaml"))


def test_shard_parts_record_their_settings_and_must_agree(tmp_path):
    out = tmp_path / "data"
    _settings_only(out, SMOKE, shard_index=0, num_shards=2)
    with pytest.raises(ValueError, match=r"different settings: media\.fps 15\.0 \(config\) vs 12\.0 "
                                         r"\(preprocess_config-000-of-002\.yaml\)"):
        _settings_only(out, SMOKE.override(media={"fps": 15}), shard_index=1, num_shards=2)
    assert [p.name for p in out.glob("preprocess_config*.yaml")] == ["preprocess_config-000-of-002.yaml"]
    _settings_only(out, SMOKE, shard_index=1, num_shards=2)
    assert len(list(out.glob("preprocess_config*.yaml"))) == 2
    assert data_config(out)["media"]["fps"] == 12.0
    # parts preprocessed on separate machines and merged later: a disagreement is found when read
    other = _settings_only(tmp_path / "other", SMOKE.override(faces={"margin": 1.6}), shard_index=1, num_shards=2)
    shutil.copy(other / "preprocess_config-001-of-002.yaml", out / "preprocess_config-001-of-002.yaml")
    with pytest.raises(DataConfigError, match=r"parts of .* different settings: faces\.margin 1\.4 "
                                              r"\(preprocess_config-000-of-002\.yaml\) vs 1\.6 "
                                              r"\(preprocess_config-001-of-002\.yaml\)"):
        check_data_config(SMOKE, out)


# --------------------------------------------------------------------------------------------------------
# Which windows are kept, and the chain preprocess -> config_for_data -> train -> the run's config.yaml
# --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def leaving(tmp_path_factory):
    """``leaves.mp4``: a face for 1.2 s, then 2 s without one, then the face again for 1.2 s (with the smoke
    preset's 1 s windows: a full face, a quarter, none, three quarters); and a plain talking clip. Both
    preprocessed as training data with ``CUT`` (min_face_ratio 0.5)."""
    from dfdetect.media import write_video
    from dfdetect.sample_media import moving_face_frames, talking_clip, tone

    d = tmp_path_factory.mktemp("leaving")
    faces, _ = moving_face_frames("astronaut", n=110, size=(320, 240), scale=0.5)
    blank = np.full((240, 320, 3), 90, np.uint8)
    write_video(d / "leaves.mp4", faces[:30] + [blank] * 50 + faces[80:], fps=25, audio=tone(4.4))
    talking_clip(d / "talk.mp4", photo="grace_hopper", seconds=3.0, seed=1)
    pd.DataFrame({"path": ["leaves.mp4", "talk.mp4"], "label": ["real", "fake"], "group": ["a", "b"],
                  "split": ["train", "train"], "video_fake": [0, 1], "audio_fake": [0, 0],
                  "av_mismatch": [0, 0]}).to_csv(d / "list.csv", index=False)
    preprocess([d / "list.csv"], d / "data", config=CUT, workers=1, progress=False)
    return d


def _usable_starts(path: Path, config) -> tuple[list[float], int]:
    """The starts of the windows ``usable`` keeps, the way predict cuts them, and how many were cut."""
    from dfdetect.faces import FaceDetector
    from dfdetect.windows import extract_windows, usable

    with FaceDetector(config.faces) as det:
        windows = list(extract_windows(str(path), config, det))
    return [round(w.start, 4) for w in windows if usable(w, config)], len(windows)


def test_preprocess_writes_exactly_the_windows_usable_keeps(leaving):
    rows = load_windows(leaving / "data")
    written = rows.loc[rows.path.str.endswith("leaves.mp4")].sort_values("index")["start"].round(4).tolist()
    kept, cut = _usable_starts(leaving / "leaves.mp4", CUT)
    # 4.4 s at 12 fps: 53 frames, windows at 0, 1, 2, 3 s and the last one ending at the last frame (41/12 s)
    assert written == kept == [0.0, 3.0, 3.4167]
    assert cut == 5  # of 5 windows, the faceless one and the one with a face in a quarter of its frames went
    looser, _ = _usable_starts(leaving / "leaves.mp4", SMOKE)  # min_face_ratio 0: only the faceless one goes
    assert looser == [0.0, 1.0, 3.0, 3.4167]


def test_the_run_config_cuts_windows_as_the_training_data_was_cut(leaving, tmp_path, capsys):
    data = leaving / "data"
    with pytest.raises(DataConfigError, match=r"window\.min_face_ratio 0\.0 \(config\) vs 0\.5 \(data\)"):
        train(data, tmp_path / "refused", SMOKE, epochs=1, verbose=0)
    cfg = config_for_data(SMOKE.override(train={"steps_per_epoch": 2}), data)  # what `dfdetect train` does
    assert "window.min_face_ratio 0.5 (config smoke had 0.0)" in capsys.readouterr().out
    run = tmp_path / "run"
    summary = train(data, run, cfg, epochs=1, verbose=0)
    assert summary["epochs_run"] == 1
    stored = load_config(run / "config.yaml")  # what export copies next to the model, and predict loads
    assert stored.window.min_face_ratio == 0.5 and stored == cfg
    rows = load_windows(data)
    for name in ("leaves.mp4", "talk.mp4"):
        written = rows.loc[rows.path.str.endswith(name)].sort_values("index")["start"].round(4).tolist()
        assert _usable_starts(leaving / name, stored)[0] == written, name
    # a rerun into the finished run folder with the same config returns its summary
    assert train(data, run, cfg, epochs=1, verbose=0)["already_finished"]
