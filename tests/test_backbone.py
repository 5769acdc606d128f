"""A keras.applications frame encoder (``model.frame_encoder``): it trains and round-trips, gets its pixels the way
its ImageNet weights were trained, ``backbone_weights="imagenet"`` reaches the constructor, and a failed download is
one clear error. No weights are downloaded here: the constructor is replaced where weights are asked for."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dfdetect.config import get_config, load_config
from dfdetect.errors import MissingInput
from dfdetect.model import _backbone, backbone_pixels, build_model

CFG = get_config("smoke")
EFFNET = CFG.override(model={"frame_encoder": "EfficientNetB0", "backbone_weights": None, "face_size": 32})
# what keras.utils.get_file raises when the weights cannot be downloaded (no network, a proxy, a bad mirror)
FETCH_FAILURE = ("URL fetch failure on https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5: "
                 "None -- [Errno -2] Name or service not known")


def _record_constructor(monkeypatch, name: str, fail_download: bool = False) -> list[dict]:
    """Replaces ``keras.applications.<name>`` by one that records its keyword arguments and builds the real model
    without weights (or fails as a download does when weights are asked for)."""
    real = getattr(keras.applications, name)
    calls: list[dict] = []

    def ctor(**kwargs):
        calls.append(dict(kwargs))
        if fail_download and kwargs.get("weights") is not None:
            raise Exception(FETCH_FAILURE)  # noqa: TRY002 - keras.utils.get_file raises a bare Exception
        return real(**{**kwargs, "weights": None})

    monkeypatch.setattr(keras.applications, name, ctor)
    return calls


def test_efficientnet_backbone_trains_a_step_and_round_trips(smoke_data, tmp_path):
    import dfdetect.layers  # noqa: F401  (registers the custom layers for loading)
    from dfdetect.pipeline import make_dataset
    from dfdetect.train import compile_model

    model = compile_model(build_model(EFFNET), EFFNET)
    inner = model.get_layer("face_frames").layer.layers[1]
    assert inner.name.startswith("efficientnet") and inner.output.shape == (None, 1280)
    inputs, targets, weights = next(iter(make_dataset(smoke_data, EFFNET, "train", training=True, batch_size=2)))
    before = [keras.ops.convert_to_numpy(w) for w in inner.trainable_weights[:3]]
    logs = model.train_on_batch(inputs, targets, weights, return_dict=True)
    assert np.isfinite(logs["loss"]), logs
    after = [keras.ops.convert_to_numpy(w) for w in inner.trainable_weights[:3]]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "the backbone did not train"
    # the backbone runs once on all frames of the batch: what a time step at a time would give
    wrapper = model.get_layer("face_frames")
    td = keras.layers.TimeDistributed(wrapper.layer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wrapper(inputs["frames"], training=False)),
                               keras.ops.convert_to_numpy(td(inputs["frames"], training=False)), rtol=1e-4, atol=1e-5)
    path = tmp_path / "effnet.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True, compile=False)
    out, out2 = model(inputs, training=False), again(inputs, training=False)
    for head in ("fake", "frame_fake"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out[head]), keras.ops.convert_to_numpy(out2[head]),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, module", [("MobileNetV2", "mobilenet_v2"), ("DenseNet121", "densenet")])
def test_backbones_get_the_pixels_their_weights_expect(name, module):
    app = _backbone(name, 32, None)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = getattr(keras.applications, module).preprocess_input(pixels.copy())
    got = keras.ops.convert_to_numpy(app.get_layer("backbone_pixels")(pixels))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    # the scaling is the application's first layer, so its last maps still feed its pooling (dfdetect.explain)
    assert [layer.name for layer in app.layers[:2]] == ["backbone_input", "backbone_pixels"]
    assert "pool" in app.layers[-1].name and len(app.layers[-2].output.shape) == 4


def test_efficientnet_takes_raw_pixels_and_rescales_itself():
    app = _backbone("EfficientNetB0", 32, None)
    names = [layer.name for layer in app.layers]
    assert "backbone_pixels" not in names and any(n.startswith("rescaling") for n in names[:4])
    pixels = np.random.default_rng(1).uniform(0, 255, (1, 8, 8, 3)).astype("float32")
    assert np.array_equal(keras.applications.efficientnet.preprocess_input(pixels), pixels)  # a no-op: 0-255 in


def test_every_application_family_has_a_known_pixel_range():
    modes = {"efficientnet": "raw", "efficientnet_v2": "raw", "convnext": "raw", "mobilenet_v3": "raw",
             "mobilenet": "tf", "mobilenet_v2": "tf", "inception_v3": "tf", "inception_resnet_v2": "tf",
             "xception": "tf", "nasnet": "tf", "resnet_v2": "tf", "densenet": "torch", "resnet": "caffe",
             "vgg16": "caffe", "vgg19": "caffe"}
    names = [n for n in dir(keras.applications) if n[0].isupper()]
    assert len(names) > 30
    for name in names:
        module = getattr(keras.applications, name).__module__.rsplit(".", 1)[-1]
        assert backbone_pixels(name) == modes[module], name
    with pytest.raises(ValueError, match="caffe"):
        _backbone("ResNet50", 32, "imagenet")  # BGR input is not fed: refused rather than fed wrongly


def test_imagenet_weights_reach_the_constructor(monkeypatch):
    calls = _record_constructor(monkeypatch, "EfficientNetB0")
    cfg = load_config("smoke", ["model.frame_encoder=EfficientNetB0", "model.backbone_weights=imagenet",
                                "model.face_size=32"])
    build_model(cfg)
    assert calls == [{"include_top": False, "weights": "imagenet", "pooling": "avg", "input_shape": (32, 32, 3)}]


def test_a_failed_download_is_one_clear_error(monkeypatch, smoke_data, tmp_path, capsys):
    from dfdetect.cli import main

    calls = _record_constructor(monkeypatch, "EfficientNetB0", fail_download=True)
    cfg = EFFNET.override(model={"backbone_weights": "imagenet"})
    with pytest.raises(MissingInput, match="could not be fetched") as err:
        build_model(cfg)
    message = str(err.value)
    assert "\n" not in message and "Name or service not known" in message
    assert "~/.keras/models" in message and "backbone_weights=null" in message
    assert [c["weights"] for c in calls] == ["imagenet", None]  # the same model builds without weights
    # the command line: exit 2 and that one line, no traceback
    rc = main(["train", "--data", str(smoke_data), "--out", str(tmp_path / "run"), "--config", "smoke", "--set",
               "model.frame_encoder=EfficientNetB0", "--set", "model.backbone_weights=imagenet", "--set",
               "model.face_size=32", "--epochs", "1", "--no-progress"])
    err_text = capsys.readouterr().err.strip()
    assert rc == 2 and err_text.startswith("error: the imagenet weights of EfficientNetB0 could not be fetched")
    assert "Traceback" not in err_text and len(err_text.splitlines()) == 1


def test_a_bad_setting_is_not_blamed_on_the_download():
    # EfficientNet needs at least 32 px: the constructor's own error, before any download is tried
    with pytest.raises(ValueError, match="32") as err:
        _backbone("EfficientNetB0", 16, "imagenet")
    assert not isinstance(err.value, MissingInput)
