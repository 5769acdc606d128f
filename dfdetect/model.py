"""The multimodal model: ``build_model(config)``.

    frames (T,H,W,3) uint8 ──TimeDistributed(FrameEncoder)──┐ face
                           └─TimeDistributed(FrameEncoder, mouth region)─┐ mouth
    mouth (T,2) keypoint ──┘ (model.mouth_crop="keypoints": MouthCrop cuts the region around the keypoint)
    mask (T,)  ── zeroes steps without a face (before and after the temporal convolution)   │
    audio (S,) float32 ── LogMelSpectrogram ── SpectrogramEncoder ── ResampleTime(T) ── one step per frame
    aligned fusion: [face+mouth, audio, SyncCorrelation(mouth, audio)] per step ── BiLSTM ── AttentionPooling
                    + LaggedCorrelation(mouth, audio) over the whole window ── Dense (window_sync)
    late fusion (ablation): each branch LSTM + pooled on its own, then concatenated
    heads: fake, video_fake, audio_fake, av_mismatch (sigmoid, float32, one per window)
    frame heads: frame_fake, frame_video, frame_audio (sigmoid, one per time step = video frame): each step's
                 local features, the recurrent sequence and the window's pooled evidence, through a temporal
                 convolution

The exported model takes raw frames and the raw waveform: features are computed inside, so there is no
train/serve skew.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from dfdetect.config import Config
from dfdetect.errors import MissingInput, one_line
from dfdetect.heads import FRAME_HEADS, HEADS, model_inputs  # noqa: F401  (defined without Keras, for predict)
from dfdetect.layers import (
    AttentionPooling,
    FrameEncoder,
    LaggedCorrelation,
    LogMelSpectrogram,
    MaskSteps,
    MouthCrop,
    ResampleTime,
    SpectrogramEncoder,
    SyncCorrelation,
)

MOUTH_REGION = (0.55, 0.95, 0.2, 0.8)  # of the aligned face crop: (top, bottom, left, right)
MOUTH_CROPS = ("fixed", "keypoints")


def input_names(config: Config) -> tuple[str, ...]:
    """The inputs ``build_model(config)`` takes: frames, audio and mask, and the mouth track when the mouth
    stream follows the keypoints."""
    mc = config.model
    follows = mc.mouth_stream and mc.mouth_crop == "keypoints" and mc.modality in ("both", "video")
    return ("frames", "audio", "mask", "mouth") if follows else ("frames", "audio", "mask")


# How each ``keras.applications`` family wants its pixels (``imagenet_utils.preprocess_input``'s modes), by name
# prefix, longest first. ``raw``: the model rescales inside itself and takes 0-255 (EfficientNet, EfficientNetV2,
# ConvNeXt, MobileNetV3); ``tf``: -1..1; ``torch``: 0-1 then ImageNet mean/std; ``caffe``: BGR minus the mean.
BACKBONE_PIXELS = (
    ("EfficientNet", "raw"), ("ConvNeXt", "raw"), ("MobileNetV3", "raw"),
    ("MobileNet", "tf"), ("InceptionResNetV2", "tf"), ("InceptionV3", "tf"), ("Xception", "tf"), ("NASNet", "tf"),
    ("DenseNet", "torch"), ("VGG", "caffe"), ("ResNet", "caffe"),
)
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def backbone_pixels(name: str) -> str:
    """What a ``keras.applications`` model called ``name`` expects of its input pixels: ``raw``, ``tf``,
    ``torch`` or ``caffe`` (a ValueError for a family not in ``BACKBONE_PIXELS``)."""
    if name.startswith("ResNet") and name.endswith("V2"):
        return "tf"  # ResNet50V2 & co. are Inception-style; ResNet50 (v1) is caffe-style
    for prefix, mode in BACKBONE_PIXELS:
        if name.startswith(prefix):
            return mode
    raise ValueError(f"frame_encoder {name!r}: unknown input scaling; known families: "
                     f"{', '.join(p for p, _ in BACKBONE_PIXELS)}")


def _pixel_layer(mode: str) -> layers.Layer | None:
    """A built-in layer (so the .keras file loads in safe mode, and it has no weights to upset the ImageNet
    weight loading, which matches layers with weights in order) taking 0-255 pixels to ``mode``'s range."""
    if mode == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name="backbone_pixels")
    if mode == "torch":  # (x / 255 - mean) / std, per channel
        return layers.Rescaling([1 / (255 * s) for s in TORCH_STD],
                                offset=[-m / s for m, s in zip(TORCH_MEAN, TORCH_STD)], name="backbone_pixels")
    return None


