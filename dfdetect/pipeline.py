"""tf.data input pipeline from preprocessed shards.

``make_dataset(data_dir, config, split="train", training=True)`` yields ``(inputs, targets, weights)``:

* inputs ``{"frames": uint8 (B,T,H,W,3), "audio": float32 (B,S), "mask": float32 (B,T)}``;
* targets ``{head: float32 (B,1)}`` for ``fake``, ``video_fake``, ``audio_fake``, ``av_mismatch``, and
  ``{frame_head: float32 (B,T,1)}`` for ``frame_fake``, ``frame_video``, ``frame_audio`` (one per step);
* weights ``{head: float32 (B,)}``: 0 where the dataset does not give that label (binary-only datasets such
  as DFDC and FF++ then train the same model), class-balanced for the ``fake`` head when asked; frame heads
  ``(B,T)``, 0 on unknown steps and heavier near segment boundaries (``train.boundary_weight``).

Training windows get label-preserving augmentation: the same flip, colour change and crop for every frame of
a window, and a random gain and noise on the audio.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from dfdetect.config import Config
from dfdetect.errors import MissingInput
from dfdetect.model import FRAME_HEADS, HEADS, input_names
from dfdetect.shards import FRAME_FORMATS, FRAME_MODALITIES, LABEL_KEYS, feature_spec, unknown_format_message


def shard_files(data_dir: str | Path) -> list[str]:
    files = sorted(str(p) for p in (Path(data_dir) / "shards").glob("*.tfrecord"))
    if not files:
        raise MissingInput(f"no shards in {Path(data_dir) / 'shards'}: --data DIR must be a `dfdetect preprocess` "
                           "folder with at least one usable video")
    return files


def window_table(data_dir: str | Path, split: str | None = None):
    """The rows of ``windows.csv`` (all parts), optionally one split."""
    from dfdetect.preprocess import load_windows

    w = load_windows(data_dir)
    if split is not None:
        w = w[w["split"].astype(str) == split]
    return w


def training_table(data_dir: str | Path, split: str | None, config: Config):
    """The rows of ``windows.csv`` a run learns (or chooses its epoch) from: without the videos of
    ``train.exclude_methods``, and only real videos' with ``train.real_only``."""
    w = window_table(data_dir, split)
    tc = config.train
    if tc.real_only:
        w = w[w["label"].astype(str) == "real"]
    if tc.exclude_methods and len(w):
        from dfdetect.preprocess import load_manifest

        methods = load_manifest(data_dir).set_index("video_id")["method"].astype(str)
        w = w[~w["video_id"].map(methods).isin(tc.exclude_methods)]
    return w


def class_weights(data_dir: str | Path, split: str, config: Config) -> tuple[float, float]:
    """Weights for real and fake windows that give both classes equal total weight over what a run trains on
    (``training_table``), counting the share of real windows that sync negatives and pseudo-fakes turn into
    fakes."""
    tc = config.train
    labels = training_table(data_dir, split, config)["window_fake"].astype(int)
    n_real, n_fake = int((labels == 0).sum()), int((labels == 1).sum())
    moved = n_real * (tc.sync_negatives + (1.0 - tc.sync_negatives) * tc.pseudo_fakes)
    n_real, n_fake = n_real - moved, n_fake + moved
    if not n_real or not n_fake:
        return 1.0, 1.0
    total = n_real + n_fake
    return total / (2 * n_real), total / (2 * n_fake)


def _window_labels(ex) -> dict:
    """The window-level labels of a parsed example (``ex`` needs only ``LABEL_KEYS``)."""
    fake = ex["window_fake"]
    fake = tf.where(fake < 0, ex["fake"], fake)
    labels = {"fake": fake, "video_fake": ex["video_fake"], "audio_fake": ex["audio_fake"],
              "av_mismatch": ex["av_mismatch"]}
    # A window of a partial fake outside its fake segments is a real window in every modality.
    outside = tf.logical_and(tf.equal(ex["window_fake"], 0), tf.equal(ex["fake"], 1))
    for h in ("video_fake", "audio_fake", "av_mismatch"):
        labels[h] = tf.where(outside, tf.zeros_like(labels[h]), labels[h])
    return labels


