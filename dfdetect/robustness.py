"""``dfdetect robustness``: re-scores test videos under the DeeperForensics-1.0 perturbations at levels 1-5
and a few audio ones, and charts AUC per perturbation and level.

Pixel perturbations (colour saturation, contrast, block-wise occlusion, Gaussian noise, Gaussian blur,
down/up-scaling) are applied to every frame of each window's face crops, with their strength scaled from the
DeeperForensics full-frame parameters to the crop; H.264 re-encoding (CRF 30-40) encodes each window's
frames as a clip and decodes it back. Audio: white noise at 20/10/5 dB SNR, AAC re-encoding at a low bitrate,
resampling through 8 kHz. Applying them to windows, not to the source videos, skips re-running face
detection on each perturbed copy (a 44-condition sweep then takes minutes, not hours); the detector's own
robustness is a separate question.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

Frames = np.ndarray  # (T, H, W, 3) uint8

# DeeperForensics-1.0 levels 1..5 (their code's parameters)
CS = [0.4, 0.3, 0.2, 0.1, 0.0]  # colour saturation: chroma scale in YCbCr
CC = [0.85, 0.725, 0.6, 0.475, 0.35]  # contrast: scale around the mean
BW = [16, 32, 48, 64, 80]  # block-wise: number of blocks (full frame)
GNC = [0.001, 0.002, 0.005, 0.01, 0.05]  # Gaussian noise variance, pixels in [0, 1]
GB = [7, 9, 13, 17, 21]  # Gaussian blur kernel size (full frame)
DS = [2, 3, 4, 5, 6]  # down/up-scaling factor
CRF = [30, 32.5, 35, 37.5, 40]  # H.264 constant rate factor
SNR = [20, 10, 5]  # audio white noise, dB
BITRATE = [32000, 16000, 8000]  # AAC bits per second
FULL_FRAME_FACE = 0.3  # a face crop is about this share of a DeeperForensics frame's side


def saturation(frames: Frames, level: int, rng) -> Frames:
    out = []
    for f in frames:
        ycc = cv2.cvtColor(f, cv2.COLOR_RGB2YCrCb).astype(np.float32)
        ycc[..., 1:] = 128 + (ycc[..., 1:] - 128) * CS[level - 1]
        out.append(cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB))
    return np.stack(out)


def contrast(frames: Frames, level: int, rng) -> Frames:
    x = frames.astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return np.clip((x - mean) * CC[level - 1] + mean, 0, 255).astype(np.uint8)


def blockwise(frames: Frames, level: int, rng) -> Frames:
    """Grey blocks at fixed random places (the same on every frame); block count and size scaled from a
    full frame to the crop."""
    T, H, W, _ = frames.shape
    n = max(1, int(round(BW[level - 1] * FULL_FRAME_FACE ** 2)))
    size = max(2, int(round(H * 0.1)))
    out = frames.copy()
    for _ in range(n):
        y, x = rng.integers(0, H - size), rng.integers(0, W - size)
        out[:, y:y + size, x:x + size] = rng.integers(0, 256)
    return out


def gaussian_noise(frames: Frames, level: int, rng) -> Frames:
    x = frames.astype(np.float32) / 255.0
    x = x + rng.normal(0, np.sqrt(GNC[level - 1]), x.shape)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def gaussian_blur(frames: Frames, level: int, rng) -> Frames:
    k = max(3, int(round(GB[level - 1] * FULL_FRAME_FACE * frames.shape[1] / 112)) | 1)
    return np.stack([cv2.GaussianBlur(f, (k, k), 0) for f in frames])


def downscale(frames: Frames, level: int, rng) -> Frames:
    H, W = frames.shape[1:3]
    f = DS[level - 1]
    small = [cv2.resize(x, (max(1, W // f), max(1, H // f)), interpolation=cv2.INTER_AREA) for x in frames]
    return np.stack([cv2.resize(x, (W, H), interpolation=cv2.INTER_LINEAR) for x in small])


def h264(frames: Frames, level: int, rng) -> Frames:
    """Encodes the window's frames with libx264 at the level's CRF and decodes them back."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": str(CRF[level - 1]), "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    buf.seek(0)
    with av.open(buf, "r") as c:
        dec = [fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]
    dec = dec[: len(frames)] + [dec[-1]] * (len(frames) - len(dec))
    return np.stack(dec)


def audio_noise(audio: np.ndarray, level: int, rng) -> np.ndarray:
    rms = np.sqrt(np.mean(audio ** 2)) + 1e-9
    return (audio + rng.normal(0, rms * 10 ** (-SNR[level - 1] / 20), audio.shape)).astype(np.float32)


