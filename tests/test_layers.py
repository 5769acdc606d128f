"""Every layer: shapes, behaviour on inputs with a known answer, and a .keras save/load round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dfdetect.layers import (
    AttentionPooling,
    FrameEncoder,
    LaggedCorrelation,
    LogMelSpectrogram,
    MaskedMean,
    MaskSteps,
    ResampleTime,
    SpectrogramEncoder,
    SyncCorrelation,
)


def roundtrip(model: keras.Model, inputs, tmp_path) -> None:
    """Saves to .keras, loads in safe mode, and checks the outputs and every layer config survive."""
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    a = keras.ops.convert_to_numpy(model(inputs, training=False))
    b = keras.ops.convert_to_numpy(loaded(inputs, training=False))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for la, lb in zip(model.layers, loaded.layers):
        assert la.get_config() == lb.get_config()


def test_logmel_matches_librosa(tmp_path):
    import librosa  # a dev extra: a missing one is a broken install, not a reason to skip

    sr = 16000
    t = np.arange(sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 2500 * t)).astype("float32")
    layer = LogMelSpectrogram(sample_rate=sr, n_fft=512, hop=160, n_mels=40, fmin=40.0)
    ours = keras.ops.convert_to_numpy(layer(x[None]))[0]
    ref = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=512, hop_length=160, n_mels=40, fmin=40.0,
                                         fmax=sr / 2, htk=True, norm=None, power=2.0, center=True,
                                         pad_mode="constant").T
    assert ours.shape == ref.shape
    # the same filterbank up to librosa's slightly different triangle edges: compare the log spectra
    corr = np.corrcoef(ours[5:-5].ravel(), np.log(ref[5:-5] + 1e-6).ravel())[0, 1]
    assert corr > 0.98
    assert np.argmax(ours[50]) == np.argmax(np.log(ref[50] + 1e-6))
    inp = keras.Input((sr,))
    roundtrip(keras.Model(inp, layer(inp)), x[None], tmp_path)


def test_logmel_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = LogMelSpectrogram(n_mels=16)
        out = layer(np.zeros((1, 1600), "float32"))
        assert layer.compute_dtype == "float32" and keras.backend.standardize_dtype(out.dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_resample_time_area_average(tmp_path):
    x = np.arange(10, dtype="float32").reshape(1, 10, 1)
    out = keras.ops.convert_to_numpy(ResampleTime(5)(x))
    np.testing.assert_allclose(out[0, :, 0], [0.5, 2.5, 4.5, 6.5, 8.5])
    out3 = keras.ops.convert_to_numpy(ResampleTime(3)(x))  # uneven spans keep the mean
    assert abs(out3.mean() - x.mean()) < 1e-5
    inp = keras.Input((10, 1))
    roundtrip(keras.Model(inp, ResampleTime(4)(inp)), x, tmp_path)


def test_frame_encoder_and_crop(tmp_path):
    enc = FrameEncoder(filters=(4, 8), size=16, crop=(0.5, 1.0, 0.25, 0.75))
    x = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3)).astype("float32")
    assert tuple(enc(x).shape) == (2, 8)
    # the crop really limits what the encoder sees: changing pixels outside it changes nothing
    y = x.copy()
    y[:, :10] = 0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(enc(x)), keras.ops.convert_to_numpy(enc(y)), atol=1e-6)
    inp = keras.Input((32, 32, 3))
    roundtrip(keras.Model(inp, enc(inp)), x, tmp_path)


def test_spectrogram_encoder(tmp_path):
    enc = SpectrogramEncoder((4, 8), time_pool=1)
    x = np.random.default_rng(0).normal(size=(2, 40, 16)).astype("float32")
    assert tuple(enc(x).shape) == (2, 20, 8)
    inp = keras.Input((40, 16))
    roundtrip(keras.Model(inp, enc(inp)), x, tmp_path)


def test_sync_correlation_peaks_at_the_true_lag(tmp_path):
    layer = SyncCorrelation(dim=6, max_lag=3)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(1, 20, 6)).astype("float32")
    layer.build(v.shape, v.shape)
    # identity projections for both streams: the similarity is a plain normalised cross-correlation
    eye = np.eye(6, dtype="float32")
    layer.proj_v.set_weights([eye, np.zeros(6, "float32")])
    layer.proj_a.set_weights([eye, np.zeros(6, "float32")])
    same = keras.ops.convert_to_numpy(layer(v, v))[0]
    assert (np.argmax(same[3:-3], axis=1) == 3).all()  # lag 0 is index max_lag
    shifted = np.roll(v, 2, axis=1)  # audio two steps late
    peaks = np.argmax(keras.ops.convert_to_numpy(layer(v, shifted))[0][3:-3], axis=1)
    assert (peaks == 5).mean() > 0.9
    iv, ia = keras.Input((20, 6)), keras.Input((20, 6))
    roundtrip(keras.Model([iv, ia], SyncCorrelation(4, 2)(iv, ia)), [v, shifted], tmp_path)


def test_lagged_correlation_is_pearson_and_ignores_faceless_steps(tmp_path):
    layer = LaggedCorrelation(dim=3, max_lag=2)
    rng = np.random.default_rng(1)
    v = rng.normal(size=(1, 30, 3)).astype("float32")
    layer.build(v.shape, v.shape)
    eye = np.eye(3, dtype="float32")
    layer.proj_v.set_weights([eye, np.zeros(3, "float32")])
    layer.proj_a.set_weights([eye, np.zeros(3, "float32")])
    a = 2.0 * v + 5.0  # same signal, other scale and offset: correlation 1 at lag 0
    r = keras.ops.convert_to_numpy(layer(v, a))[0]
    np.testing.assert_allclose(r[2], 1.0, atol=1e-3)
    assert (np.abs(r[[0, 1, 3, 4]]) < 0.6).all()  # white noise does not correlate with its own shift
    late = np.roll(a, 1, axis=1)  # audio one step late peaks at lag +1
    assert (np.argmax(keras.ops.convert_to_numpy(layer(v, late))[0], axis=0) == 3).all()
    np.testing.assert_allclose(  # a noisy inverted copy: strongly negative at lag 0
        keras.ops.convert_to_numpy(layer(v, -v + rng.normal(0, 0.5, v.shape).astype("float32")))[0, 2],
        [-1.0] * 3, atol=0.25)
    # a faceless stretch carrying garbage is left out of the statistics
    valid = np.ones((1, 30), "float32")
    valid[0, 20:] = 0
    v_bad = v.copy()
    v_bad[0, 20:] = 1000.0
    masked = keras.ops.convert_to_numpy(layer(v_bad, a, valid))[0, 2]
    np.testing.assert_allclose(masked, 1.0, atol=1e-3)
    iv, ia, im = keras.Input((30, 3)), keras.Input((30, 3)), keras.Input((30,))
    roundtrip(keras.Model([iv, ia, im], LaggedCorrelation(4, 2)(iv, ia, im)), [v, late, valid], tmp_path)


def test_attention_pooling_ignores_masked_steps(tmp_path):
    pool = AttentionPooling(4)
    x = np.zeros((1, 4, 2), "float32")
    x[0, 3] = 100.0
    valid = np.array([[1, 1, 1, 0]], "float32")
    out = keras.ops.convert_to_numpy(pool(x, valid))
    assert np.abs(out).max() < 1e-3  # the huge masked step contributes nothing
    none = keras.ops.convert_to_numpy(pool(x, np.zeros((1, 4), "float32")))
    unmasked = keras.ops.convert_to_numpy(pool(x))
    np.testing.assert_allclose(none, unmasked, rtol=1e-5)  # all masked: attends over every step, no NaN
    ix, iv = keras.Input((4, 2)), keras.Input((4,))
    roundtrip(keras.Model([ix, iv], AttentionPooling(3)(ix, iv)), [x, valid], tmp_path)


def test_mask_steps(tmp_path):
    x = np.ones((1, 3, 2), "float32")
    m = np.array([[1, 0, 1]], "float32")
    out = keras.ops.convert_to_numpy(MaskSteps()(x, m))
    assert out[0, :, 0].tolist() == [1.0, 0.0, 1.0]
    ix, im = keras.Input((3, 2)), keras.Input((3,))
    roundtrip(keras.Model([ix, im], MaskSteps()(ix, im)), [x, m], tmp_path)


def test_masked_mean_counts_valid_steps_and_round_trips(tmp_path):
    x = np.array([[[1.0, 2.0], [5.0, 6.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]], "float32")
    m = np.array([[1, 0, 1], [0, 0, 0]], "float32")
    out = keras.ops.convert_to_numpy(MaskedMean()(x, m))
    assert out.tolist() == [[2.0, 3.0], [0.0, 0.0]]  # a window without a valid step: zeros, not NaN
    ix, im = keras.Input((3, 2)), keras.Input((3,))
    roundtrip(keras.Model([ix, im], MaskedMean()(ix, im)), [x, m], tmp_path)


@pytest.mark.parametrize("layer", [LogMelSpectrogram(n_mels=8), ResampleTime(3), FrameEncoder((4,), 8),
                                   SpectrogramEncoder((4,)), SyncCorrelation(4, 1), LaggedCorrelation(4, 1), AttentionPooling(2), MaskSteps(),
                                   MaskedMean()])
def test_get_config_is_complete(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    import inspect

    params = [p for p in inspect.signature(type(layer).__init__).parameters if p not in ("self", "kwargs")]
    assert all(p in config for p in params), (type(layer).__name__, params, config)


def test_docstring_examples_run():
    import doctest

    import dfdetect.layers

    result = doctest.testmod(dfdetect.layers, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 7 and result.failed == 0
