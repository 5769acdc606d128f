"""``dfdetect predict VIDEO --explain DIR``: why did the model say so?

For the most suspicious window of a video: a heat map over its face frames (Grad-CAM-style class activation
from input gradients: gradient x input, smoothed, on the frames that had a face), a saliency map over its
log-mel spectrogram (the fake score's gradient with respect to the waveform, shown in the same
time-frequency layout), and the timeline of window scores with the fake segments marked. PNGs a person can
look at; the numbers behind them are in the verdict.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def gradients(model, frames: np.ndarray, audio: np.ndarray, mask: np.ndarray, head: str = "fake"):
    """d score / d frames and d score / d audio for one window (TensorFlow backend)."""
    import tensorflow as tf

    f = tf.convert_to_tensor(frames[None].astype(np.float32))
    a = tf.convert_to_tensor(audio[None].astype(np.float32))
    m = tf.convert_to_tensor(mask[None].astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch([f, a])
        out = model({"frames": f, "audio": a, "mask": m}, training=False)[head]
        score = tf.reduce_sum(out)
    gf, ga = tape.gradient(score, [f, a])
    gf = np.zeros_like(frames, np.float32) if gf is None else gf.numpy()[0]
    ga = np.zeros_like(audio, np.float32) if ga is None else ga.numpy()[0]
    return float(score.numpy()), gf, ga


def frame_heatmaps(frames: np.ndarray, grads: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-frame maps in [0, 1]: |gradient x input| summed over colour, blurred, normalised per window."""
    sal = np.abs(grads * frames.astype(np.float32)).sum(-1)
    k = max(3, frames.shape[1] // 5) | 1
    sal = np.stack([cv2.GaussianBlur(s, (k, k), 0) for s in sal])
    if not (mask > 0).any():
        return np.zeros_like(sal)
    # contrast-stretch between the median and the 99th percentile of the window's face frames
    lo, hi = np.percentile(sal[mask > 0], [50, 99.5])
    return np.clip((sal - lo) / (hi - lo + 1e-12), 0, 1) * mask[:, None, None]


def overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (0.55 * frame + 0.45 * colour).astype(np.uint8)


def explain_window(model, window, out_dir: str | Path, name: str, sample_rate: int = 16000) -> list[Path]:
    """Writes ``<name>_faces.png`` and ``<name>_spectrogram.png`` for one window."""
    from scipy import signal

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    score, gf, ga = gradients(model, window.frames, window.audio, window.mask.astype(np.float32))
    heat = frame_heatmaps(window.frames, gf, window.mask.astype(np.float32))
    T = len(window.frames)
    idx = np.linspace(0, T - 1, min(8, T)).round().astype(int)
    fig, axes = plt.subplots(2, len(idx), figsize=(2 * len(idx), 4.4))
    for j, i in enumerate(idx):
        axes[0, j].imshow(window.frames[i])
        axes[1, j].imshow(overlay(window.frames[i], heat[i]) if window.mask[i] else window.frames[i])
        axes[0, j].set_title(f"frame {i}" + ("" if window.mask[i] else " (no face)"), fontsize=8)
        for r in (0, 1):
            axes[r, j].axis("off")
    fig.suptitle(f"where the face evidence is (window at {window.start:.1f} s, fake score {score:.2f})")
    faces = out / f"{name}_faces.png"
    fig.savefig(faces, dpi=100, bbox_inches="tight")
    plt.close(fig)

    f, t, Z = signal.stft(window.audio, fs=sample_rate, nperseg=512, noverlap=512 - 160)
    _, _, G = signal.stft(ga * window.audio, fs=sample_rate, nperseg=512, noverlap=512 - 160)
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    axes[0].pcolormesh(t + window.start, f, 20 * np.log10(np.abs(Z) + 1e-6), shading="auto", cmap="magma")
    axes[0].set(ylabel="Hz", title="log spectrogram")
    axes[1].pcolormesh(t + window.start, f, np.abs(G), shading="auto", cmap="viridis")
    axes[1].set(ylabel="Hz", xlabel="seconds", title="saliency: |d fake / d audio| x audio, per time-frequency bin")
    spec = out / f"{name}_spectrogram.png"
    fig.savefig(spec, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [faces, spec]


def timeline_plot(verdict, out_dir: str | Path, name: str, threshold: float) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    mids = [(w["start"] + w["end"]) / 2 for w in verdict.timeline]
    for head, style in (("fake", "-o"), ("video_fake", ":"), ("audio_fake", ":"), ("av_mismatch", ":")):
        ax.plot(mids, [w[head] for w in verdict.timeline], style, label=head, ms=3)
    for s in verdict.segments:
        ax.axvspan(s["start"], s["end"], color="tab:red", alpha=0.15)
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    ax.set(ylim=(-0.02, 1.02), xlabel="seconds", ylabel="score",
           title=f"{Path(verdict.path).name}: {verdict.label} ({verdict.score:.2f}); shaded: fake segments")
    ax.legend(fontsize=7, ncol=5, loc="upper left")
    path = out / f"{name}_timeline.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def gradient_model(detector):
    """The detector's model rebuilt with float32 frames (a uint8 input has no gradient), same weights."""
    from dfdetect.model import build_model

    twin = getattr(detector, "_gradient_model", None)
    if twin is None:
        twin = build_model(detector.config, frames_dtype="float32")
        twin.set_weights(detector.model.get_weights())
        detector._gradient_model = twin
    return twin


def explain_video(detector, path: str | Path, out_dir: str | Path):
    """Scores a video and writes its three explanation PNGs; returns the verdict and the files."""
    v = detector.predict_video(path, keep_windows=True)
    if v.status != "ok" or not v.timeline:
        return v, []
    windows = v._windows  # type: ignore[attr-defined]
    worst = int(np.argmax([w["fake"] for w in v.timeline]))
    name = Path(path).stem
    files = explain_window(gradient_model(detector), windows[worst], out_dir, name,
                           detector.config.media.sample_rate)
    files.append(timeline_plot(v, out_dir, name, detector.threshold))
    del v._windows  # type: ignore[attr-defined]
    return v, files
