"""The mouth stream's crop that follows the mouth keypoint (``model.mouth_crop="keypoints"``): the layer cuts
where the keypoint is, augmentation moves the track with the frames, and a model that reads the track trains,
saves, exports and predicts with the track the shards and the face tracker carry."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from dfdetect.layers import MouthCrop


def _marked(T: int = 4, size: int = 64, spots=None) -> tuple[np.ndarray, np.ndarray]:
    """Frames with one bright 6x6 "mouth" square per frame at ``spots`` (x, y shares), and that track."""
    rng = np.random.default_rng(0)
    spots = spots or [(0.3 + 0.1 * t, 0.6 + 0.05 * t) for t in range(T)]
    frames = rng.integers(0, 60, (1, T, size, size, 3)).astype(np.uint8)
    for t, (x, y) in enumerate(spots):
        cx, cy = int(x * size), int(y * size)
        frames[0, t, cy - 3:cy + 3, cx - 3:cx + 3] = 250
    return frames, np.array([spots], np.float32)


def test_the_patch_is_centred_on_the_keypoint_and_falls_back_where_it_is_unknown():
    frames = np.random.default_rng(1).integers(0, 256, (1, 3, 64, 64, 3)).astype(np.uint8)
    track = np.array([[[0.5, 0.75], [0.25, 0.5], [-1.0, -1.0]]], np.float32)
    out = keras.ops.convert_to_numpy(MouthCrop(size=16, extent=(0.25, 0.25))(frames, track))
    # 16 samples over 16 pixels land on pixel centres: the patch is the pixels themselves
    np.testing.assert_array_equal(out[0, 0], frames[0, 0, 40:56, 24:40])
    np.testing.assert_array_equal(out[0, 1], frames[0, 1, 24:40, 8:24])
    np.testing.assert_array_equal(out[0, 2], frames[0, 2, 40:56, 24:40])  # unknown: the fixed centre (0.5, 0.75)


def test_the_patch_follows_a_moving_mouth_where_the_fixed_region_loses_it():
    spots = [(0.3, 0.6), (0.7, 0.62), (0.5, 0.9), (0.35, 0.8)]
    frames, track = _marked(spots=spots)
    follow = keras.ops.convert_to_numpy(MouthCrop(size=16, extent=(0.4, 0.6))(frames, track))[0]
    fixed = keras.ops.convert_to_numpy(MouthCrop(size=16, extent=(0.4, 0.6))(frames, -np.ones_like(track)))[0]
    for t in range(len(spots)):  # the mouth is in the middle of every patch
        y, x = np.unravel_index(follow[t].mean(-1).argmax(), (16, 16))
        assert abs(y - 7.5) <= 1.5 and abs(x - 7.5) <= 1.5 and follow[t].max() > 200, (t, y, x)
    off = [np.hypot(*(np.array(np.unravel_index(fixed[t].mean(-1).argmax(), (16, 16))) - 7.5)) for t in range(4)]
    assert sum(d > 4 for d in off) >= 3, off  # in the fixed region the mouth wanders to the edges


def test_layer_round_trips_through_keras_file(tmp_path):
    frames, track = _marked()
    f_in, m_in = keras.Input((4, 64, 64, 3)), keras.Input((4, 2))
    model = keras.Model([f_in, m_in], MouthCrop(8, extent=(0.3, 0.5), fallback=(0.4, 0.7))(f_in, m_in))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    inputs = [frames.astype(np.float32), track]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)), keras.ops.convert_to_numpy(model(inputs)))
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    layer = MouthCrop(8, extent=(0.3, 0.5), fallback=(0.4, 0.7))
    assert MouthCrop.from_config(layer.get_config()).get_config() == layer.get_config()


def test_augmentation_moves_the_mouth_track_with_the_frames():
    from dfdetect.pipeline import augment_window

    frames, track = _marked(T=4, size=64)
    track[0, 3] = -1.0  # unknown stays unknown
    inputs = {"frames": tf.constant(frames[0]), "audio": tf.zeros(1600), "mask": tf.ones(4),
              "mouth": tf.constant(track[0])}
    for s in range(6):  # crops and flips at random: the bright square is where the moved track says
        out = augment_window(inputs, tf.constant([s, 7], tf.int64))
        f, m = out["frames"].numpy(), out["mouth"].numpy()
        assert m[3].tolist() == [-1.0, -1.0]
        for t in range(3):
            x, y = int(m[t, 0] * 64), int(m[t, 1] * 64)
            assert f[t, y - 1:y + 1, x - 1:x + 1].mean() > 120, (s, t, m[t])


@pytest.fixture(scope="module")
def keypoint_run(smoke_data, tmp_path_factory):
    from dfdetect.config import get_config
    from dfdetect.train import train

    cfg = get_config("smoke").override(model={"mouth_crop": "keypoints"})
    run = tmp_path_factory.mktemp("mouth_run") / "run"
    train(smoke_data, run, cfg, epochs=1, verbose=0)
    return run, cfg


def test_a_keypoint_model_reads_the_track_from_shards_to_predictions(keypoint_run, smoke_data, tmp_path):
    from dfdetect.explain import grad_cam
    from dfdetect.export import export_model
    from dfdetect.model import build_model, input_names
    from dfdetect.pipeline import make_dataset
    from dfdetect.predict import Detector

    run, cfg = keypoint_run
    assert input_names(cfg) == ("frames", "audio", "mask", "mouth")
    assert "mouth" not in build_model(cfg.override(model={"mouth_crop": "fixed"})).input
    # the training batches carry the shards' track: known (0-1) where a face was found
    inputs, _, _ = next(iter(make_dataset(smoke_data, cfg, "train", training=False)))
    mouth, mask = inputs["mouth"].numpy(), inputs["mask"].numpy()
    assert set(inputs) == {"frames", "audio", "mask", "mouth"}
    assert ((mouth[mask > 0] >= 0) & (mouth[mask > 0] <= 1)).all()
    exported = export_model(run, tmp_path / "export")
    # the SavedModel and the .keras file score the same windows alike, with the track, and the track matters
    frames, audio, mask = inputs["frames"].numpy()[:2], inputs["audio"].numpy()[:2], mask[:2]
    with Detector(exported, fmt="saved_model") as a, Detector(exported, fmt="keras") as b:
        assert set(a.input_names) == set(b.input_names) == {"frames", "audio", "mask", "mouth"}
        sa, sb = a.score_windows(frames, audio, mask, mouth[:2]), b.score_windows(frames, audio, mask, mouth[:2])
        np.testing.assert_allclose(sa["fake"], sb["fake"], atol=1e-5)
        np.testing.assert_allclose(sa["embedding"], sb["embedding"], atol=1e-4)
        moved = np.clip(mouth[:2] + 0.2, 0, 1)
        assert not np.allclose(a.score_windows(frames, audio, mask, moved)["embedding"], sa["embedding"])
        clip = next(p for p in sorted((smoke_data.parent / "raw").rglob("*.mp4")))
        verdict = a.predict_video(clip)
        assert verdict.status == "ok" and 0 <= verdict.score <= 1, verdict
    # Grad-CAM puts the mouth stream's heat inside each frame's patch around the keypoint
    model = keras.saving.load_model(exported / "model.keras", safe_mode=True)
    cam = grad_cam(model, frames[0], audio[0], mask[0], mouth=mouth[0])
    heat, C = cam["heat"]["mouth"], frames.shape[2]
    boxes = np.round(model.get_layer("mouth_crop").boxes(mouth[0], C, C)).astype(int)
    for t in np.flatnonzero(mask[0] > 0):
        y0, y1, x0, x1 = np.clip(boxes[t], 0, C)
        outside = heat[t].copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() == 0, t
