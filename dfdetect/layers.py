"""Reusable Keras layers of the dfdetect model, written like keras-hub's: one class per concern, registered
serializable, ``get_config`` covering every constructor argument, ``keras.ops`` only (so the model runs on
the TensorFlow and JAX backends alike).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "dfdetect"


def _mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular filters on the HTK mel scale (numpy, computed once)."""

    def hz2mel(h):
        return 2595.0 * np.log10(1.0 + np.asarray(h) / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    fb = np.zeros((n_fft // 2 + 1, n_mels), np.float32)
    for m in range(n_mels):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(c - lo, 1e-6)
        down = (hi - freqs) / max(hi - c, 1e-6)
        fb[:, m] = np.maximum(0, np.minimum(up, down))
    return fb


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogMelSpectrogram(layers.Layer):
    """Log-mel spectrogram of a mono waveform, computed inside the model (no train/serve skew).

    Always runs in float32 (FFTs in half precision are unsupported on some backends), whatever the policy.

    Args:
        sample_rate: waveform sample rate.
        n_fft: FFT size (and window length).
        hop: samples between frames.
        n_mels: mel bands.
        fmin, fmax: mel band range in Hz (``fmax`` None = Nyquist).

    Call arguments:
        waveform: ``(batch, samples)`` float.

    Returns:
        ``(batch, frames, n_mels)`` float32, frames = ``samples // hop + 1``.

    Example:
        >>> x = np.zeros((2, 16000), "float32")
        >>> tuple(LogMelSpectrogram(n_mels=40)(x).shape)
        (2, 101, 40)
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop: int = 160, n_mels: int = 64,
                 fmin: float = 40.0, fmax: float | None = None, **kwargs) -> None:
        kwargs["dtype"] = "float32"
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.sample_rate, self.n_fft, self.hop, self.n_mels = sample_rate, n_fft, hop, n_mels
        self.fmin, self.fmax = fmin, fmax
        self._fb = _mel_filterbank(n_fft, n_mels, sample_rate, fmin, fmax or sample_rate / 2)

    def call(self, waveform):
        x = ops.cast(waveform, "float32")
        real, imag = ops.stft(x, sequence_length=self.n_fft, sequence_stride=self.hop, fft_length=self.n_fft,
                              window="hann", center=True)
        power = real * real + imag * imag
        mel = ops.matmul(power, ops.convert_to_tensor(self._fb))
        return ops.log(mel + 1e-6)

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else input_shape[1] // self.hop + 1
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        config = super().get_config()
        config.update(sample_rate=self.sample_rate, n_fft=self.n_fft, hop=self.hop, n_mels=self.n_mels,
                      fmin=self.fmin, fmax=self.fmax)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResampleTime(layers.Layer):
    """Resamples a sequence to a fixed number of steps by area averaging, so audio step ``k`` covers the
    same time span as video frame ``k`` whatever the mel hop and frame rate.

    Args:
        steps: output length (the number of video frames in a window).

    Call arguments:
        x: ``(batch, length, features)``; ``length`` must be known when the layer is built.

    Example:
        >>> tuple(ResampleTime(30)(np.ones((1, 201, 8), "float32")).shape)
        (1, 30, 8)
    """

    def __init__(self, steps: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps = steps

    def build(self, input_shape):
        length = int(input_shape[1])
        w = np.zeros((self.steps, length), np.float32)
        for k in range(self.steps):
            a, b = k * length / self.steps, (k + 1) * length / self.steps
            for i in range(int(math.floor(a)), int(math.ceil(b))):
                w[k, i] = max(0.0, min(b, i + 1) - max(a, i))
            w[k] /= w[k].sum()
        self._w = w

    def call(self, x):
        return ops.einsum("kl,bld->bkd", ops.cast(ops.convert_to_tensor(self._w), x.dtype), x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.steps, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(steps=self.steps)
        return config


def _conv_block(filters: int, name: str, stride: int | tuple[int, int] = 1) -> list[layers.Layer]:
    return [
        layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"),
        layers.BatchNormalization(name=f"{name}_bn"),
        layers.Activation("relu", name=f"{name}_relu"),
    ]


@keras.saving.register_keras_serializable(package=PACKAGE)
class FrameEncoder(layers.Layer):
    """A small CNN that turns one face (or mouth) crop into a vector; wrap it in ``TimeDistributed``.

    Input pixels are uint8-range values (0-255); the layer rescales them.

    Args:
        filters: channels per stage; each stage is conv-BN-ReLU then 2x2 max pooling.
        size: the crop is resized to ``size`` x ``size`` first (compute vs detail).
        stem_stride: stride of the first convolution (2 quarters the compute of everything after it).
        crop: optional fractional region ``(top, bottom, left, right)`` of the input cut before resizing
            (e.g. the mouth area of an aligned face crop).

    Call arguments:
        images: ``(batch, height, width, 3)``.

    Returns:
        ``(batch, filters[-1])``.

    Example:
        >>> enc = FrameEncoder(filters=(8, 16), size=32)
        >>> tuple(enc(np.zeros((2, 64, 64, 3), "float32")).shape)
        (2, 16)
    """

    def __init__(self, filters: tuple[int, ...] = (24, 48, 96), size: int = 64,
                 crop: tuple[float, float, float, float] | None = None, stem_stride: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.size = int(size)
        self.crop = tuple(float(c) for c in crop) if crop else None
        self.stem_stride = int(stem_stride)
        self.resize = layers.Resizing(self.size, self.size, interpolation="bilinear", name="resize")
        self.blocks = []
        for i, f in enumerate(self.filters):
            self.blocks.append(_conv_block(f, f"s{i}", stride=self.stem_stride if i == 0 else 1))
            self.blocks.append([layers.MaxPooling2D(2, name=f"s{i}_pool")])
        self.pool = layers.GlobalAveragePooling2D(name="gap")

    def crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The pixel box ``(y0, y1, x0, x1)`` the encoder sees of a ``height`` x ``width`` input."""
        if not self.crop:
            return 0, height, 0, width
        t, b, left, r = self.crop
        return int(height * t), int(height * b), int(width * left), int(width * r)

    def build(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if self.crop:
            self._box = self.crop_box(h, w)
            h, w = self._box[1] - self._box[0], self._box[3] - self._box[2]
        shape = (input_shape[0], h, w, 3)
        self.resize.build(shape)
        shape = (input_shape[0], self.size, self.size, 3)
        for block in self.blocks:
            for layer in block:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        self.pool.build(shape)

    def feature_maps(self, images, training=None):
        """The last stage's maps ``(batch, h, w, filters[-1])`` before pooling (what Grad-CAM weighs)."""
        x = ops.cast(images, self.compute_dtype) / 127.5 - 1.0
        if self.crop:
            y0, y1, x0, x1 = self._box
            x = x[:, y0:y1, x0:x1, :]
        x = self.resize(x)
        for block in self.blocks:
            for layer in block:
                x = layer(x, training=training) if isinstance(layer, layers.BatchNormalization) else layer(x)
        return x

    def call(self, images, training=None):
        return self.pool(self.feature_maps(images, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters[-1])

    def get_config(self):
        config = super().get_config()
        config.update(filters=list(self.filters), size=self.size, crop=list(self.crop) if self.crop else None,
                      stem_stride=self.stem_stride)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpectrogramEncoder(layers.Layer):
    """A 2D CNN over (time, mel) that pools the mel axis away, giving one feature vector per time step.

    Args:
        filters: channels per stage; each stage is conv-BN-ReLU then max pooling by 2 along mel.
        time_pool: how many of the stages also pool time by 2 (the steps are resampled to video frames
            afterwards, so a 10 ms mel hop need not be kept).

    Call arguments:
        logmel: ``(batch, frames, n_mels)``.

    Returns:
        ``(batch, frames // 2 ** time_pool, filters[-1])``.

    Example:
        >>> tuple(SpectrogramEncoder((8, 16), time_pool=1)(np.zeros((2, 100, 32), "float32")).shape)
        (2, 50, 16)
    """

    def __init__(self, filters: tuple[int, ...] = (24, 48, 96), time_pool: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.time_pool = int(time_pool)
        self.norm = layers.BatchNormalization(name="in_norm")
        self.blocks = []
        for i, f in enumerate(self.filters):
            pool = (2 if i < self.time_pool else 1, 2)
            self.blocks.append(_conv_block(f, f"a{i}") + [layers.MaxPooling2D(pool, name=f"a{i}_pool")])

    def build(self, input_shape):
        shape = (input_shape[0], input_shape[1], input_shape[2], 1)
        self.norm.build(shape)
        for block in self.blocks:
            for layer in block:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, logmel, training=None):
        x = ops.expand_dims(ops.cast(logmel, self.compute_dtype), -1)
        x = self.norm(x, training=training)
        for block in self.blocks:
            for layer in block:
                x = layer(x, training=training) if isinstance(layer, layers.BatchNormalization) else layer(x)
        return ops.mean(x, axis=2)

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        if t is not None:
            for _ in range(min(self.time_pool, len(self.filters))):
                t //= 2
        return (input_shape[0], t, self.filters[-1])

    def get_config(self):
        config = super().get_config()
        config.update(filters=list(self.filters), time_pool=self.time_pool)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class SyncCorrelation(layers.Layer):
    """SyncNet-style agreement: projects per-step visual and audio features into a shared space and returns
    their cosine similarity at lags ``-max_lag..max_lag`` for every step. In-sync speech peaks at lag 0;
    a lip-sync fake or a shifted track does not.

    Args:
        dim: projection size.
        max_lag: lags each way, in steps (video frames).

    Call arguments:
        visual: ``(batch, steps, dv)``; audio: ``(batch, steps, da)``.

    Returns:
        ``(batch, steps, 2 * max_lag + 1)``.

    Example:
        >>> tuple(SyncCorrelation(8, 2)(np.ones((1, 10, 4), "float32"), np.ones((1, 10, 6), "float32")).shape)
        (1, 10, 5)
    """

    def __init__(self, dim: int = 32, max_lag: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim, self.max_lag = int(dim), int(max_lag)
        self.proj_v = layers.Dense(self.dim, name="proj_v")
        self.proj_a = layers.Dense(self.dim, name="proj_a")

    def build(self, visual_shape, audio_shape):
        self.proj_v.build(visual_shape)
        self.proj_a.build(audio_shape)

    def call(self, visual, audio):
        v = self.proj_v(visual)
        a = self.proj_a(audio)
        v = v / (ops.norm(v, axis=-1, keepdims=True) + 1e-6)
        a = a / (ops.norm(a, axis=-1, keepdims=True) + 1e-6)
        L = self.max_lag
        a_pad = ops.pad(a, [[0, 0], [L, L], [0, 0]])
        steps = ops.shape(v)[1]
        sims = [ops.sum(v * a_pad[:, lag:lag + steps, :], axis=-1) for lag in range(2 * L + 1)]
        return ops.stack(sims, axis=-1)

    def compute_output_shape(self, visual_shape, audio_shape):
        return (visual_shape[0], visual_shape[1], 2 * self.max_lag + 1)

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, max_lag=self.max_lag)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class LaggedCorrelation(layers.Layer):
    """Window-level audio-visual agreement: Pearson correlation over time between learned projections of the
    two streams, at lags ``-max_lag..max_lag``, one value per projected channel and lag.

    Per-step similarity (``SyncCorrelation``) asks whether one frame and its sound look alike; lip movement
    and loudness rise and fall *together* instead, so correlation over the window is the sharper test (the
    classic audio-visual synchrony measure of Hershey & Movellan, 2000, with learned features). A mouth that
    follows another utterance gives correlations near zero at every lag; a shifted track peaks away from 0.

    Args:
        dim: projected channels per stream.
        max_lag: lags each way, in steps (video frames).

    Call arguments:
        visual: ``(batch, steps, dv)``; audio: ``(batch, steps, da)``; valid: optional ``(batch, steps)``,
            1 where the visual step counts (frames without a face are left out of the statistics).

    Returns:
        ``(batch, 2 * max_lag + 1, dim)``, correlations in [-1, 1].

    Example:
        >>> t = np.linspace(0, 6, 30, dtype="float32")
        >>> x = np.stack([np.sin(t), np.cos(t)], -1)[None]
        >>> tuple(LaggedCorrelation(4, 2)(x, x).shape)
        (1, 5, 4)
    """

    def __init__(self, dim: int = 16, max_lag: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim, self.max_lag = int(dim), int(max_lag)
        self.proj_v = layers.Dense(self.dim, name="proj_v")
        self.proj_a = layers.Dense(self.dim, name="proj_a")

    def build(self, visual_shape, audio_shape, valid_shape=None):
        self.proj_v.build(visual_shape)
        self.proj_a.build(audio_shape)

    def call(self, visual, audio, valid=None):
        v = ops.cast(self.proj_v(visual), "float32")
        a = ops.cast(self.proj_a(audio), "float32")
        if valid is None:
            w = ops.ones_like(v[..., :1])
        else:
            w = ops.expand_dims(ops.cast(valid, "float32"), -1)
        n = ops.sum(w, axis=1, keepdims=True) + 1e-6

        def standardise(x):
            x = x - ops.sum(x * w, axis=1, keepdims=True) / n
            var = ops.sum(ops.square(x) * w, axis=1, keepdims=True) / n
            return x * ops.rsqrt(var + 1e-4) * w

        v, a = standardise(v), standardise(a)
        L = self.max_lag
        a_pad = ops.pad(a, [[0, 0], [L, L], [0, 0]])
        steps = ops.shape(v)[1]
        r = [ops.sum(v * a_pad[:, lag:lag + steps, :], axis=1) / n[:, 0] for lag in range(2 * L + 1)]
        return ops.clip(ops.stack(r, axis=1), -1.0, 1.0)

    def compute_output_shape(self, visual_shape, audio_shape, valid_shape=None):
        return (visual_shape[0], 2 * self.max_lag + 1, self.dim)

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, max_lag=self.max_lag)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionPooling(layers.Layer):
    """Masked attention pooling over time: a learned score per step, softmax over the steps that count.

    Args:
        units: hidden size of the scoring MLP.

    Call arguments:
        x: ``(batch, steps, features)``; valid: optional ``(batch, steps)``, 1 where a step counts (named
            so to stay clear of Keras' implicit ``mask`` argument). An all-zero row attends over every step.

    Returns:
        ``(batch, features)``.

    Example:
        >>> tuple(AttentionPooling(8)(np.ones((2, 5, 3), "float32")).shape)
        (2, 3)
    """

    def __init__(self, units: int = 32, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.hidden = layers.Dense(self.units, activation="tanh", name="hidden")
        self.score = layers.Dense(1, name="score")

    def build(self, x_shape, valid_shape=None):
        self.hidden.build(x_shape)
        self.score.build((x_shape[0], x_shape[1], self.units))

    def call(self, x, valid=None):
        logits = ops.squeeze(self.score(self.hidden(x)), -1)
        logits = ops.cast(logits, "float32")
        if valid is not None:
            m = ops.cast(valid, "float32")
            m = ops.where(ops.sum(m, axis=1, keepdims=True) > 0, m, ops.ones_like(m))
            logits = ops.where(m > 0, logits, -1e9)
        w = ops.softmax(logits, axis=1)
        return ops.sum(x * ops.cast(ops.expand_dims(w, -1), x.dtype), axis=1)

    def compute_output_shape(self, x_shape, valid_shape=None):
        return (x_shape[0], x_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskSteps(layers.Layer):
    """Zeroes per-step features where the mask is 0 (frames without a face).

    Call arguments:
        x: ``(batch, steps, features)``; valid: ``(batch, steps)``, 1 where the step counts.

    Example:
        >>> out = MaskSteps()(np.ones((1, 3, 2), "float32"), np.array([[1, 0, 1]], "float32"))
        >>> keras.ops.convert_to_numpy(out)[0, :, 0].tolist()
        [1.0, 0.0, 1.0]
    """

    def call(self, x, valid):
        return x * ops.cast(ops.expand_dims(valid, -1), x.dtype)

    def compute_output_shape(self, x_shape, valid_shape):
        return x_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMean(layers.Layer):
    """The mean over steps of per-step features, counting only valid steps (all steps without a mask).

    Familiarity (``dfdetect.familiarity``) summarises each branch of a window this way: the face encoder's
    features averaged over the frames that had a face, the audio encoder's over every step.

    Call arguments:
        x: ``(batch, steps, features)``; valid: optional ``(batch, steps)``, 1 where the step counts. A window
            with no valid step gets zeros.

    Example:
        >>> x = np.array([[[1.0], [5.0], [3.0]]], "float32")
        >>> keras.ops.convert_to_numpy(MaskedMean()(x, np.array([[1, 0, 1]], "float32"))).tolist()
        [[2.0]]
        >>> keras.ops.convert_to_numpy(MaskedMean()(x)).tolist()
        [[3.0]]
    """

    def call(self, x, valid=None):
        if valid is None:
            return ops.mean(x, axis=1)
        w = ops.cast(ops.expand_dims(valid, -1), x.dtype)
        return ops.sum(x * w, axis=1) / ops.maximum(ops.sum(w, axis=1), 1.0)

    def compute_output_shape(self, x_shape, valid_shape=None):
        return (x_shape[0], x_shape[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class MouthCrop(layers.Layer):
    """Cuts the mouth out of every face crop of a window where the face detector put the mouth keypoint, so
    that the mouth stream sees the lips wherever the (unaligned) crop put them: a fixed region of the crop
    drifts off the lips as the head turns, tilts or the box jitters.

    The patch is ``extent`` of the crop (height, width) around the keypoint, sampled bilinearly to ``size`` x
    ``size`` (clamped at the crop's edges). A step whose keypoint is unknown (negative, as the shards store it)
    takes the fixed region's centre ``fallback``.

    Args:
        size: side of the output patch in pixels.
        extent: ``(height, width)`` of the patch as a share of the crop's.
        fallback: ``(x, y)`` centre, as a share of the crop, where the keypoint is unknown.

    Call arguments:
        frames: ``(batch, steps, H, W, channels)`` crops (any numeric dtype, 0-255).
        mouth: ``(batch, steps, 2)`` the mouth keypoint ``(x, y)`` as a share of the crop, -1 if unknown.

    Returns:
        ``(batch, steps, size, size, channels)`` float32 pixels, 0-255.

    Example:
        >>> frames = np.zeros((1, 2, 8, 8, 1), "float32")
        >>> frames[0, :, 6, 2] = 255.0  # a bright pixel where the mouth is in the first frame
        >>> out = MouthCrop(size=2, extent=(0.25, 0.25))(frames, np.array([[[0.3125, 0.8125], [-1, -1]]], "float32"))
        >>> tuple(out.shape), float(keras.ops.convert_to_numpy(out)[0, 0].max()) > 0
        ((1, 2, 2, 2, 1), True)
    """

    def __init__(self, size: int = 32, extent: tuple[float, float] = (0.4, 0.6),
                 fallback: tuple[float, float] = (0.5, 0.75), **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self.extent = (float(extent[0]), float(extent[1]))
        self.fallback = (float(fallback[0]), float(fallback[1]))

    def call(self, frames, mouth):
        shape = ops.shape(frames)
        H, W, C = frames.shape[2], frames.shape[3], frames.shape[4]
        n = shape[0] * shape[1]
        flat = ops.reshape(ops.cast(frames, "float32"), (n, H * W, C))
        mouth = ops.reshape(ops.cast(mouth, "float32"), (n, 2))
        known = ops.all(mouth >= 0.0, axis=-1, keepdims=True)
        centre = ops.where(known, mouth, ops.convert_to_tensor(self.fallback, "float32")[None])
        # sample centres of the patch's pixels, in input pixels (pixel k covers [k, k + 1))
        grid = (ops.arange(self.size, dtype="float32") + 0.5) / self.size - 0.5
        ys = (centre[:, 1:2] + grid[None] * self.extent[0]) * H - 0.5  # (n, size)
        xs = (centre[:, 0:1] + grid[None] * self.extent[1]) * W - 0.5
        ys = ops.clip(ys, 0.0, H - 1.0)
        xs = ops.clip(xs, 0.0, W - 1.0)
        y0, x0 = ops.floor(ys), ops.floor(xs)
        wy, wx = ys - y0, xs - x0
        y0, x0 = ops.cast(y0, "int32"), ops.cast(x0, "int32")
        y1, x1 = ops.minimum(y0 + 1, H - 1), ops.minimum(x0 + 1, W - 1)

        def gather(yy, xx):
            idx = ops.reshape(yy[:, :, None] * W + xx[:, None, :], (n, self.size * self.size, 1))
            return ops.take_along_axis(flat, ops.repeat(idx, C, axis=-1), axis=1)

        wy = ops.reshape(ops.repeat(wy[:, :, None], self.size, axis=2), (n, self.size * self.size, 1))
        wx = ops.reshape(ops.repeat(wx[:, None, :], self.size, axis=1), (n, self.size * self.size, 1))
        top = gather(y0, x0) * (1.0 - wx) + gather(y0, x1) * wx
        bottom = gather(y1, x0) * (1.0 - wx) + gather(y1, x1) * wx
        out = top * (1.0 - wy) + bottom * wy
        return ops.reshape(out, (shape[0], shape[1], self.size, self.size, C))

    def boxes(self, mouth: np.ndarray, height: int, width: int) -> np.ndarray:
        """``(..., 4)`` pixel boxes ``(y0, y1, x0, x1)`` each step's patch covers (numpy; for heat maps)."""
        m = np.asarray(mouth, np.float32)
        known = (m >= 0).all(-1, keepdims=True)
        c = np.where(known, m, np.asarray(self.fallback, np.float32))
        y0 = (c[..., 1] - self.extent[0] / 2) * height
        x0 = (c[..., 0] - self.extent[1] / 2) * width
        return np.stack([y0, y0 + self.extent[0] * height, x0, x0 + self.extent[1] * width], -1)

    def compute_output_shape(self, frames_shape, mouth_shape):
        return (frames_shape[0], frames_shape[1], self.size, self.size, frames_shape[4])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "extent": self.extent, "fallback": self.fallback}