def _parse_audio(config: Config, ex):
    audio = tf.io.decode_raw(ex["audio"], tf.float32)
    return tf.ensure_shape(audio, (config.samples_per_window,))


def decode_frames(encoded, frame_format, frames: int, crop: int):
    """A window's ``frames`` (T,) stored frames in ``frame_format`` (``dfdetect.shards.FRAME_FORMATS``) to
    (T, crop, crop, 3) uint8; an unknown format fails with a message that says what to do."""
    def raw():  # all T frames in one op: no per-frame loop
        return tf.reshape(tf.io.decode_raw(tf.io.decode_compressed(encoded, "ZLIB"), tf.uint8),
                          (frames, crop, crop, 3))

    def image():  # decode_image reads PNG and JPEG alike
        return tf.map_fn(lambda b: tf.io.decode_image(b, channels=3, expand_animations=False), encoded,
                         fn_output_signature=tf.uint8)

    known = tf.reduce_any(tf.equal(frame_format, tf.constant(FRAME_FORMATS)))
    head, tail = unknown_format_message("FORMAT").split("'FORMAT'")
    check = tf.debugging.Assert(known, [head, frame_format, tail])
    with tf.control_dependencies([check]):
        out = tf.cond(tf.equal(frame_format, "zlib"), raw, image)
    return tf.ensure_shape(out, (frames, crop, crop, 3))


def _parse(config: Config, serialized):
    T = config.frames_per_window
    C = config.faces.crop_size
    ex = tf.io.parse_single_example(serialized, feature_spec(T))
    frames = decode_frames(ex["frames"], ex["frame_format"], T, C)
    audio = _parse_audio(config, ex)
    mask = tf.cast(ex["mask"], tf.float32)
    mouth = tf.reshape(ex["mouth"], (T, 2))  # read by the face pseudo-fake; dropped before the model
    labels = _window_labels(ex)
    per_frame = tf.reshape(ex["frame_labels"], (len(FRAME_MODALITIES), T))
    labels.update({h: per_frame[i] for i, h in enumerate(FRAME_HEADS)})
    meta = {"split": ex["split"], "path": ex["path"], "start": ex["start"], "category": ex["category"],
            "method": ex["method"], "dataset": ex["dataset"], "first_frame": ex["first_frame"],
            # the video's own labels: a partial fake is a fake video even where none of its windows is
            **{f"{h}_video_label": ex[h] for h in HEADS}}
    return {"frames": frames, "audio": audio, "mask": mask, "mouth": mouth}, labels, meta




def augment_window(inputs, seed):
    """Label-preserving augmentation: one flip / colour change / crop for all frames (the mouth track moved
    with them), audio gain + noise."""
    frames = inputs["frames"]
    T, H, W = tf.shape(frames)[0], tf.shape(frames)[1], tf.shape(frames)[2]
    s = tf.random.experimental.stateless_split(seed, 6)
    # one crop box for every frame: a zoom of 0.88-1.0 at a random place, flipped half the time
    # (crop_and_resize does crop, flip and resize in one op: the cheapest form on a 2-core machine)
    scale = tf.random.stateless_uniform([], s[3], 0.88, 1.0)
    off = tf.random.stateless_uniform([2], s[4], 0.0, 1.0) * (1.0 - scale)
    flip = tf.random.stateless_uniform([], s[0]) < 0.5
    x0, x1 = off[1], off[1] + scale
    box = tf.stack([off[0], tf.where(flip, x1, x0), off[0] + scale, tf.where(flip, x0, x1)])
    frames = tf.image.crop_and_resize(frames, tf.tile(box[None], [T, 1]), tf.range(T), tf.stack([H, W]))
    brightness = tf.random.stateless_uniform([], s[1], -20.0, 20.0)
    contrast = tf.random.stateless_uniform([], s[2], 0.8, 1.2)
    mean = tf.reduce_mean(frames)
    frames = (frames - mean) * contrast + mean + brightness
    frames = tf.cast(tf.clip_by_value(frames, 0.0, 255.0), tf.uint8)
    audio = inputs["audio"]
    a = tf.random.stateless_uniform([3], s[5], 0.0, 1.0)
    gain = tf.pow(10.0, (a[0] * 12.0 - 6.0) / 20.0)
    rms = tf.sqrt(tf.reduce_mean(tf.square(audio)) + 1e-9)
    snr_db = 30.0 + 20.0 * a[1]
    noise = tf.random.stateless_normal(tf.shape(audio), tf.random.experimental.stateless_fold_in(s[5], 1))
    audio = audio * gain + noise * rms * gain * tf.pow(10.0, -snr_db / 20.0)
    out = {"frames": frames, "audio": audio, "mask": inputs["mask"]}
    if "mouth" in inputs:  # where the crop put the mouth: u = (x - left) / (right - left), v likewise
        m = inputs["mouth"]
        known = tf.reduce_all(m >= 0.0, axis=-1, keepdims=True)
        moved = tf.stack([(m[:, 0] - box[1]) / (box[3] - box[1]), (m[:, 1] - box[0]) / (box[2] - box[0])], -1)
        out["mouth"] = tf.where(known, tf.clip_by_value(moved, 0.0, 1.0), m)
    return out


