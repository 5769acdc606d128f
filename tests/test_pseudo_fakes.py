"""Pseudo-fakes (``dfdetect.pseudo_fakes``) on real windows, their labels, and real-only training's data."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from dfdetect.config import get_config
from dfdetect.errors import BadArgument
from dfdetect.pipeline import make_dataset, numpy_batch, shard_files
from dfdetect.pseudo_fakes import blend_mask, keypoint_counts, pseudo_fake, resynthesize, self_blend
from dfdetect.shards import read_windows

CFG = get_config("smoke")


@pytest.fixture(scope="module")
def real_windows(smoke_data):
    ws = [w for f in shard_files(smoke_data) for w in read_windows(f)]
    real = [w for w in ws if w["fake"] == 0 and w["mask"].all()]
    assert len(real) >= 4
    return real


def _seed(i: int):
    return tf.constant([i, 3], tf.int64)


def test_blend_mask_covers_the_face_between_eyes_and_mouth():
    m = blend_mask(64, 64, tf.constant([0.5, 0.7]), _seed(0)).numpy()[..., 0]
    assert m.shape == (64, 64) and m.min() >= 0 and m.max() <= 1
    assert m[35, 32] > 0.45  # between the eyes (0.38) and the mouth (0.7): inside
    assert max(m[0, 0], m[0, -1], m[-1, 0], m[-1, -1]) < 0.05  # the crop's corners (background): outside


def test_self_blend_changes_the_face_alike_in_every_frame_and_not_the_background(real_windows):
    w = real_windows[0]
    frames = tf.constant(w["frames"])
    changed = 0
    for i in range(6):
        out, applied = self_blend(frames, tf.ones(len(w["frames"])), tf.constant(w["mouth"]), _seed(i))
        out = out.numpy().astype(int)
        assert bool(applied) and out.shape == w["frames"].shape and out.dtype == np.int64
        diff = np.abs(out - w["frames"]).mean(axis=-1)  # (T, H, W)
        C = diff.shape[1]
        corner = diff[:, : C // 8, : C // 8].mean()
        face = diff[:, C // 3: 2 * C // 3, C // 3: 2 * C // 3].mean()
        assert corner < 1.0, (i, corner)  # the background is untouched
        changed += face > 2.0
        # one transform per window: where frame 0 was changed, every frame was (the mask does not move)
        moved = diff > 4
        if moved[0].any():
            assert (moved[-1] | ~moved[0]).mean() > 0.9
    assert changed >= 5  # a partial blend can be faint, most are not


def test_self_blend_needs_a_keypoint_and_leaves_faceless_frames_alone(real_windows):
    w = real_windows[0]
    T = len(w["frames"])
    frames = tf.constant(w["frames"])
    out, applied = self_blend(frames, tf.ones(T), tf.fill((T, 2), -1.0), _seed(1))
    assert not bool(applied) and np.array_equal(out.numpy(), w["frames"])
    mask = np.ones(T, np.float32)
    mask[: T // 2] = 0
    out, applied = self_blend(frames, tf.constant(mask), tf.constant(w["mouth"]), _seed(1))
    assert bool(applied)
    assert np.array_equal(out.numpy()[: T // 2], w["frames"][: T // 2])
    assert not np.array_equal(out.numpy()[T // 2:], w["frames"][T // 2:])


def _harmonic(f0=150.0, sr=16000, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.1 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20))).astype(np.float32)


def _harmonicity(x, f0=150.0, sr=16000):
    """Energy at the harmonics over energy between them (a voice's fine structure)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / sr)
    on = sum(spec[np.abs(f - f0 * k) < 5].sum() for k in range(1, 15))
    off = sum(spec[np.abs(f - f0 * (k + 0.5)) < 5].sum() for k in range(1, 15))
    return on / off


def test_resynthesis_keeps_length_and_loudness_and_loses_the_harmonics():
    x = _harmonic() + np.random.default_rng(0).normal(0, 0.003, 16000).astype(np.float32)  # 30 dB SNR
    rms = np.sqrt((x ** 2).mean())
    harm = _harmonicity(x)  # about 94 on this tone
    for i in range(8):
        y = resynthesize(tf.constant(x), _seed(i)).numpy()
        assert y.shape == x.shape and np.isfinite(y).all()
        assert np.sqrt((y ** 2).mean()) == pytest.approx(rms, rel=1e-3)
        assert np.corrcoef(x, y)[0, 1] < 0.98  # not the same waveform
        # every mode (scrambled phase, smoothed envelope, both) smears the harmonics: measured 1.6-26
        assert _harmonicity(y) < 0.5 * harm, (i, _harmonicity(y), harm)
    again = resynthesize(tf.constant(x), _seed(0)).numpy()
    assert np.array_equal(again, resynthesize(tf.constant(x), _seed(0)).numpy())  # seeded


def _item(w, fake=0):
    T = len(w["frames"])
    inputs = {"frames": tf.constant(w["frames"]), "audio": tf.constant(w["audio"]),
              "mask": tf.constant(w["mask"], tf.float32), "mouth": tf.constant(w["mouth"])}
    labels = {h: tf.constant(fake, tf.int64) for h in ("fake", "video_fake", "audio_fake", "av_mismatch")}
    labels.update({h: tf.fill([T], tf.constant(fake, tf.int64)) for h in ("frame_fake", "frame_video", "frame_audio")})
    return inputs, labels, {"path": tf.constant("x")}


@pytest.mark.parametrize("kind,expect", [
    ("face", {"fake": 1, "video_fake": 1, "audio_fake": 0, "av_mismatch": 0, "frame_video": 1, "frame_audio": 0}),
    ("audio", {"fake": 1, "video_fake": 0, "audio_fake": 1, "av_mismatch": 0, "frame_video": 0, "frame_audio": 1}),
])
def test_pseudo_fake_labels_say_what_was_done(real_windows, kind, expect):
    w = real_windows[1]
    inputs, labels, meta = pseudo_fake(_item(w), _seed(2), 1.0, (kind,))
    for h, v in expect.items():
        assert (np.asarray(labels[h]) == v).all(), (h, labels[h])
    assert (np.asarray(labels["frame_fake"]) == 1).all()
    assert meta["pseudo"].numpy().decode() == kind
    changed_frames = not np.array_equal(inputs["frames"].numpy(), w["frames"])
    changed_audio = not np.array_equal(inputs["audio"].numpy(), w["audio"])
    assert (changed_frames, changed_audio) == (kind == "face", kind == "audio")


def test_pseudo_fake_leaves_fakes_and_keypointless_windows_as_they_are(real_windows):
    w = real_windows[1]
    inputs, labels, meta = pseudo_fake(_item(w, fake=1), _seed(2), 1.0)
    assert int(labels["fake"]) == 1 and meta["pseudo"].numpy() == b""
    assert np.array_equal(inputs["frames"].numpy(), w["frames"]) and np.array_equal(inputs["audio"].numpy(), w["audio"])
    blind = dict(w, mouth=np.full_like(w["mouth"], -1.0))
    inputs, labels, meta = pseudo_fake(_item(blind), _seed(2), 1.0, ("face",))
    assert int(labels["fake"]) == 0 and meta["pseudo"].numpy() == b""  # no keypoints: no face pseudo-fake, real
    assert np.array_equal(inputs["frames"].numpy(), w["frames"])
    with pytest.raises(ValueError, match="unknown pseudo-fake kind"):
        pseudo_fake(_item(w), _seed(2), 1.0, ("morph",))


def test_keypoint_counts_count_real_windows(smoke_data):
    c = keypoint_counts(smoke_data, "train")
    table = pd.read_csv(smoke_data / "windows.csv")
    real = table[(table["split"] == "train") & (table["label"] == "real")]
    assert c["real"] == len(real) and c["with_keypoints"] + c["without_keypoints"] == c["real"]
    assert c["with_keypoints"] >= 0.8 * c["real"]  # MediaPipe gives the mouth keypoint with every face


def test_real_only_trains_on_real_videos_and_their_negatives(smoke_data):
    cfg = CFG.override(train={"real_only": True, "pseudo_fakes": 0.6, "sync_negatives": 0.3, "augment": False})
    ys, ws, kinds = [], [], []
    for seed in range(6):  # a few passes over the smoke benchmark's 25 real training windows
        _, targets, weights, meta = numpy_batch(make_dataset(smoke_data, cfg, "train", training=True,
                                                             batch_size=1024, with_meta=True, seed=seed))
        assert (meta["fake_video_label"] == 0).all()  # no window of a fake video
        ys.append(targets["fake"][:, 0])
        ws.append(weights["fake"])
        kinds.append(meta["pseudo"])
    y, w, kinds = np.concatenate(ys), np.concatenate(ws), np.concatenate(kinds)
    assert 0.55 < y.mean() < 0.9, y.mean()  # sync negatives + pseudo-fakes: 0.3 + 0.7 * 0.6 = 0.72 expected
    assert (kinds == b"face").sum() > 5 and (kinds == b"audio").sum() > 5
    assert (y[kinds != b""] == 1).all()
    # the class weights balance the two classes (in expectation over the draws)
    assert abs(w[y == 1].sum() - w[y == 0].sum()) / w.sum() < 0.15, (w[y == 1].sum(), w[y == 0].sum())
    # the val split of a real-only run: its real videos and the same negatives every epoch
    val = make_dataset(smoke_data, cfg, "val", role="select", with_meta=True, batch_size=1024)
    a, b = numpy_batch(val), numpy_batch(val)
    assert (a[3]["fake_video_label"] == 0).all() and 0 < a[1]["fake"].mean() < 1
    assert np.array_equal(a[1]["fake"], b[1]["fake"]) and np.array_equal(a[0]["audio"], b[0]["audio"])
    # evaluation still sees every video, fakes included
    _, _, _, m = numpy_batch(make_dataset(smoke_data, cfg, "val", training=False, with_meta=True, batch_size=1024))
    assert (m["fake_video_label"] == 1).any()


def _data_with(smoke_data, tmp_path, change) -> str:
    data = tmp_path / "data"
    shutil.copytree(smoke_data, data)
    change(pd.read_csv(data / "windows.csv")).to_csv(data / "windows.csv", index=False)
    return str(data)


def test_real_only_refuses_data_without_enough_real_videos(smoke_data, tmp_path):
    from dfdetect.train import check_real_only

    def no_real_train(w):
        return w[~((w["split"] == "train") & (w["label"] == "real"))]

    def one_real_val(w):
        real_val = w[(w["split"] == "val") & (w["label"] == "real")]
        keep = real_val["video_id"].iloc[0]
        w.loc[real_val[real_val["video_id"] != keep].index, "split"] = "train"
        return w

    with pytest.raises(BadArgument, match="no real video in its train split"):
        check_real_only(_data_with(smoke_data, tmp_path / "a", no_real_train))
    with pytest.raises(BadArgument, match=r"1 real video\(s\) in its val split"):
        check_real_only(_data_with(smoke_data, tmp_path / "b", one_real_val))


def test_cli_real_only_stops_before_training_with_the_reason(smoke_data, tmp_path, capsys):
    from dfdetect.cli import main

    def no_real_train(w):
        return w[~((w["split"] == "train") & (w["label"] == "real"))]

    data = _data_with(smoke_data, tmp_path, no_real_train)
    out = tmp_path / "run"
    code = main(["train", "--data", data, "--out", str(out), "--config", "smoke", "--real-only", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "no real video in its train split" in err and "Traceback" not in err
    assert not (out / "best.keras").exists()
