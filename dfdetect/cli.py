"""The ``dfdetect`` command line: one thin entry point over the package.

Exit codes: 0 every input handled, 3 some inputs failed (each with its reason in the output), 2 usage
errors (a ``dfdetect.errors.UsageError``: bad flags, missing folders, bad config...), 1 an internal error (any
other exception: a bug; its traceback goes to the command's log file, see ``LOGS``), 130 Ctrl-C. A verdict is
data in the output, never an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from dfdetect.errors import UsageError, default_log, log_traceback, one_line

if TYPE_CHECKING:  # the commands import what they need when they run
    from dfdetect.config import Config
    from dfdetect.preprocess import RunSummary

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

__all__ = ["EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "UsageError",
           "build_parser", "main"]

# Where each command writes the traceback of an internal error (`_log_path` computes the file).
LOGS = {
    "preprocess": "OUT/logs/preprocess.log",
    "synth": "OUT/logs/synth.log",
    "train": "RUN/logs/train.log",
    "evaluate": "REPORT_DIR/evaluate.log",
    "robustness": "REPORT_DIR/robustness.log",
    "export": "RUN/logs/export.log",
    "predict": "next to --csv FILE (FILE with .log), else $TMPDIR/dfdetect-predict-TIME-PID.log",
    "demo": "ROOT/reports/demo-CONFIG/demo.log",
    "serve": "$TMPDIR/dfdetect-serve-TIME-PID.log",
}
RESUMABLE = {"preprocess", "synth", "train", "demo"}


# One example per command, first in its --help epilog (a newcomer's first question is what to type).
EXAMPLES = {
    None: "dfdetect predict clip.mp4 (score one video with the latest exported model); dfdetect demo (the "
          "whole job on the built-in benchmark); dfdetect COMMAND --help for each command's options",
    "models": "dfdetect models fetch",
    "models-fetch": "dfdetect models fetch --source ~/Downloads/face_detection_short_range.tflite",
    "probe": "dfdetect probe clip.mp4 --json",
    "preprocess": "dfdetect preprocess data/raw/synth --out data/processed/synth --config cpu-small",
    "synth": "dfdetect synth --out data/raw/synth --n 400",
    "datasets": "dfdetect datasets inspect ~/data/FakeAVCeleb_v1.2",
    "datasets-inspect": "dfdetect datasets inspect ~/data/FakeAVCeleb_v1.2 --json",
    "train": "dfdetect train --data data/processed/synth --out saved_models/run1 --config cpu-small",
    "evaluate": "dfdetect evaluate --model saved_models/run1 --data data/processed/synth --out reports/run1",
    "robustness": "dfdetect robustness --model saved_models/run1 --data data/processed/synth "
                  "--out reports/run1-robustness --only gaussian_blur --only h264",
    "export": "dfdetect export --model saved_models/run1 --out saved_models/export-run1",
    "predict": "dfdetect predict clip.mp4 videos/ --json --csv verdicts.csv",
    "serve": "dfdetect serve --model saved_models/export-run1 --port 8000 (then open http://127.0.0.1:8000/)",
    "demo": "dfdetect demo --n 100 --epochs 3",
}


def _exit_epilog(command: str | None = None) -> str:
    """The exit-code paragraph of ``--help``, with where ``command`` (or each command) logs tracebacks."""
    if command:
        where = LOGS.get(command, f"$TMPDIR/dfdetect-{command}-TIME-PID.log")
    else:
        where = "; ".join(f"{c} {p}" for c, p in LOGS.items())
        where += "; others $TMPDIR/dfdetect-COMMAND-TIME-PID.log"
    return (f"Example: {EXAMPLES[command]}. "
            "Exit codes: 0 every input handled; 3 some inputs failed (each with its reason in the output); "
            "2 usage error (bad flags or values, missing folders, bad config); 1 internal error (a bug: one "
            "line on stderr names the log file holding the traceback); 130 interrupted (Ctrl-C). "
            f"Tracebacks: {where}.")


# Commands that load TensorFlow anyway: it is imported up front, its start-up logs filtered (dfdetect.quiet).
# Not predict and serve: they score with the exported model.tflite through LiteRT and never need TensorFlow
# (4-6 s of a cold start); a Detector that falls back on model.keras imports it quietly itself.
TF_COMMANDS = {"preprocess", "train", "evaluate", "robustness", "export", "demo"}
VERBOSE_HELP = ("show the native libraries' logs (TensorFlow, MediaPipe, LiteRT start-up lines), hidden by "
                "default; also DFDETECT_VERBOSE=1")


# --- models ------------------------------------------------------------------------------------------------
def cmd_models_fetch(args: argparse.Namespace) -> int:
    from dfdetect.model_files import fetch_models

    if args.source is not None and not Path(args.source).exists():
        raise UsageError(f"--source {args.source} not found")
    # ModelFileError (no source reachable, a checksum mismatch) is the user's to fix: main() exits 2
    paths = fetch_models(names=args.name or None, source=args.source, dest_dir=args.dir,
                         use_url=not args.no_url, log=lambda m: print(m, file=sys.stderr))
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return EXIT_OK


# --- probe -------------------------------------------------------------------------------------------------
def cmd_probe(args: argparse.Namespace) -> int:
    from dfdetect.media import MediaError, probe

    code = EXIT_OK
    for path in args.video:
        try:
            info = probe(path).to_dict()
            info["status"] = "ok"
        except MediaError as e:
            info = {"path": path, "status": "failed", "reason": str(e)}
            code = EXIT_PARTIAL
        if args.json:
            print(json.dumps(info))
        elif info["status"] == "ok":
            audio = (f"{info['audio_codec']} {info['sample_rate']} Hz x{info['channels']}"
                     if info["has_audio"] else "no audio")
            print(f"{path}: {info['width']}x{info['height']} (rotation {info['rotation']}), "
                  f"{info['fps']:g} fps, {info['duration']:.2f} s, {info['video_codec']}; {audio}")
        else:
            print(f"{path}: failed: {info['reason']}", file=sys.stderr)
    return code


# --- preprocess --------------------------------------------------------------------------------------------
ALLOW_LEAKS_HELP = ("go on, with a warning, when the split puts one identity group (a person, with every clip that "
                    "borrows their face or voice) on two sides; refused by default (exit 2), since the best epoch "
                    "would then be chosen on people the model trains on")


def cmd_preprocess(args: argparse.Namespace) -> int:
    from dfdetect.config import load_config
    from dfdetect.preprocess import preprocess

    cfg = load_config(args.config, args.set)
    _check_workers(args.workers)
    if args.runner == "local":
        summary = preprocess(args.inputs, args.out, config=cfg, shard_index=args.shard_index,
                             num_shards=args.num_shards, workers=args.workers, retry_failed=args.retry_failed,
                             progress=not args.no_progress, allow_leaks=args.allow_leaks)
    else:
        summary = _preprocess_beam(args, cfg)
    errors = f"{summary.errors} internal errors, " if summary.errors else ""
    print(f"{summary.ok} ok, {summary.failed} failed, {errors}{summary.windows} windows "
          f"({summary.skipped} done in an earlier run) -> {summary.manifest}")
    for path, reason in summary.failures[:20]:
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    if len(summary.failures) > 20:
        print(f"  ... and {len(summary.failures) - 20} more in {summary.manifest}", file=sys.stderr)
    _report_crashes(summary.crashes, summary.log)
    return summary.exit_code


def _preprocess_beam(args: argparse.Namespace, cfg: Config) -> RunSummary:
    """``--runner beam`` (or a Beam runner's name): the pipeline in ``dfdetect.beam``, Beam's options passed on."""
    from dfdetect import beam

    beam.require_beam()  # before anything else: a missing extra is the first thing to say
    # Beam spreads the work itself: this machine's split of the input list and process count do not apply
    for flag, given in (("--workers", args.workers is not None), ("--shard-index", args.shard_index != 0),
                        ("--num-shards", args.num_shards != 1)):
        if given:
            raise UsageError(f"{flag} is for --runner local; with Beam, size the work with Beam's options "
                             "(e.g. --direct_num_workers=2 --direct_running_mode=multi_processing, or "
                             "--max_num_workers=N on Dataflow)")
    runner = None if args.runner == "beam" else args.runner
    return beam.run(args.inputs, args.out, config=cfg, beam_args=args.beam_args, runner=runner,
                    retry_failed=args.retry_failed, videos_per_shard=args.videos_per_shard,
                    allow_leaks=args.allow_leaks)


def _runner(value: str) -> str:
    """``local``, ``beam`` (Beam's default runner, or the one its ``--runner`` would name) or a Beam runner's
    name (``DataflowRunner``...): Beam's own ``--runner`` flag is this one, so it selects the runner too."""
    if value in ("local", "beam") or value.endswith("Runner"):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: use local, beam, or a Beam runner such as DataflowRunner")


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must be 0 (one per core) or more, got {workers}")


def _report_crashes(crashes: list[tuple[str, str]], log: Path | None, limit: int = 20) -> None:
    """One line on stderr per input that hit an internal error, naming the log that holds its traceback."""
    for path, reason in crashes[:limit]:
        print(f"{path}: {reason} (traceback: {log})", file=sys.stderr)
    if len(crashes) > limit:
        print(f"... and {len(crashes) - limit} more internal errors (tracebacks: {log})", file=sys.stderr)


# --- synth and datasets ------------------------------------------------------------------------------------
def cmd_synth(args: argparse.Namespace) -> int:
    from dfdetect.synth import plan, synthesize

    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    _check_workers(args.workers)
    methods = None
    if args.methods is not None:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        try:
            plan(args.n, args.seed, args.difficulty, methods=methods)
        except ValueError as e:
            raise UsageError(f"--methods: {e}") from None
    meta = synthesize(args.out, n=args.n, seed=args.seed, difficulty=args.difficulty, workers=args.workers,
                      progress=not args.no_progress, silence_shortcut=args.silence_shortcut, methods=methods,
                      faces=args.faces)
    kinds = f", {','.join(methods)}" if methods else ""
    print(f"{args.n} clips ({args.difficulty}{kinds}) -> {meta.parent}\n  {meta}"
          f"\n  {meta.parent / 'metadata.json'}\n  {meta.parent / 'splits.csv'}")
    return EXIT_OK


def cmd_datasets_inspect(args: argparse.Namespace) -> int:
    from dfdetect.datasets import DatasetError, DatasetProblem, inspect

    if not Path(args.path).exists():
        raise UsageError(f"{args.path} not found")
    try:
        info = inspect(args.path, strict=args.strict)
    except DatasetError as e:
        if args.json:
            print(json.dumps({"path": args.path, "error": str(e)}))
        print(f"error: {e}", file=sys.stderr)
        # a bad row (--strict stops at the first) is a finding about the data, as without --strict: 3; a
        # folder that is no known dataset, or metadata that cannot be read, is the user's to fix: 2
        return EXIT_PARTIAL if isinstance(e, DatasetProblem) else EXIT_USAGE
    if args.json:
        print(json.dumps(info))
    else:
        print(f"{args.path}: {info['layout']} layout, {info['videos']} videos "
              f"({info['labels']['real']} real, {info['labels']['fake']} fake), {info['groups']} groups in "
              f"{info['components']} identity components")
        if info["categories"]:
            print("  categories: " + ", ".join(f"{k} {v}" for k, v in info["categories"].items()))
        if info["splits"]:
            print("  splits:     " + ", ".join(f"{k} {v}" for k, v in info["splits"].items()))
        for note in info["carved"]:
            print(f"  carved:     {note}")
        if info["carved"]:
            print("  splits used by preprocess: " + ", ".join(f"{k} {v}" for k, v in info["splits_used"].items()))
        if info["segments"]:
            print(f"  videos with fake segments: {info['segments']}")
        for p in info["problems"]:
            print(f"  problem: {p}")
    return EXIT_PARTIAL if info["problems"] else EXIT_OK


# --- train -----------------------------------------------------------------------------------------------
REAL_ONLY_PSEUDO_FAKES = 0.5  # `train --real-only`: share of real windows (after sync negatives) made pseudo-fakes


def cmd_train(args: argparse.Namespace) -> int:
    from dfdetect.config import load_config
    from dfdetect.preprocess import config_for_data
    from dfdetect.train import train

    cfg = load_config(args.config, args.set)
    if args.real_only:
        # pseudo-fakes are the fakes of a real-only run: on at half the real windows unless --set says otherwise
        cfg = cfg.override(train={"real_only": True,
                                  "pseudo_fakes": cfg.train.pseudo_fakes or REAL_ONLY_PSEUDO_FAKES})
    if not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data} is not a folder; run `dfdetect preprocess ... --out DIR` first")
    _require_shards(args.data)
    # the data's window-cutting settings replace the preset's; a --set that contradicts them is refused (exit 2)
    cfg = config_for_data(cfg, args.data, explicit=args.set)
    summary = train(args.data, args.out, cfg, strategy=args.strategy, epochs=args.epochs,
                    verbose=2 if args.no_progress else "auto", allow_leaks=args.allow_leaks)
    print(json.dumps(summary, indent=1))
    print(f"run folder: {args.out} (best.keras, history.csv, logs/)")
    return EXIT_OK


def _require_shards(data: str) -> None:
    from dfdetect.pipeline import shard_files

    shard_files(data)  # a MissingInput (exit 2) when there is none


def _require_run_and_data(args: argparse.Namespace) -> None:
    need = Path(args.model) / "config.yaml"
    if not need.exists():
        raise UsageError(f"{need} not found: --model RUN must be a `dfdetect train` folder")
    _require_shards(args.data)


# --- evaluate --------------------------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    from dfdetect.evaluate import evaluate_run

    _require_run_and_data(args)
    res = evaluate_run(args.model, args.data, args.out, split=args.split, which=args.which,
                       bootstrap=args.bootstrap)
    v = res["video"]
    print(f"{res['videos']} videos, {res['windows']} windows ({args.split}): AUC {v['auc']:.3f} "
          f"[{v['auc_ci_low']:.3f}, {v['auc_ci_high']:.3f}], EER {v['eer']:.3f}, AP {v['ap']:.3f}, "
          f"acc@0.5 {v['accuracy@0.5']:.3f}, log loss {v['log_loss']:.3f}")
    print("per category AUC: " + ", ".join(f"{k} {x:.3f}" for k, x in res["per_category"].items()))
    if res.get("val_threshold") is not None:
        print(f"val threshold {res['val_threshold']:.3f} ({res['threshold_rule']}): false-positive rate on test "
              f"reals {v['fpr@val']:.3f}, accuracy {v['accuracy@val']:.3f}")
    sel = res["selective"]
    print(f"abstained on {sel['abstention_rate']:.1%} of test videos (unfamiliar); on the {sel['n_accepted']} kept: "
          f"AUC {sel['accepted']['auc']:.3f}, accuracy {sel['accuracy_accepted']:.3f} (all: "
          f"{sel['accuracy_all']:.3f})")
    print(f"report: {Path(args.out) / 'report.html'}\nmetrics: {Path(args.out) / 'metrics.json'}"
          f"\nper video: {Path(args.out) / 'per_video.csv'}")
    return EXIT_OK


def cmd_robustness(args: argparse.Namespace) -> int:
    from dfdetect.robustness import run_robustness

    _require_run_and_data(args)  # (an unknown --only name is a UsageError from run_robustness)
    df = run_robustness(args.model, args.data, args.out, split=args.split, names=args.only)
    print(df.to_string(index=False))
    print(f"chart: {Path(args.out) / 'robustness.png'}\ntable: {Path(args.out) / 'robustness.csv'}")
    return EXIT_OK


# --- export and predict ----------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from dfdetect.export import export_model

    if not (Path(args.model) / "config.yaml").exists():
        raise UsageError(f"--model {args.model} is not a `dfdetect train` run folder (no config.yaml)")
    out = export_model(args.model, args.out, which=args.which, report_dir=args.report, data_dir=args.data)
    card = json.loads((out / "model_card.json").read_text())
    fam = card.get("familiarity") or {}
    tflite = f"\n  {out / 'model.tflite'} (what predict runs)" if (out / "model.tflite").exists() else ""
    print(f"exported: {out}\n  {out / 'saved_model'} (signature serving_default)\n  {out / 'model.keras'}"
          f"{tflite}\n  {out / 'model_card.json'}, {out / 'model_card.md'}")
    print(f"  threshold {card['threshold']:.3f} ({card['threshold_source']}), temperature {card['temperature']:.3f}")
    if fam:
        rate = fam.get("test_abstention_rate")
        print(f"  {out / 'familiarity.npz'}: abstains on "
              + (f"{rate:.1%} of the test split" if rate is not None else "(no test split to measure)"))
    return EXIT_OK


def _expand_videos(items: list[str]) -> list[str]:
    from dfdetect.media import VIDEO_EXTENSIONS

    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += [str(f) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS]
        else:
            out.append(item)
    return out


def cmd_predict(args: argparse.Namespace) -> int:
    import csv

    from tqdm.auto import tqdm

    from dfdetect.predict import VERDICT_FIELDS, Detector, track_text, verdict_json, verdict_row, verdict_text

    videos = _expand_videos(args.videos)
    if not videos:
        raise UsageError(f"no videos found in {' '.join(args.videos)} (extensions: see dfdetect.media)")
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {args.workers}")
    # no model, no card, another model's familiarity statistics: a UsageError (exit 2)
    if args.max_faces < 1:
        raise UsageError(f"--max-faces must be 1 or more, got {args.max_faces}")
    det = Detector(args.model, threshold=args.threshold, abstain=not args.no_abstain, max_faces=args.max_faces)
    failed = 0
    crashes: list[tuple[str, str]] = []
    log = _log_path(args)
    writer = fh = None
    if args.csv:
        fh = open(args.csv, "w", newline="")
        writer = csv.DictWriter(fh, fieldnames=VERDICT_FIELDS, extrasaction="ignore")
        writer.writeheader()
    verdicts = None
    try:
        if args.explain:  # explanations take gradients through windows held in this process: one by one
            from dfdetect.explain import explain_video

            def explained():
                for path in videos:
                    v, files = explain_video(det, path, args.explain)
                    for f in files:
                        print(f"  explanation: {f}", file=sys.stderr)
                    yield v

            verdicts = explained()
        else:  # decoding and face tracking in worker processes while this one scores (dfdetect.batch)
            from dfdetect.batch import iter_verdicts

            verdicts = iter_verdicts(det, videos, workers=args.workers)
        bar = tqdm(videos, unit="video", desc="predict", disable=len(videos) < 2 or args.no_progress,
                   file=sys.stderr)
        for path, v in zip(bar, verdicts):
            if v.status == "error":  # a bug, not bad media: traceback to the log now, exit 1 at the end
                log = log_traceback(log, f"dfdetect predict: internal error on {path}", v.traceback)
                crashes.append((str(path), v.reason))
            failed += v.status == "failed"
            if writer is not None:
                writer.writerow(verdict_row(v))
                fh.flush()
            if args.json:
                print(json.dumps(verdict_json(v)), flush=True)
            elif writer is None:
                if v.status == "ok":
                    print(verdict_text(v), flush=True)
                    if v.segments or (v.score is not None and v.label == "fake"):
                        print(track_text(v), flush=True)
                else:
                    print(f"{path}: {v.status}: {v.reason}", flush=True)
    finally:
        if verdicts is not None:
            verdicts.close()  # Ctrl-C or an error here: the workers end now, not at garbage collection
        det.close()
        if fh is not None:
            fh.close()
    if args.csv:
        errors = f", {len(crashes)} internal errors" if crashes else ""
        print(f"{len(videos)} videos, {failed} failed{errors} -> {args.csv}", file=sys.stderr)
    _report_crashes(crashes, log)
    return EXIT_INTERNAL if crashes else EXIT_PARTIAL if failed else EXIT_OK


# --- serve -----------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from dfdetect.serve import MB, Settings, serve

    if args.max_upload_mb <= 0 or args.queue < 1:
        raise UsageError("--max-upload-mb must be > 0 and --queue >= 1")
    token = args.token or os.environ.get("DFDETECT_TOKEN") or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(f"warning: serving on {args.host} without a token: anyone who can reach it can use it "
              "(set --token or DFDETECT_TOKEN)", file=sys.stderr)
    settings = Settings(max_upload_bytes=int(args.max_upload_mb * MB), token=token, queue_size=args.queue,
                        read_timeout=args.read_timeout, tmp_dir=args.tmp_dir, log_file=_log_path(args))
    serve(args.model, host=args.host, port=args.port, settings=settings)
    return EXIT_OK


# --- demo ------------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """The main job end to end on the built-in benchmark; every step resumes if run again."""
    import time

    import pandas as pd
    from tqdm.auto import tqdm

    from dfdetect.config import load_config
    from dfdetect.evaluate import evaluate_run, prediction_accuracy
    from dfdetect.export import export_model
    from dfdetect.model_files import fetch_models
    from dfdetect.predict import VERDICT_FIELDS, Detector, verdict_row
    from dfdetect.preprocess import load_manifest, preprocess
    from dfdetect.synth import synthesize
    from dfdetect.train import train

    root = Path(args.root)
    raw, processed = root / "data" / "raw" / "synth", root / "data" / "processed" / "synth"
    run, report = root / "saved_models" / f"demo-{args.config}", _demo_report(args)
    export_dir = root / "saved_models" / f"demo-{args.config}-export"
    cfg = load_config(args.config, args.set)
    crashes: list[tuple[str, str]] = []
    log = _log_path(args)
    t0 = time.time()

    def step(i: int, text: str) -> None:
        print(f"\n[{i}/7] {text}  ({time.time() - t0:.0f} s)", flush=True)

    step(1, "face-detector models")
    fetch_models(log=lambda m: print("    " + m, flush=True))
    step(2, f"built-in benchmark ({args.n} clips) -> {raw}")
    synthesize(raw, n=args.n, seed=0)
    step(3, f"preprocess -> {processed}")
    s = preprocess([raw], processed, config=cfg)
    print(f"    {s.ok} videos, {s.windows} windows, {s.failed} failed"
          + (f", {s.errors} internal errors (tracebacks: {s.log})" if s.errors else ""))
    crashes += [(p, f"{r} (traceback: {s.log})") for p, r in s.crashes]
    step(4, f"train {cfg.name} -> {run}")
    train(processed, run, cfg, epochs=args.epochs)
    step(5, f"evaluate -> {report}")
    res = evaluate_run(run, processed, report)
    print(f"    test videos: {res['videos']}, ROC AUC {res['video']['auc']:.3f}, EER {res['video']['eer']:.3f}; "
          + ", ".join(f"{k} {v:.2f}" for k, v in res["per_category"].items()))
    step(6, f"export -> {export_dir}")
    export_model(run, export_dir, report_dir=report)
    step(7, "predict every held-out clip")
    m = load_manifest(processed)
    test = m[(m["split"] == "test") & (m["status"] == "ok")]
    rows = []
    with Detector(export_dir) as det:
        for path in tqdm(test["path"], unit="video", desc="predict", file=sys.stderr):
            v = det.predict_video(path)
            if v.status == "error":
                log = log_traceback(log, f"dfdetect demo: internal error on {path}", v.traceback)
                crashes.append((path, f"{v.reason} (traceback: {log})"))
            rows.append(verdict_row(v))
    preds = pd.DataFrame(rows, columns=VERDICT_FIELDS)
    preds.to_csv(report / "predictions.csv", index=False)
    acc = prediction_accuracy(preds, test)
    acc.to_csv(report / "predict_accuracy.csv", index=False)
    print("    share of held-out videos `predict` labels correctly (threshold from the model card; 'uncertain' "
          "counts as wrong; the built-in benchmark is a pipeline check, not a real-world claim):")
    for r in acc.itertuples():
        print(f"      {r.by:8s} {r.value:18s} {r.correct:3d}/{r.videos:<3d} {r.accuracy:.2f}"
              + (f"  ({r.abstained} uncertain)" if r.abstained else ""))
    print(f"\ndone in {(time.time() - t0) / 60:.1f} min\n  report:      {report / 'report.html'}\n"
          f"  model:       {export_dir}\n  predictions: {report / 'predictions.csv'} (accuracy: "
          f"{report / 'predict_accuracy.csv'})\n  next:        dfdetect predict VIDEO --model {export_dir}")
    for path, reason in crashes:  # every step finished, but a bug hit these inputs: exit 1
        print(f"{path}: {reason}", file=sys.stderr)
    return EXIT_INTERNAL if crashes else EXIT_OK


def _demo_report(args: argparse.Namespace) -> Path:
    return Path(args.root) / "reports" / f"demo-{args.config}"


# --- parser ------------------------------------------------------------------------------------------------
def _config_args(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("--config", default="cpu-small", help="preset name or YAML file (default cpu-small)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help=f"override one setting, e.g. --set {example} (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dfdetect",
        description="Multimodal deepfake video detection: face track + voice + their agreement.",
        epilog=_exit_epilog(),
    )
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    models = sub.add_parser("models", help="manage the face-detector model files",
                            epilog=f"Example: {EXAMPLES['models']}")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    fetch = msub.add_parser(
        "fetch", help="get and verify the BlazeFace model files",
        description="Gets the BlazeFace short- and full-range .tflite files into the cache ($DFDETECT_MODELS, "
                    "else saved_models/mediapipe/, else ~/.cache/dfdetect/mediapipe), trying: --source, the "
                    "cache, the official MediaPipe asset address, then the mediapipe==0.10.21 wheel from the "
                    "package index. Every file is checked against its sha256.")
    fetch.add_argument("--name", action="append", choices=["short", "full"], help="only this model (repeatable)")
    fetch.add_argument("--source", help="a .tflite file or folder you already have")
    fetch.add_argument("--dir", help="cache folder to fill (default: see above)")
    fetch.add_argument("--no-url", action="store_true", help="skip the official address (offline machines)")
    fetch.set_defaults(func=cmd_models_fetch)

    probe = sub.add_parser("probe", help="show a video's size (as displayed), fps, duration and audio")
    probe.add_argument("video", nargs="+")
    probe.add_argument("--json", action="store_true", help="one JSON object per video")
    probe.set_defaults(func=cmd_probe)

    pre = sub.add_parser(
        "preprocess", help="videos -> face-crop windows + aligned audio in TFRecord shards",
        usage="%(prog)s INPUT [INPUT ...] --out OUT [options] [--runner beam [BEAM_OPTION=VALUE ...]]",
        description="Detects and tracks the face (MediaPipe), cuts aligned windows of face crops and 16 kHz "
                    "audio, and writes OUT/shards/*.tfrecord plus OUT/manifest.csv (one row per input: "
                    "path,status,reason,windows,face_ratio,has_audio,...) and OUT/windows.csv. Resumable: "
                    "rerun the same command after a crash and finished videos are skipped. "
                    "With --runner beam the same work runs as an Apache Beam pipeline (pip install "
                    "\"dfdetect[beam]\"): any option dfdetect does not know is a Beam pipeline option, "
                    "best written --name=value after the inputs, e.g. "
                    "`dfdetect preprocess videos/ --out data/x --runner beam --direct_num_workers=2 "
                    "--direct_running_mode=multi_processing` (local, one process per worker), or "
                    "`dfdetect preprocess gs://b/list.csv --out gs://b/data --runner DataflowRunner "
                    "--project=P --region=R --temp_location=gs://b/tmp --setup_file=./pyproject.toml` (OUT and "
                    "inputs may then be gs:// paths).")
    pre.add_argument("inputs", nargs="+", help="videos, folders (recursive, or a dataset root) or CSV lists")
    pre.add_argument("--out", required=True, help="output folder")
    _config_args(pre, "media.fps=12")
    pre.add_argument("--workers", type=int, help="worker processes (0 = one per core)")
    pre.add_argument("--shard-index", type=int, default=0, help="this machine's part of the input list")
    pre.add_argument("--num-shards", type=int, default=1, help="how many machines share the input list")
    pre.add_argument("--retry-failed", action="store_true",
                     help="retry inputs that failed in an earlier run (inputs that hit an internal error, "
                          "status 'error', are retried anyway)")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar")
    pre.add_argument("--runner", type=_runner, default="local", metavar="{local,beam,NAMERunner}",
                     help="local (default): this machine's worker processes; beam: an Apache Beam pipeline on "
                          "Beam's DirectRunner, or on the runner a Beam runner name gives (DataflowRunner, "
                          "FlinkRunner, SparkRunner...: Beam's own --runner flag)")
    pre.add_argument("--videos-per-shard", type=int, metavar="N",
                     help="Beam runner: videos per work item and per shard file, the unit a killed worker "
                          "redoes (default 20, fewer when that would give under 64 items; shards are also cut "
                          "at preprocess.shard_mb)")
    pre.add_argument("--allow-leaks", action="store_true", help=ALLOW_LEAKS_HELP)
    pre.set_defaults(func=cmd_preprocess, beam_args=[])

    syn = sub.add_parser(
        "synth", help="build the built-in audio-visual benchmark",
        description="Talking clips from real face photographs with synthesised voices, labelled like "
                    "FakeAVCeleb (A real, B fake audio, C fake video incl. lip-sync mismatch, D both) plus "
                    "LAV-DF-style partial fakes. Writes OUT/meta_data.csv (FakeAVCeleb layout), "
                    "OUT/metadata.json (LAV-DF layout) and OUT/splits.csv. Deterministic by --seed; rerun to "
                    "resume.")
    syn.add_argument("--out", required=True)
    syn.add_argument("--n", type=int, default=400, help="number of clips (default 400)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--difficulty", choices=["easy", "medium", "hard", "extreme"], default="medium",
                     help="strength of every manipulation: easy 1.0, medium 0.6 (default), hard 0.3, "
                          "extreme 0.15 (also shorter partial-fake segments)")
    syn.add_argument("--methods", metavar="M1,M2,...",
                     help="build only these kinds, comma-separated, their shares rescaled to --n; must "
                          "include real. Default benchmark: real, vocoder, faceswap, lipsync, desync, "
                          "faceswap-vocoder, partial. Methods it never holds, for unseen-method evaluation: "
                          "reenact (face reenactment driven by another utterance), resample (face region "
                          "resampled and double-JPEG-compressed), lpc (LPC-resynthesised voice). "
                          "Example: --methods real,reenact,resample,lpc")
    syn.add_argument("--faces", choices=("people", "photos"), default="people",
                     help="people (default): 45 people (3 portraits, 42 LFW faces), the split holding out "
                          "whole people and utterances; photos: the 3 portraits only, every one on every side "
                          "(the benchmark before the held-out split)")
    syn.add_argument("--workers", type=int, help="processes (default: one per core)")
    syn.add_argument("--no-progress", action="store_true")
    syn.add_argument("--silence-shortcut", action="store_true",
                     help="deliberately give fakes longer leading silence, as FakeAVCeleb's do (ablation only)")
    syn.set_defaults(func=cmd_synth)

    ds = sub.add_parser("datasets", help="recognise and summarise public deepfake datasets",
                        epilog=f"Example: {EXAMPLES['datasets']}")
    dsub = ds.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    ins = dsub.add_parser(
        "inspect", help="which layout a folder is; counts per label, category and split; problems",
        description="Recognises FakeAVCeleb, DFDC, DFDC preview, FaceForensics++, Celeb-DF v2, LAV-DF, "
                    "AV-Deepfake1M, DeepfakeTIMIT, the built-in benchmark, real/ + fake/ folders and CSV lists "
                    "(path,label[,group]). Exit 3 when problems were found (missing files, unknown labels, "
                    "duplicates, groups split across sides; with --strict, at the first one), 2 when PATH is "
                    "no known dataset or its metadata cannot be read.")
    ins.add_argument("path")
    ins.add_argument("--json", action="store_true", help='one object: {"layout", "videos", "labels", '
                                                         '"categories", "splits", "problems", ...}')
    ins.add_argument("--strict", action="store_true", help="stop at the first bad row")
    ins.set_defaults(func=cmd_datasets_inspect)

    tr = sub.add_parser(
        "train", help="train the multimodal model on preprocessed windows",
        description="Trains on the 'train' split of DIR (written by `dfdetect preprocess`), picks the best "
                    "epoch by validation AUC, and writes RUN/config.yaml, history.csv, best.keras, "
                    "final.keras, summary.json and logs/ (TensorBoard). Rerun the same command after a crash "
                    "to resume from the last finished epoch.")
    tr.add_argument("--data", required=True, help="preprocessed folder")
    tr.add_argument("--out", required=True, help="run folder")
    _config_args(tr, "train.batch_size=8")
    tr.add_argument("--epochs", type=int, help="maximum epochs (default: the config's)")
    tr.add_argument("--strategy", default="auto", choices=["auto", "default", "one_device", "mirrored",
                                                           "multi_worker"],
                    help="tf.distribute strategy (multi_worker reads TF_CONFIG)")
    tr.add_argument("--no-progress", action="store_true", help="one line per epoch instead of a bar")
    tr.add_argument("--real-only", action="store_true",
                    help="train on the real videos alone: their fakes are sync negatives (another real voice) "
                         "and pseudo-fakes made on the fly (a self-blended face, a resynthesised voice; "
                         f"train.pseudo_fakes={REAL_ONLY_PSEUDO_FAKES} unless --set); the data's fakes are "
                         "ignored (counted in the log) and the best epoch is chosen on real val videos and "
                         "their pseudo-fakes")
    tr.add_argument("--allow-leaks", action="store_true", help=ALLOW_LEAKS_HELP)
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser(
        "evaluate", help="metrics and a self-contained HTML report for a trained run",
        description="Scores a split of a preprocessed folder with a run's model; aggregates windows per video "
                    "(mean and the DFDC winner's confident-windows rule); writes OUT/metrics.json (ROC AUC "
                    "with a bootstrap 95% interval, EER, AP, accuracy/F1 at 0.5 and at a threshold chosen on "
                    "the val split, log loss, ECE, temperature, per head / category / method, and temporal "
                    "localisation per modality: segment AP at IoU 0.5/0.75/0.9/0.95, AR@1/5/10/20/50 over IoU "
                    "0.5:0.05:0.95 and frame-level AUC over every video, as AV-Deepfake1M and LAV-DF score "
                    "them), OUT/per_video.csv, OUT/per_window.csv and OUT/report.html.")
    ev.add_argument("--model", required=True, help="run folder written by `dfdetect train`")
    ev.add_argument("--data", required=True, help="preprocessed folder")
    ev.add_argument("--out", required=True, help="report folder")
    ev.add_argument("--split", default="test", help="split to score (default test)")
    ev.add_argument("--which", default="best", choices=["best", "final"], help="which checkpoint")
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUC interval")
    ev.set_defaults(func=cmd_evaluate)

    rob = sub.add_parser(
        "robustness", help="AUC under DeeperForensics-1.0 perturbations (levels 1-5) and audio degradations",
        description="Re-scores a split under colour saturation, contrast, block-wise occlusion, Gaussian noise, "
                    "Gaussian blur, down/up-scaling and H.264 CRF 30-40 (levels 1-5), and audio noise at "
                    "20/10/5 dB SNR, low-bitrate AAC and 8 kHz resampling. Writes OUT/robustness.csv and "
                    "OUT/robustness.png.")
    rob.add_argument("--model", required=True)
    rob.add_argument("--data", required=True)
    rob.add_argument("--out", required=True)
    rob.add_argument("--split", default="test")
    rob.add_argument("--only", action="append", help="only this perturbation (repeatable)")
    rob.set_defaults(func=cmd_robustness)

    exp = sub.add_parser(
        "export", help="SavedModel + .keras + model card from a training run",
        description="Writes DIR/saved_model (signature serving_default: frames uint8, audio float32, mask "
                    "float32 -> fake, video_fake, audio_fake, av_mismatch, embedding, and per video frame of the "
                    "window frame_fake, frame_video, frame_audio), DIR/model.keras, DIR/model.tflite (the same "
                    "network for LiteRT: what predict and serve run, without TensorFlow), "
                    "DIR/familiarity.npz (the training data's embedding statistics and the abstention threshold, "
                    "chosen to flag 5% of held-out in-distribution videos) and DIR/model_card.json/.md with "
                    "everything predict needs: threshold, temperature, training domain, abstention rate on "
                    "the test split.")
    exp.add_argument("--model", required=True, help="run folder written by `dfdetect train`")
    exp.add_argument("--out", help="export folder (default saved_models/export-RUNNAME)")
    exp.add_argument("--which", default="best", choices=["best", "final"])
    exp.add_argument("--report", help="an evaluation folder whose val-chosen threshold and temperature to use "
                                      "(default: RUN/report, else a report under reports/ that evaluated this run; "
                                      "without one, export warns and writes threshold 0.5)")
    exp.add_argument("--data", help="the preprocessed training data, for the familiarity statistics (default: "
                                    "the run's, from RUN/summary.json)")
    exp.set_defaults(func=cmd_export)

    pr = sub.add_parser(
        "predict", help="score videos: verdict, per-modality scores, timeline, fake segments",
        description="Scores each video (folders are searched) with an exported model. A verdict says how much "
                    "was seen (windows, share of frames with a face, audio or not) and whether the video is like "
                    "the model's training data (in_distribution, familiarity); when it is not, the label is "
                    "'uncertain' (its score is not reliable) unless --no-abstain. A video with no face is "
                    "'uncertain' with reason 'no face found'. Several people: every face is scored and the "
                    "verdict is the most suspicious face's ('face' says which, 'faces' lists them). Bad files "
                    "get status "
                    "'failed' with a reason and the batch goes on; exit code 3 if any failed. A file that "
                    "hits a bug gets status 'error' (reason 'internal error: ...', traceback in the log) and "
                    "the batch goes on; exit code 1. The verdict itself is data, never the exit code.")
    pr.add_argument("videos", nargs="+", help="videos or folders")
    pr.add_argument("--model", help="exported model folder (default: the latest under saved_models/)")
    pr.add_argument("--json", action="store_true", help="one JSON object per video on stdout")
    pr.add_argument("--csv", help="write one row per video to this CSV file")
    pr.add_argument("--threshold", type=float, help="decision threshold on the fake score (default: the model "
                                                    "card's, chosen on validation data)")
    pr.add_argument("--no-abstain", action="store_true",
                    help="give the raw fake/real label even for a video unlike the model's training data "
                         "(by default such a video is labelled 'uncertain'; in_distribution and familiarity are "
                         "reported either way)")
    pr.add_argument("--explain", metavar="DIR", help="write PNG explanations per video here: face heat maps and "
                                                     "spectrogram saliency of the most suspicious window, and "
                                                     "the per-frame score track with fake segments")
    pr.add_argument("--max-faces", type=int, default=4, metavar="N",
                    help="faces followed and scored at once (default 4); 1 scores only the dominant face, as "
                         "training data is cut")
    pr.add_argument("--workers", type=int, default=None, metavar="N",
                    help="processes that decode videos and track faces while this one runs the model, so the "
                         "next videos decode while one is scored (default 1; 0 = all in this process, one video "
                         "after another; ignored with --explain)")
    pr.add_argument("--no-progress", action="store_true")
    pr.set_defaults(func=cmd_predict)

    srv = sub.add_parser(
        "serve", help="a web page and a REST API over one model (for people who never open a terminal)",
        description="Loads an exported model once and serves, on 127.0.0.1 unless told otherwise: the page at "
                    "/ (drop a video: verdict, timeline, heat maps), POST /v1/predict (multipart field 'file', "
                    "explain=true optional) answering what `predict --json` prints, GET /v1/health, "
                    "GET /v1/model (the model card) and the API docs at /docs. Uploads go to a private "
                    "temporary folder and are deleted after scoring.")
    srv.add_argument("--model", help="exported model folder (default: the latest under saved_models/)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--max-upload-mb", type=float, default=200.0, help="larger uploads get 413 (default 200)")
    srv.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on the API (default: $DFDETECT_TOKEN "
                                     "if set; prefer it, a flag shows in the process list)")
    srv.add_argument("--queue", type=int, default=8, help="requests admitted at once (uploading, waiting or "
                                                          "scored); more get 503 with Retry-After (default 8)")
    srv.add_argument("--read-timeout", type=float, default=30.0,
                     help="seconds an upload may stall before it is dropped with 408 (default 30)")
    srv.add_argument("--tmp-dir", help="where the private upload folder is made (default: the system temp folder)")
    srv.set_defaults(func=cmd_serve)

    demo = sub.add_parser(
        "demo", help="the main job, end to end on the built-in benchmark",
        description="Fetches the models, builds the built-in benchmark, preprocesses it, trains the cpu-small "
                    "model, evaluates it (reports/), exports it (saved_models/), predicts every held-out clip "
                    "and reports the share labelled correctly per category. About 20 minutes on 2 CPU cores; "
                    "rerun to resume after an interruption.")
    demo.add_argument("--root", default=".", help="project folder holding data/, saved_models/, reports/")
    demo.add_argument("--n", type=int, default=400, help="benchmark clips (default 400)")
    demo.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    _config_args(demo, "train.epochs=5")
    demo.set_defaults(func=cmd_demo)
    for name, command in (("models-fetch", fetch), ("probe", probe), ("preprocess", pre), ("synth", syn),
                          ("datasets-inspect", ins), ("train", tr), ("evaluate", ev), ("robustness", rob),
                          ("export", exp), ("predict", pr), ("serve", srv), ("demo", demo)):
        command.epilog = _exit_epilog(name)
    for command in (models, fetch, probe, pre, syn, ds, ins, tr, ev, rob, exp, pr, srv, demo):
        # also after the command's name; SUPPRESS keeps an absent flag from undoing `dfdetect --verbose CMD`
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return p


def _command(args: argparse.Namespace) -> str:
    """``preprocess``, ``models-fetch``, ``datasets-inspect``...: the subcommand, as a file name part."""
    sub = getattr(args, "models_command", None) or getattr(args, "datasets_command", None)
    return f"{args.command}-{sub}" if sub else args.command


def _log_path(args: argparse.Namespace) -> Path:
    """The file that receives this command's tracebacks (``LOGS``); one per run."""
    if getattr(args, "log_file", None) is None:
        args.log_file = _pick_log(args)
    return args.log_file


def _pick_log(args: argparse.Namespace) -> Path:
    cmd = args.command
    if cmd == "preprocess":
        from dfdetect.preprocess import is_url, log_path

        if is_url(args.out):  # a bucket: the traceback stays on this machine
            return default_log("preprocess")
        return log_path(args.out, args.shard_index, args.num_shards)
    if cmd == "synth":
        return Path(args.out) / "logs" / "synth.log"
    if cmd == "train":
        return Path(args.out) / "logs" / "train.log"
    if cmd in ("evaluate", "robustness"):
        return Path(args.out) / f"{cmd}.log"
    if cmd == "export":
        return Path(args.model) / "logs" / "export.log"
    if cmd == "predict" and args.csv:
        csv = Path(args.csv)
        return csv.with_suffix(".log") if csv.suffix != ".log" else csv.with_name(csv.name + ".log")
    if cmd == "demo":
        return _demo_report(args) / "demo.log"
    return default_log(_command(args))


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit code (module docstring). Only a ``UsageError`` (or a model file that
    cannot be obtained) is exit 2: any other exception is a bug, exit 1, with its traceback in the log."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # Beam pipeline options, which only a Beam preprocess run takes
            if args.command == "preprocess" and args.runner != "local":
                args.beam_args = extra
            else:
                hint = " (Beam pipeline options need --runner beam)" if args.command == "preprocess" else ""
                parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    except SystemExit as e:  # argparse: 2 for usage errors, 0 for --help
        return e.code if isinstance(e.code, int) else (EXIT_USAGE if e.code else EXIT_OK)
    from dfdetect.errors import remembered_interrupts
    from dfdetect.model_files import ModelFileError
    from dfdetect.quiet import import_tensorflow_quietly, quiet_env

    quiet_env(True if args.verbose else None)  # before any native library loads
    if args.command in TF_COMMANDS:
        import_tensorflow_quietly()

    try:
        with remembered_interrupts():
            return int(args.func(args))
    except KeyboardInterrupt:
        again = "; rerun the same command to resume" if args.command in RESUMABLE else ""
        print(f"interrupted (Ctrl-C){again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, ModelFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - anything else is a bug: traceback to the log, one line here
        try:
            intended = _log_path(args)
        except Exception:  # noqa: BLE001 - the crash report must not crash
            intended = default_log(_command(args))
        log = log_traceback(intended, f"dfdetect {' '.join(sys.argv[1:] if argv is None else argv)}",
                            traceback.format_exc())
        print(f"internal error: {one_line(e)} (traceback: {log})", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
