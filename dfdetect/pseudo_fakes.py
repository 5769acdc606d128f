"""Pseudo-fakes: fakes made on the fly from real training windows, so that a detector can learn from real videos.

The detectors that generalise best to manipulations they never saw learn what *any* manipulation leaves behind
rather than one generator's fingerprint (Self-Blended Images, CVPR 2022; RawBoost, ICASSP 2022). This module
turns a real window into one of three kinds of fake, with the labels of what was done to it:

==========  ====================================================  =====================================
kind        what is done to the real window                       labels (window and per step)
==========  ====================================================  =====================================
``face``    self-blending: the face crop, colour-, sharpness- and  fake, video_fake = 1; audio_fake,
            position-jittered, is blended back into itself         av_mismatch = 0; frame_video = 1,
            through a soft ellipse that spans eyes to chin,        frame_audio = 0
            anchored at the mouth keypoint: a seam, a colour and
            a sharpness mismatch, no other face
``audio``   resynthesis: the voice's STFT phase is scrambled       fake, audio_fake = 1; video_fake,
            and/or its spectral fine structure smoothed away, as   av_mismatch = 0; frame_audio = 1,
            vocoders and TTS do (phasiness, lost harmonics)        frame_video = 0
``sync``    another real window's voice (``dfdetect.pipeline.      fake, av_mismatch = 1; audio_fake = 0;
            sync_negative``)                                       video_fake unknown
==========  ====================================================  =====================================

Every window of a pseudo-fake is fake throughout (``frame_fake`` = 1 at every step). One transform is drawn
per window and used for every frame, as a face swap is consistent over time. A window without a mouth
keypoint in any face frame gets no face pseudo-fake (it stays real; ``keypoint_counts`` counts them).

Channel effects (a phone's band limits, an equaliser, room noise) are not pseudo-fakes: a real phone call is
real, so they stay label-preserving augmentation (``dfdetect.pipeline.augment_window``).
"""

from __future__ import annotations

import math
from pathlib import Path

import tensorflow as tf

KINDS = ("face", "audio")  # made here; "sync" is dfdetect.pipeline.sync_negative

# The face crop is centred on the detected box with margin ``faces.margin`` (1.4): the face spans about
# 0.14-0.86 of the crop, the eyes sit near 0.38 of its height.
EYES_Y = 0.38


def _uniform(seed, lo: float, hi: float, shape=()):
    return tf.random.stateless_uniform(shape, seed, lo, hi)


def blend_mask(height: int, width: int, mouth, seed):
    """A soft ellipse ``(H, W, 1)`` in [0, 1] covering the face from the eyes to below the mouth.

    Args:
        height, width: crop size in pixels.
        mouth: ``(2,)`` the mouth keypoint in crop coordinates (x, y in 0..1).
        seed: ``(2,)`` int seed for the jitter (centre, radii, edge softness, blend ratio).
    """
    s = tf.random.experimental.stateless_split(seed, 5)
    mx, my = mouth[0], tf.clip_by_value(mouth[1], EYES_Y + 0.1, 0.95)
    cx = 0.5 * (0.5 + mx) + _uniform(s[0], -0.03, 0.03)
    cy = 0.5 * (EYES_Y + my) + _uniform(s[1], -0.03, 0.03)
    ry = 0.5 * (my - EYES_Y) + _uniform(s[2], 0.12, 0.22)
    rx = ry * _uniform(s[3], 0.7, 1.0)
    ys = (tf.range(height, dtype=tf.float32) + 0.5) / tf.cast(height, tf.float32)
    xs = (tf.range(width, dtype=tf.float32) + 0.5) / tf.cast(width, tf.float32)
    d = tf.sqrt(tf.square((xs[None, :] - cx) / rx) + tf.square((ys[:, None] - cy) / ry))
    e = tf.random.experimental.stateless_split(s[4], 2)
    softness = _uniform(e[0], 0.03, 0.2)  # a hard seam (0.03) to a wide feathered one (0.2)
    # SBI's blend ratios: mostly the source in full, sometimes a partial mix
    ratio = tf.gather(tf.constant([0.5, 0.75, 1.0, 1.0, 1.0]),
                      tf.random.stateless_uniform([], e[1], 0, 5, dtype=tf.int32))
    return (tf.sigmoid((1.0 - d) / softness) * ratio)[:, :, None]


