"""The functional model and the tf.data pipeline on real preprocessed windows."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from dfdetect.config import get_config
from dfdetect.model import FRAME_HEADS, HEADS, build_model
from dfdetect.pipeline import augment_window, make_dataset, numpy_batch, window_table

CFG = get_config("smoke")


def _inputs(cfg, n=2, seed=0):
    rng = np.random.default_rng(seed)
    T, C = cfg.frames_per_window, cfg.faces.crop_size
    return {"frames": rng.integers(0, 255, (n, T, C, C, 3)).astype("uint8"),
            "audio": rng.normal(0, 0.1, (n, cfg.samples_per_window)).astype("float32"),
            "mask": np.ones((n, T), "float32")}


@pytest.mark.parametrize("modality,fusion", [("both", "aligned"), ("both", "late"), ("video", "aligned"),
                                             ("audio", "aligned")])
def test_model_variants_build_and_round_trip(modality, fusion, tmp_path):
    cfg = CFG.override(model={"modality": modality, "fusion": fusion})
    model = build_model(cfg)
    assert sorted(i.name for i in model.inputs) == ["audio", "frames", "mask"]  # order varies by modality
    x = _inputs(cfg)
    out = model(x)
    assert set(out) == set(HEADS) | set(FRAME_HEADS)
    assert all(tuple(out[h].shape) == (2, 1) for h in HEADS)
    # one score per time step (video frame) for the frame-level heads
    assert all(tuple(out[h].shape) == (2, cfg.frames_per_window, 1) for h in FRAME_HEADS)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for h in (*HEADS, *FRAME_HEADS):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out[h]), keras.ops.convert_to_numpy(again(x)[h]),
                                   rtol=1e-5, atol=1e-6)


def test_modality_switch_really_ignores_the_other_input():
    video = build_model(CFG.override(model={"modality": "video"}))
    audio = build_model(CFG.override(model={"modality": "audio"}))
    x = _inputs(CFG)
    y = dict(x, audio=np.zeros_like(x["audio"]))
    np.testing.assert_allclose(video(x)["fake"], video(y)["fake"], atol=1e-6)
    z = dict(x, frames=np.zeros_like(x["frames"]))
    np.testing.assert_allclose(audio(x)["fake"], audio(z)["fake"], atol=1e-6)
    with pytest.raises(ValueError, match="modality"):
        build_model(CFG.override(model={"modality": "smell"}))


def test_backbone_code_path_without_weights():
    cfg = CFG.override(model={"frame_encoder": "MobileNetV3Small", "backbone_weights": None, "face_size": 32,
                              "mouth_stream": False})
    model = build_model(cfg)
    assert model(_inputs(cfg, n=1))["fake"].shape == (1, 1)
    with pytest.raises(ValueError, match="frame_encoder"):
        build_model(CFG.override(model={"frame_encoder": "NoSuchNet"}))


def test_pipeline_batches(smoke_data):
    ds = make_dataset(smoke_data, CFG, "train", training=True, batch_size=4)
    inputs, targets, weights = numpy_batch(ds)
    T, C = CFG.frames_per_window, CFG.faces.crop_size
    assert inputs["frames"].shape == (4, T, C, C, 3) and inputs["frames"].dtype == np.uint8
    assert inputs["audio"].shape == (4, CFG.samples_per_window) and inputs["audio"].dtype == np.float32
    assert inputs["mask"].shape == (4, T)
    assert set(targets) == set(HEADS) | set(FRAME_HEADS) and targets["fake"].shape == (4, 1)
    for h in FRAME_HEADS:  # one label per step; weights per step
        assert targets[h].shape == (4, T, 1) and weights[h].shape == (4, T)
    for h in (*HEADS, *FRAME_HEADS):
        assert set(np.unique(targets[h])) <= {0.0, 1.0}
        assert (weights[h] >= 0).all()


def test_split_filter_and_labels(smoke_data):
    table = window_table(smoke_data)
    for split in ("train", "val", "test"):
        n = sum(1 for _ in make_dataset(smoke_data, CFG, split, batch_size=1).unbatch())
        assert n == (table["split"] == split).sum()
    # every window of a real video is real in every head; weights never ask for unknown labels
    ds = make_dataset(smoke_data, CFG, None, batch_size=64, with_meta=True)
    for _, targets, weights, meta in ds:
        cats = meta["category"].numpy()
        for i, c in enumerate(cats):
            if c == b"A":
                assert all(float(targets[h][i][0]) == 0 for h in HEADS)
                assert float(weights["av_mismatch"][i]) > 0


@pytest.mark.parametrize("sync", [0.0, 0.3])
def test_balancing_weights_equalise_classes(smoke_data, sync):
    # with sync negatives, a share of real windows become fakes; the weights count them in expectation
    cfg = CFG.override(train={"sync_negatives": sync})
    totals = np.zeros(2)
    for seed in range(4):
        _, targets, weights = numpy_batch(make_dataset(smoke_data, cfg, "train", training=True, batch_size=512,
                                                       seed=seed))
        y, w = targets["fake"][:, 0], weights["fake"]
        totals += [w[y == 0].sum(), w[y == 1].sum()]
    assert abs(totals[1] - totals[0]) / totals.sum() < 0.15, totals


def test_augmentation_is_consistent_across_frames():
    T, C = 6, 32
    frames = np.zeros((T, C, C, 3), np.uint8)
    frames[:, :, : C // 2] = 255  # left half white in every frame
    x = {"frames": tf.constant(frames), "audio": tf.zeros(1600), "mask": tf.ones(T)}
    flipped_seen = set()
    for i in range(12):
        out = augment_window(x, tf.constant([0, i], tf.int64))
        f = out["frames"].numpy().astype(float)
        left, right = f[:, :, : C // 4].mean(axis=(1, 2, 3)), f[:, :, -C // 4:].mean(axis=(1, 2, 3))
        side = left > right
        assert side.all() or (~side).all(), "frames of one window were flipped differently"
        flipped_seen.add(bool(side[0]))
        assert out["frames"].shape == (T, C, C, 3) and out["frames"].dtype == tf.uint8
    assert flipped_seen == {True, False}


def test_sync_negatives_swap_voices_of_real_windows(smoke_data):
    cfg = CFG.override(train={"sync_negatives": 1.0, "augment": False, "balance": False})
    plain = CFG.override(train={"sync_negatives": 0.0, "augment": False, "balance": False})
    neg = make_dataset(smoke_data, cfg, None, training=True, batch_size=512, with_meta=True, seed=1)
    ref = make_dataset(smoke_data, plain, None, training=False, batch_size=512, with_meta=True)
    inputs, targets, weights, meta = numpy_batch(neg)
    rinputs, rtargets, _, rmeta = numpy_batch(ref)
    own_audio = {(p, s): a for p, s, a in zip(rmeta["path"], rmeta["start"], rinputs["audio"])}
    real = meta["category"] == b"A"
    assert real.any()
    swapped = 0
    for i in np.nonzero(real)[0]:
        same = np.array_equal(inputs["audio"][i], own_audio[(meta["path"][i], meta["start"][i])])
        if not same:
            swapped += 1
            assert targets["fake"][i, 0] == 1 and targets["av_mismatch"][i, 0] == 1
            assert targets["audio_fake"][i, 0] == 0 and weights["video_fake"][i] == 0
        else:
            assert targets["fake"][i, 0] == 0
    assert swapped >= 0.8 * real.sum()
    # fakes keep their own voice and labels (a partial fake's windows outside its segments are real windows:
    # they may lend or get a voice like any real window)
    partial = np.array([m.startswith(b"partial") for m in meta["method"]])
    fake = (meta["category"] == b"B") & ~partial
    for i in np.nonzero(fake)[0]:
        assert np.array_equal(inputs["audio"][i], own_audio[(meta["path"][i], meta["start"][i])])


def test_faceless_frames_do_not_leak_into_their_neighbours():
    # whatever a faceless frame holds (a blank crop, or garbage), no output may depend on it: the mask zeroes
    # its features before the temporal convolution, which would otherwise carry them into the next steps
    model = build_model(CFG)
    x = _inputs(CFG, n=1)
    T = CFG.frames_per_window
    x["mask"][0, T // 2] = 0.0
    y = _inputs(CFG, n=1, seed=1)
    other = dict(x, frames=x["frames"].copy())
    other["frames"][0, T // 2] = y["frames"][0, T // 2]  # only the faceless frame differs
    a, b = model(x, training=False), model(other, training=False)
    for h in a:
        np.testing.assert_allclose(np.asarray(a[h]), np.asarray(b[h]), atol=1e-6, err_msg=h)
    # and a frame with a face does matter
    other["mask"] = x["mask"].copy()
    other["frames"][0, 0] = y["frames"][0, 0]
    c = model(other, training=False)
    assert any(not np.allclose(np.asarray(a[h]), np.asarray(c[h]), atol=1e-6) for h in a)
