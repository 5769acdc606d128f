"""LiveCurves (issue #16: the notebooks' own callback lives in the package): it follows a real fit and draws
what was logged."""

from __future__ import annotations

import keras
import numpy as np

from dfdetect.callbacks import LiveCurves


def test_live_curves_draws_every_epoch_of_a_real_fit(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    inp = keras.Input((4,))
    heads = ("fake", "video_fake")  # two heads, so that Keras logs per-head metrics as dfdetect's model does
    model = keras.Model(inp, {h: keras.layers.Dense(1, activation="sigmoid", name=h)(inp) for h in heads})
    model.compile("adam", loss={h: "binary_crossentropy" for h in heads},
                  metrics={h: [keras.metrics.AUC(name="auc")] for h in heads})
    cb = LiveCurves(out=tmp_path / "curves.png", show=False)
    model.fit(x, {h: y for h in heads}, validation_split=0.25, epochs=3, verbose=0, callbacks=[cb])
    assert [r["epoch"] for r in cb.rows] == [1, 2, 3]
    loss_ax, auc_ax = cb.figure.axes
    assert {ln.get_label() for ln in loss_ax.lines} == {"loss", "val_loss"}
    assert {ln.get_label() for ln in auc_ax.lines} == {"fake_auc", "val_fake_auc", "video_fake_auc",
                                                            "val_video_fake_auc"}
    # the drawn points are the logged values, epoch by epoch
    val = next(ln for ln in loss_ax.lines if ln.get_label() == "val_loss")
    assert np.allclose(val.get_ydata(), [r["val_loss"] for r in cb.rows])
    assert (tmp_path / "curves.png").stat().st_size > 1000
