"""A fast start (issue #16): ``dfdetect export`` writes ``model.tflite`` and ``dfdetect predict`` scores with it
through LiteRT without importing TensorFlow, Keras or the training and reporting code.

Parity: the ``.tflite`` copy answers what the SavedModel's ``serving_default`` answers on the smoke model's own
test windows (every output: heads, frame heads, embedding), and a verdict through it equals the Keras one. An
export made before ``model.tflite`` existed still predicts, with a notice saying why it starts slower."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dfdetect.export import CARD, TFLITE
from dfdetect.heads import FRAME_HEADS, HEADS
from dfdetect.predict import Detector

# what the predict path must never import: TensorFlow and Keras (seconds of start-up) and the training,
# data-pipeline, evaluation, reporting and plotting code
HEAVY = ("tensorflow", "keras", "dfdetect.evaluate", "dfdetect.train", "dfdetect.pipeline", "dfdetect.report",
         "matplotlib", "pandas", "dfdetect.model", "dfdetect.layers")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """3 s of a talking face with a voice (a real photograph, really encoded)."""
    from dfdetect.sample_media import talking_clip

    return talking_clip(tmp_path_factory.mktemp("fast") / "talk.mp4", seconds=3.0)


@pytest.fixture(scope="module")
def test_windows(smoke_data, smoke_export):
    """Up to 12 windows of the smoke data's test split, as the model takes them (numpy)."""
    from dfdetect.config import load_config
    from dfdetect.pipeline import make_dataset

    config = load_config(smoke_export / "config.yaml")
    batches = [inputs for inputs, *_ in make_dataset(smoke_data, config, "test", training=False, batch_size=12,
                                                     with_meta=True).take(1)]
    assert batches, "the smoke data has no test windows"
    return {k: v.numpy() for k, v in batches[0].items()}


def test_export_writes_a_builtin_ops_tflite_beside_the_savedmodel(smoke_export):
    card = json.loads((smoke_export / CARD).read_text())
    assert (smoke_export / TFLITE).stat().st_size > 10_000
    assert card["tflite"]["file"] == TFLITE and card["tflite"]["ops"] == "TFLITE_BUILTINS"
    assert card["tflite"]["batch"] == 1 and len(card["tflite"]["keras_sha256"]) == 64
    from ai_edge_litert.interpreter import Interpreter

    sig = Interpreter(model_path=str(smoke_export / TFLITE)).get_signature_list()["serving_default"]
    assert set(sig["inputs"]) == {"frames", "audio", "mask"}
    assert set(sig["outputs"]) == {*HEADS, *FRAME_HEADS, "embedding"}


def test_tflite_outputs_equal_the_savedmodel_on_the_test_windows(smoke_export, test_windows):
    import tensorflow as tf

    serving = tf.saved_model.load(str(smoke_export / "saved_model")).signatures["serving_default"]
    want = {k: v.numpy() for k, v in serving(**{k: tf.constant(v) for k, v in test_windows.items()}).items()}
    with Detector(smoke_export, fmt="tflite") as det:
        got = det.score_windows(**test_windows)
    assert set(want) == {*HEADS, *FRAME_HEADS, "embedding"}
    n = len(test_windows["frames"])
    for k, v in want.items():
        assert got[k].size == v.size and len(got[k]) == n, k
        np.testing.assert_allclose(got[k].reshape(v.shape), v, atol=1e-4, err_msg=k)
    # the windows are not all alike: equal outputs are no accident of a constant model
    assert n >= 2 and np.ptp(want["embedding"], axis=0).max() > 1e-3


