"""The generalisation protocols' building blocks: leaving manipulations out of training (``train.exclude_methods``)."""

from __future__ import annotations

import numpy as np

from dfdetect.config import get_config
from dfdetect.pipeline import make_dataset, numpy_batch, training_table
from dfdetect.preprocess import load_manifest

CFG = get_config("smoke").override(train={"augment": False})


def test_excluded_methods_are_left_out_of_training_and_selection_not_evaluation(smoke_data):
    methods = load_manifest(smoke_data)["method"].astype(str)
    left_out = tuple(m for m in ("vocoder", "faceswap") if (methods == m).any())
    assert left_out, methods.value_counts()
    cfg = CFG.override(train={"exclude_methods": left_out})
    for role, split in (("train", "train"), ("select", "val")):
        _, _, _, meta = numpy_batch(make_dataset(smoke_data, cfg, split, training=role == "train", role=role,
                                                 batch_size=1024, with_meta=True))
        seen = {m.decode() for m in meta["method"]}
        assert not seen & set(left_out) and seen, (role, seen)
        assert len(meta["method"]) >= len(training_table(smoke_data, split, cfg)), role  # + none lost
    _, _, _, meta = numpy_batch(make_dataset(smoke_data, cfg, None, training=False, batch_size=1024,
                                             with_meta=True))
    assert set(left_out) <= {m.decode() for m in meta["method"]}  # evaluation sees every method
    # the window counts a run's steps and class weights come from leave them out too
    full, less = (len(training_table(smoke_data, "train", c)) for c in (CFG, cfg))
    assert less < full
    # the fake head's targets over the training windows are exactly the remaining windows' labels
    _, targets, _, meta = numpy_batch(make_dataset(smoke_data, cfg.override(train={"sync_negatives": 0.0}),
                                                   "train", training=True, batch_size=1024, with_meta=True))
    assert len(meta["method"]) == less and np.isin(targets["fake"][:, 0], (0, 1)).all()