def real_window(labels) -> tf.Tensor:
    """True for a window known to be real: ``fake`` 0 and ``audio_fake`` 0 (unknown, -1, is not known real).
    The one test for what sync negatives, pseudo-fakes and the voices they borrow may be made from."""
    return tf.logical_and(tf.equal(labels["fake"], 0), tf.equal(labels["audio_fake"], 0))


def sync_negative(item, other, seed, probability: float):
    """SyncNet's trick for a small dataset: a real window given the voice of another real window becomes a
    fake with mismatched audio and video (``av_mismatch`` 1, ``audio_fake`` 0, ``video_fake`` unknown).
    Every real window can then teach the model what a lip-sync fake looks like, not only the few in the
    data."""
    inputs, labels, meta = item
    o_inputs, o_labels, o_meta = other

    draw = tf.random.stateless_uniform([], seed) < probability
    swap = tf.logical_and(draw, tf.logical_and(real_window(labels), real_window(o_labels)))
    swap = tf.logical_and(swap, tf.not_equal(meta["path"], o_meta["path"]))
    one = tf.constant(1, tf.int64)
    new_inputs = dict(inputs, audio=tf.where(swap, o_inputs["audio"], inputs["audio"]))
    new_labels = {
        "fake": tf.where(swap, one, labels["fake"]),
        "av_mismatch": tf.where(swap, one, labels["av_mismatch"]),
        "audio_fake": tf.where(swap, tf.zeros_like(one), labels["audio_fake"]),
        "video_fake": tf.where(swap, -one, labels["video_fake"]),
        # every step now hears another clip: fake throughout, though neither the face nor the voice is
        "frame_fake": tf.where(swap, tf.ones_like(labels["frame_fake"]), labels["frame_fake"]),
        "frame_audio": tf.where(swap, tf.zeros_like(labels["frame_audio"]), labels["frame_audio"]),
        "frame_video": tf.where(swap, -tf.ones_like(labels["frame_video"]), labels["frame_video"]),
    }
    return new_inputs, new_labels, meta


def voice_donors(base: tf.data.Dataset, config: Config, parsed: bool, seed: int,
                 reshuffle: bool = True) -> tf.data.Dataset:
    """The windows whose voices sync negatives borrow, shuffled and repeated forever: real windows only
    (``real_window``; with ``train.real_only`` also only real videos'), as ``({"audio"}, labels, {"path"})``.

    ``base`` holds parsed windows when ``parsed`` (the ``decoded`` cache), else serialized ones. Serialized
    windows are filtered on their labels alone (parsed without the frames), and only the kept windows' audio
    is parsed: a donor lends its voice, never its frames, so no PNG of a donor is ever decoded. (Decoding
    every candidate and dropping the fakes afterwards cost about 40 frame decodes per training window at
    FakeAVCeleb's share of real windows.) Filtering before the shuffle also keeps fakes out of its buffer."""
    real_only = config.train.real_only

    def known_real(labels, video_fake):
        ok = real_window(labels)
        return tf.logical_and(ok, tf.equal(video_fake, 0)) if real_only else ok

    if parsed:
        donors = base.filter(lambda i, lab, m: known_real(lab, m["fake_video_label"]))
        donors = donors.map(lambda i, lab, m: ({"audio": i["audio"]}, lab, {"path": m["path"]}))
    else:
        spec = feature_spec(config.frames_per_window)
        label_spec = {k: spec[k] for k in LABEL_KEYS}
        lend_spec = {k: spec[k] for k in (*LABEL_KEYS, "audio", "path")}

        def keep(serialized):
            ex = tf.io.parse_single_example(serialized, label_spec)
            return known_real(_window_labels(ex), ex["fake"])

        def lend(serialized):
            ex = tf.io.parse_single_example(serialized, lend_spec)
            return {"audio": _parse_audio(config, ex)}, _window_labels(ex), {"path": ex["path"]}

        donors = base.filter(keep).map(lend, num_parallel_calls=tf.data.AUTOTUNE)
    return donors.shuffle(config.train.shuffle_buffer, seed=seed, reshuffle_each_iteration=reshuffle).repeat()


