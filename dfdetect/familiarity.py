"""How familiar an input is to a model: out-of-distribution detection for abstention.

A detector trained on one domain (the built-in benchmark, or FakeAVCeleb) meets videos unlike anything it saw
and still answers ``fake 1.00``. Before a verdict is trusted we ask whether the video's *features* look like
the training data's. Each window is summarised at four points of the model (``PARTS``): the fused pooled vector
the four heads read, and each branch's own features averaged over the window (face encoder over the frames with
a face, mouth encoder, audio encoder). Each part is compared with the training windows' by a Mahalanobis
distance (Lee et al., 2018: class-conditional means, one shared covariance with Ledoit-Wolf shrinkage, several
layers), averaged per video, divided by its typical value on held-out videos; a video's distance is the largest
of its parts' (a face unlike the training faces is enough, whatever the voice).

Why these parts (``bench/familiarity.py`` on the demo model; README): the pooled vector alone missed 14% of
unfamiliar clips and flagged 12% of the benchmark's test videos (it keeps only what separates fake from real);
the branch features separated them completely (AUROC 1.00), and their maximum flagged 3% of test videos.

* ``fit_reference(model, data_dir, config)`` computes the statistics from the ``train`` split and chooses the
  distance threshold on held-out in-distribution videos (the ``val`` split) so that about ``target_rate``
  (5%) of them are flagged.
* ``Reference.save(dir)`` writes ``familiarity.npz`` beside an exported model; ``Reference.load`` reads it.
* A reference also stores a *probe*: the embedding of a fixed synthetic input. At load the model embeds the
  same probe again; another model (another export's statistics) gives another embedding and is refused.

``familiarity`` is reported as a share: the fraction of the model's own held-out in-distribution videos that
lie at least as far from the training data (1 = as typical as they come, 0 = farther than all of them);
``in_distribution`` is ``distance <= threshold``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfdetect.errors import UsageError

FILE = "familiarity.npz"
FORMAT = "dfdetect-familiarity/2"
EMBEDDING_LAYER = "dropout"  # its input is the pooled vector every head reads
# (name, layer, how a window's per-step output is summarised): what a familiarity embedding is made of
PARTS = (("pooled", EMBEDDING_LAYER, "input"), ("face", "face_frames", "face steps"),
         ("mouth", "mouth_frames", "face steps"), ("voice", "audio_to_frames", "all steps"))
TARGET_RATE = 0.05
FOLDS = 5  # without a held-out split, training videos are scored in this many cross-fitted folds


class FamiliarityError(UsageError, ValueError):
    """Statistics that cannot be used with this model (another model's, or an unreadable file)."""


def embedding_parts(model) -> list[tuple[str, Any]]:
    """``(name, symbolic (batch, d) tensor)`` for each of ``PARTS`` this model has (an audio-only model has
    no face part, say)."""
    from dfdetect.layers import MaskedMean

    mask = model.input["mask"] if isinstance(model.input, dict) else None
    out = []
    for name, layer, how in PARTS:
        try:
            lay = model.get_layer(layer)
        except ValueError:
            continue
        if how == "input":
            out.append((name, lay.input))
        else:
            valid = mask if how == "face steps" else None
            out.append((name, MaskedMean(name=f"familiarity_{name}")(lay.output, valid)))
    if not out:
        raise FamiliarityError(f"model {model.name!r} has none of the layers familiarity reads "
                               f"({', '.join(p[1] for p in PARTS)})")
    return out


def with_embedding(model):
    """A model with the same inputs returning every head (the four window heads and the frame-level heads
    the model has) plus ``embedding`` (the parts, concatenated) in one forward pass; ``.familiarity_parts``
    lists ``(name, size)`` in that order. A model it returned is returned as it is."""
    import keras

    from dfdetect.heads import FRAME_HEADS, HEADS

    if hasattr(model, "familiarity_parts"):
        return model  # already wrapped: building it again would make (and trace) another model
    parts = embedding_parts(model)
    names = {layer.name for layer in model.layers}
    outs = {h: model.get_layer(h).output for h in (*HEADS, *FRAME_HEADS) if h in names}
    tensors = [t for _, t in parts]
    outs["embedding"] = tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(
        name="familiarity_embedding")(tensors)
    wrapped = keras.Model(model.input, outs, name=f"{model.name}_with_embedding")
    wrapped.familiarity_parts = [(n, int(t.shape[-1])) for n, t in parts]
    return wrapped


def probe_inputs(config, n: int = 2) -> dict[str, np.ndarray]:
    """A fixed, seeded input batch (noise frames, a tone and noise): what a reference's probe embeds."""
    rng = np.random.default_rng(1234)
    T, C, S = config.frames_per_window, config.faces.crop_size, config.samples_per_window
    frames = rng.integers(0, 256, (n, T, C, C, 3), dtype=np.uint8)
    t = np.arange(S) / config.media.sample_rate
    audio = np.stack([0.1 * np.sin(2 * np.pi * (150 + 50 * i) * t) + 0.01 * rng.standard_normal(S)
                      for i in range(n)]).astype(np.float32)
    mask = np.ones((n, T), np.float32)
    mouth = np.tile(np.array([0.5, 0.75], np.float32), (n, T, 1))
    return {"frames": frames, "audio": audio, "mask": mask, "mouth": mouth}


@dataclass
class Reference:
    """Training-data statistics of one model's familiarity embedding, and the threshold that flags
    unfamiliar videos.

    Args:
        parts: ``(name, size)`` of each part of the embedding, in order (see ``PARTS``).
        means: per part, ``(classes, size)`` class-conditional means of the training windows.
        precisions: per part, ``(size, size)`` inverse of the shared (shrunk) covariance.
        scales: per part, the median video distance of held-out in-distribution videos (parts' distances are
            divided by it before the largest is taken).
        threshold: the video distance above which a video is out of distribution.
        held_out: sorted video distances of held-out in-distribution videos (``familiarity`` is read off them).
        probe: the model's embedding of ``probe_inputs`` (to refuse another model's statistics).
        info: how it was fitted (windows, videos, target rate, data folder).
    """

    parts: list[tuple[str, int]]
    means: list[np.ndarray]
    precisions: list[np.ndarray]
    scales: np.ndarray
    threshold: float
    held_out: np.ndarray
    probe: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    # -- scoring ------------------------------------------------------------------------------------------------
    def part_distances(self, embeddings: np.ndarray) -> np.ndarray:
        """``(windows, parts)``: each part's Mahalanobis distance to the nearest class mean, unscaled."""
        x = np.asarray(embeddings, np.float64).reshape(len(embeddings), -1)
        out, at = [], 0
        for (_, size), means, precision in zip(self.parts, self.means, self.precisions):
            xp = x[:, at:at + size]
            at += size
            d = [np.einsum("ij,jk,ik->i", xp - m, precision, xp - m) for m in means]
            out.append(np.sqrt(np.maximum(np.min(np.stack(d), axis=0), 0.0)))
        return np.stack(out, axis=1) if out else np.zeros((len(x), 0))

    def window_distances(self, embeddings: np.ndarray) -> np.ndarray:
        """Each window's distance: its largest scaled part distance."""
        return (self.part_distances(embeddings) / self.scales).max(axis=1)

    def video_distance(self, embeddings: np.ndarray) -> float:
        """A video's distance: each part's distance averaged over the video's windows, scaled, the largest."""
        d = self.part_distances(embeddings)
        return float((d.mean(axis=0) / self.scales).max()) if len(d) else float("nan")

    def unfamiliar_parts(self, embeddings: np.ndarray) -> list[str]:
        """The parts (face, mouth, voice, pooled) whose own scaled distance is past the threshold."""
        d = self.part_distances(embeddings)
        if not len(d):
            return []
        per = d.mean(axis=0) / self.scales
        return [name for (name, _), x in zip(self.parts, per) if x > self.threshold]

    def familiarity(self, distance: float) -> float:
        """The share of held-out in-distribution videos at least as far from the training data."""
        if not np.isfinite(distance):
            return float("nan")
        h = self.held_out
        return float(np.sum(h >= distance) / len(h)) if len(h) else float("nan")

    def judge(self, embeddings: np.ndarray) -> tuple[float, float, bool]:
        """``(distance, familiarity, in_distribution)`` of one video from its windows' embeddings."""
        d = self.video_distance(embeddings)
        return d, self.familiarity(d), bool(d <= self.threshold)

    # -- the model it belongs to ------------------------------------------------------------------------------
    def check_probe(self, probe: np.ndarray, source: str = "") -> None:
        """Refuses statistics fitted on another model: the probe's embedding must match the stored one."""
        probe = np.asarray(probe, np.float64)
        if probe.shape != self.probe.shape:
            raise FamiliarityError(f"{source or FILE} was computed for another model (embedding size "
                                   f"{self.probe.shape[-1]}, this model's {probe.shape[-1]}): export the run again")
        scale = max(1e-6, float(np.abs(self.probe).max()))
        err = float(np.abs(probe - self.probe).max()) / scale
        if err > 1e-3:
            raise FamiliarityError(f"{source or FILE} was computed for another model (its probe embedding differs "
                                   f"by {err:.1%}): export the run again so that model and statistics match")

    # -- files ------------------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / FILE
        arrays = {f"means_{i}": m for i, m in enumerate(self.means)}
        arrays.update({f"precision_{i}": p for i, p in enumerate(self.precisions)})
        info = {"format": FORMAT, "parts": [list(p) for p in self.parts], **self.info}
        np.savez(path, scales=np.asarray(self.scales, np.float64), threshold=np.float64(self.threshold),
                 held_out=self.held_out, probe=self.probe, info=np.array(json.dumps(info)), **arrays)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Reference | None:
        """The reference saved in ``folder``; None when there is none (a model exported before abstention)."""
        path = Path(folder) / FILE
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                info = json.loads(str(z["info"]))
                if info.get("format") != FORMAT:
                    raise KeyError(f"format {info.get('format')!r}, expected {FORMAT}")
                parts = [(str(n), int(k)) for n, k in info.pop("parts")]
                return cls(parts=parts, means=[z[f"means_{i}"] for i in range(len(parts))],
                           precisions=[z[f"precision_{i}"] for i in range(len(parts))], scales=z["scales"],
                           threshold=float(z["threshold"]), held_out=z["held_out"], probe=z["probe"], info=info)
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
            raise FamiliarityError(f"{path} is not a readable familiarity file ({type(e).__name__}: {e})") from None

    def summary(self) -> dict[str, Any]:
        return {"method": "mahalanobis", "parts": [n for n, _ in self.parts], "threshold": self.threshold,
                "held_out_videos": int(len(self.held_out)),
                **{k: v for k, v in self.info.items() if k != "format"}}


# ---------------------------------------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------------------------------------

def embed_split(model, data_dir: str | Path, config, split: str, batch_size: int = 32):
    """Embeddings of every window of one split, and the windows' table (``evaluate.window_scores``: path,
    start, labels and scores), from one pass: ``(embeddings (n, d), table)``."""
    from dfdetect.evaluate import window_scores

    table = window_scores(model, data_dir, config, split, batch_size=batch_size, embeddings=True)
    return table.attrs.pop("embeddings"), table


def fit_statistics(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class-conditional means and the shared shrunk precision matrix (classes with too few windows are
    pooled into one mean)."""
    from sklearn.covariance import LedoitWolf

    x = np.asarray(embeddings, np.float64)
    y = np.asarray(labels).reshape(-1)
    classes = [c for c in np.unique(y) if (y == c).sum() >= 2]
    if not classes:
        classes, y = [0], np.zeros(len(x), int)
    means = np.stack([x[y == c].mean(0) for c in classes])
    centred = np.concatenate([x[y == c] - m for c, m in zip(classes, means)])
    lw = LedoitWolf().fit(centred)
    return means, np.asarray(lw.precision_, np.float64)


def fit_parts(x: np.ndarray, labels: np.ndarray, parts: list[tuple[str, int]]):
    """Per part: class-conditional means and shared shrunk precision of the windows ``x``."""
    means, precisions, at = [], [], 0
    for _, size in parts:
        m, p = fit_statistics(x[:, at:at + size], labels)
        means.append(m)
        precisions.append(p)
        at += size
    return means, precisions


def _video_part_distances(ref: Reference, x: np.ndarray, paths) -> np.ndarray:
    """``(videos, parts)``: each part's distance averaged over each video's windows (videos in sorted order)."""
    import pandas as pd

    d = pd.DataFrame(ref.part_distances(x))
    return d.groupby(np.asarray(list(paths))).mean().to_numpy()


def video_distances(ref: Reference, x: np.ndarray, paths):
    """A Series: each video's distance (``Reference.video_distance``), indexed by path."""
    import pandas as pd

    paths = np.asarray(list(paths))
    per = _video_part_distances(ref, x, paths) / ref.scales
    return pd.Series(per.max(axis=1), index=np.unique(paths), name="distance")


def fit_reference(model, data_dir: str | Path, config, target_rate: float = TARGET_RATE,
                  held_out_split: str = "val", held_out: tuple[np.ndarray, Any] | None = None) -> Reference:
    """Statistics from the ``train`` split's windows; part scales and the threshold from ``held_out_split``
    videos (never trained on), so that about ``target_rate`` of in-distribution videos are flagged. Without such
    videos, training videos scored by statistics fitted on the other folds (``cross_fitted_part_distances``).
    ``held_out``: that split's ``(embeddings, paths)`` when already computed."""
    from dfdetect.errors import BadArgument
    from dfdetect.pipeline import count_windows

    model = with_embedding(model)  # once: every pass below (train, held-out, probe) uses the same graph
    x, table = embed_split(model, data_dir, config, "train")
    if len(x) < 4:
        raise BadArgument(f"{data_dir} has {len(x)} training windows: too few to describe the training data")
    parts = model.familiarity_parts
    labels = table["fake_label"].to_numpy()
    means, precisions = fit_parts(x, labels, parts)
    ref = Reference(parts=parts, means=means, precisions=precisions, scales=np.ones(len(parts)),
                    threshold=float("inf"), held_out=np.zeros(0), probe=probe_embedding(model, config))
    if held_out is not None or count_windows(data_dir, held_out_split):
        source = held_out_split
        if held_out is not None:
            xv, paths = held_out
        else:
            xv, tv = embed_split(model, data_dir, config, held_out_split)
            paths = tv["path"]
        per_video = _video_part_distances(ref, xv, paths)
    else:
        source = f"train ({FOLDS}-fold cross-fitted)"
        per_video = cross_fitted_part_distances(x, table, parts)
    ref.scales = np.maximum(np.median(per_video, axis=0), 1e-9)
    videos = np.sort((per_video / ref.scales).max(axis=1))
    ref.held_out = videos
    ref.threshold = float(np.quantile(videos, 1.0 - target_rate, method="higher")) if len(videos) else float("inf")
    ref.info = {"train_windows": int(len(x)), "held_out_split": source, "held_out_videos": int(len(videos)),
                "target_rate": target_rate, "data": str(data_dir), "classes": int(len(means[0]))}
    return ref


def cross_fitted_part_distances(x: np.ndarray, table, parts: list[tuple[str, int]]) -> np.ndarray:
    """Without a held-out split: ``(videos, parts)`` distances of each training video to statistics fitted on
    the other folds (videos assigned to ``FOLDS`` folds by a hash of their path), so the threshold still comes
    from videos the statistics never saw."""
    import zlib

    paths = table["path"].astype(str).to_numpy()
    labels = table["fake_label"].to_numpy()
    fold = np.array([zlib.crc32(p.encode()) % FOLDS for p in paths])
    rows = []
    for f in range(FOLDS):
        test = fold == f
        if not test.any() or (~test).sum() < 4:
            continue
        means, precisions = fit_parts(x[~test], labels[~test], parts)
        ref = Reference(parts=parts, means=means, precisions=precisions, scales=np.ones(len(parts)),
                        threshold=0.0, held_out=np.zeros(0), probe=np.zeros(0))
        rows.append(_video_part_distances(ref, x[test], paths[test]))
    return np.concatenate(rows) if rows else np.zeros((0, len(parts)))


def probe_embedding(model, config) -> np.ndarray:
    """The model's embedding of ``probe_inputs(config)`` (see ``Reference.check_probe``)."""
    from dfdetect.heads import model_inputs

    model = with_embedding(model)
    out = model.predict_on_batch(model_inputs(model.input, **probe_inputs(config)))
    return np.asarray(out["embedding"], np.float64)


NOTICE_NO_REFERENCE = ("this model was exported without familiarity statistics: whether a video is like its "
                       "training data is unknown (in_distribution null); export it again to get abstention")
UNCERTAIN_TEXT = ("this video is unlike anything this model was trained on: its score is not reliable "
                  "(familiarity {familiarity:.2f}; the model's own held-out videos score {rate:.2f} or more)")
PART_WORDS = {"face": "the face", "mouth": "the mouth", "voice": "the voice",
              "pooled": "the combined face-and-voice features"}
