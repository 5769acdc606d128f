"""``dfdetect predict VIDEO --explain DIR``: why did the model say so?

For the most suspicious window of a video:

- **Grad-CAM** over its face frames (Selvaraju et al., 2017): the fake score's gradient with respect to each
  frame's pooled face features weighs the frame encoder's last convolutional maps; the mouth stream's maps are
  weighed the same way and shown over the mouth region, so lip-sync evidence shows where the lips are, with
  each stream's share of the evidence.
  Because the encoders end in global average pooling, that gradient is exactly what Grad-CAM averages.
- a **saliency map over the model's own log-mel spectrogram** (``|d score / d log-mel|``), under the
  spectrogram itself;
- the **timeline**: the per-frame score track (fake, video, audio) with window scores and the fake segments
  marked.

PNGs a person can look at; the numbers behind them are in the verdict.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _layer(model, name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def encoder_maps(encoder, frames: np.ndarray) -> np.ndarray:
    """The last convolutional maps ``(T, h, w, C)`` of a frame encoder (``FrameEncoder`` or a
    ``keras.applications`` backbone behind a ``Resizing`` layer) for ``frames`` ``(T, H, W, 3)``."""
    import keras

    x = frames.astype(np.float32)
    if hasattr(encoder, "feature_maps"):
        return keras.ops.convert_to_numpy(encoder.feature_maps(x, training=False))
    resize, app = encoder.layers  # Sequential([Resizing, application with pooling="avg"])
    maps = keras.Model(app.inputs, app.layers[-2].output)  # the maps that feed its global pooling
    return keras.ops.convert_to_numpy(maps(resize(x), training=False))


def grad_cam(model, frames: np.ndarray, audio: np.ndarray, mask: np.ndarray, head: str = "fake",
             target: str = "predicted", threshold: float = 0.5, mouth: np.ndarray | None = None) -> dict:
    """Grad-CAM of one window (TensorFlow backend) for the evidence that ``head`` is fake (``target="fake"``),
    that it is real (``"real"``: the negative gradient), or for whichever the score says (``"predicted"``,
    against ``threshold``): a map of a real verdict's evidence is as useful as a fake one's, and a fake map of a
    window the model finds real is mostly empty.

    Returns ``score``; ``heat``: per visual stream (``face``, ``mouth``) a ``(T, H, W)`` map in [0, 1] over
    the face crop (0 on frames without a face, and outside the mouth region for ``mouth``), empty for an
    audio-only model; ``share``: each stream's part of the positive evidence; ``logmel`` and ``saliency``
    ``(frames, n_mels)``, or None for a video-only model.
    """
    import keras
    import tensorflow as tf

    names = [n for n in ("face_frames", "mouth_frames", "logmel") if _layer(model, n) is not None]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names] + [model.output[head]])
    from dfdetect.model import model_inputs

    inputs = model_inputs(model.input, tf.constant(frames[None]), tf.constant(audio[None].astype(np.float32)),
                          tf.constant(mask[None].astype(np.float32)),
                          None if mouth is None else tf.constant(mouth[None].astype(np.float32)))
    with tf.GradientTape() as tape:
        tape.watch(inputs["audio"])  # records the ops between the (constant) log-mel and the first weights
        *feats, out = probe(inputs, training=False)
        score = tf.reduce_sum(out)
    grads = dict(zip(names, tape.gradient(score, feats)))
    feats = dict(zip(names, feats))
    value = float(score.numpy())
    if target == "predicted":
        target = "fake" if value >= threshold else "real"
    if target not in ("fake", "real"):
        raise ValueError(f"target must be fake, real or predicted, got {target!r}")
    sign = 1.0 if target == "fake" else -1.0
    result = {"score": value, "target": target, "heat": {}, "share": {}, "logmel": None, "saliency": None}

    T, H, W = frames.shape[:3]
    totals = {}
    for name, stream in (("face_frames", "face"), ("mouth_frames", "mouth")):
        if name not in names:
            continue
        enc = model.get_layer(name).layer
        crop = _layer(model, "mouth_crop") if stream == "mouth" else None
        if crop is not None:  # the mouth stream saw patches around each frame's mouth keypoint
            track = np.asarray(inputs["mouth"], np.float32)[0]
            seen = crop(frames[None], track[None]).numpy()[0]
            boxes = np.round(crop.boxes(track, H, W)).astype(int)
        else:
            seen, boxes = frames, None
        maps = encoder_maps(enc, seen)  # (T, h, w, C)
        g = sign * grads[name].numpy()[0]  # (T, C): d score / d pooled feature = Grad-CAM's channel weights x h*w
        cam = np.maximum(np.einsum("thwc,tc->thw", maps, g), 0) / (maps.shape[1] * maps.shape[2])
        # a keras.applications backbone sees the whole crop
        t0, t1, x0, x1 = enc.crop_box(H, W) if hasattr(enc, "crop_box") else (0, H, 0, W)
        heat = np.zeros((T, H, W), np.float32)
        for t in range(T):
            if boxes is not None:
                t0, t1, x0, x1 = boxes[t]
            _paste(heat[t], cv2.resize(cam[t], (x1 - x0, t1 - t0), interpolation=cv2.INTER_LINEAR), t0, x0)
        heat *= (mask > 0)[:, None, None]
        totals[stream] = float(cam[mask > 0].sum()) if (mask > 0).any() else 0.0
        top = heat.max()
        result["heat"][stream] = heat / top if top > 0 else heat
    total = sum(totals.values())
    result["share"] = {k: (v / total if total > 0 else 0.0) for k, v in totals.items()}
    if "logmel" in names:
        result["logmel"] = feats["logmel"].numpy()[0]
        result["saliency"] = np.abs(grads["logmel"].numpy()[0])
    return result


def _paste(canvas: np.ndarray, patch: np.ndarray, y: int, x: int) -> None:
    """Puts ``patch`` with its top-left corner at (y, x), clipped to ``canvas``, in place."""
    h, w = patch.shape[:2]
    H, W = canvas.shape[:2]
    y0, x0, y1, x1 = max(0, y), max(0, x), min(H, y + h), min(W, x + w)
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]


def overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (0.55 * frame + 0.45 * colour).astype(np.uint8)


def explain_window(model, window, out_dir: str | Path, name: str, sample_rate: int = 16000,
                   threshold: float = 0.5, face: str = "") -> list[Path]:
    """Writes ``<name>_faces.png`` (Grad-CAM) and ``<name>_spectrogram.png`` (log-mel saliency) for one
    window; a model without that modality skips its picture. ``face`` names the face shown where a video has
    several (``face 1 (right)``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mask = window.mask.astype(np.float32)
    cam = grad_cam(model, window.frames, window.audio, mask, threshold=threshold,
                   mouth=getattr(window, "mouth", None))
    files = []
    if cam["heat"]:
        T = len(window.frames)
        idx = np.linspace(0, T - 1, min(8, T)).round().astype(int)
        streams = list(cam["heat"])
        rows = 1 + len(streams)
        fig, axes = plt.subplots(rows, len(idx), figsize=(2 * len(idx), 2.2 * rows), squeeze=False)
        for j, i in enumerate(idx):
            axes[0, j].imshow(window.frames[i])
            axes[0, j].set_title(f"frame {i}" + ("" if window.mask[i] else " (no face)"), fontsize=8)
            for r, stream in enumerate(streams, start=1):
                heat = cam["heat"][stream][i]
                axes[r, j].imshow(overlay(window.frames[i], heat) if window.mask[i] else window.frames[i])
            for r in range(rows):
                axes[r, j].axis("off")
        for r, stream in enumerate(streams, start=1):
            axes[r, 0].text(-0.08, 0.5, f"{stream} stream\n{cam['share'][stream]:.0%} of evidence", fontsize=8,
                            rotation=90, va="center", ha="right", transform=axes[r, 0].transAxes)
        fig.suptitle(f"Grad-CAM: where the {cam['target']} evidence is ({face + ', ' if face else ''}window at "
                     f"{window.start:.1f} s, fake score {cam['score']:.2f})")
        files.append(out / f"{name}_faces.png")
        fig.savefig(files[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    if cam["logmel"] is not None:
        seconds = len(window.audio) / sample_rate
        extent = (window.start, window.start + seconds, 0, cam["logmel"].shape[1])
        fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
        axes[0].imshow(cam["logmel"].T, origin="lower", aspect="auto", extent=extent, cmap="magma")
        axes[0].set(ylabel="mel band", title="log-mel spectrogram (as the model computes it)")
        axes[1].imshow(cam["saliency"].T, origin="lower", aspect="auto", extent=extent, cmap="viridis")
        axes[1].set(ylabel="mel band", xlabel="seconds", title="saliency: |d fake score / d log-mel|")
        files.append(out / f"{name}_spectrogram.png")
        fig.savefig(files[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    return files


def timeline_plot(verdict, out_dir: str | Path, name: str, threshold: float, title: str | None = None) -> Path:
    """The per-frame track of each modality (the frame-level heads, stitched), the window-level ``fake``
    score as dots, the video threshold, and the fake segments shaded and labelled with their modality;
    ``title`` names the video (default: its file name)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    track = verdict.track or {}
    if track.get("fake"):
        t = np.arange(len(track["fake"])) / float(track["fps"])
        for key, style, lw in (("fake", "-", 1.4), ("video", ":", 1.0), ("audio", "--", 1.0)):
            ax.step(t, track[key], style, where="post", lw=lw, label=f"per frame: {key}")
    mids = [(w["start"] + w["end"]) / 2 for w in verdict.timeline]
    ax.plot(mids, [w["fake"] for w in verdict.timeline], "o", ms=3, color="grey", label="per window: fake")
    for s in verdict.segments:
        ax.axvspan(s["start"], s["end"], color="tab:red", alpha=0.15)
        ax.text((s["start"] + s["end"]) / 2, 1.0, s.get("modality", ""), ha="center", va="top", fontsize=7)
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"video threshold {threshold:.2f}")
    who = ", ".join(x for x in (title or Path(verdict.path).name, _face_words(verdict)) if x)
    ax.set(ylim=(-0.02, 1.02), xlabel="seconds", ylabel="P(fake)",
           title=f"{who}: {verdict.label} ({verdict.score:.2f}); shaded: fake segments")
    ax.legend(fontsize=7, ncol=5, loc="upper left")
    path = out / f"{name}_timeline.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _face_words(verdict) -> str:
    """``face 1 (right) of 2`` where a video has several faces scored (the verdict's face); else nothing."""
    scored = [f for f in verdict.faces if f.get("score") is not None]
    if len(scored) < 2:
        return ""
    where = next((f["where"] for f in scored if f["face"] == verdict.face), "")
    return f"face {verdict.face}{f' ({where})' if where else ''} of {len(scored)}"


def explain_video(detector, path: str | Path, out_dir: str | Path, title: str | None = None):
    """Scores a video and writes its three explanation PNGs; returns the verdict and the files. ``title``
    names the video on the pictures (default: its file name; `dfdetect serve` passes the client's)."""
    v = detector.predict_video(path, keep_windows=True)
    if v.status != "ok" or not v.timeline:
        return v, []
    windows = v._windows  # type: ignore[attr-defined]
    worst = int(np.argmax([w["fake"] for w in v.timeline]))
    name = Path(path).stem
    files = explain_window(detector.model, windows[worst], out_dir, name, detector.config.media.sample_rate,
                           detector.threshold, _face_words(v))
    files.append(timeline_plot(v, out_dir, name, detector.threshold, title))
    del v._windows  # type: ignore[attr-defined]
    return v, files