def boundary_steps(y, frames: int):
    """1.0 at the steps within ``frames`` of a change between two known step labels of ``y`` (T,), else 0."""
    y = tf.cast(y, tf.int32)
    known = tf.logical_and(y[1:] >= 0, y[:-1] >= 0)
    change = tf.cast(tf.logical_and(known, tf.not_equal(y[1:], y[:-1])), tf.float32)
    # a change between steps t-1 and t marks both; then widen by `frames` each way (a 1D max filter)
    edge = tf.maximum(tf.pad(change, [[1, 0]]), tf.pad(change, [[0, 1]]))
    if frames > 0:
        edge = tf.nn.max_pool1d(edge[None, :, None], 2 * frames + 1, 1, "SAME")[0, :, 0]
    return edge


def _targets_and_weights(labels, balance: tuple[float, float] | None, head_weights, invert: bool = False,
                         frame_weight: float = 1.0, boundary_weight: float = 0.0, boundary_frames: int = 2):
    targets, weights = {}, {}
    for h in FRAME_HEADS:
        if h not in labels:
            continue
        y = labels[h]
        target = tf.cast(tf.maximum(y, 0), tf.float32)
        targets[h] = (1.0 - target if invert else target)[:, None]
        w = tf.cast(y >= 0, tf.float32) * frame_weight
        if boundary_weight:
            w = w * (1.0 + boundary_weight * boundary_steps(y, boundary_frames))
        weights[h] = w
    for h, hw in zip(HEADS, head_weights):
        y = labels[h]
        known = tf.cast(y >= 0, tf.float32)
        target = tf.cast(tf.maximum(y, 0), tf.float32)
        # the inverted-labels sanity check (train.invert_labels): every known label the other way round
        targets[h] = tf.reshape(1.0 - target if invert else target, [1])
        w = known * hw
        if h == "fake" and balance is not None:
            w = w * tf.where(y > 0, balance[1], balance[0])
        weights[h] = w
    return targets, weights


CACHE_MODES = ("auto", "decoded", "serialized", "none")
# Share of the available memory a cache may fill: the rest is for the model, TensorFlow, the shuffle buffers and
# the validation split's own cache (made by its own make_dataset call, against the same available memory).
CACHE_MEMORY_SHARE = 0.5