def self_blend(frames, face_mask, mouth, seed):
    """Self-blends a window's face crops (SBI): ``(frames', applied)``.

    Args:
        frames: ``(T, H, W, 3)`` uint8 face crops.
        face_mask: ``(T,)`` 1 where the frame has a face (faceless frames are left as they are: zeros).
        mouth: ``(T, 2)`` mouth keypoints in crop coordinates, negative where unknown.
        seed: ``(2,)`` int seed.

    Returns:
        The blended frames and a bool scalar, False (frames unchanged) when no face frame has a keypoint.
    """
    T, H, W = tf.shape(frames)[0], tf.shape(frames)[1], tf.shape(frames)[2]
    known = tf.logical_and(tf.reduce_all(mouth >= 0.0, axis=1), face_mask > 0)
    applied = tf.reduce_any(known)
    n = tf.maximum(tf.reduce_sum(tf.cast(known, tf.float32)), 1.0)
    anchor = tf.reduce_sum(tf.where(known[:, None], mouth, 0.0), axis=0) / n  # the mouth's mean position
    s = tf.random.experimental.stateless_split(seed, 6)
    x = tf.cast(frames, tf.float32)
    # the source: the same face slightly moved and rescaled (a misaligned paste) ...
    scale = _uniform(s[0], 0.94, 1.06)
    shift = _uniform(s[1], -0.03, 0.03, [2])
    y0, x0 = 0.5 - 0.5 * scale + shift[0], 0.5 - 0.5 * scale + shift[1]
    box = tf.stack([y0, x0, y0 + scale, x0 + scale])
    src = tf.image.crop_and_resize(x, tf.tile(box[None], [T, 1]), tf.range(T), tf.stack([H, W]))
    # ... its colour changed (per-channel gain and offset) ...
    gain = _uniform(s[2], 0.88, 1.12, [3])
    offset = _uniform(s[3], -12.0, 12.0, [3])
    src = src * gain + offset
    # ... and its sharpness: blurred (a generator's smooth skin) or sharpened (an upscaler's halo)
    blur = tf.nn.avg_pool2d(src, 3, 1, "SAME")
    amount = _uniform(s[4], -1.0, 1.0)  # < 0 blur towards 1x blur, > 0 unsharp mask
    src = tf.where(amount < 0, src + (blur - src) * (-amount), src + (src - blur) * amount)
    m = blend_mask(H, W, anchor, s[5])
    out = x * (1.0 - m) + src * m
    out = tf.where(face_mask[:, None, None, None] > 0, out, x)
    out = tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)
    return tf.where(applied, out, frames), applied


FRAME_LENGTH, FRAME_STEP = 512, 128  # 32 ms / 8 ms at 16 kHz


