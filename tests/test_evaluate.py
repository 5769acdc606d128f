"""dfdetect evaluate on a really trained (tiny) run: files agree with each other, the report embeds its plots."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.metrics import roc_auc


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
    assert set(metrics["per_dataset"]) == {"dfdetect-synth"}
    assert metrics["per_dataset"]["dfdetect-synth"]["n"] == len(per_video)
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 6 and all(len(i) > 1000 for i in images)  # plots embedded, nothing linked
    assert "http" not in html.split("<body>")[1].split("dfdetect evaluation report")[0]
    printed = capsys.readouterr().out
    assert "AUC" in printed
    # selective prediction: the abstention rate is the share of test videos the familiarity threshold flags,
    # and the kept videos' metrics sit beside all videos'
    sel = metrics["selective"]
    assert sel["abstention_rate"] == pytest.approx(1 - per_video["in_distribution"].mean())
    assert sel["n_accepted"] == per_video["in_distribution"].sum() and sel["coverage"] == pytest.approx(
        per_video["in_distribution"].mean())
    assert sel["accepted"]["n"] == sel["n_accepted"] and 0 <= sel["aurc"] <= 1
    assert (per_video["distance"] <= metrics["familiarity"]["threshold"]).equals(per_video["in_distribution"])
    assert per_video["familiarity"].between(0, 1).all() and (out / "familiarity.npz").exists()
    assert "Coverage and accuracy (abstention)" in html and "abstained (unfamiliar videos)" in html
    assert f"abstained on {sel['abstention_rate']:.1%} of test videos" in printed
    # ECE both ways, named; the bootstrap resampled identities (the benchmark has them)
    assert {"ece_top_label", "ece_fake_class", "fpr@0.5"} <= set(metrics["video"])
    assert metrics["video"]["bootstrap_unit"] == "group"
    # where: localisation over every test video, per modality, and the per-frame tracks in the report
    loc = metrics["localisation"]
    assert set(loc) <= {"any", "video", "audio"} and "any" in loc
    assert loc["any"]["videos"] == len(per_video)
    assert {"ap@0.5", "ap@0.75", "ap@0.9", "ap@0.95", "ar@1", "ar@5", "ar@50", "frame_auc"} <= set(loc["any"])
    assert "Temporal localisation" in html and "per-frame score tracks" in html
    assert {"segments_true", "segments_predicted", "segment_iou"} <= set(per_video.columns)


def test_window_scores_carry_the_frame_heads_through_the_familiarity_wrapper(smoke_run, smoke_data):
    # evaluation scores with the embedding wrapper; the frame-level scores must come through it, or every
    # track silently falls back to window scores spread over frames
    from dfdetect.config import load_config
    from dfdetect.evaluate import window_scores
    from dfdetect.familiarity import with_embedding
    from dfdetect.train import load_run_model

    cfg = load_config(smoke_run / "config.yaml")
    model = load_run_model(smoke_run)
    w = window_scores(with_embedding(model), smoke_data, cfg, "test", embeddings=True)
    plain = window_scores(model, smoke_data, cfg, "test")
    assert set(w.attrs["frame_scores"]) == {"frame_fake", "frame_video", "frame_audio"}
    assert w.attrs["frame_scores"]["frame_fake"].shape == (len(w), cfg.frames_per_window)
    np.testing.assert_allclose(w.attrs["frame_scores"]["frame_fake"], plain.attrs["frame_scores"]["frame_fake"],
                               atol=1e-5)


def test_evaluate_usage_errors(tmp_path):
    assert main(["evaluate", "--model", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=5000"]


@pytest.mark.browser  # skipped without chromium, except in CI (see tests/conftest.py)
def test_report_renders_in_headless_chromium(smoke_run, smoke_data, tmp_path):
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    out = tmp_path / "report"
    main(["evaluate", "--model", str(smoke_run), "--data", str(smoke_data), "--out", str(out), "--bootstrap", "20"])
    url = (out / "report.html").resolve().as_uri()
    flags = CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    m = re.search(r'data-images-ok="(\d+)/(\d+)"', dom.stdout)
    assert m, dom.stderr[-2000:]
    loaded, total = int(m.group(1)), int(m.group(2))
    assert total >= 6 and loaded == total, f"{loaded}/{total} images loaded"
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2400", url],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000


def test_prediction_accuracy_counts_failures_as_wrong():
    from dfdetect.evaluate import prediction_accuracy

    truth = pd.DataFrame({"path": list("abcde"), "label": ["real", "fake", "fake", "fake", "real"],
                          "category": ["A", "C", "C", "B", "A"],
                          "method": ["real", "lipsync", "faceswap", "vocoder", "real"]})
    preds = pd.DataFrame({"path": list("abcd"), "status": ["ok", "ok", "failed", "ok"],
                          "label": ["real", "fake", "", "real"]})  # e was never predicted
    acc = prediction_accuracy(preds, truth).set_index(["by", "value"])
    assert acc.loc[("all", "all"), "videos"] == 5 and acc.loc[("all", "all"), "correct"] == 2
    assert acc.loc[("category", "C"), "accuracy"] == 0.5  # the failed one is wrong
    assert acc.loc[("method", "vocoder"), "accuracy"] == 0.0
    assert acc.loc[("category", "A"), "correct"] == 1