def available_memory() -> int:
    """Bytes this process can still take: ``MemAvailable``, or less under a cgroup (container) limit."""
    avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < 1 << 60:  # "max" or a huge number: no limit
                avail = min(avail, int(limit) - int(Path(usage_file).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    return max(0, avail)


def decoded_window_bytes(config: Config) -> int:
    """Memory one decoded window takes in the ``decoded`` cache: frames, audio, mask, mouth track, frame labels
    and about 1 KB of labels, strings and tensor overhead."""
    T = config.frames_per_window
    C = config.faces.crop_size
    return T * C * C * 3 + config.samples_per_window * 4 + T * (4 + 8) + len(FRAME_MODALITIES) * T * 8 + 1024


def serialized_split_bytes(data_dir: str | Path, split: str | None) -> tuple[int, int]:
    """Estimated bytes of one split's serialized windows (the shards' size times the split's share of the
    windows, since shards mix splits) and the number of its windows."""
    total = sum(Path(f).stat().st_size for f in shard_files(data_dir))
    n_all = count_windows(data_dir, None)
    n = count_windows(data_dir, split) if split is not None else n_all
    return (int(total * n / n_all) if n_all else 0), n


def choose_cache(data_dir: str | Path, config: Config, split: str | None, role: str = "train",
                 memory: int | None = None) -> tuple[str, str]:
    """The cache mode ``make_dataset`` uses and why, as ``(mode, reason)``.

    ``train.cache=auto`` keeps decoded windows in memory (fastest: no PNG decoding after the first epoch) when
    they fit in ``CACHE_MEMORY_SHARE`` of the available memory, else the serialized windows when those fit,
    else nothing (every epoch reads the shards again: memory is then bounded by the shuffle buffer, whatever
    the dataset's size). Evaluation reads every window once and never caches under ``auto``. An explicit mode
    is kept, with a warning in the reason when it will not fit."""
    mode = config.train.cache
    if mode not in CACHE_MODES:
        raise ValueError(f"train.cache must be one of {', '.join(CACHE_MODES)}, got {mode!r}")
    if mode == "auto" and role == "evaluate":
        return "none", "train.cache=auto; evaluation reads every window once"
    memory = available_memory() if memory is None else memory
    ser, n = serialized_split_bytes(data_dir, split)
    dec = n * decoded_window_bytes(config)
    budget = CACHE_MEMORY_SHARE * memory
    gb = 1e9
    sizes = (f"{n} windows: {dec / gb:.2f} GB decoded, {ser / gb:.2f} GB serialized; {memory / gb:.1f} GB "
             f"available")
    per_window = ser / max(n, 1)
    bound = (f"memory bounded by the shuffle buffer, about {config.train.shuffle_buffer} x "
             f"{per_window / 1e6:.2f} MB = {config.train.shuffle_buffer * per_window / gb:.1f} GB "
             "(train.shuffle_buffer)")
    if mode == "auto":
        if dec <= budget:
            return "decoded", f"train.cache=auto; {sizes}: the decoded windows fit"
        if ser <= budget:
            return "serialized", f"train.cache=auto; {sizes}: only the serialized windows fit"
        return "none", f"train.cache=auto; {sizes}: neither fits in half of it, {bound}"
    need = {"decoded": dec, "serialized": ser, "none": 0}[mode]
    reason = f"train.cache={mode}; {sizes}"
    if mode == "none":
        return mode, f"{reason}; {bound}"
    if need > memory:
        reason += f"; WARNING: the {mode} cache will not fit: set train.cache=auto or none"
    return mode, reason


def make_dataset(
    data_dir: str | Path,
    config: Config,
    split: str | None = "train",
    training: bool = False,
    batch_size: int | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
    with_meta: bool = False,
    seed: int | None = None,
    role: str | None = None,
    log: Callable[[str], None] | None = print,
) -> tf.data.Dataset:
    """The input pipeline over ``data_dir``'s shards.

    Args:
        data_dir: a folder written by ``dfdetect preprocess``.
        config: run config (window shape, ``train`` section: batch, shuffle, augment, balance, cache).
        split: keep windows of this split (``train``/``val``/``test``) or all (None).
        training: shuffle, augment and balance.
        batch_size: default ``config.train.batch_size``.
        repeat: repeat forever (steps per epoch are then set by the caller).
        drop_remainder: fixed batch shapes (needed under some distribution strategies).
        with_meta: add a fourth element with path / start / category / method per window (evaluation).
        seed: shuffle and augmentation seed (default ``config.train.seed``).
        role: what the windows are for (default ``train`` when ``training``, else ``evaluate``):
            ``train`` and ``select`` (a run's val split) keep what a run may learn from (no
            ``train.exclude_methods``; real videos only with ``train.real_only``); ``train`` adds sync negatives
            and pseudo-fakes, and so does ``select`` for a real-only run (the same ones every epoch, since
            there is no real fake to choose an epoch by); ``evaluate`` keeps every window as it is.
        log: where the line saying which cache mode is used, and why, goes (train and select roles; None:
            nowhere).
    """
    tc = config.train
    seed = tc.seed if seed is None else seed
    batch_size = batch_size or tc.batch_size
    files = shard_files(data_dir)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if split is not None:
        spec = {"split": tf.io.FixedLenFeature([], tf.string, default_value="")}
        ds = ds.filter(lambda s: tf.equal(tf.io.parse_single_example(s, spec)["split"], split))
    role = role or ("train" if training else "evaluate")
    if role not in ("train", "select", "evaluate"):
        raise ValueError(f"role must be train, select or evaluate, got {role!r}")
    cache, why = choose_cache(data_dir, config, split, role)
    if log is not None and role != "evaluate":
        log(f"input cache for {split or 'all'} windows: {cache} ({why})")
    if cache == "serialized":
        ds = ds.cache()  # compact; PNG decoding is then repeated every epoch
    parse_now = cache == "decoded"
    if parse_now:
        # decoded windows in memory (about 1 MB each at 112 px): every later epoch skips PNG decoding,
        # which on a 2-core machine competes with the training step itself
        ds = ds.map(lambda s: _parse(config, s), num_parallel_calls=tf.data.AUTOTUNE).cache()
    base = ds
    if training:
        ds = ds.shuffle(tc.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if not parse_now:
        ds = ds.map(lambda s: _parse(config, s), num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if role != "evaluate" and tc.real_only:
        # the real videos alone (a partial fake's untouched stretches are still a fake video's)
        ds = ds.filter(lambda i, lab, m: tf.equal(m["fake_video_label"], 0))
    if role != "evaluate" and tc.exclude_methods:
        left_out = tf.constant(list(tc.exclude_methods))
        ds = ds.filter(lambda i, lab, m: tf.reduce_all(tf.not_equal(m["method"], left_out)))
    negatives = role == "train" or (role == "select" and tc.real_only)
    has_real = True
    if negatives and (tc.sync_negatives > 0 or tc.pseudo_fakes > 0):
        table = training_table(data_dir, split, config)
        has_real = bool((table["window_fake"].astype(int) == 0).any()) if len(table) else False
    if negatives and tc.sync_negatives > 0 and has_real:  # (a filter over no real window would never end)
        other = voice_donors(base, config, parse_now, seed + 1, reshuffle=training)
        ds = tf.data.Dataset.zip((ds, other, tf.data.Dataset.counter()))
        ds = ds.map(lambda a, b, i: sync_negative(a, b, tf.stack([tf.cast(seed, tf.int64) + 7, i]),
                                                  tc.sync_negatives),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if negatives and tc.pseudo_fakes > 0 and has_real:
        from dfdetect.pseudo_fakes import pseudo_fake

        kinds = tuple(tc.pseudo_fake_kinds)
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter()))
        ds = ds.map(lambda a, i: pseudo_fake(a, tf.stack([tf.cast(seed, tf.int64) + 11, i]), tc.pseudo_fakes,
                                             kinds),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    balance = (class_weights(data_dir, split, config)
               if (training and tc.balance and split is not None) else None)
    head_weights = tuple(tc.head_weights) + (1.0,) * (len(HEADS) - len(tc.head_weights))

    if training and tc.augment:
        counter = tf.data.Dataset.counter()
        ds = tf.data.Dataset.zip((ds, counter))

        def aug(item, i):
            inputs, labels, meta = item
            return augment_window(inputs, tf.stack([tf.cast(seed, tf.int64), i])), labels, meta

        ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)

    if not config.model.frame_heads:  # a model without frame heads must not be given their targets
        drop = set(FRAME_HEADS)

        def strip(inputs, labels, meta):
            return inputs, {k: v for k, v in labels.items() if k not in drop}, meta

        ds = ds.map(strip)

    names = input_names(config)

    def finish(inputs, labels, meta):
        inputs = {k: inputs[k] for k in names}
        targets, weights = _targets_and_weights(labels, balance, head_weights, training and tc.invert_labels,
                                                tc.frame_weight, tc.boundary_weight if training else 0.0,
                                                tc.boundary_frames)
        return (inputs, targets, weights, meta) if with_meta else (inputs, targets, weights)

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def count_windows(data_dir: str | Path, split: str | None) -> int:
    return int(len(window_table(data_dir, split)))


def numpy_batch(ds: tf.data.Dataset) -> tuple:
    """The first batch as numpy (notebooks, tests)."""
    return tf.nest.map_structure(lambda t: t.numpy(), next(iter(ds)))


