"""``dfdetect export --model RUN [--out DIR]``: a SavedModel with a named serving signature, the ``.keras``
model beside it, and a model card (JSON + Markdown) holding everything inference needs.

    DIR/saved_model/       tf.saved_model.load(...).signatures["serving_default"](frames=, audio=, mask=)
    DIR/model.keras        keras.saving.load_model(..., safe_mode=True)
    DIR/model_card.json    window length, frame rate, crop size, sample rate, threshold, data, metrics, config
    DIR/model_card.md      the same for people
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from dfdetect import __version__
from dfdetect.config import Config, load_config
from dfdetect.errors import MissingInput, UsageError
from dfdetect.model import HEADS

CARD = "model_card.json"


class ModelCardError(UsageError, ValueError):
    """A model folder without a valid card: predict cannot know how to cut windows."""


def serving_signature(model, config: Config):
    """A ``tf.function`` taking named uint8 frames, float32 waveform and float32 mask batches and returning
    the four named scores as ``(batch,)`` float32."""
    import tensorflow as tf

    T, C, S = config.frames_per_window, config.faces.crop_size, config.samples_per_window

    @tf.function(input_signature=[tf.TensorSpec((None, T, C, C, 3), tf.uint8, name="frames"),
                                  tf.TensorSpec((None, S), tf.float32, name="audio"),
                                  tf.TensorSpec((None, T), tf.float32, name="mask")])
    def serve(frames, audio, mask):
        out = model({"frames": frames, "audio": audio, "mask": mask}, training=False)
        return {h: tf.reshape(tf.cast(out[h], tf.float32), [-1]) for h in HEADS}

    return serve


def _card(run: Path, config: Config, threshold: float, metrics: dict | None) -> dict[str, Any]:
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    return {
        "format": "dfdetect-model-card/1",
        "dfdetect_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "run": str(run),
        "inputs": {
            "window_seconds": config.window.seconds, "hop_seconds": config.window.hop_seconds,
            "fps": config.media.fps, "frames_per_window": config.frames_per_window,
            "crop_size": config.faces.crop_size, "face_margin": config.faces.margin,
            "sample_rate": config.media.sample_rate, "samples_per_window": config.samples_per_window,
            "trim_leading_silence": config.window.trim_leading_silence,
        },
        "outputs": list(HEADS),
        "threshold": threshold,
        "training": {"data": summary.get("data"), "train_windows": summary.get("train_windows"),
                     "epochs": summary.get("epochs_run"), "best_val_auc": summary.get("best")},
        "metrics": metrics or {},
        "config": config.to_dict(),
        "intended_use": "Research and triage of possibly manipulated talking-head videos. Scores are evidence, "
                        "not proof; a model trained on the built-in synthetic benchmark says nothing about "
                        "real-world deepfakes.",
    }


def _card_md(card: dict) -> str:
    inp = card["inputs"]
    m = card.get("metrics", {})
    lines = [f"# dfdetect model ({card['created']})", "",
             f"- windows: {inp['window_seconds']} s, hop {inp['hop_seconds']} s, {inp['fps']} fps, "
             f"{inp['crop_size']} px face crops, {inp['sample_rate']} Hz mono audio",
             f"- decision threshold on the `fake` score: {card['threshold']:.3f}",
             f"- outputs: {', '.join(card['outputs'])}",
             f"- trained on: {card['training'].get('data')} ({card['training'].get('train_windows')} windows, "
             f"{card['training'].get('epochs')} epochs)"]
    if m:
        lines.append("- test metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()
                                                      if isinstance(v, (int, float))))
    lines += ["", "## Intended use", "", card["intended_use"], ""]
    return "\n".join(lines)


def export_model(run_dir: str | Path, out_dir: str | Path | None = None, which: str = "best",
                 report_dir: str | Path | None = None) -> Path:
    """Exports a training run. The threshold comes from an evaluation report's val-chosen threshold when
    ``report_dir`` (or ``RUN/report``) has ``metrics.json``, else 0.5."""
    import tensorflow as tf

    from dfdetect.train import load_run_model

    run = Path(run_dir)
    if not (run / "config.yaml").exists():
        raise MissingInput(f"{run} is not a training run folder (no config.yaml)")
    config = load_config(run / "config.yaml")
    out = Path(out_dir) if out_dir else Path("saved_models") / f"export-{run.name}"
    out.mkdir(parents=True, exist_ok=True)
    model = load_run_model(run, which)
    threshold, metrics = 0.5, None
    for rep in [Path(report_dir)] if report_dir else [run / "report"]:
        if (rep / "metrics.json").exists():
            rm = json.loads((rep / "metrics.json").read_text())
            threshold = rm.get("val_threshold") or 0.5
            metrics = {k: rm["video"].get(k) for k in ("auc", "eer", "ap", "accuracy@0.5", "log_loss")}
    if (out / "saved_model").exists():
        shutil.rmtree(out / "saved_model")
    module = tf.Module()
    module.model = model
    module.serve = serving_signature(model, config)
    tf.saved_model.save(module, str(out / "saved_model"), signatures={"serving_default": module.serve})
    model.save(out / "model.keras")
    config.to_yaml(out / "config.yaml")
    card = _card(run, config, float(threshold), metrics)
    (out / CARD).write_text(json.dumps(card, indent=1))
    (out / "model_card.md").write_text(_card_md(card))
    return out


def read_card(model_dir: str | Path) -> dict[str, Any]:
    """The model card of an exported model folder; a clear error when it is missing or invalid."""
    path = Path(model_dir) / CARD
    if not path.exists():
        raise ModelCardError(f"{model_dir} has no {CARD}: export a run with `dfdetect export --model RUN`")
    try:
        card = json.loads(path.read_text())
        missing = [k for k in ("inputs", "threshold", "config") if k not in card]
        if missing:
            raise KeyError(", ".join(missing))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelCardError(f"{path} is not a valid dfdetect model card ({type(e).__name__}: {e})") from None
    return card


def latest_export(root: str | Path = "saved_models") -> Path | None:
    """The most recently exported model folder under ``root`` (one holding a model card)."""
    cards = sorted(Path(root).glob(f"**/{CARD}"), key=lambda p: p.stat().st_mtime)
    return cards[-1].parent if cards else None
