import dataclasses
import hashlib

import pytest

from dfdetect import model_files
from dfdetect.model_files import MODELS, ModelFileError, fetch_models, model_path, sha256_of


def test_cached_models_verify():
    for name, spec in MODELS.items():
        path = model_path(name)
        assert sha256_of(path) == spec.sha256


def test_source_file_is_verified_and_copied(tmp_path):
    src = model_path("short")
    dest = tmp_path / "cache"
    got = fetch_models(["short"], source=src, dest_dir=dest, use_url=False, use_wheel=False, log=lambda m: None)
    assert got["short"] == dest / MODELS["short"].filename
    assert sha256_of(got["short"]) == MODELS["short"].sha256


def test_checksum_mismatch_is_an_error_not_a_fallback(tmp_path):
    bad = tmp_path / "face_detection_short_range.tflite"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelFileError, match="sha256"):
        fetch_models(["short"], source=bad, dest_dir=tmp_path / "c", use_url=False, use_wheel=False,
                     log=lambda m: None)
    # a corrupted cache entry is refused too
    cache = tmp_path / "cache2"
    cache.mkdir()
    (cache / MODELS["short"].filename).write_bytes(b"corrupt")
    with pytest.raises(ModelFileError, match="expected"):
        fetch_models(["short"], dest_dir=cache, use_url=False, use_wheel=False, log=lambda m: None)


def test_env_var_overrides_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(model_files.ENV_VAR, str(tmp_path / "m"))
    assert model_files.cache_dir() == tmp_path / "m"
    with pytest.raises(ModelFileError, match="models fetch"):
        model_path("short", fetch=False)


def test_expected_checksums_are_the_documented_ones():
    # DESIGN.md pins these two files from the mediapipe 0.10.21 wheel.
    assert MODELS["short"].sha256.startswith("bbff11ce") and MODELS["full"].sha256.startswith("2c3728e6")
    assert len({m.sha256 for m in MODELS.values()}) == 2
    assert hashlib.sha256(b"").hexdigest() not in {m.sha256 for m in MODELS.values()}


@pytest.mark.registry  # the real fallback: `pip download mediapipe==0.10.21` from the package index
def test_wheel_fallback_downloads_extracts_and_verifies(tmp_path, monkeypatch):
    log: list[str] = []
    dest = tmp_path / "from_wheel"
    got = fetch_models(dest_dir=dest, use_url=False, use_wheel=True, timeout=600, log=log.append)
    assert set(got) == set(MODELS)
    for name, spec in MODELS.items():
        assert got[name] == dest / spec.filename and sha256_of(got[name]) == spec.sha256
        assert f"{name}: extracted from {model_files.WHEEL_SPEC}" in " ".join(log)
    # the same wheel with another expected checksum is refused: the extracted file is verified, not trusted
    wrong = {n: dataclasses.replace(m, sha256="0" * 64) for n, m in MODELS.items()}
    monkeypatch.setattr(model_files, "MODELS", wrong)
    with pytest.raises(ModelFileError, match="sha256"):
        fetch_models(["short"], dest_dir=tmp_path / "wrong", use_url=False, use_wheel=True, timeout=600,
                     log=log.append)
    assert not (tmp_path / "wrong" / MODELS["short"].filename).exists()
