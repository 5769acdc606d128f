"""Keras callbacks for people watching a run: ``LiveCurves`` redraws the loss and AUC curves after every epoch.

``dfdetect train`` writes ``history.csv`` and TensorBoard logs; a notebook wants the curves in front of it while
it trains. Kept here, not in the notebook, so that notebooks hold no definitions (and the curve drawing is
tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras


class LiveCurves(keras.callbacks.Callback):
    """Redraws the training and validation loss and the per-head AUCs after every epoch.

    In a notebook the figure replaces the previous one in the cell's output; elsewhere (a script, a test) it is
    only kept in ``figure`` and, with ``out``, saved as a PNG each epoch.

    Args:
        out: a PNG path written after every epoch (optional).
        show: draw in the notebook's output (``None``: when running under IPython).
        auc_suffix: which logged metrics go on the AUC panel: by default the heads that say fake or not
            (``fake``, ``video_fake``, ``audio_fake``; ``av_mismatch`` is left out); ``"auc"`` for every head.

    Example:
        >>> train(data, run, config, extra_callbacks=[LiveCurves()])   # doctest: +SKIP
    """

    def __init__(self, out: str | Path | None = None, show: bool | None = None, auc_suffix: str = "fake_auc"):
        super().__init__()
        self.out = None if out is None else Path(out)
        self.show = _in_ipython() if show is None else show
        self.auc_suffix = auc_suffix
        self.rows: list[dict[str, Any]] = []
        self.figure = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        self.figure = self.draw()
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.figure.savefig(self.out, dpi=80, bbox_inches="tight")
        if self.show:
            from IPython.display import clear_output, display

            clear_output(wait=True)
            display(self.figure)
        import matplotlib.pyplot as plt

        plt.close(self.figure)  # displayed or saved: do not keep one open figure per epoch

    def draw(self):
        """The figure for the epochs so far: loss on the left, AUCs on the right."""
        import matplotlib

        if not self.show:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        import pandas as pd

        df = pd.DataFrame(self.rows)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3))
        losses = [c for c in ("loss", "val_loss") if c in df]
        aucs = [c for c in df if c.endswith(self.auc_suffix)]
        for ax, cols, title in ((axes[0], losses, "loss"), (axes[1], aucs, "AUC")):
            for c in cols:
                ax.plot(df["epoch"], df[c], marker="o", label=c)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            if cols:
                ax.legend(fontsize=8)
        fig.tight_layout()
        return fig


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"  # a notebook kernel
