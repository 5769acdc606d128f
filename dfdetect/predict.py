"""Video in, verdict out: ``Detector(model_dir).predict_video(path) -> Verdict``.

Windows slide over the whole video; each is scored by all four heads; window scores are aggregated (mean,
and the confident-windows rule of the DFDC winner) into the video's scores; contiguous windows above the
threshold become fake segments. A verdict always says how much was really seen (windows scored, the share of
frames with a face, whether there was audio) and how long it took. A video with no usable face or no audio is
scored on what it has and says so; an unreadable file is a ``failed`` verdict with a one-line reason; an
unexpected exception (a bug, not bad media) is an ``error`` verdict (``internal error: Type: message``) that
carries its traceback for the caller's log.
"""

from __future__ import annotations

import json
import time
import traceback as tb
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfdetect.config import load_config
from dfdetect.errors import BadArgument, MissingInput, one_line
from dfdetect.export import latest_export, read_card
from dfdetect.media import MediaError
from dfdetect.model import HEADS

VERDICT_FIELDS = ["path", "status", "reason", "score", "label", "video_fake", "audio_fake", "av_mismatch",
                  "face_ratio", "has_audio", "windows", "segments", "timeline", "seconds"]


@dataclass
class Verdict:
    """The answer for one video: ``status`` ok, failed (bad media; ``reason`` says why) or error (a bug:
    ``reason`` is ``internal error: ...``, ``traceback`` the full one, kept out of ``to_dict`` and the
    output rows); scores are None unless ok."""

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
    score_confident: float | None = None
    traceback: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["traceback"]  # for the log, not for the results
        return d