def audio_resample_8k(audio: np.ndarray, level: int, rng, sample_rate: int = 16000) -> np.ndarray:
    from scipy.signal import resample_poly

    low = resample_poly(audio, 1, sample_rate // 8000)
    return resample_poly(low, sample_rate // 8000, 1)[: audio.size].astype(np.float32)


def audio_aac(audio: np.ndarray, level: int, rng, sample_rate: int = 16000) -> np.ndarray:
    """Encodes to AAC at a low bitrate and decodes back (same length, same rate)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="adts") as out:
        s = out.add_stream("aac", rate=sample_rate, layout="mono")
        s.bit_rate = BITRATE[level - 1]
        step = s.codec_context.frame_size or 1024
        for i in range(0, audio.size, step):
            chunk = np.ascontiguousarray(audio[None, i:i + step].astype(np.float32))
            fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            fr.sample_rate, fr.pts = sample_rate, i
            for p in s.encode(fr):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    buf.seek(0)
    with av.open(buf, "r") as c:
        dec = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    # AAC adds encoder delay: align by cross-correlation of the first second
    lag = int(np.argmax(np.correlate(dec[: sample_rate + 4096], audio[:sample_rate], "valid")))
    dec = dec[lag:lag + audio.size]
    return np.pad(dec, (0, audio.size - dec.size)).astype(np.float32)


VIDEO: dict[str, tuple[Callable, int]] = {
    "saturation": (saturation, 5), "contrast": (contrast, 5), "blockwise": (blockwise, 5),
    "gaussian_noise": (gaussian_noise, 5), "gaussian_blur": (gaussian_blur, 5), "downscale": (downscale, 5),
    "h264": (h264, 5),
}
AUDIO: dict[str, tuple[Callable, int]] = {
    "audio_noise": (audio_noise, 3), "audio_aac": (audio_aac, 3), "audio_8khz": (audio_resample_8k, 1),
}


def perturb(inputs: dict[str, np.ndarray], name: str, level: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Applies one perturbation at one level to a batch of windows (numpy)."""
    rng = np.random.default_rng([seed, level])
    out = dict(inputs)
    if name in VIDEO:
        fn = VIDEO[name][0]
        out["frames"] = np.stack([fn(f, level, rng) for f in inputs["frames"]])
    elif name in AUDIO:
        fn = AUDIO[name][0]
        out["audio"] = np.stack([fn(a, level, rng) for a in inputs["audio"]])
    else:
        raise ValueError(f"unknown perturbation {name!r}")
    return out


def run_robustness(run_dir: str | Path, data_dir: str | Path, out_dir: str | Path, split: str = "test",
                   names: list[str] | None = None, progress: bool = True):
    """Video-level AUC for every perturbation and level; writes ``robustness.csv`` and ``robustness.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from tqdm.auto import tqdm

    from dfdetect.config import load_config
    from dfdetect.errors import BadArgument
    from dfdetect.evaluate import video_scores
    from dfdetect.metrics import roc_auc
    from dfdetect.pipeline import make_dataset
    from dfdetect.preprocess import check_data_config
    from dfdetect.train import load_run_model

    unknown = sorted(set(names or []) - set(VIDEO) - set(AUDIO))
    if unknown:
        raise BadArgument(f"unknown perturbation {', '.join(unknown)}; known: {', '.join([*VIDEO, *AUDIO])}")
    run, out = Path(run_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(run / "config.yaml")
    check_data_config(config, data_dir)  # scored on data cut another way: refused, naming the fields
    model = load_run_model(run)
    batches = [(
        {k: v.numpy() for k, v in inputs.items()},
        {k: v.numpy() for k, v in targets.items()},
        {k: v.numpy() for k, v in weights.items()},
        {k: v.numpy() for k, v in meta.items()},
    ) for inputs, targets, weights, meta in make_dataset(data_dir, config, split, batch_size=32, with_meta=True)]
    if not batches:
        raise BadArgument(f"{data_dir} has no windows in split {split!r}")
    conditions = [("clean", 0)] + [(n, lvl) for n, (_, levels) in {**VIDEO, **AUDIO}.items()
                                   if names is None or n in names for lvl in range(1, levels + 1)]
    rows = []
    for name, level in tqdm(conditions, desc="robustness", disable=not progress):
        recs = []
        for inputs, targets, weights, meta in batches:
            x = inputs if name == "clean" else perturb(inputs, name, level)
            preds = model.predict_on_batch(x)
            for i in range(len(meta["path"])):
                recs.append({"path": meta["path"][i].decode(), "category": meta["category"][i].decode(),
                             "dataset": meta["dataset"][i].decode(),
                             "method": meta["method"][i].decode(), "start": float(meta["start"][i]),
                             "fake_label": int(targets["fake"][i][0]) if weights["fake"][i] > 0 else -1,
                             "fake_score": float(np.asarray(preds["fake"])[i].reshape(-1)[0])})
                for h in ("video_fake", "audio_fake", "av_mismatch"):
                    recs[-1][f"{h}_label"], recs[-1][f"{h}_score"] = -1, float(np.asarray(preds[h])[i][0])
        v = video_scores(pd.DataFrame(recs))
        rows.append({"perturbation": name, "level": level, "auc": roc_auc(v["fake_label"], v["fake_score"])})
    df = pd.DataFrame(rows)
    df.to_csv(out / "robustness.csv", index=False)
    clean = float(df.loc[df.perturbation == "clean", "auc"].iloc[0])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, g in df[df.perturbation != "clean"].groupby("perturbation", sort=False):
        ax.plot(g["level"], g["auc"], "o-", label=name)
    ax.axhline(clean, color="black", ls="--", label=f"clean ({clean:.2f})")
    ax.axhline(0.5, color="grey", ls=":")
    ax.set(xlabel="level", ylabel="video ROC AUC", title="Robustness (DeeperForensics-1.0 levels; audio: "
                                                          "20/10/5 dB, 32/16/8 kbps, 8 kHz)", ylim=(0.4, 1.02))
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.legend(fontsize=8, ncol=2)
    fig.savefig(out / "robustness.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return df
