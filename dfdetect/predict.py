"""Video in, verdict out: ``Detector(model_dir).predict_video(path) -> Verdict``.

Windows slide over the whole video; each is scored by all four heads; window scores are aggregated (mean,
and the confident-windows rule of the DFDC winner) into the video's scores. The frame-level heads' scores of
overlapping windows are stitched into one per-frame track per modality (``track``), and the runs of frames
the track calls fake become fake segments at frame resolution, each with its score and the modality that
was faked. A verdict always says how much was really seen (windows scored, the share of
frames with a face, whether there was audio) and how long it took. A video with no usable face or no audio is
scored on what it has and says so; an unreadable file is a ``failed`` verdict with a one-line reason; an
unexpected exception (a bug, not bad media) is an ``error`` verdict (``internal error: Type: message``) that
carries its traceback for the caller's log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback as tb
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from dfdetect.config import load_config
from dfdetect.errors import BadArgument, MissingInput, one_line
from dfdetect.export import TFLITE, latest_export, read_card
from dfdetect.familiarity import FILE as FAMILIARITY_FILE
from dfdetect.heads import FRAME_HEADS, HEADS
from dfdetect.integrity import PACKAGE_PREFIX, check_keras_file, sha256_file, verify_files
from dfdetect.media import MediaError

VERDICT_FIELDS = ["path", "status", "reason", "score", "label", "video_fake", "audio_fake", "av_mismatch",
                  "face_ratio", "has_audio", "windows", "segments", "timeline", "seconds",
                  "in_distribution", "familiarity", "probability", "windows_skipped", "track", "face", "faces"]
SEGMENT_THRESHOLD = 0.5  # a frame whose track reaches this is called fake (the frame heads are trained at 0.5)
# what a segment's modality means when neither the face nor the voice alone is called fake inside it
SYNC = "sync"
LABELS = ("fake", "real", "uncertain")


@dataclass
class Verdict:
    """The answer for one video: ``status`` ok, failed (bad media; ``reason`` says why) or error (a bug:
    ``reason`` is ``internal error: ...``, ``traceback`` the full one, kept out of ``to_dict`` and the
    output rows); scores are None unless ok.

    ``label`` is ``fake``, ``real`` or ``uncertain``: uncertain when the video is unlike the model's training
    data (``in_distribution`` false: the score is not reliable) or when nothing could be scored (no face).
    ``in_distribution`` is None when the model has no familiarity statistics. ``familiarity`` is the share of
    the model's own held-out videos that look less familiar (``dfdetect.familiarity``); ``probability`` the
    fake score calibrated by the model's fitted temperature; ``windows_skipped`` the windows left out because
    they had too little face (the rule training data was cut by).

    ``segments`` are the fake segments at frame resolution: ``start``, ``end`` (seconds), ``score`` (the mean
    per-frame fake probability inside) and ``modality`` (``video``, ``audio``, ``both``, or ``sync`` when the
    face and the voice are each called real inside it but the model calls the frames fake: they disagree).
    ``track`` is the per-frame score track: ``fps``, and one list per modality (``fake``, ``video``,
    ``audio``), frame ``k`` spanning ``[k / fps, (k + 1) / fps)``; ``timeline`` the per-window scores.

    Several faces: every face is tracked and scored on its own, and the verdict (scores, label, segments,
    track, timeline, ``face_ratio``) is the most suspicious face's (the highest ``score``; the DFDC winner's
    rule: one swapped face among real ones makes the video fake). ``face`` says which (0 is the dominant face,
    the one a single-face model was trained on); ``faces`` lists each face track: ``face``, ``where`` in the
    frame (``left``, ``top right``...), ``start``/``end`` (seconds it was seen), ``face_ratio``, ``windows``,
    ``score`` and ``label`` (None for a face seen too briefly to score, with a ``note``).
    """

    path: str
    status: str = "ok"
    reason: str = ""
    score: float | None = None
    label: str | None = None
    video_fake: float | None = None
    audio_fake: float | None = None
    av_mismatch: float | None = None
    face_ratio: float = 0.0
    has_audio: bool = False
    windows: int = 0
    segments: list[dict[str, float]] = field(default_factory=list)
    timeline: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    in_distribution: bool | None = None
    familiarity: float | None = None
    probability: float | None = None
    windows_skipped: int = 0
    track: dict[str, Any] = field(default_factory=dict)
    face: int | None = None
    faces: list[dict[str, Any]] = field(default_factory=list)
    distance: float | None = None
    raw_label: str | None = None
    score_confident: float | None = None
    traceback: str = field(default="", repr=False)
    embeddings: Any = field(default=None, repr=False)  # (windows, d) pooled embeddings, for analysis

    def to_dict(self) -> dict[str, Any]:
        # the traceback is for the log and the embeddings for analysis, not for the results
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("traceback", "embeddings")}


class Detector:
    """A loaded exported model (``dfdetect export``) plus a face detector, ready to score videos.

    Args:
        model_dir: exported folder with ``model_card.json`` and ``model.tflite`` / ``model.keras``; default: the
            latest export under ``saved_models/``.
        threshold: decision threshold on the ``fake`` score (default: the card's).
        batch_size: windows per model call (the ``.tflite`` copy runs them one by one inside a call).
        fmt: which copy of the model scores windows: ``tflite`` (``model.tflite`` through LiteRT: neither
            TensorFlow nor Keras is imported, so a cold start takes seconds), ``keras`` (``model.keras``) or
            ``saved_model`` (the exported SavedModel's ``serving_default`` signature, what TF Serving runs).
            Default: ``tflite`` when the export has a ``model.tflite`` converted from its ``model.keras`` and
            ``ai_edge_litert`` imports, else ``keras`` with a one-line notice saying why.
        model_file: another ``.keras`` file to score with (a run's ``best.keras``, say) while the card and
            config still come from ``model_dir``; for ``fmt="keras"`` only (the default then). The familiarity
            statistics are then checked against it (and refused when they belong to another model).
        abstain: label a video unlike the training data ``uncertain`` (default); False keeps the raw label
            (``in_distribution`` is still reported).
        notify: where one-line notices go (a model without familiarity statistics, say); default stderr.
        threads: LiteRT's threads for ``fmt="tflite"`` (default 1: see ``bench/startup.py``).
        max_faces: faces followed and scored at once (``faces.MultiFaceTracker``); 1 scores only the dominant
            face, as training data is cut.

    ``model`` is the Keras model (``--explain`` takes gradients through it): with ``fmt="tflite"`` it is loaded
    from ``model.keras`` the first time it is asked for, so scoring alone never imports TensorFlow.

    Example:
        >>> with Detector("saved_models/demo-cpu-small-export") as det:      # doctest: +SKIP
        ...     v = det.predict_video("clip.mp4")
        ...     print(v.label, v.score, v.in_distribution, v.familiarity)
    """

    FORMATS = ("tflite", "keras", "saved_model")
    max_faces = 4  # (a class default too: a Detector assembled by hand, as tests do, follows every face)

    def __init__(self, model_dir: str | Path | None = None, threshold: float | None = None,
                 batch_size: int = 8, fmt: str | None = None, model_file: str | Path | None = None,
                 abstain: bool = True, notify=None, threads: int | None = None, max_faces: int = 4) -> None:
        from dfdetect.faces import FaceDetector
        from dfdetect.familiarity import NOTICE_NO_REFERENCE, Reference, probe_inputs

        if model_dir is None:
            model_dir = latest_export()
            if model_dir is None:
                raise MissingInput("no exported model found under saved_models/: run `dfdetect demo`, or "
                                   "`dfdetect train` then `dfdetect export --model RUN`, or pass --model DIR")
        self.model_dir = Path(model_dir)
        self.card = read_card(self.model_dir)
        # the files read below are checked against the sha256 the card records (dfdetect.integrity)
        notices = [verify_files(self.model_dir, self.card, ["config.yaml", FAMILIARITY_FILE], missing_ok=True)]
        self.config = load_config(self.model_dir / "config.yaml") if (self.model_dir / "config.yaml").exists() \
            else _config_from_card(self.card)
        self.threshold = float(self.card["threshold"] if threshold is None else threshold)
        self.temperature = float(self.card.get("temperature") or 1.0)
        self.abstain = abstain
        self.max_faces = max(1, int(max_faces))
        notices = [n for n in notices if n]
        if fmt is None:
            fmt, why = ("keras", "") if model_file is not None else self._default_format()
            if why:
                notices.append(why)
        if fmt not in self.FORMATS:
            raise BadArgument(f"fmt must be one of {', '.join(self.FORMATS)}, got {fmt!r}")
        if fmt != "keras" and model_file is not None:
            raise BadArgument(f"model_file names a .keras file: it cannot be combined with fmt={fmt!r}")
        self.fmt = fmt
        self._model = None
        self._lock = threading.Lock()  # one LiteRT interpreter: one invocation at a time (serve has threads)
        verify_files(self.model_dir, self.card, {"tflite": [TFLITE], "keras": [],  # (keras: _load_keras)
                                                 "saved_model": ["saved_model/"]}[fmt], missing_ok=True)
        if fmt == "tflite":
            self.input_names, outputs = self._load_tflite(threads)
        elif fmt == "keras":
            self.model = self._load_keras(model_file)
            # what the model takes: frames, audio and mask, and the mouth track when its mouth crop follows it
            self.input_names, outputs = tuple(self.model.input), tuple(self.model.output)
        else:
            from dfdetect.quiet import import_tensorflow_quietly

            import_tensorflow_quietly()
            import tensorflow as tf

            if not (self.model_dir / "saved_model").is_dir():
                raise MissingInput(f"{self.model_dir / 'saved_model'} not found: export the run again")
            self._serving = tf.saved_model.load(str(self.model_dir / "saved_model")).signatures["serving_default"]
            self.input_names = tuple(self._serving.structured_input_signature[1])
            outputs = tuple(self._serving.structured_outputs)
        has_embedding = "embedding" in outputs  # a SavedModel exported before familiarity returns none
        self.batch_size = batch_size
        # Familiarity: the training data's statistics, refused when they belong to another model.
        self.reference = Reference.load(self.model_dir) if has_embedding else None
        self.notice = "" if self.reference is not None else NOTICE_NO_REFERENCE
        if self.reference is not None:
            probe = probe_inputs(self.config)
            self.reference.check_probe(self.score_windows(**probe)["embedding"],
                                       str(self.model_dir / "familiarity.npz"))
        notices += [self.notice] if self.notice else []
        for m in notices:  # after the checks: a refused model says only why it was refused
            (notify or (lambda m: print(f"notice: {m}", file=sys.stderr)))(m)
        self.faces = FaceDetector(self.config.faces)

    # -- loading ----------------------------------------------------------------------------------------------
    def _default_format(self) -> tuple[str, str]:
        """``("tflite", "")`` when ``model.tflite`` can be used; else ``("keras", why not)``."""
        path = self.model_dir / TFLITE
        if not path.is_file():
            return "keras", (f"{self.model_dir} has no {TFLITE} (exported by an older dfdetect): loading "
                             "model.keras with TensorFlow, a slower start; export the run again for a fast one")
        made_from = (self.card.get("tflite") or {}).get("keras_sha256")
        keras_file = self.model_dir / "model.keras"
        if made_from and keras_file.is_file() and sha256_file(keras_file) != made_from:
            # model.keras was replaced after export: the .tflite would score with the old network
            return "keras", (f"{path} was converted from another model.keras than the one beside it: scoring "
                             "with model.keras (a slower start); export the run again")
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError as e:
            return "keras", (f"ai_edge_litert does not import ({e}): loading model.keras with TensorFlow, a "
                             "slower start; `pip install ai-edge-litert` for a fast one")
        return "tflite", ""

    def _load_tflite(self, threads: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Opens ``model.tflite`` in LiteRT; its signature's input and output names."""
        from ai_edge_litert.interpreter import Interpreter

        from dfdetect.quiet import native_logs_filtered

        path = self.model_dir / TFLITE
        if not path.is_file():
            raise MissingInput(f"{path} not found: export the run again with `dfdetect export --model RUN`")
        with native_logs_filtered():
            self._interpreter = Interpreter(model_path=str(path), num_threads=threads or 1)
            self._runner = self._interpreter.get_signature_runner("serving_default")
            # LiteRT applies its XNNPACK delegate, and prints "INFO: Created TensorFlow Lite XNNPACK delegate
            # for CPU.", at the first invocation: make it here, on zeros, inside the filter
            self._runner(**{k: np.zeros(d["shape"], d["dtype"]) for k, d in self._runner.get_input_details().items()})
        order = ("frames", "audio", "mask", "mouth")
        names = tuple(sorted(self._runner.get_input_details(), key=lambda n: order.index(n) if n in order else 9))
        return names, tuple(self._runner.get_output_details())

    def _load_keras(self, model_file: str | Path | None = None):
        """``model.keras`` (or ``model_file``) with the familiarity embedding as an output; TensorFlow is
        imported with its start-up logs filtered (``dfdetect.quiet``)."""
        from dfdetect.quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        import keras

        import dfdetect.layers  # noqa: F401  (registers the custom layers)
        from dfdetect.familiarity import with_embedding

        path = Path(model_file) if model_file is not None else self.model_dir / "model.keras"
        if not path.is_file():
            raise MissingInput(f"{path} not found: export the run again with `dfdetect export --model RUN`")
        if model_file is None:
            verify_files(self.model_dir, self.card, ["model.keras"])
        # nothing but Keras' classes and dfdetect's registered layers, checked before Keras reads the file
        check_keras_file(path, [k for k in keras.saving.get_custom_objects() if k.startswith(PACKAGE_PREFIX)])
        return with_embedding(keras.saving.load_model(path, safe_mode=True, compile=False))

    @property
    def model(self):
        """The Keras model (with the familiarity embedding); loaded on first use when scoring runs elsewhere."""
        if getattr(self, "_model", None) is None and getattr(self, "fmt", None) in ("tflite", "saved_model"):
            self._model = self._load_keras()
        return getattr(self, "_model", None)

    @model.setter
    def model(self, value) -> None:
        self._model = value

    def close(self) -> None:
        self.faces.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score_windows(self, frames: np.ndarray, audio: np.ndarray, mask: np.ndarray,
                      mouth: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The four heads' scores ``(n,)``, the frame heads' ``(n, T)`` when the model has them, and, when the
        model exposes it, the pooled ``embedding`` ``(n, d)``. ``mouth`` ``(n, T, 2)`` is the mouth track,
        read by a model whose mouth crop follows it (unknown, -1, where not given)."""
        from dfdetect.heads import model_inputs

        inputs = model_inputs(self.input_names, np.asarray(frames, np.uint8), np.asarray(audio, np.float32),
                              np.asarray(mask, np.float32), None if mouth is None else np.asarray(mouth, np.float32))
        if self.fmt == "tflite":
            out = self._run_tflite(inputs)
        elif self.fmt == "saved_model":
            import tensorflow as tf

            out = self._serving(**{k: tf.constant(v) for k, v in inputs.items()})
        else:
            out = self.model.predict_on_batch(inputs)
        res = {h: np.asarray(out[h], np.float32).reshape(-1) for h in HEADS}
        for h in FRAME_HEADS:
            if h in out:
                res[h] = np.asarray(out[h], np.float32).reshape(len(frames), -1)
        if "embedding" in out:
            res["embedding"] = np.asarray(out["embedding"], np.float32).reshape(len(frames), -1)
        return res

    def _run_tflite(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The ``.tflite`` signature over a batch, one window per invocation (the model's batch is 1)."""
        n = len(inputs["frames"])
        with self._lock:
            outs = [self._runner(**{k: np.ascontiguousarray(v[i:i + 1]) for k, v in inputs.items()})
                    for i in range(n)]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]} if outs else {}

    def scan_config(self):
        """The config windows are cut by at prediction: the model's own, every window of the video, every face
        (up to ``max_faces``)."""
        return self.config.override(window={"max_windows": 0}, faces={"max_tracks": self.max_faces})

    def predict_video(self, path: str | Path, keep_windows: bool = False) -> Verdict:
        """Scores one video. Never raises for a file (Ctrl-C aside): a bad one is ``failed`` with its reason,
        an unexpected exception is ``error`` with ``internal error: Type: message`` and its traceback."""
        from dfdetect.windows import VideoSummary, extract_windows

        summary = VideoSummary()
        t0 = time.time()

        def windows():  # called inside predict_windows' guard: even an error at the call is this video's
            yield from extract_windows(str(path), self.scan_config(), self.faces, summary)

        return self.predict_windows(path, windows(), summary, keep_windows=keep_windows, t0=t0)

    def predict_windows(self, path: str | Path, windows, summary, keep_windows: bool = False,
                        t0: float | None = None) -> Verdict:
        """Scores the windows of one video as they come (an iterator that may raise ``MediaError`` for bad
        media), then concludes its verdict from ``summary`` (a ``VideoSummary`` complete once ``windows`` is
        exhausted). The seam that lets decoding and face tracking run elsewhere (another process) while this
        one calls the model; ``predict_video`` is this with ``extract_windows`` in the same process."""
        from dfdetect.windows import usable

        t0 = time.time() if t0 is None else t0
        v = Verdict(path=str(path))
        cfg = self.scan_config()
        per: dict[int, _TrackScores] = {}  # face track -> its windows' scores
        batch = []

        def flush() -> None:
            if not batch:
                return
            s = self.score_windows(np.stack([w.frames for w in batch]), np.stack([w.audio for w in batch]),
                                   np.stack([w.mask.astype(np.float32) for w in batch]),
                                   np.stack([w.mouth for w in batch]))
            for i, w in enumerate(batch):
                per.setdefault(w.track, _TrackScores()).add(w, s, i, keep_windows)
            batch.clear()

        try:
            for w in windows:
                # score exactly the windows training data keeps (preprocess applies the same rule)
                if not usable(w, cfg):
                    per.setdefault(w.track, _TrackScores()).skipped += 1
                    continue
                batch.append(w)
                if len(batch) >= self.batch_size:
                    flush()
            flush()
        except MediaError as e:
            v.status, v.reason = "failed", str(e)
        except Exception as e:  # noqa: BLE001 - a bug must not end a batch, nor pass as a bad file
            v.status, v.reason, v.traceback = "error", f"internal error: {one_line(e)}", tb.format_exc()
        v.seconds = round(time.time() - t0, 3)
        v.face_ratio = round(summary.face_ratio, 4)
        v.has_audio = bool(summary.has_audio)
        if v.status != "ok":
            return v
        try:
            v = self._conclude_faces(v, per, summary, cfg)
        except Exception as e:  # noqa: BLE001 - the same contract for a bug in the aggregation
            return Verdict(path=v.path, status="error", reason=f"internal error: {one_line(e)}",
                           traceback=tb.format_exc(), seconds=v.seconds, face_ratio=v.face_ratio,
                           has_audio=v.has_audio)
        v.seconds = round(time.time() - t0, 3)
        if keep_windows:
            v._windows = per.get(v.face or 0, _TrackScores()).kept  # type: ignore[attr-defined]  (explanations)
        return v

    def _conclude_faces(self, v: Verdict, per: dict[int, _TrackScores], summary, cfg) -> Verdict:
        """One verdict per face track worth scoring, and the video's: the most suspicious face's, saying which
        and listing them all."""
        from dataclasses import replace

        fps = cfg.media.fps
        stats = dict(summary.tracks) or {0: None}
        need = cfg.faces.min_track_seconds * fps
        verdicts: dict[int, Verdict] = {}
        listed = []
        for t in sorted(set(stats) | set(per)):
            st = stats.get(t)
            acc = per.get(t, _TrackScores())
            if t and (st is None or st.face_frames < need):
                if st is not None and st.face_frames:
                    listed.append(_face_entry(t, st, summary, fps, note=(
                        f"seen {st.face_frames / fps:.1f} s (under faces.min_track_seconds "
                        f"{cfg.faces.min_track_seconds:g} s): not scored")))
                continue
            tv = Verdict(path=v.path, seconds=v.seconds, has_audio=v.has_audio, windows_skipped=acc.skipped)
            # a further face: the share of the video's frames it was in (the dominant face's is summary's own)
            ts = summary if not t or st is None else replace(summary, face_frames=st.face_frames, warnings=[])
            tv.face_ratio = round(ts.face_ratio, 4)
            tv.embeddings = acc.embeddings()
            self._conclude(tv, acc.scores, acc.starts, ts, tv.embeddings, acc.firsts, acc.frame_scores())
            tv.face = t
            verdicts[t] = tv
            listed.append(_face_entry(t, st, summary, fps, tv))
        scored = {t: x for t, x in verdicts.items() if x.score is not None}
        pick = max(scored, key=lambda t: (scored[t].score, -t)) if scored else 0
        out = verdicts.get(pick) or v
        out.face = pick
        out.faces = sorted(listed, key=lambda f: f["face"])
        if len(scored) > 1:
            others = "; ".join(f"face {t}{_where(stats.get(t))} {x.score:.2f}" for t, x in sorted(scored.items())
                               if t != pick)
            note = (f"{len(scored)} faces scored: the verdict is face {pick}'s{_where(stats.get(pick))}, the most "
                    f"suspicious (other faces: {others})")
            out.reason = note + ("; " + out.reason if out.reason else "")
        return out

    def _conclude(self, v: Verdict, scores: dict[str, list[float]], starts: list[float], summary,
                  embeddings: np.ndarray | None, first_frames: list[int], frame_scores: dict[str, np.ndarray],
                  ) -> None:
        """Fills an ``ok`` verdict from its window scores: video scores, familiarity, label, timeline, the
        per-frame track, segments, notes."""
        from dfdetect.familiarity import PART_WORDS, UNCERTAIN_TEXT
        from dfdetect.metrics import apply_temperature, confident_mean

        fake = np.array(scores["fake"])
        v.windows = len(fake)
        notes = []
        if v.windows == 0:
            # Nothing the model was trained on: training keeps only windows with enough face.
            v.label = "uncertain"
            if summary.face_frames == 0:
                notes.append("no face found: nothing this model can score")
            else:
                notes.append(f"a face in only {summary.face_ratio:.0%} of frames: no window had enough face "
                             f"to score ({v.windows_skipped} left out)")
        else:
            v.score = float(fake.mean())
            v.probability = round(float(apply_temperature([v.score], self.temperature)[0]), 6)
            v.score_confident = confident_mean(fake)
            for h in ("video_fake", "audio_fake", "av_mismatch"):
                setattr(v, h, float(np.mean(scores[h])))
            v.raw_label = "fake" if v.score >= self.threshold else "real"
            v.label = v.raw_label
            if self.reference is not None and embeddings is not None and len(embeddings):
                d, fam, ok = self.reference.judge(embeddings)
                v.distance, v.familiarity, v.in_distribution = round(d, 4), round(fam, 4), ok
                if not ok:
                    rate = float(self.reference.info.get("target_rate", 0.05))
                    text = UNCERTAIN_TEXT.format(familiarity=fam, rate=rate)
                    parts = self.reference.unfamiliar_parts(embeddings)
                    if parts:
                        text += f"; unlike its training data: {', '.join(PART_WORDS.get(p, p) for p in parts)}"
                    if self.abstain:
                        v.label = "uncertain"
                        notes.append(f"{text}; without abstention it would say {v.raw_label}")
                    else:
                        notes.append(text)
            elif self.notice:
                notes.append("familiarity unknown (no statistics with this model)")
            seconds = self.config.window.seconds
            v.timeline = [{"start": round(s, 3), "end": round(s + seconds, 3),
                           **{h: round(float(scores[h][i]), 4) for h in HEADS}} for i, s in enumerate(starts)]
            v.track = frame_track(scores, first_frames, frame_scores, self.config.frames_per_window,
                                  self.config.media.fps, summary.duration)
            v.segments = track_segments(v.track, summary.duration) if v.label != "uncertain" else []
        notes += list(summary.warnings)
        if v.windows and summary.face_ratio < 0.5:
            notes.append(f"a face in only {summary.face_ratio:.0%} of frames")
        if v.windows_skipped and v.windows:
            notes.append(f"{v.windows_skipped} of {v.windows + v.windows_skipped} windows left out (too little "
                         "face)")
        if not summary.has_audio:
            notes.append("no audio: scored on the face only")
        if summary.trimmed:
            notes.append(f"{summary.trimmed:.2f} s of leading silence skipped")
        v.reason = "; ".join(notes)


class _TrackScores:
    """One face track's scored windows: the heads' scores, window starts and first frames, the frame heads'
    scores, embeddings, and the windows left out (too little face)."""

    def __init__(self) -> None:
        self.scores: dict[str, list[float]] = {h: [] for h in HEADS}
        self.starts: list[float] = []
        self.firsts: list[int] = []
        self._frames: dict[str, list[np.ndarray]] = {}
        self._emb: list[np.ndarray] = []
        self.kept: list = []
        self.skipped = 0

    def add(self, w, s: dict[str, np.ndarray], i: int, keep: bool) -> None:
        for h in HEADS:
            self.scores[h].append(float(s[h][i]))
        for h in FRAME_HEADS:
            if h in s:
                self._frames.setdefault(h, []).append(s[h][i:i + 1])
        if "embedding" in s:
            self._emb.append(s["embedding"][i:i + 1])
        self.starts.append(w.start)
        self.firsts.append(w.first_frame)
        if keep:
            self.kept.append(w)

    def embeddings(self) -> np.ndarray | None:
        return np.concatenate(self._emb) if self._emb else None

    def frame_scores(self) -> dict[str, np.ndarray]:
        return {h: np.concatenate(x) for h, x in self._frames.items()}


def _where(st) -> str:
    w = getattr(st, "where", "")
    return f" ({w})" if w else ""


def _face_entry(t: int, st, summary, fps: float, v: Verdict | None = None, note: str = "") -> dict[str, Any]:
    """One face track as ``Verdict.faces`` lists it."""
    seen = st is not None and st.face_frames > 0
    entry = {"face": t, "where": st.where if seen else "",
             "start": round(st.first / fps, 3) if seen else None,
             "end": round((st.last + 1) / fps, 3) if seen else None,
             "face_ratio": round(st.face_frames / summary.frames, 4) if seen and summary.frames else 0.0,
             "windows": v.windows if v is not None else 0,
             "score": None if v is None or v.score is None else round(v.score, 4),
             "label": None if v is None else v.label}
    if note:
        entry["note"] = note
    return entry


def verdict_text(v: Verdict) -> str:
    """One line for people: the label first, then why (for ``uncertain``), the scores and what was seen."""
    seen = (f"{v.windows} windows, face in {v.face_ratio:.0%} of frames, audio {'yes' if v.has_audio else 'no'}")
    if v.score is None:  # nothing scored (no face)
        return f"{v.path}: UNCERTAIN: {v.reason}; {seen}"
    fam = ("familiarity unknown" if v.in_distribution is None else
           f"{'familiar' if v.in_distribution else 'UNFAMILIAR'} input (familiarity {v.familiarity:.2f})")
    scores = (f"score {v.score:.3f}, calibrated probability {v.probability:.2f}; video {v.video_fake:.2f}, "
              f"audio {v.audio_fake:.2f}, mismatch {v.av_mismatch:.2f}")
    if v.label == "uncertain":
        return f"{v.path}: UNCERTAIN: {v.reason} ({scores}; {seen})"
    segs = ", ".join(f"{s['start']:.2f}-{s['end']:.2f}s ({s.get('modality', '?')}, {s['score']:.2f})"
                     for s in v.segments) or "none"
    return (f"{v.path}: {v.label.upper()} ({scores}); {fam}; {seen}; fake segments: {segs}"
            + (f"; {v.reason}" if v.reason else ""))


SPARK = " ▁▂▃▄▅▆▇█"


def track_text(v: Verdict, width: int = 60) -> str:
    """The per-frame fake track as one line of text, one mark per ``duration / width`` seconds (the highest
    frame score under each mark, so a short fake is never averaged away), with the segments named below it
    by the marks they cover (``^``). Empty when there is no track."""
    fake = np.asarray((v.track or {}).get("fake") or [], float)
    if not fake.size:
        return ""
    fps = float(v.track["fps"])
    width = max(1, min(width, fake.size))
    edges = np.linspace(0, fake.size, width + 1).round().astype(int)
    marks = [fake[a:max(b, a + 1)].max() for a, b in zip(edges[:-1], edges[1:])]
    line = "".join(SPARK[min(len(SPARK) - 1, int(round(m * (len(SPARK) - 1))))] for m in marks)
    under = [" "] * width
    for seg in v.segments:
        a = int(np.searchsorted(edges, seg["start"] * fps, side="right")) - 1
        b = int(np.searchsorted(edges, seg["end"] * fps, side="left"))
        for i in range(max(0, a), min(width, max(b, a + 1))):
            under[i] = "^"
    seconds = fake.size / fps
    return (f"  per-frame fake score |{line}| 0-{seconds:.1f} s, {seconds / width:.2f} s per mark\n"
            f"                        {''.join(under).rstrip()}")


def verdict_json(v: Verdict) -> dict[str, Any]:
    """A verdict as the JSON object ``dfdetect predict --json`` prints (and ``dfdetect serve`` answers):
    ``VERDICT_FIELDS``, in that order."""
    d = v.to_dict()
    return {k: d[k] for k in VERDICT_FIELDS}


def verdict_row(v: Verdict) -> dict[str, Any]:
    """A verdict as one flat CSV row (``VERDICT_FIELDS``; segments and timeline as JSON text)."""
    d = v.to_dict()
    row = {k: d[k] for k in VERDICT_FIELDS}
    row.update(segments=json.dumps(d["segments"]), timeline=json.dumps(d["timeline"]), track=json.dumps(d["track"]),
               faces=json.dumps(d["faces"]))
    return row


TRACK_NAMES = {"any": "fake", "video": "video", "audio": "audio"}  # a verdict's track keys, per modality


def frame_track(scores: dict[str, list[float]], first_frames: list[int], frame_scores: dict[str, np.ndarray],
                frames_per_window: int, fps: float, duration: float = 0.0) -> dict[str, Any]:
    """The per-frame track of a video (``dfdetect.metrics.modality_tracks``: each modality's frame scores of
    overlapping windows stitched over every frame up to ``duration``; a model without frame heads lends each
    frame its windows' scores), rounded for the verdict: ``fps`` and one list per modality."""
    from dfdetect.metrics import frames_of, modality_tracks

    tracks = modality_tracks(first_frames, frame_scores, scores, frames_per_window, frames_of(duration, fps))
    return {"fps": fps, **{TRACK_NAMES[m]: [round(float(x), 4) for x in t] for m, t in tracks.items()}}


def track_segments(track: dict[str, Any], duration: float = 0.0,
                   threshold: float = SEGMENT_THRESHOLD) -> list[dict[str, Any]]:
    """The fake segments of a track: runs of frames whose ``fake`` score reaches ``threshold``, each with its
    mean score and the modality whose own track is fake inside it (``video``, ``audio``, ``both`` or
    ``sync``), in time order, clipped to ``duration``."""
    from dfdetect.segments import propose

    fps = float(track["fps"])
    fake = np.asarray(track["fake"], np.float32)
    out = []
    for a, b, _ in sorted(propose(fake, fps, duration=duration or None, thresholds=(threshold,))):
        k0, k1 = int(round(a * fps)), max(int(round(a * fps)) + 1, int(np.ceil(b * fps - 1e-6)))
        vid = float(np.mean(track["video"][k0:k1])) >= threshold
        aud = float(np.mean(track["audio"][k0:k1])) >= threshold
        modality = "both" if vid and aud else "video" if vid else "audio" if aud else SYNC
        out.append({"start": round(a, 3), "end": round(b, 3), "score": round(float(np.mean(fake[k0:k1])), 4),
                    "modality": modality})
    return out


def _config_from_card(card: dict):
    from dfdetect.config import get_config

    c = card["config"]
    return get_config("cpu-small").override(**{k: v for k, v in c.items() if k != "name"})


def predict_video(path: str | Path, model: Detector | str | Path | None = None) -> Verdict:
    """One-shot convenience: loads a ``Detector`` (unless given one) and scores ``path``."""
    if isinstance(model, Detector):
        return model.predict_video(path)
    with Detector(model) as det:
        return det.predict_video(path)
