"""``dfdetect export --model RUN [--out DIR]``: a SavedModel with a named serving signature, the ``.keras``
model beside it, the training data's familiarity statistics, and a model card (JSON + Markdown) holding
everything inference needs.

    DIR/saved_model/       tf.saved_model.load(...).signatures["serving_default"](frames=, audio=, mask=)
                           -> fake, video_fake, audio_fake, av_mismatch (batch,), embedding (batch, d) and,
                           for a model with frame heads, frame_fake, frame_video, frame_audio (batch, T)
    DIR/model.keras        keras.saving.load_model(..., safe_mode=True)
    DIR/model.tflite       the same network for LiteRT (``ai_edge_litert``), builtin ops only, batch 1, the
                           serving signature's inputs and outputs: what ``dfdetect predict`` runs by default,
                           without importing TensorFlow (the card's ``tflite`` says which model.keras it is)
    DIR/familiarity.npz    training-data statistics of the embedding and the abstention threshold
    DIR/model_card.json    window length, frame rate, crop size, sample rate, threshold, temperature, training
                           domain, abstention rate on its test split, metrics, config
    DIR/model_card.md      the same for people

The decision threshold and temperature come from the run's evaluation (``dfdetect evaluate``): ``--report``,
else ``RUN/report``, else a report under ``reports/`` that evaluated this run. Without one the card says so
and the threshold is 0.5, and export warns loudly.
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
from dfdetect.heads import FRAME_HEADS, HEADS
from dfdetect.integrity import file_hashes, sha256_file

CARD = "model_card.json"
TFLITE = "model.tflite"


class ModelCardError(UsageError, ValueError):
    """A model folder without a valid card: predict cannot know how to cut windows."""


def serving_signature(model, config: Config, batch: int | None = None):
    """A ``tf.function`` taking named uint8 frames, float32 waveform and float32 mask batches and returning
    the four named scores as ``(batch,)`` float32, the pooled ``embedding`` ``(batch, d)`` (what
    familiarity is measured on) and the frame-level scores ``(batch, T)`` (one per video frame of the window:
    the probability that the frame lies in a fake segment) when the model has frame heads. ``batch``: a fixed
    batch size (the ``.tflite`` copy needs one), else any."""
    import tensorflow as tf

    T, C, S = config.frames_per_window, config.faces.crop_size, config.samples_per_window

    from dfdetect.familiarity import with_embedding

    full = with_embedding(model)

    def outputs(inputs):
        out = full(inputs, training=False)
        res = {h: tf.reshape(tf.cast(out[h], tf.float32), [-1]) for h in HEADS}
        res["embedding"] = tf.cast(out["embedding"], tf.float32)
        for h in FRAME_HEADS:
            if h in out:
                res[h] = tf.reshape(tf.cast(out[h], tf.float32), [-1, T])
        return res

    specs = [tf.TensorSpec((batch, T, C, C, 3), tf.uint8, name="frames"),
             tf.TensorSpec((batch, S), tf.float32, name="audio"), tf.TensorSpec((batch, T), tf.float32, name="mask")]
    if "mouth" in model.input:  # the mouth track (x, y per frame, -1 where unknown) the mouth crop follows
        @tf.function(input_signature=[*specs, tf.TensorSpec((batch, T, 2), tf.float32, name="mouth")])
        def serve_mouth(frames, audio, mask, mouth):
            return outputs({"frames": frames, "audio": audio, "mask": mask, "mouth": mouth})

        return serve_mouth

    @tf.function(input_signature=specs)
    def serve(frames, audio, mask):
        return outputs({"frames": frames, "audio": audio, "mask": mask})

    return serve


def tflite_model(model, config: Config) -> bytes:
    """The serving signature as a ``.tflite`` flatbuffer for ``ai_edge_litert`` (no TensorFlow at prediction):
    builtin ops only (the standalone LiteRT interpreter has no Select-TF ops), batch 1, signature
    ``serving_default`` with the same named inputs and outputs as the SavedModel's.

    Why batch 1 and frozen weights: with a free batch size the converter cannot lower the LSTMs' tensor lists
    (``TensorListReserve`` needs a static element shape), and with the weights left as resource variables
    the LSTM loops read them through ``READ_VARIABLE`` inside ``WHILE``, which fails at run time. A fixed
    batch is no loss: ``bench/startup.py`` measured batch 1 in a loop as fast per window as a fixed batch 8,
    and a batch-1 model needs no padding of a video's last batch."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = serving_signature(model, config, batch=1).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    specs = list(concrete.structured_input_signature[1].values()) or list(concrete.structured_input_signature[0])
    specs = sorted(specs, key=lambda s: ("frames", "audio", "mask", "mouth").index(s.name))
    names = [s.name for s in specs]

    @tf.function(input_signature=specs)
    def serve(*args):
        # the frozen graph returns a flat list: give the outputs their names back
        return tf.nest.pack_sequence_as(concrete.structured_outputs, frozen(**dict(zip(names, args))))

    holder = tf.Module()
    holder.serve = serve
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def write_tflite(model, config: Config, out: Path, say) -> dict[str, Any] | None:
    """Writes ``out/model.tflite`` (``tflite_model``) and returns the card's ``tflite`` entry: the file, the
    sha256 of the ``model.keras`` it was converted from (predict uses the ``.tflite`` only while they still
    match) and how long the conversion took. A model the converter cannot take: a warning and None (predict
    then loads ``model.keras``, slower to start)."""
    from dfdetect.quiet import native_logs_filtered

    path = out / TFLITE
    if path.exists():
        path.unlink()  # another model's copy must not stay beside this one
    t = time.perf_counter()
    try:
        with native_logs_filtered():  # the converter's MLIR passes log to fd 2
            flat = tflite_model(model, config)
    except Exception as e:  # noqa: BLE001 - an unconvertible layer must not cost the rest of the export
        say(f"WARNING: no {TFLITE}: the converter failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "predict will load model.keras instead (slower to start)")
        return None
    path.write_bytes(flat)
    return {"file": TFLITE, "keras_sha256": sha256_file(out / "model.keras"),
            "batch": 1, "ops": "TFLITE_BUILTINS", "convert_seconds": round(time.perf_counter() - t, 2)}


def _card(run: Path, config: Config, threshold: float, metrics: dict | None, *, summary: dict,
          which: str = "best", evaluation: dict | None = None, domain: dict | None = None,
          familiarity: dict | None = None, tflite: dict | None = None) -> dict[str, Any]:
    ev = evaluation or {}
    return {
        "format": "dfdetect-model-card/1",
        "dfdetect_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "run": str(run),
        "checkpoint": which,
        "inputs": {
            "window_seconds": config.window.seconds, "hop_seconds": config.window.hop_seconds,
            "fps": config.media.fps, "frames_per_window": config.frames_per_window,
            "crop_size": config.faces.crop_size, "face_margin": config.faces.margin,
            "sample_rate": config.media.sample_rate, "samples_per_window": config.samples_per_window,
            "trim_leading_silence": config.window.trim_leading_silence,
            "min_face_ratio": config.window.min_face_ratio,
        },
        "outputs": [*HEADS, *(FRAME_HEADS if config.model.frame_heads else ())],
        "frame_outputs": ({"heads": list(FRAME_HEADS), "per": "time step = video frame of the window",
                           "fps": config.media.fps, "shape": ["batch", config.frames_per_window],
                           "meaning": "probability that the frame lies in a fake segment (any modality, the face, "
                                      "the voice); overlapping windows are averaged into a per-frame track and "
                                      "runs of frames at or above 0.5 become fake segments",
                           "localisation": ev.get("localisation") or {}}
                          if config.model.frame_heads else None),
        "threshold": threshold,
        "threshold_source": ev.get("source") or "default 0.5: no evaluation of this run was found",
        "threshold_rule": ev.get("threshold_rule"),
        "temperature": float(ev.get("temperature") or 1.0),
        "training": {"data": summary.get("data"), "train_windows": summary.get("train_windows"),
                     "epochs": summary.get("epochs_run"), "best_val_auc": summary.get("best"),
                     "domain": domain or {}},
        "familiarity": familiarity or {},
        "tflite": tflite,
        "metrics": metrics or {},
        "config": config.to_dict(),
        "intended_use": "Research and triage of possibly manipulated talking-head videos. Scores are evidence, "
                        "not proof. A model is only as good as the domain it was trained on (see training."
                        "domain): a video unlike its training data is labelled uncertain rather than given a "
                        "score that means nothing. A model trained on the built-in synthetic benchmark says "
                        "nothing about real-world deepfakes: its metrics are a pipeline check.",
    }


def _card_md(card: dict) -> str:
    inp = card["inputs"]
    m = card.get("metrics", {})
    dom = card["training"].get("domain") or {}
    fam = card.get("familiarity") or {}
    lines = [f"# dfdetect model ({card['created']})", "",
             f"- windows: {inp['window_seconds']} s, hop {inp['hop_seconds']} s, {inp['fps']} fps, "
             f"{inp['crop_size']} px face crops, {inp['sample_rate']} Hz mono audio",
             f"- decision threshold on the `fake` score: {card['threshold']:.3f} ({card['threshold_source']}"
             + (f"; rule: {card['threshold_rule']}" if card.get("threshold_rule") else "") + ")",
             f"- temperature (calibrated probability = sigmoid(logit(score) / T)): {card['temperature']:.3f}",
             f"- outputs: {', '.join(card['outputs'])}",
             *([f"- frame-level outputs {', '.join(card['frame_outputs']['heads'])}: one score per video frame "
                f"({card['frame_outputs']['fps']} fps) of each window, the probability that the frame lies in a fake "
                "segment; stitched into a per-frame track, runs at or above 0.5 are the fake segments"
                + ("; test localisation: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in card["frame_outputs"]["localisation"].items()
                    if isinstance(v, (int, float)) and k.startswith(("ap@0.5", "ap@0.75", "ar@5", "frame_auc")))
                   if card["frame_outputs"].get("localisation") else "")]
               if card.get("frame_outputs") else []),
             f"- trained on: {card['training'].get('data')} ({card['training'].get('train_windows')} windows, "
             f"{card['training'].get('epochs')} epochs)"]
    if dom:
        lines.append(f"- training domain: {dom.get('description', '')}")
    if fam:
        rate = fam.get("test_abstention_rate")
        lines.append(f"- familiarity: Mahalanobis distances of the {', '.join(fam.get('parts', []))} features, threshold "
                     f"{fam.get('threshold', float('nan')):.2f} chosen to flag {fam.get('target_rate', 0.05):.0%} of "
                     f"held-out {fam.get('held_out_split')} videos; abstains on "
                     + (f"{rate:.1%} of its own test split ({fam.get('test_videos')} videos)" if rate is not None
                        else "an unmeasured share of its test split (no test split)"))
    else:
        lines.append("- familiarity: none (this export has no familiarity statistics; predict reports "
                     "in_distribution null)")
    lite = card.get("tflite")
    lines.append(f"- {lite['file']}: the LiteRT copy `dfdetect predict` scores with (builtin ops, batch {lite['batch']}; "
                 f"converted from model.keras sha256 {lite['keras_sha256'][:12]}...)" if lite else
                 f"- no {TFLITE}: predict loads model.keras with TensorFlow (a slower start)")
    if m:
        lines.append("- test metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()
                                                      if isinstance(v, (int, float))))
        if "synth" in str(dom.get("datasets", "")):
            lines.append("  (built-in benchmark: a pipeline check, never a claim about real-world deepfakes)")
    lines += ["", "## Intended use", "", card["intended_use"], ""]
    return "\n".join(lines)


