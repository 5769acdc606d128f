"""Model files one can trust (issue #17): sha256 of every exported file, checked before loading, and .keras
files that name foreign code refused without running any of it."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from dfdetect.integrity import (
    NOT_VERIFIED,
    ModelIntegrityError,
    UnsafeModelError,
    check_keras_file,
    file_hashes,
    unsafe_objects,
    verify_files,
)
from dfdetect.layers import ResampleTime


def _folder(tmp_path: Path) -> tuple[Path, dict]:
    d = tmp_path / "export"
    (d / "saved_model" / "variables").mkdir(parents=True)
    (d / "model.tflite").write_bytes(b"\x00tflite" * 100)
    (d / "saved_model" / "saved_model.pb").write_bytes(b"pb" * 50)
    (d / "saved_model" / "variables" / "variables.index").write_bytes(b"idx")
    (d / "model_card.json").write_text("{}")
    card = {"files": file_hashes(d)}
    return d, card


def test_hashes_cover_every_file_but_the_card_and_verify(tmp_path):
    d, card = _folder(tmp_path)
    assert sorted(card["files"]) == ["model.tflite", "saved_model/saved_model.pb",
                                     "saved_model/variables/variables.index"]
    assert all(len(h) == 64 for h in card["files"].values())
    assert verify_files(d, card) == ""
    assert verify_files(d, card, ["model.tflite", "saved_model/"]) == ""


def test_a_changed_byte_is_refused_naming_the_file(tmp_path):
    d, card = _folder(tmp_path)
    data = bytearray((d / "model.tflite").read_bytes())
    data[10] ^= 1
    (d / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"model.tflite does not match the sha256 in its model card"):
        verify_files(d, card, ["model.tflite"])
    # a file the loader does not read is not its concern
    assert verify_files(d, card, ["saved_model/"]) == ""


def test_a_missing_or_added_file_is_refused(tmp_path):
    d, card = _folder(tmp_path)
    (d / "saved_model" / "variables" / "variables.index").unlink()
    with pytest.raises(ModelIntegrityError, match=r"variables.index is missing"):
        verify_files(d, card, ["saved_model/"])
    d, card = _folder(tmp_path / "again")
    (d / "saved_model" / "extra.pb").write_bytes(b"x")
    with pytest.raises(ModelIntegrityError, match=r"extra.pb is not listed in"):
        verify_files(d, card, ["saved_model/"])


def test_an_old_card_without_hashes_is_a_notice_not_an_error(tmp_path):
    d, _ = _folder(tmp_path)
    assert verify_files(d, {"threshold": 0.5}, ["model.tflite"]) == NOT_VERIFIED


def _save(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def test_a_model_of_keras_and_dfdetect_layers_passes(tmp_path):
    x = keras.Input((20, 4))
    y = keras.layers.Dense(2)(ResampleTime(5)(x))
    path = _save(keras.Model(x, y), tmp_path / "ok.keras")
    check_keras_file(path)  # no exception
    back = keras.saving.load_model(path, safe_mode=True)
    assert back.output_shape == (None, 5, 2)


def test_a_lambda_layer_is_refused(tmp_path):
    x = keras.Input((4,))
    y = keras.layers.Lambda(lambda t: t * 2.0)(x)
    path = _save(keras.Model(x, y), tmp_path / "lambda.keras")
    with pytest.raises(UnsafeModelError, match=r"Lambda.*refused without loading it \(safe mode\)"):
        check_keras_file(path)


class Unregistered(keras.layers.Layer):  # a class of this test module: not registered
    def call(self, x):
        return x


def test_an_unregistered_class_is_refused(tmp_path):
    x = keras.Input((4,))
    path = _save(keras.Model(x, Unregistered()(x)), tmp_path / "custom.keras")
    with pytest.raises(UnsafeModelError, match=r"Unregistered"):
        check_keras_file(path)


def test_a_config_naming_a_module_is_refused_before_the_module_runs(tmp_path, monkeypatch):
    """A config may name any module; the check refuses it from the JSON alone, and nothing is imported."""
    marker = tmp_path / "payload-ran"
    pkg = tmp_path / "mods" / "evilpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    x = keras.Input((4,))
    path = _save(keras.Model(x, keras.layers.Dense(3)(x)), tmp_path / "base.keras")
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(files["config.json"])
    dense = next(layer for layer in cfg["config"]["layers"] if layer["class_name"] == "Dense")
    dense.update(module="evilpkg", class_name="Payload", registered_name="evil>Payload")
    files["config.json"] = json.dumps(cfg).encode()
    evil = tmp_path / "evil.keras"
    with zipfile.ZipFile(evil, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(UnsafeModelError, match=r"evilpkg\.Payload"):
        check_keras_file(evil)
    assert not marker.exists() and "evilpkg" not in sys.modules


def test_a_dfdetect_name_must_be_registered_when_told_which(tmp_path):
    cfg = {"class_name": "Functional", "module": "keras.src.models.functional", "registered_name": "Functional",
           "config": {"layers": [{"class_name": "Ghost", "module": "dfdetect.layers",
                                  "registered_name": "dfdetect>Ghost", "config": {}}]}}
    assert unsafe_objects(cfg) == []  # by the prefix rule alone
    registered = [k for k in keras.saving.get_custom_objects() if k.startswith("dfdetect>")]
    assert "dfdetect>ResampleTime" in registered
    assert unsafe_objects(cfg, registered) == ["dfdetect.layers.Ghost"]


def test_not_a_zip_is_a_clear_refusal(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(np.random.default_rng(0).bytes(100))
    with pytest.raises(UnsafeModelError, match=r"is not a readable .keras file"):
        check_keras_file(bad)


# --- on a real export: dfdetect export records the hashes, predict checks them ------------------------------
def test_export_records_every_file_and_they_verify(smoke_export):
    card = json.loads((smoke_export / "model_card.json").read_text())
    files = card["files"]
    assert {"model.tflite", "model.keras", "config.yaml", "familiarity.npz", "saved_model/saved_model.pb"} <= set(files)
    assert "model_card.json" not in files and "model_card.md" not in files
    assert verify_files(smoke_export, card) == ""


def test_predict_refuses_a_changed_model_file_in_one_line(smoke_export, tmp_path, capsys, export_copy):
    from dfdetect.cli import main
    from dfdetect.predict import Detector
    from dfdetect.sample_media import talking_clip

    bad = export_copy("bad")
    data = bytearray((bad / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle of the weights
    (bad / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"model.tflite does not match the sha256"):
        Detector(bad)
    clip = talking_clip(tmp_path / "talk.mp4", seconds=2.0)
    assert main(["predict", str(clip), "--model", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "model.tflite does not match the sha256" in err[0]


def test_an_export_without_hashes_predicts_with_a_notice(smoke_export, tmp_path, export_copy):
    from dfdetect.predict import Detector

    old = export_copy("old")
    card = json.loads((old / "model_card.json").read_text())
    del card["files"]
    (old / "model_card.json").write_text(json.dumps(card))
    notices: list[str] = []
    with Detector(old, notify=notices.append) as det:
        assert det.fmt == "tflite"
    assert notices == [NOT_VERIFIED]


def test_a_lambda_model_keras_is_refused_even_with_a_matching_card(smoke_export, tmp_path, export_copy):
    """Whoever rewrites the card as well gets past the hashes; the .keras check still refuses a Lambda."""
    from dfdetect.predict import Detector

    evil = export_copy("evil")
    x = keras.Input((4,))
    keras.Model(x, keras.layers.Lambda(lambda t: t + 1.0)(x)).save(evil / "model.keras")
    (evil / "model.tflite").unlink()  # so that predict loads model.keras
    card = json.loads((evil / "model_card.json").read_text())
    card["files"] = file_hashes(evil)
    (evil / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(UnsafeModelError, match=r"Lambda.*refused without loading it"):
        Detector(evil)