def _backbone(name: str, size: int, weights: str | None) -> keras.Model:
    """A ``keras.applications`` image model as a frame encoder, taking 0-255 pixels (``(size, size, 3)``) and
    scaling them the way its ImageNet weights were trained (``backbone_pixels``), inside the model so that
    export and predict need nothing more. ``weights="imagenet"`` downloads them once into ``~/.keras/models``;
    a failed download is a ``MissingInput`` with a one-line message, not a traceback from deep in Keras."""
    try:
        ctor = getattr(keras.applications, name)
    except AttributeError:
        raise ValueError(f"unknown frame_encoder {name!r}: 'small' or a keras.applications name") from None
    mode = backbone_pixels(name)
    if mode == "caffe" and weights is not None:
        # BGR order cannot be had from a built-in layer without weights (see _pixel_layer)
        raise ValueError(f"frame_encoder {name!r} with {weights} weights expects caffe-style BGR input, which "
                         f"dfdetect does not feed: use ResNet50V2, EfficientNetB0 or another family, or "
                         f"backbone_weights=null")
    # from scratch, any sane scaling will do: a caffe-style model (no weights, see above) gets -1..1
    prep = _pixel_layer("tf" if mode == "caffe" else mode)

    def make(w: str | None) -> keras.Model:
        kwargs = {"include_top": False, "weights": w, "pooling": "avg"}
        if prep is None:
            return ctor(input_shape=(size, size, 3), **kwargs)
        # the scaling goes in as input_tensor, so the application's own first and last layers stay where
        # dfdetect.explain looks for them (its input; the maps before the pooling at layers[-2])
        pixels = keras.Input((size, size, 3), name="backbone_input")
        return ctor(input_tensor=prep(pixels), **kwargs)

    if weights is None:
        return make(None)
    try:
        return make(weights)
    except Exception as e:  # keras.utils.get_file raises a bare Exception on a failed download
        try:
            make(None)
        except Exception:
            raise e from None  # the settings themselves are wrong (a face size too small...): that error, as is
        raise MissingInput(
            f"the {weights} weights of {name} could not be fetched ({one_line(e)}): download them once on a "
            f"machine with internet access into ~/.keras/models (or $KERAS_HOME/models), or set "
            f"model.backbone_weights=null to train the backbone from scratch") from None


@keras.saving.register_keras_serializable(package="dfdetect")
class FramesAsBatch(layers.TimeDistributed):
    """``TimeDistributed`` that runs its layer once over every frame of the batch, time folded into the batch.

    Keras 3's ``TimeDistributed`` unrolls a Python loop over a static time axis: T copies of the layer in the
    graph, each run on B images. With EfficientNetB0 in the smoke model (12 frames, batch 2, 2 CPU cores) the
    first training step took 152 s (tracing) and later ones 0.6 s; folded, 38 s and 0.14 s. Under ``colab-gpu``
    (50 frames) it would give the GPU 50 small batches a step; folded, it is one copy run on B x T images, and
    batch normalisation sees them all. The small encoder keeps ``TimeDistributed`` (its models were trained so).
    """

    def call(self, inputs, training=None, mask=None):
        steps = inputs.shape[1] if inputs.shape[1] is not None else ops.shape(inputs)[1]
        out = self.layer(ops.reshape(inputs, (-1, *inputs.shape[2:])), training=training)
        return ops.reshape(out, (-1, steps, *out.shape[1:]))