def find_evaluation(run: Path, which: str = "best", report_dir: str | Path | None = None,
                    search: tuple[Path, ...] = (Path("reports"),)) -> Path | None:
    """The folder of the evaluation of this run's ``which`` model: ``report_dir`` if given (an error when it
    has no ``metrics.json``), else ``RUN/report``, else the newest ``metrics.json`` under ``search`` (and
    beside the run's folder) whose ``run`` is this run."""
    if report_dir is not None:
        if not (Path(report_dir) / "metrics.json").exists():
            raise MissingInput(f"--report {report_dir} has no metrics.json: run `dfdetect evaluate` into it first")
        return Path(report_dir)
    if (run / "report" / "metrics.json").exists():
        return run / "report"
    me = run.resolve()
    found = []
    for root in {*search, run.parent.parent / "reports"}:
        for f in Path(root).glob("**/metrics.json") if Path(root).is_dir() else []:
            try:
                rm = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if rm.get("run") and Path(rm["run"]).resolve() == me and rm.get("model", "best") == which:
                found.append(f)
    return max(found, key=lambda f: f.stat().st_mtime).parent if found else None


def training_domain(data_dir: str | Path | None) -> dict[str, Any]:
    """What the training data was: datasets, categories, methods, videos and identities of its train split."""
    if not data_dir or not (Path(data_dir) / "manifest.csv").exists():
        return {"description": f"unknown ({data_dir}: no manifest)"}
    from dfdetect.preprocess import load_manifest

    m = load_manifest(data_dir)
    m = m[m["status"] == "ok"]
    tr = m[m["split"].astype(str) == "train"] if "split" in m else m
    datasets = sorted(str(x) for x in tr["dataset"].dropna().unique()) if "dataset" in tr else []
    out = {"datasets": datasets, "videos": int(len(tr)), "identities": int(tr["group"].nunique())
           if "group" in tr else None,
           "categories": {str(k): int(v) for k, v in tr["category"].value_counts().sort_index().items()}
           if "category" in tr else {},
           "methods": sorted(str(x) for x in tr["method"].dropna().unique()) if "method" in tr else []}
    desc = f"{out['videos']} training videos of {out['identities']} identities from {', '.join(datasets) or '?'}"
    if any("synth" in d for d in datasets):
        desc += (" (the built-in synthetic benchmark: talking clips made from real face photographs "
                 "with synthesised voices; real footage is outside this domain)")
    out["description"] = desc
    return out