def resynthesize(audio, seed):
    """A vocoder-like resynthesis of a waveform ``(S,)`` float32 at the same loudness: the STFT phase is
    scrambled (a share 0.3-1.0 of a uniform random phase added), the spectral fine structure (harmonics) is
    smoothed away across frequency (a share 0.4-1.0 of a smoothed log-magnitude), or both."""
    S = tf.shape(audio)[0]
    s = tf.random.experimental.stateless_split(seed, 4)
    spec = tf.signal.stft(audio, FRAME_LENGTH, FRAME_STEP, pad_end=True)
    mag, phase = tf.abs(spec), tf.math.angle(spec)
    mode = tf.random.stateless_uniform([], s[0], 0, 3, dtype=tf.int32)  # 0 phase, 1 envelope, 2 both
    phase_share = tf.where(mode != 1, _uniform(s[1], 0.3, 1.0), 0.0)
    env_share = tf.where(mode != 0, _uniform(s[2], 0.4, 1.0), 0.0)
    phase = phase + phase_share * tf.random.stateless_uniform(tf.shape(phase), s[3], -math.pi, math.pi)
    logmag = tf.math.log(mag + 1e-6)
    k = 9  # bins (about 280 Hz): wider than the spacing of a voice's harmonics, narrower than formants
    smooth = tf.squeeze(tf.nn.avg_pool1d(logmag[:, :, None], k, 1, "SAME"), -1)
    logmag = logmag + env_share * (smooth - logmag)
    spec = tf.complex(tf.exp(logmag), 0.0) * tf.exp(tf.complex(0.0, phase))
    out = tf.signal.inverse_stft(spec, FRAME_LENGTH, FRAME_STEP,
                                 window_fn=tf.signal.inverse_stft_window_fn(FRAME_STEP))
    out = tf.pad(out, [[0, tf.maximum(0, S - tf.shape(out)[0])]])[:S]
    rms = lambda v: tf.sqrt(tf.reduce_mean(tf.square(v)) + 1e-12)  # noqa: E731
    return tf.ensure_shape(out * (rms(audio) / rms(out)), audio.shape)


def pseudo_fake(item, seed, probability: float, kinds: tuple[str, ...] = KINDS):
    """A ``tf.data`` map: a real window (every label 0) becomes, with ``probability``, a pseudo-fake of one of
    ``kinds`` (drawn uniformly), its labels set as the table in the module docstring says. A face pseudo-fake
    drawn for a window without mouth keypoints leaves the window real.

    ``item`` is ``(inputs, labels, meta)`` as ``dfdetect.pipeline`` parses it, with ``inputs["mouth"]``.
    """
    from dfdetect.pipeline import real_window  # (the pipeline imports this module when it is asked for)

    inputs, labels, meta = item
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown pseudo-fake kind(s) {unknown}: choose from {KINDS}")
    s = tf.random.experimental.stateless_split(seed, 3)
    draw = tf.logical_and(real_window(labels), tf.random.stateless_uniform([], s[0]) < probability)
    which = tf.random.stateless_uniform([], s[1], 0, len(kinds), dtype=tf.int32)
    want_face = tf.logical_and(draw, tf.equal(which, kinds.index("face"))) if "face" in kinds else tf.constant(False)
    want_audio = tf.logical_and(draw, tf.equal(which, kinds.index("audio"))) if "audio" in kinds else tf.constant(False)
    frames, audio = inputs["frames"], inputs["audio"]
    if "face" in kinds:
        blended, ok = tf.cond(want_face, lambda: self_blend(frames, inputs["mask"], inputs["mouth"], s[2]),
                              lambda: (frames, tf.constant(False)))
        face = tf.logical_and(want_face, ok)
        frames = blended
    else:
        face = tf.constant(False)
    if "audio" in kinds:
        audio = tf.cond(want_audio, lambda: resynthesize(audio, s[2]), lambda: audio)
    voice = want_audio
    one, zero = tf.constant(1, tf.int64), tf.constant(0, tf.int64)
    any_fake = tf.logical_or(face, voice)
    new = dict(labels)
    new["fake"] = tf.where(any_fake, one, labels["fake"])
    new["video_fake"] = tf.where(face, one, tf.where(voice, zero, labels["video_fake"]))
    new["audio_fake"] = tf.where(voice, one, tf.where(face, zero, labels["audio_fake"]))
    new["av_mismatch"] = tf.where(any_fake, zero, labels["av_mismatch"])
    if "frame_fake" in labels:
        ones = tf.ones_like(labels["frame_fake"])
        new["frame_fake"] = tf.where(any_fake, ones, labels["frame_fake"])
        new["frame_video"] = tf.where(face, ones, tf.where(voice, 0 * ones, labels["frame_video"]))
        new["frame_audio"] = tf.where(voice, ones, tf.where(face, 0 * ones, labels["frame_audio"]))
    out_meta = dict(meta, pseudo=tf.where(face, tf.constant("face"),
                                          tf.where(voice, tf.constant("audio"), tf.constant(""))))
    return dict(inputs, frames=frames, audio=audio), new, out_meta


