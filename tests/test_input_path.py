"""The training input path at scale: voice donors for sync negatives, and the cache mode chosen by size."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from dfdetect import pipeline
from dfdetect.config import get_config
from dfdetect.pipeline import (
    _parse,
    choose_cache,
    decoded_window_bytes,
    make_dataset,
    numpy_batch,
    real_window,
    serialized_split_bytes,
    shard_files,
    voice_donors,
)

CFG = get_config("smoke")


def _train_records(data) -> list[bytes]:
    spec = {"split": tf.io.FixedLenFeature([], tf.string, default_value="")}
    return [r.numpy() for r in tf.data.TFRecordDataset(shard_files(data))
            if tf.io.parse_single_example(r, spec)["split"].numpy() == b"train"]


def _without_frames(serialized: bytes) -> bytes:
    """The window with every frame replaced by bytes no image decoder accepts."""
    ex = tf.train.Example.FromString(serialized)
    frames = ex.features.feature["frames"].bytes_list
    n = len(frames.value)
    del frames.value[:]
    frames.value.extend([b"not an image"] * n)
    return ex.SerializeToString()


def test_voice_donors_are_the_real_windows_and_never_decode_frames(smoke_data):
    records = _train_records(smoke_data)
    parsed = [_parse(CFG, tf.constant(r)) for r in records]
    real = Counter(p[0]["audio"].numpy().tobytes() for p in parsed if bool(real_window(p[1])))
    assert 0 < sum(real.values()) < len(records)  # the split holds both, or the test shows nothing

    def first_pass(donors: tf.data.Dataset) -> Counter:
        # shuffled before repeating: the first len(real) donors are each real window once
        got = Counter()
        for inputs, labels, _meta in donors.take(sum(real.values())):
            assert bool(real_window(labels)), "a donor that is not a real window"
            got[inputs["audio"].numpy().tobytes()] += 1
        return got

    serialized = tf.data.Dataset.from_tensor_slices(records)
    assert first_pass(voice_donors(serialized, CFG, parsed=False, seed=1)) == real
    decoded = serialized.map(lambda s: _parse(CFG, s))
    assert first_pass(voice_donors(decoded, CFG, parsed=True, seed=1)) == real
    # from serialized windows a donor's frames are never decoded: the same donors come from windows whose
    # frames no decoder could read (the full parse of such a window fails)
    broken = [_without_frames(r) for r in records]
    with pytest.raises(tf.errors.OpError):
        _parse(CFG, tf.constant(broken[0]))
    assert first_pass(voice_donors(tf.data.Dataset.from_tensor_slices(broken), CFG, parsed=False, seed=2)) == real


def test_real_only_donors_come_from_real_videos(smoke_data):
    # a partial fake's windows outside its segments are real windows, but a real-only run must not see a fake
    # video at all, its voice included
    cfg = CFG.override(train={"real_only": True})
    records = _train_records(smoke_data)
    parsed = [_parse(CFG, tf.constant(r)) for r in records]
    real_videos = Counter(p[0]["audio"].numpy().tobytes() for p in parsed
                          if bool(real_window(p[1])) and int(p[2]["fake_video_label"]) == 0)
    donors = voice_donors(tf.data.Dataset.from_tensor_slices(records), cfg, parsed=False, seed=0)
    got = Counter(i["audio"].numpy().tobytes() for i, _, _ in donors.take(sum(real_videos.values())))
    assert got == real_videos


def test_sync_negative_voices_come_from_real_windows_of_other_clips(smoke_data):
    cfg = CFG.override(train={"sync_negatives": 1.0, "augment": False, "balance": False, "cache": "none"})
    records = _train_records(smoke_data)
    owner = {}  # audio -> (path, real?) of the window it belongs to
    for r in records:
        inputs, labels, meta = _parse(CFG, tf.constant(r))
        owner[inputs["audio"].numpy().tobytes()] = (meta["path"].numpy(), bool(real_window(labels)))
    inputs, targets, _, meta = numpy_batch(make_dataset(smoke_data, cfg, "train", training=True, batch_size=512,
                                                        with_meta=True, seed=3, log=None))
    swapped = np.nonzero(targets["av_mismatch"][:, 0] == 1)[0]
    borrowed = 0
    for i in swapped:
        path, real = owner[inputs["audio"][i].tobytes()]
        if path != meta["path"][i]:  # a borrowed voice (a lip-sync fake of the data keeps its own)
            borrowed += 1
            assert real, "a sync negative borrowed the voice of a fake window"
    assert borrowed >= 5


def test_cache_mode_follows_the_dataset_size(smoke_data):
    ser, n = serialized_split_bytes(smoke_data, "train")
    dec = n * decoded_window_bytes(CFG)
    assert 0 < ser < dec and n > 0
    auto = CFG.override(train={"cache": "auto"})
    mode, why = choose_cache(smoke_data, auto, "train", memory=4 * dec)
    assert mode == "decoded" and "auto" in why and f"{n} windows" in why
    mode, why = choose_cache(smoke_data, auto, "train", memory=2 * ser + 2)  # half fits serialized, not decoded
    assert mode == "serialized"
    mode, why = choose_cache(smoke_data, auto, "train", memory=ser)
    assert mode == "none" and "shuffle buffer" in why
    assert choose_cache(smoke_data, auto, "test", role="evaluate", memory=10**12)[0] == "none"
    # an explicit mode is kept, and said not to fit when it will not
    mode, why = choose_cache(smoke_data, CFG.override(train={"cache": "decoded"}), "train", memory=dec // 2)
    assert mode == "decoded" and "WARNING" in why
    with pytest.raises(ValueError, match="train.cache"):
        choose_cache(smoke_data, CFG.override(train={"cache": "ram"}), "train")


def test_make_dataset_says_which_cache_and_trains_without_one(smoke_data, monkeypatch):
    auto = CFG.override(train={"cache": "auto"})
    lines: list[str] = []
    make_dataset(smoke_data, auto, "train", training=True, log=lines.append)
    assert lines and lines[0].startswith("input cache for train windows: decoded (train.cache=auto;")
    # too little memory for either cache: nothing is cached, and the windows still come
    monkeypatch.setattr(pipeline, "available_memory", lambda: 1 << 20)
    lines.clear()
    ds = make_dataset(smoke_data, auto, "train", training=True, repeat=True, batch_size=8, log=lines.append)
    assert lines[0].startswith("input cache for train windows: none (")
    for inputs, _targets, _weights in ds.take(3):
        assert inputs["frames"].shape[0] == 8


def test_available_memory_is_plausible():
    avail = pipeline.available_memory()
    import os

    assert 0 < avail <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