class Detector:
    """A loaded exported model (``dfdetect export``) plus a face detector, ready to score videos.

    Args:
        model_dir: exported folder with ``model_card.json`` and ``model.keras``; default: the latest export
            under ``saved_models/``.
        threshold: decision threshold on the ``fake`` score (default: the card's).
        batch_size: windows per model call.
        fmt: which copy of the model scores windows: ``keras`` (``model.keras``) or ``saved_model`` (the
            exported SavedModel's ``serving_default`` signature, what TF Serving runs).
        model_file: another ``.keras`` file to score with (a run's ``best.keras``, say) while the card and
            config still come from ``model_dir``; for ``fmt="keras"`` only.
    """

    FORMATS = ("keras", "saved_model")

    def __init__(self, model_dir: str | Path | None = None, threshold: float | None = None,
                 batch_size: int = 8, fmt: str = "keras", model_file: str | Path | None = None) -> None:
        import keras

        import dfdetect.layers  # noqa: F401  (registers the custom layers)
        from dfdetect.faces import FaceDetector

        if model_dir is None:
            model_dir = latest_export()
            if model_dir is None:
                raise MissingInput("no exported model found under saved_models/: run `dfdetect demo`, or "
                                   "`dfdetect train` then `dfdetect export --model RUN`, or pass --model DIR")
        self.model_dir = Path(model_dir)
        self.card = read_card(self.model_dir)
        self.config = load_config(self.model_dir / "config.yaml") if (self.model_dir / "config.yaml").exists() \
            else _config_from_card(self.card)
        self.threshold = float(self.card["threshold"] if threshold is None else threshold)
        if fmt not in self.FORMATS:
            raise BadArgument(f"fmt must be one of {', '.join(self.FORMATS)}, got {fmt!r}")
        if fmt == "saved_model" and model_file is not None:
            raise BadArgument("model_file names a .keras file: it cannot be combined with fmt='saved_model'")
        self.fmt = fmt
        if fmt == "keras":
            path = Path(model_file) if model_file is not None else self.model_dir / "model.keras"
            if not path.is_file():
                raise MissingInput(f"{path} not found: export the run again with `dfdetect export --model RUN`")
            self.model = keras.saving.load_model(path, safe_mode=True, compile=False)
        else:
            import tensorflow as tf

            self.model = None
            if not (self.model_dir / "saved_model").is_dir():
                raise MissingInput(f"{self.model_dir / 'saved_model'} not found: export the run again")
            self._serving = tf.saved_model.load(str(self.model_dir / "saved_model")).signatures["serving_default"]
        self.batch_size = batch_size
        self.faces = FaceDetector(self.config.faces)

    def close(self) -> None:
        self.faces.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score_windows(self, frames: np.ndarray, audio: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        if self.fmt == "saved_model":
            import tensorflow as tf

            out = self._serving(frames=tf.constant(frames, tf.uint8), audio=tf.constant(audio, tf.float32),
                                mask=tf.constant(mask, tf.float32))
            return {h: np.asarray(out[h], np.float32).reshape(-1) for h in HEADS}
        out = self.model.predict_on_batch({"frames": frames, "audio": audio, "mask": mask})
        return {h: np.asarray(out[h], np.float32).reshape(-1) for h in HEADS}

    def predict_video(self, path: str | Path, keep_windows: bool = False) -> Verdict:
        """Scores one video. Never raises for a file (Ctrl-C aside): a bad one is ``failed`` with its reason,
        an unexpected exception is ``error`` with ``internal error: Type: message`` and its traceback."""
        from dfdetect.windows import VideoSummary, extract_windows

        t0 = time.time()
        v = Verdict(path=str(path))
        summary = VideoSummary()
        cfg = self.config.override(window={"max_windows": 0})
        starts, scores = [], {h: [] for h in HEADS}
        kept = []
        batch = []

        def flush() -> None:
            if not batch:
                return
            s = self.score_windows(np.stack([w.frames for w in batch]), np.stack([w.audio for w in batch]),
                                   np.stack([w.mask.astype(np.float32) for w in batch]))
            for h in HEADS:
                scores[h].extend(s[h].tolist())
            starts.extend(w.start for w in batch)
            if keep_windows:
                kept.extend(batch)
            batch.clear()

        try:
            for w in extract_windows(str(path), cfg, self.faces, summary):
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
            self._conclude(v, scores, starts, summary)
        except Exception as e:  # noqa: BLE001 - the same contract for a bug in the aggregation
            return Verdict(path=v.path, status="error", reason=f"internal error: {one_line(e)}",
                           traceback=tb.format_exc(), seconds=v.seconds, face_ratio=v.face_ratio,
                           has_audio=v.has_audio)
        if keep_windows:
            v._windows = kept  # type: ignore[attr-defined]  (for explanations)
        return v

    def _conclude(self, v: Verdict, scores: dict[str, list[float]], starts: list[float], summary) -> None:
        """Fills an ``ok`` verdict from its window scores: video scores, label, timeline, segments, notes."""
        from dfdetect.evaluate import confident_mean

        fake = np.array(scores["fake"])
        v.windows = len(fake)
        v.score = float(fake.mean())
        v.score_confident = confident_mean(fake)
        for h in ("video_fake", "audio_fake", "av_mismatch"):
            setattr(v, h, float(np.mean(scores[h])))
        v.label = "fake" if v.score >= self.threshold else "real"
        seconds = self.config.window.seconds
        v.timeline = [{"start": round(s, 3), "end": round(s + seconds, 3),
                       **{h: round(float(scores[h][i]), 4) for h in HEADS}} for i, s in enumerate(starts)]
        v.segments = _segments(v.timeline, self.threshold)
        notes = list(summary.warnings)
        if summary.face_frames == 0:
            notes.append("no face found: scored on the audio only")
        elif summary.face_ratio < 0.5:
            notes.append(f"a face in only {summary.face_ratio:.0%} of frames")
        if not summary.has_audio:
            notes.append("no audio: scored on the face only")
        if summary.trimmed:
            notes.append(f"{summary.trimmed:.2f} s of leading silence skipped")
        v.reason = "; ".join(notes)


def verdict_row(v: Verdict) -> dict[str, Any]:
    """A verdict as one flat CSV row (``VERDICT_FIELDS``; segments and timeline as JSON text)."""
    d = v.to_dict()
    row = {k: d[k] for k in VERDICT_FIELDS}
    row.update(segments=json.dumps(d["segments"]), timeline=json.dumps(d["timeline"]))
    return row


def _segments(timeline: list[dict[str, float]], threshold: float) -> list[dict[str, float]]:
    """Contiguous (overlapping or touching) windows above the threshold, merged."""
    from dfdetect.metrics import merge_segments

    merged = merge_segments([(w["start"], w["end"], w["fake"]) for w in timeline], threshold)
    return [{"start": a, "end": b, "score": round(x, 4)} for a, b, x in merged]


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
