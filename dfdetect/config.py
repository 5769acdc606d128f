"""Typed, frozen configuration with named presets.

Every stage reads its settings from one of these dataclasses, never from constants scattered through
notebooks. Presets are registered by name (``cpu-small``, ``colab-gpu``) and any field can be overridden
from a YAML file or ``key=value`` pairs::

    cfg = get_config("cpu-small")
    cfg = cfg.override(media={"fps": 12})
    cfg = load_config("my_run.yaml")      # {"preset": "cpu-small", "media": {"fps": 12}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dfdetect.errors import UsageError


class ConfigError(UsageError, ValueError):
    """A bad preset name, config file, field or value: the user's to fix (exit 2)."""


@dataclass(frozen=True)
class MediaConfig:
    """How video and audio are decoded.

    Args:
        fps: frames per second after timestamp resampling (>= 12 keeps lip motion visible).
        sample_rate: audio sample rate after resampling, mono.
        max_side: frames whose longer side exceeds this are downscaled while decoding (bounds memory on
            4K input); crops are taken from the downscaled frame.
        max_frame_pixels: refuse a video whose frames are larger (width x height; default 8K UHD), from the
            stream header before decoding, or at the first such frame.
        max_duration: refuse a file whose header declares it longer (seconds); where the header says nothing
            (or less than the truth), decoding stops there and the verdict's notes say so.
        max_sample_rate, max_channels: refuse audio beyond these (below, any rate and layout is resampled to
            ``sample_rate`` mono).
        max_streams: refuse a file with more streams than this (every stream is probed when it is opened).
        (The file size limit is ``preprocess.max_file_gb``; 0 turns any of these off.)
    """

    fps: float = 15.0
    sample_rate: int = 16000
    max_side: int = 1280
    max_frame_pixels: int = 7680 * 4320
    max_duration: float = 3 * 3600.0
    max_sample_rate: int = 384000
    max_channels: int = 16
    max_streams: int = 32


@dataclass(frozen=True)
class FaceConfig:
    """Face detection, tracking and cropping.

    Args:
        crop_size: side of the square face crop in pixels.
        margin: crop side as a multiple of the detected box's longer side.
        detect_every: run the detector on every k-th sampled frame; boxes between are tracked.
        rescan_every: every n-th detection scans the whole frame (counts faces, finds new ones); the
            others only search around the followed face.
        min_confidence: detector score threshold of one look (what the detector returns at all; enough to keep
            following a face already tracked).
        confirm_confidence: a new face must reach this mean score over four looks: the whole-frame one, the
            region around it zoomed in, the same region mirrored, and a wider region (``FaceDetector.confirm``).
            One look scores clouds, letters and photographed landscapes up to 0.79; the mean of four stays
            under 0.65 on them (measured; a fuzzy galaxy reached 0.74), while real faces average 0.72 and more
            (2 of 100 blurry 25 px LFW faces: 0.645, 0.697).
        model: ``short`` (BlazeFace short range) or ``full`` (full range sparse).
        fallback_full_range: try the full-range model on frames where the short-range one finds nothing (what
            it finds must be confirmed like any new face).
        smoothing: alpha-beta filter strength on box centre and size (0 = raw detections, towards 1 =
            smoother and slower to follow).
        detect_side: longest side of the image given to the detector (BlazeFace works at 128 px anyway).
        max_tracks: faces followed at once (``faces.MultiFaceTracker``). Preprocessing keeps 1, the dominant
            face, whose windows training learns from; prediction (``Detector.scan_config``) follows up to 4,
            scores each and reports the most suspicious (DFDC clips often show two people, one of them swapped).
        min_track_seconds: a further face is scored only when it was seen for at least this long (a passer-by
            or a face on a poster in a few frames is listed, not scored).
    """

    crop_size: int = 112
    margin: float = 1.4
    detect_every: int = 5
    rescan_every: int = 6
    min_confidence: float = 0.5
    confirm_confidence: float = 0.7
    model: str = "short"
    fallback_full_range: bool = True
    smoothing: float = 0.3
    detect_side: int = 640
    max_tracks: int = 1
    min_track_seconds: float = 1.0