def export_model(run_dir: str | Path, out_dir: str | Path | None = None, which: str = "best",
                 report_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 log=None) -> Path:
    """Exports a training run: SavedModel, ``.keras``, familiarity statistics and the model card.

    Args:
        run_dir: a ``dfdetect train`` folder.
        out_dir: where to write (default ``saved_models/export-RUNNAME``).
        which: ``best`` or ``final`` checkpoint.
        report_dir: the evaluation to take the threshold and temperature from (see ``find_evaluation``).
        data_dir: the preprocessed training data (default: the run's, from ``summary.json``); its ``train``
            split gives the familiarity statistics, ``val`` the abstention threshold, ``test`` the abstention
            rate on the card.
        log: where warnings go (default: stderr).
    """
    import sys

    import tensorflow as tf

    from dfdetect.train import load_run_model

    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    run = Path(run_dir)
    if not (run / "config.yaml").exists():
        raise MissingInput(f"{run} is not a training run folder (no config.yaml)")
    config = load_config(run / "config.yaml")
    out = Path(out_dir) if out_dir else Path("saved_models") / f"export-{run.name}"
    out.mkdir(parents=True, exist_ok=True)
    model = load_run_model(run, which)
    if config.model.frame_heads and not all(h in model.output for h in FRAME_HEADS):
        # a run trained before frame heads existed: its config.yaml does not say so, the model does
        import dataclasses

        config = dataclasses.replace(config, model=dataclasses.replace(config.model, frame_heads=False))
    threshold, metrics, evaluation = 0.5, None, {}
    rep = find_evaluation(run, which, report_dir)
    if rep is not None:
        rm = json.loads((rep / "metrics.json").read_text())
        threshold = rm.get("val_threshold") or 0.5
        metrics = {k: rm["video"].get(k) for k in ("auc", "eer", "ap", "accuracy@0.5", "log_loss")}
        loc = (rm.get("localisation") or {}).get("any")
        evaluation = {"source": f"chosen on the val split by {rep / 'metrics.json'}",
                      "threshold_rule": rm.get("threshold_rule"), "temperature": rm.get("temperature"),
                      "localisation": loc}
        if rm.get("val_threshold") is None:
            evaluation["source"] = f"default 0.5: {rep / 'metrics.json'} had no val split to choose on"
    else:
        say(f"WARNING: no evaluation of {run} ({which}) found (RUN/report, reports/): the model card gets "
            "threshold 0.5, no temperature and no metrics. Run `dfdetect evaluate --model RUN --data DIR --out "
            "REPORT` and export again with --report REPORT.")

    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    data = Path(data_dir) if data_dir else (Path(summary["data"]) if summary.get("data") else None)
    familiarity = _export_familiarity(model, data, config, out, say)

    if (out / "saved_model").exists():
        shutil.rmtree(out / "saved_model")
    module = tf.Module()
    module.model = model
    module.serve = serving_signature(model, config)
    tf.saved_model.save(module, str(out / "saved_model"), signatures={"serving_default": module.serve})
    model.save(out / "model.keras")
    tflite = write_tflite(model, config, out, say)  # after model.keras: it records that file's sha256
    config.to_yaml(out / "config.yaml")
    card = _card(run, config, float(threshold), metrics, summary=summary, which=which, evaluation=evaluation,
                 domain=training_domain(data), familiarity=familiarity, tflite=tflite)
    # last, once every other file is written: predict and serve check what they load against these
    card["files"] = file_hashes(out)
    (out / CARD).write_text(json.dumps(card, indent=1))
    (out / "model_card.md").write_text(_card_md(card))
    return out


def _export_familiarity(model, data: Path | None, config: Config, out: Path, say) -> dict | None:
    """Fits and saves ``familiarity.npz``; measures the abstention rate on the test split. Without the
    training data: a loud warning and none (predict then reports ``in_distribution`` null)."""
    from dfdetect.familiarity import FILE, embed_split, fit_reference, video_distances, with_embedding
    from dfdetect.pipeline import count_windows

    stale = out / FILE
    if data is None or not (data / "windows.csv").exists():
        if stale.exists():
            stale.unlink()  # another model's statistics must not stay beside this one
        say(f"WARNING: the training data ({data}) is not available: no familiarity statistics, so predict "
            "cannot tell when a video is unlike the training data (in_distribution null). Pass --data DIR.")
        return None
    model = with_embedding(model)  # once, for the statistics and the test split
    ref = fit_reference(model, data, config)
    ref.save(out)
    fam = ref.summary()
    if count_windows(data, "test"):
        x, t = embed_split(model, data, config, "test")
        d = video_distances(ref, x, t["path"])
        fam["test_videos"] = int(len(d))
        fam["test_abstention_rate"] = float((d > ref.threshold).mean())
    return fam


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