def keypoint_counts(data_dir: str | Path, split: str | None = None) -> dict[str, int]:
    """Real windows of a split with and without a mouth keypoint in any face frame (the face pseudo-fake
    needs one): ``{"real": n, "with_keypoints": k, "without_keypoints": n - k}``. Reads only the labels and
    keypoints of each record, no frames."""
    from dfdetect.pipeline import real_window, shard_files

    spec = {k: tf.io.FixedLenFeature([], tf.int64, default_value=-1) for k in ("fake", "audio_fake", "window_fake")}
    spec["split"] = tf.io.FixedLenFeature([], tf.string, default_value="")
    spec["mouth"] = tf.io.VarLenFeature(tf.float32)
    spec["mask"] = tf.io.VarLenFeature(tf.int64)
    real = with_kp = 0
    for s in tf.data.TFRecordDataset(shard_files(data_dir)).map(lambda r: tf.io.parse_single_example(r, spec)):
        if split is not None and s["split"].numpy().decode() != split:
            continue
        if not bool(real_window(s)):  # what pseudo_fake would take: an unknown voice label is not real
            continue
        real += 1
        mouth = tf.reshape(tf.sparse.to_dense(s["mouth"]), (-1, 2)).numpy()
        mask = tf.sparse.to_dense(s["mask"]).numpy()
        with_kp += int(((mouth >= 0).all(axis=1) & (mask > 0)).any())
    return {"real": real, "with_keypoints": with_kp, "without_keypoints": real - with_kp}


def pseudo_fake_figure(data_dir: str | Path, n: int = 3, split: str = "train", seed: int = 0):
    """A figure of ``n`` real windows of ``data_dir`` next to their pseudo-fakes, what a model trained with
    them learns from: per row the real face, its self-blend, their difference (x4), and the log-magnitude
    spectrogram of the real voice and of its resynthesis."""
    import matplotlib.pyplot as plt
    import numpy as np

    from dfdetect.pipeline import shard_files
    from dfdetect.shards import read_windows

    rows = []
    for f in shard_files(data_dir):
        rows += [w for w in read_windows(f) if w["split"] == split and w["fake"] == 0 and w["mask"].all()
                 and (w["mouth"] >= 0).all()]
        if len(rows) >= 4 * n:
            break
    rows = rows[:: max(1, len(rows) // n)][:n]
    fig, axes = plt.subplots(len(rows), 5, figsize=(13, 2.6 * len(rows)), squeeze=False)

    def spectrogram(x):
        return np.log(np.abs(tf.signal.stft(tf.constant(x), FRAME_LENGTH, FRAME_STEP).numpy()).T + 1e-4)

    for r, w in enumerate(rows):
        s = tf.constant([seed, r], tf.int64)
        t = len(w["frames"]) // 2
        face, _ = self_blend(tf.constant(w["frames"]), tf.ones(len(w["frames"])), tf.constant(w["mouth"]), s)
        face = face.numpy()
        voice = resynthesize(tf.constant(w["audio"]), s).numpy()
        diff = np.clip(np.abs(face[t].astype(int) - w["frames"][t]) * 4, 0, 255).astype(np.uint8)
        panels = [(w["frames"][t], "real face"), (face[t], "self-blended (pseudo-fake)"), (diff, "difference x4")]
        for c, (img, title) in enumerate(panels):
            axes[r, c].imshow(img)
            axes[r, c].set_title(title, fontsize=9)
        lo = np.percentile(spectrogram(w["audio"]), 5)
        for c, (x, title) in enumerate([(w["audio"], "real voice"), (voice, "resynthesised (pseudo-fake)")], 3):
            axes[r, c].imshow(spectrogram(x), origin="lower", aspect="auto", vmin=lo, cmap="magma")
            axes[r, c].set_title(title, fontsize=9)
        for a in axes[r]:
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle("Pseudo-fakes made from real windows during training (dfdetect.pseudo_fakes)")
    fig.tight_layout()
    return fig