@dataclass(frozen=True)
class WindowConfig:
    """How a video is cut into training/inference windows.

    Args:
        seconds: window length.
        hop_seconds: distance between window starts (equal to ``seconds`` for no overlap).
        min_face_ratio: a window with fewer face frames than this share is still written (its mask says
            so) unless it has none at all; set > 0 to drop mostly faceless windows.
        trim_leading_silence: drop leading silence before windowing, so that it cannot become a cue
            (FakeAVCeleb and AV-Deepfake1M fakes start with a short silence).
        silence_dbfs: a 20 ms block quieter than this (dB full scale) counts as silence.
        max_windows: stop after this many windows per video (0 = no limit).
        cover_end: when the hop leaves the video's last frames in no window, add one last window that ends at
            the last frame (it overlaps the one before; nothing is padded), so that every frame after the
            leading silence is scored and a fake segment near the end can be found.
    """

    seconds: float = 2.0
    hop_seconds: float = 2.0
    min_face_ratio: float = 0.0
    trim_leading_silence: bool = True
    silence_dbfs: float = -45.0
    max_windows: int = 0
    cover_end: bool = True


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing run settings.

    Args:
        workers: parallel worker processes (0 = one per core).
        shard_mb: start a new shard once the current one passes this size.
        max_file_gb: refuse inputs larger than this (a clear ``failed`` row instead of hours of decoding).
        max_seconds: refuse inputs longer than this (0 = no limit).
    """

    workers: int = 0
    shard_mb: int = 256
    max_file_gb: float = 8.0
    max_seconds: float = 3 * 3600.0


@dataclass(frozen=True)
class ModelConfig:
    """The multimodal model (``dfdetect.model.build_model``).

    Args:
        modality: ``both``, ``video`` (face only) or ``audio`` (voice only); the inputs stay the same.
        fusion: ``aligned`` (per time step: visual, audio and their sync correlation, then a recurrent layer)
            or ``late`` (each branch pooled on its own, then concatenated: the ablation).
        frame_encoder: ``small`` (a CNN trained from scratch) or a ``keras.applications`` name such as
            ``EfficientNetB0``.
        backbone_weights: ``imagenet`` or None for a ``keras.applications`` encoder (tests use None).
        face_size: the face crop is resized to this before the frame encoder (compute vs detail).
        filters: channels of the small frame encoder's stages.
        mouth_stream: add a second visual stream on the mouth region of the face crop.
        mouth_size: side of the mouth crop.
        mouth_crop: ``keypoints``: the mouth stream's patch follows the face detector's mouth keypoint in
            every frame (``MouthCrop``; the model then takes a ``mouth`` input, ``(T, 2)``); ``fixed``: a fixed
            region of the face crop (rows 0.55-0.95, columns 0.2-0.8), which drifts off the lips as the head
            moves in an unaligned crop.
        n_mels, mel_hop: log-mel features computed inside the model (hop in samples).
        audio_filters: channels of the spectrogram CNN's stages.
        sync_dim, sync_lags: projection size and lags (in frames, each way) of the audio-visual correlation.
        window_sync: add the window-level correlation over time of mouth and voice (``LaggedCorrelation``)
            beside the pooled features, for aligned fusion of both modalities: it is what catches lip-sync
            fakes and shifted audio.
        lstm_units: units of the (bidirectional) LSTM over fused time steps.
        bidirectional: use a BiLSTM.
        dropout: dropout before the heads.
        frame_heads: add the frame-level heads (``frame_fake``, ``frame_video``, ``frame_audio``): per time step
            (one per video frame) the probability that the frame lies in a fake segment, read from each step's
            local features, the recurrent sequence and the window's pooled evidence. They are what localises a
            fake to a frame or two.
    """

    modality: str = "both"
    fusion: str = "aligned"
    frame_encoder: str = "small"
    backbone_weights: str | None = None
    face_size: int = 64
    filters: tuple[int, ...] = (24, 48, 96)
    mouth_stream: bool = True
    mouth_size: int = 32
    mouth_crop: str = "fixed"
    n_mels: int = 64
    mel_hop: int = 160
    audio_filters: tuple[int, ...] = (24, 48, 96)
    sync_dim: int = 32
    sync_lags: int = 4
    window_sync: bool = True
    lstm_units: int = 64
    bidirectional: bool = True
    dropout: float = 0.2
    frame_heads: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """Training (``dfdetect.train``).

    Args:
        epochs: maximum epochs (early stopping may end sooner).
        batch_size: global batch size (split across replicas under a strategy).
        learning_rate, weight_decay: AdamW.
        patience: early-stopping patience on validation AUC.
        mixed_precision: ``mixed_float16`` / ``mixed_bfloat16`` policy, or None (the spectrogram stays float32).
        seed: for repeatable runs.
        shuffle_buffer: windows in the shuffle buffer.
        augment: label-preserving augmentation of training windows.
        balance: weight the ``fake`` head's classes to equal total weight (real clips are rare in FakeAVCeleb).
        cache: ``auto`` (by the dataset's size against the available memory, said in the log:
            ``dfdetect.pipeline.choose_cache``), ``decoded`` (windows in memory, about 1 MB each: small
            datasets, fastest), ``serialized`` (the compact records; PNG decoding every epoch) or ``none``
            (large datasets; memory bounded by the shuffle buffer).
        head_weights: loss weight of each head.
        steps_per_epoch: cap on steps per epoch (0 = one pass).
        sync_negatives: probability that a real training window gets the audio of another real window and
            becomes an audio-video mismatch example (SyncNet-style negatives; 0 = off).
        invert_labels: train every head on the opposite of its label (a sanity check, never for a real
            model): a pipeline that really learns from its labels then scores below chance on held-out
            clips, so a learned score can be told from a leak or an evaluation reading scores upside down.
        frame_weight: loss weight of each frame-level head (per-step cross-entropy, averaged over the steps).
        boundary_weight: extra weight of the steps within ``boundary_frames`` of a change of frame label (a
            fake segment's start or end): 1.0 doubles their weight, 0 = off. Boundaries are few steps of many,
            and where a segment starts is what temporal AP at high IoU measures.
        boundary_frames: how many steps each side of a boundary get ``boundary_weight``.
        pseudo_fakes: probability that a real training window (one still real after ``sync_negatives``)
            becomes a pseudo-fake of one of ``pseudo_fake_kinds`` (``dfdetect.pseudo_fakes``: a self-blended
            face, a resynthesised voice); 0 = off.
        pseudo_fake_kinds: which pseudo-fakes to make, drawn uniformly: ``face``, ``audio``.
        real_only: train on the real videos alone (fakes in the data are ignored and counted in the log),
            with sync negatives and pseudo-fakes as the fakes; the best epoch is chosen on the val split's real
            videos and their pseudo-fakes, so no real fake is seen before the test.
        exclude_methods: manipulation methods (the ``method`` column) left out of training and model
            selection: a leave-one-manipulation-out run trains without ``M`` and is tested on ``M``.
    """

    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 6
    mixed_precision: str | None = None
    seed: int = 0
    shuffle_buffer: int = 2048
    augment: bool = True
    balance: bool = True
    cache: str = "auto"
    head_weights: tuple[float, ...] = (1.0, 0.5, 0.5, 0.5)
    steps_per_epoch: int = 0
    sync_negatives: float = 0.3
    invert_labels: bool = False
    frame_weight: float = 1.0
    boundary_weight: float = 1.0
    boundary_frames: int = 2
    pseudo_fakes: float = 0.0
    pseudo_fake_kinds: tuple[str, ...] = ("face", "audio")
    real_only: bool = False
    exclude_methods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # runs written before `cache` took a mode stored a boolean
        legacy = {"true": "decoded", "false": "none"}
        object.__setattr__(self, "cache", legacy.get(str(self.cache).lower(), str(self.cache)))


@dataclass(frozen=True)
class Config:
    """The whole configuration of a dfdetect run."""

    name: str = "cpu-small"
    media: MediaConfig = field(default_factory=MediaConfig)
    faces: FaceConfig = field(default_factory=FaceConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def frames_per_window(self) -> int:
        return int(round(self.window.seconds * self.media.fps))

    @property
    def samples_per_window(self) -> int:
        return int(round(self.window.seconds * self.media.sample_rate))

    def override(self, **sections: Any) -> Config:
        """Returns a copy with fields replaced; ``sections`` maps a section name to a dict of fields."""
        return _merge(self, sections)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _merge(obj: Any, updates: dict[str, Any]) -> Any:
    if not updates:
        return obj
    names = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        if key not in names:
            raise ConfigError(f"unknown config field {key!r} in {type(obj).__name__}; "
                             f"known: {', '.join(sorted(names))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {key!r} needs a mapping, got {value!r}")
            changes[key] = _merge(current, value)
        else:
            try:
                if isinstance(current, tuple):
                    changes[key] = tuple(value)
                else:
                    changes[key] = type(current)(value) if current is not None and value is not None else value
            except (TypeError, ValueError):
                # a value the user typed (--set, a YAML file): their mistake, not a crash
                raise ConfigError(f"config field {key!r} in {type(obj).__name__} needs a "
                                  f"{type(current).__name__}, got {value!r}") from None
    return dataclasses.replace(obj, **changes)


PRESETS: dict[str, Config] = {}


def register_preset(config: Config) -> Config:
    PRESETS[config.name] = config
    return config


register_preset(Config(name="cpu-small", window=WindowConfig(seconds=2.0, hop_seconds=1.0)))
register_preset(
    Config(
        name="colab-gpu",
        media=MediaConfig(fps=25.0),
        faces=FaceConfig(crop_size=160, detect_every=3),
        window=WindowConfig(seconds=2.0, hop_seconds=0.5),
        model=ModelConfig(face_size=112, filters=(32, 64, 128, 256), mouth_size=48, lstm_units=128,
                          audio_filters=(32, 64, 128), n_mels=80),
        train=TrainConfig(epochs=40, batch_size=32, mixed_precision="mixed_float16", cache="serialized"),
    )
)
# Tiny settings for tests and notebook smoke runs: short windows, small crops.
register_preset(
    Config(
        name="smoke",
        media=MediaConfig(fps=12.0),
        faces=FaceConfig(crop_size=64),
        window=WindowConfig(seconds=1.0, hop_seconds=1.0),
        preprocess=PreprocessConfig(workers=1),
        model=ModelConfig(face_size=32, filters=(8, 16), mouth_size=16, audio_filters=(8, 16), n_mels=32,
                          sync_dim=8, sync_lags=2, lstm_units=8),
        train=TrainConfig(epochs=2, batch_size=4, shuffle_buffer=64),
    )
)


def get_config(name: str = "cpu-small") -> Config:
    """Returns a named preset."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown config preset {name!r}; presets: {', '.join(sorted(PRESETS))}") from None


def load_config(source: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Loads a preset name or a YAML file, then applies ``section.field=value`` overrides."""
    if source is None:
        cfg = get_config()
    elif str(source) in PRESETS:
        cfg = get_config(str(source))
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"{source!r} is neither a preset ({', '.join(sorted(PRESETS))}) nor a file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"cannot read config file {source}: {first}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {source} must hold a mapping of sections, got {type(data).__name__}")
        preset, name = data.pop("preset", None), data.pop("name", None)
        cfg = get_config(preset or (name if name in PRESETS else "cpu-small")).override(**data)
        if name:
            cfg = dataclasses.replace(cfg, name=str(name))
    for item in overrides or []:
        key, _, value = item.partition("=")
        section, _, fname = key.partition(".")
        if not fname or not _:
            raise ConfigError(f"override {item!r} must look like section.field=value")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: {value!r} is not a YAML value") from None
        cfg = cfg.override(**{section: {fname: parsed}})
    return cfg
