"""The command line contract: output formats and exit codes (0 ok, 3 some inputs failed, 2 usage)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from dfdetect.cli import main
from dfdetect.media import write_video


def test_probe_json_and_exit_codes(tmp_path, capsys):
    good = tmp_path / "a.mp4"
    write_video(good, [np.zeros((96, 160, 3), np.uint8)] * 10, fps=10, rotation=90)
    bad = tmp_path / "b.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert main(["probe", str(good), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["width"], info["height"], info["rotation"]) == (96, 160, 90)
    assert info["fps"] == 10 and info["has_audio"] is False and info["status"] == "ok"
    assert main(["probe", str(good), str(bad), "--json"]) == 3
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["status"] for x in lines] == ["ok", "failed"]
    assert lines[1]["reason"].startswith("not a readable media file (")


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["no-such-command"]) == 2
    assert main(["preprocess", str(tmp_path), "--out", str(tmp_path / "o"), "--config", "nope"]) == 2
    assert "neither a preset" in capsys.readouterr().err
    assert main(["preprocess", str(tmp_path), "--out", str(tmp_path / "o"), "--shard-index", "3",
                 "--num-shards", "2"]) == 2
    assert capsys.readouterr().err.strip() == "error: --shard-index must be in [0, 2), got 3"
    # (every subcommand's codes, a bug's exit 1 and Ctrl-C's 130: tests/test_exit_codes.py)


def test_help_explains():
    out = subprocess.run([sys.executable, "-m", "dfdetect.cli", "preprocess", "--help"], capture_output=True,
                         text=True).stdout
    assert "manifest.csv" in out and "Resumable" in out and "--shard-index" in out
    assert "OUT/logs/preprocess.log" in " ".join(out.split())  # where an internal error's traceback goes
    top = subprocess.run([sys.executable, "-m", "dfdetect.cli", "--help"], capture_output=True, text=True).stdout
    assert "Exit codes" in top and "probe" in top and "models" in top
    assert "130 interrupted" in " ".join(top.split())


def test_demo_runs_end_to_end(tmp_path, capsys):
    """The README's main job, at smoke size: benchmark -> preprocess -> train -> evaluate -> export -> predict."""
    code = main(["demo", "--root", str(tmp_path), "--n", "24", "--config", "smoke", "--epochs", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "[7/7] predict" in out and "ROC AUC" in out
    assert (tmp_path / "reports" / "demo-smoke" / "report.html").exists()
    assert (tmp_path / "saved_models" / "demo-smoke-export" / "model_card.json").exists()
    import pandas as pd

    from dfdetect.preprocess import load_manifest

    test = load_manifest(tmp_path / "data" / "processed" / "synth").query("split == 'test' and status == 'ok'")
    preds = pd.read_csv(tmp_path / "reports" / "demo-smoke" / "predictions.csv")
    assert sorted(preds["path"]) == sorted(test["path"])  # every held-out clip, once
    acc = pd.read_csv(tmp_path / "reports" / "demo-smoke" / "predict_accuracy.csv")
    overall = acc[acc["by"] == "all"].iloc[0]
    assert overall["videos"] == len(test) and overall["correct"] == (preds["label"] == test.set_index("path").loc[
        preds["path"], "label"].to_numpy()).sum()
    assert "share of held-out videos" in out and f"{overall['correct']}/{overall['videos']}" in out.replace(" ", "")