def _imports_of_predict(model_dir, clip) -> dict:
    code = (
        "import json, sys\n"
        "from dfdetect.predict import Detector\n"
        f"with Detector({str(model_dir)!r}) as det:\n"
        f"    v = det.predict_video({str(clip)!r})\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps({'fmt': det.fmt, 'status': v.status, 'score': v.score,\n"
        "    'loaded': sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_predict_with_tflite_imports_no_tensorflow_keras_or_training_code(smoke_export, clip):
    res = _imports_of_predict(smoke_export, clip)
    assert res["fmt"] == "tflite" and res["status"] == "ok" and res["score"] is not None
    assert res["loaded"] == []


def test_a_tflite_verdict_equals_the_keras_one(smoke_export, clip):
    with Detector(smoke_export) as lite, Detector(smoke_export, fmt="keras") as ref:
        assert lite.fmt == "tflite" and ref.fmt == "keras"
        a, b = lite.predict_video(clip), ref.predict_video(clip)
    assert a.status == b.status == "ok" and a.windows == b.windows >= 1
    assert a.score == pytest.approx(b.score, abs=1e-4)
    for h in ("video_fake", "audio_fake", "av_mismatch", "distance"):
        assert getattr(a, h) == pytest.approx(getattr(b, h), abs=1e-4, rel=1e-4), h
    assert a.label == b.label and a.in_distribution == b.in_distribution
    np.testing.assert_allclose(a.track["fake"], b.track["fake"], atol=2e-4)


def test_an_export_without_tflite_still_predicts_with_a_notice(smoke_export, clip, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(smoke_export, old)
    (old / TFLITE).unlink()  # as exported before model.tflite existed
    notices: list[str] = []
    with Detector(old, notify=notices.append) as det:
        v = det.predict_video(clip)
    assert det.fmt == "keras" and v.status == "ok" and v.score is not None
    assert len(notices) == 1 and f"has no {TFLITE}" in notices[0] and "export the run again" in notices[0]
    with pytest.raises(Exception, match=f"{TFLITE} not found"):
        Detector(old, fmt="tflite")


def test_a_tflite_converted_from_another_model_keras_is_not_used(smoke_export, clip, tmp_path):
    # model.keras replaced after export (a hand-copied best.keras, say): the .tflite would score the old network
    other = tmp_path / "other"
    shutil.copytree(smoke_export, other)
    card = json.loads((other / CARD).read_text())
    card["tflite"]["keras_sha256"] = "0" * 64
    (other / CARD).write_text(json.dumps(card))
    notices: list[str] = []
    with Detector(other, notify=notices.append) as det:
        assert det.fmt == "keras"
    assert len(notices) == 1 and "converted from another model.keras" in notices[0]


def test_explain_gets_the_keras_model_from_a_tflite_detector(smoke_export):
    with Detector(smoke_export) as det:
        model = det.model  # loaded on first use (``--explain`` takes gradients through it)
        assert det.fmt == "tflite" and "embedding" in model.output and tuple(model.input) == det.input_names


def test_the_light_modules_agree_with_the_model_and_evaluate():
    from dfdetect import evaluate, metrics, model

    assert (model.HEADS, model.FRAME_HEADS) == (HEADS, FRAME_HEADS)
    assert evaluate.confident_mean is metrics.confident_mean and evaluate.modality_tracks is metrics.modality_tracks
    assert metrics.confident_mean([0.9, 0.95, 0.1, 0.5]) == pytest.approx(0.925)  # 2 > 0.11 * 4 confident fakes


def test_a_keypoint_model_converts_with_its_mouth_input(tmp_path):
    # a model whose mouth crop follows the mouth track takes a fourth input: the .tflite must take it too, and
    # answer what the Keras model answers (an untrained model: conversion and parity, not learning)
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from dfdetect.config import get_config
    from dfdetect.export import tflite_model
    from dfdetect.familiarity import probe_inputs, with_embedding
    from dfdetect.heads import model_inputs
    from dfdetect.model import build_model

    cfg = get_config("smoke").override(model={"mouth_crop": "keypoints"})
    keras.utils.set_random_seed(7)
    model = with_embedding(build_model(cfg))
    assert "mouth" in model.input
    (tmp_path / TFLITE).write_bytes(tflite_model(model, cfg))
    runner = Interpreter(model_path=str(tmp_path / TFLITE)).get_signature_runner("serving_default")
    assert set(runner.get_input_details()) == {"frames", "audio", "mask", "mouth"}
    x = probe_inputs(cfg, n=2)
    x["mouth"][1] = np.linspace(0.3, 0.7, 2 * cfg.frames_per_window, dtype=np.float32).reshape(-1, 2)  # it moves
    want = model.predict_on_batch(model_inputs(tuple(model.input), **x))
    for i in range(2):
        got = runner(**{k: v[i:i + 1] for k, v in x.items()})
        for k in ("fake", "frame_fake", "embedding"):
            np.testing.assert_allclose(got[k].reshape(-1), np.asarray(want[k][i]).reshape(-1), atol=1e-4, err_msg=k)