def build_model(config: Config) -> keras.Model:
    """Builds the functional model for ``config`` (its media, faces, window and model sections)."""
    mc = config.model
    if mc.modality not in ("both", "video", "audio"):
        raise ValueError(f"model.modality must be both, video or audio, got {mc.modality!r}")
    if mc.fusion not in ("aligned", "late"):
        raise ValueError(f"model.fusion must be aligned or late, got {mc.fusion!r}")
    if mc.mouth_crop not in MOUTH_CROPS:
        raise ValueError(f"model.mouth_crop must be fixed or keypoints, got {mc.mouth_crop!r}")
    T, S, C = config.frames_per_window, config.samples_per_window, config.faces.crop_size

    frames = keras.Input((T, C, C, 3), dtype="uint8", name="frames")
    audio = keras.Input((S,), dtype="float32", name="audio")
    mask = keras.Input((T,), dtype="float32", name="mask")
    inputs = {"frames": frames, "audio": audio, "mask": mask}
    if "mouth" in input_names(config):
        inputs["mouth"] = keras.Input((T, 2), dtype="float32", name="mouth")
    use_v, use_a = mc.modality in ("both", "video"), mc.modality in ("both", "audio")

    visual = mouth = aud = None
    if use_v:
        if mc.frame_encoder == "small":
            enc = FrameEncoder(mc.filters, size=mc.face_size, name="face_encoder")
        else:
            inner = _backbone(mc.frame_encoder, mc.face_size, mc.backbone_weights)
            enc = keras.Sequential([layers.Resizing(mc.face_size, mc.face_size), inner], name="face_encoder")
        wrap = layers.TimeDistributed if mc.frame_encoder == "small" else FramesAsBatch
        visual = wrap(enc, name="face_frames")(frames)
        if mc.mouth_stream and "mouth" in inputs:
            top, bottom, left, right = MOUTH_REGION
            patches = MouthCrop(mc.mouth_size, extent=(bottom - top, right - left),
                                fallback=((left + right) / 2, (top + bottom) / 2), name="mouth_crop")(
                frames, inputs["mouth"])
            menc = FrameEncoder(mc.filters[:2], size=mc.mouth_size, name="mouth_encoder")
            mouth = layers.TimeDistributed(menc, name="mouth_frames")(patches)
        elif mc.mouth_stream:
            menc = FrameEncoder(mc.filters[:2], size=mc.mouth_size, crop=MOUTH_REGION, name="mouth_encoder")
            mouth = layers.TimeDistributed(menc, name="mouth_frames")(frames)
            visual = layers.Concatenate(name="face_mouth")([visual, mouth])
        # faceless steps are zeroed before the temporal convolution, or their features (the encoder's answer to
        # a blank crop) would leak into their neighbours' through its kernel
        visual = MaskSteps(name="face_steps")(visual, mask)
        # motion: a temporal convolution sees changes between frames (flicker, mouth movement)
        visual = layers.Conv1D(mc.lstm_units, 3, padding="same", activation="relu", name="visual_temporal")(visual)
        visual = MaskSteps(name="face_mask")(visual, mask)
        if mouth is not None:
            mouth = MaskSteps(name="mouth_mask")(mouth, mask)
    if use_a:
        logmel = LogMelSpectrogram(sample_rate=config.media.sample_rate, hop=mc.mel_hop, n_mels=mc.n_mels,
                                   name="logmel")(audio)
        aud = SpectrogramEncoder(mc.audio_filters, name="audio_encoder")(logmel)
        aud = ResampleTime(T, name="audio_to_frames")(aud)
        aud = layers.Conv1D(mc.lstm_units, 3, padding="same", activation="relu", name="audio_temporal")(aud)

    def recurrent(x, name):
        lstm = layers.LSTM(mc.lstm_units, return_sequences=True, name=f"{name}_lstm")
        return layers.Bidirectional(lstm, name=f"{name}_bilstm")(x) if mc.bidirectional else lstm(x)

    if mc.fusion == "aligned" or mc.modality != "both":
        parts = [x for x in (visual, aud) if x is not None]
        if visual is not None and aud is not None:
            sync_src = mouth if mouth is not None else visual
            parts.append(SyncCorrelation(mc.sync_dim, mc.sync_lags, name="sync")(sync_src, aud))
        fused = parts[0] if len(parts) == 1 else layers.Concatenate(name="fuse_steps")(parts)
        seq = recurrent(fused, "fused")
        pooled = AttentionPooling(mc.lstm_units, name="pool")(seq, mask if aud is None else None)
        if visual is not None and aud is not None and mc.window_sync:
            # mouth and voice rising and falling together over the window: the lip-sync evidence
            corr = LaggedCorrelation(mc.sync_dim, mc.sync_lags, name="window_sync")(sync_src, aud, mask)
            corr = layers.Flatten(name="window_sync_flat")(corr)
            corr = layers.Dense(mc.lstm_units, activation="relu", name="window_sync_dense")(corr)
            pooled = layers.Concatenate(name="pooled_and_sync")([pooled, corr])
    else:
        sv, sa = recurrent(visual, "visual"), recurrent(aud, "audio")
        pv = AttentionPooling(mc.lstm_units, name="pool_visual")(sv, mask)
        pa = AttentionPooling(mc.lstm_units, name="pool_audio")(sa)
        pooled = layers.Concatenate(name="late_fusion")([pv, pa])
        seq = layers.Concatenate(name="late_steps")([sv, sa])
        fused = layers.Concatenate(name="late_local_steps")([visual, aud])

    x = layers.Dropout(mc.dropout, name="dropout")(pooled)
    x = layers.Dense(mc.lstm_units, activation="relu", name="head_hidden")(x)
    outputs = {h: layers.Dense(1, activation="sigmoid", dtype="float32", name=h)(x) for h in HEADS}
    if mc.frame_heads:
        # Each step sees its own local features (before the recurrent layer, which smooths over the window),
        # the recurrent sequence, and the whole window's evidence (the pooled vector carries the window-level
        # lip-sync correlation, which no single step has: without it the frame heads' AUC on validation steps
        # fell from 0.998 to 0.91); the temporal convolution lets a step compare itself with its neighbours,
        # which is where a segment's edges show.
        context = layers.RepeatVector(T, name="frame_context")(x)
        steps = layers.Concatenate(name="frame_inputs")([fused, seq, context])
        steps = layers.Conv1D(mc.lstm_units, 5, padding="same", activation="relu", name="frame_temporal")(steps)
        outputs.update({h: layers.Dense(1, activation="sigmoid", dtype="float32", name=h)(steps)
                        for h in FRAME_HEADS})
    name = f"dfdetect_{mc.modality}_{mc.fusion}"
    return keras.Model(inputs, outputs, name=name)
