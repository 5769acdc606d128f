"""dfdetect evaluate on a really trained (tiny) run: files agree with each other, the report embeds its plots."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.config import get_config
from dfdetect.metrics import roc_auc
from dfdetect.train import train


@pytest.fixture(scope="module")
def smoke_run(smoke_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train(smoke_data, run, get_config("smoke"), epochs=1, verbose=0)
    return run


def test_evaluate_outputs_agree(smoke_run, smoke_data, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(smoke_run), "--data", str(smoke_data), "--out", str(out),
                 "--bootstrap", "50"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    per_video = pd.read_csv(out / "per_video.csv")
    assert len(per_video) == metrics["videos"] and per_video["path"].is_unique
    # the AUC recomputed from the CSV is the reported one
    assert roc_auc(per_video["fake_label"], per_video["fake_score"]) == pytest.approx(metrics["video"]["auc"])
    assert {"eer", "ap", "log_loss", "ece", "accuracy@0.5", "f1@0.5"} <= set(metrics["video"])
    assert set(per_video["prediction"]) <= {"real", "fake"}
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 6 and all(len(i) > 1000 for i in images)  # plots embedded, nothing linked
    assert "http" not in html.split("<body>")[1].split("dfdetect evaluation report")[0]
    assert "AUC" in capsys.readouterr().out


def test_evaluate_usage_errors(tmp_path):
    assert main(["evaluate", "--model", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
