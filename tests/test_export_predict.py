"""Export and predict: the SavedModel matches the Keras model in a fresh process; verdicts for good, odd and
bad videos; output formats and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.config import get_config
from dfdetect.export import ModelCardError, read_card
from dfdetect.media import write_video
from dfdetect.predict import VERDICT_FIELDS, Detector
from dfdetect.sample_media import moving_face_frames, talking_clip, tone


@pytest.fixture(scope="module")
def exported(smoke_export):
    return smoke_export


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    talking_clip(d / "talk.mp4", seconds=3.0)
    write_video(d / "mute.mp4", moving_face_frames("astronaut", n=60, size=(320, 240), scale=0.5)[0], fps=25)
    write_video(d / "noface.mp4", [np.full((240, 320, 3), 60, np.uint8)] * 60, fps=25, audio=tone(2.4))
    (d / "empty.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8)))
    return d


def test_savedmodel_matches_keras_in_a_fresh_process(exported, tmp_path):
    cfg = get_config("smoke")
    rng = np.random.default_rng(0)
    T, C, S = cfg.frames_per_window, cfg.faces.crop_size, cfg.samples_per_window
    x = {"frames": rng.integers(0, 255, (3, T, C, C, 3)).astype("uint8"),
         "audio": rng.normal(0, 0.1, (3, S)).astype("float32"), "mask": np.ones((3, T), "float32")}
    np.savez(tmp_path / "x.npz", **x)
    code = f"""
import numpy as np, tensorflow as tf, json
x = dict(np.load({str(tmp_path / 'x.npz')!r}))
sig = tf.saved_model.load({str(exported / 'saved_model')!r}).signatures["serving_default"]
out = sig(frames=tf.constant(x["frames"]), audio=tf.constant(x["audio"]), mask=tf.constant(x["mask"]))
print(json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    served = json.loads(res.stdout.strip().splitlines()[-1])
    import keras

    model = keras.saving.load_model(exported / "model.keras", safe_mode=True)
    ref = model(x, training=False)
    for h in ("fake", "video_fake", "audio_fake", "av_mismatch"):
        np.testing.assert_allclose(np.array(served[h]), np.asarray(ref[h]).reshape(-1), atol=1e-5)
    # the frame-level scores: one per video frame of each window, the same as the .keras model's
    for h in ("frame_fake", "frame_video", "frame_audio"):
        assert np.array(served[h]).shape == (3, T), h
        np.testing.assert_allclose(np.array(served[h]), np.asarray(ref[h]).reshape(3, T), atol=1e-5)


def test_model_card_has_what_inference_needs(exported, tmp_path):
    card = read_card(exported)
    assert card["inputs"]["fps"] == 12 and card["inputs"]["crop_size"] == 64
    assert 0 < card["threshold"] < 1 and "intended_use" in card
    (tmp_path / "model_card.json").write_text("{not json")
    with pytest.raises(ModelCardError, match="not a valid"):
        read_card(tmp_path)
    with pytest.raises(ModelCardError, match="export"):
        read_card(tmp_path / "nothing")


def test_verdicts(exported, videos):
    with Detector(exported) as det:
        talk = det.predict_video(videos / "talk.mp4")
        assert talk.status == "ok" and talk.windows >= 2 and 0 <= talk.score <= 1
        assert talk.label in ("real", "fake", "uncertain") and talk.has_audio and talk.face_ratio > 0.9
        # the export has familiarity statistics: every scored verdict says whether to trust its score
        assert isinstance(talk.in_distribution, bool) and 0 <= talk.familiarity <= 1
        assert (talk.label == "uncertain") == (not talk.in_distribution)
        assert talk.raw_label == ("fake" if talk.score >= det.threshold else "real")
        assert len(talk.timeline) == talk.windows and all(set(w) >= {"start", "end", "fake"} for w in talk.timeline)
        # the scorer hands on the model's own frame-level scores (not the window scores spread over frames):
        # the per-frame track is what the frame heads say, frame for frame
        probe = np.zeros((1, 12, 64, 64, 3), np.uint8), np.zeros((1, 16000), np.float32), np.ones((1, 12), np.float32)
        scored = det.score_windows(*probe)
        import keras

        ref = keras.saving.load_model(exported / "model.keras", safe_mode=True)(
            {"frames": probe[0], "audio": probe[1], "mask": probe[2]}, training=False)
        for h in ("frame_fake", "frame_video", "frame_audio"):
            np.testing.assert_allclose(scored[h], np.asarray(ref[h]).reshape(1, 12), atol=1e-5)
        assert set(talk.track) == {"fps", "fake", "video", "audio"} and talk.track["fps"] == 12
        mute = det.predict_video(videos / "mute.mp4")
        assert mute.status == "ok" and not mute.has_audio and "no audio" in mute.reason
        noface = det.predict_video(videos / "noface.mp4")
        assert noface.status == "ok" and noface.face_ratio == 0 and noface.reason.startswith("no face found")
        # training keeps only windows with a face (windows.usable): there is nothing the model knows to score
        assert (noface.windows, noface.score, noface.label) == (0, None, "uncertain")
        assert noface.windows_skipped >= 2
        bad = det.predict_video(videos / "random.mp4")
        assert bad.status == "failed" and bad.score is None and bad.windows == 0
        assert bad.reason.startswith("not a readable media file (") and "\n" not in bad.reason
        empty = det.predict_video(videos / "empty.mp4")
        assert (empty.status, empty.reason, empty.score) == ("failed", "empty file (0 bytes)", None)
        gone = det.predict_video(videos / "missing.mp4")
        assert (gone.status, gone.reason) == ("failed", f"file not found: {videos / 'missing.mp4'}")


def test_cli_json_csv_and_exit_codes(exported, videos, tmp_path, capsys):
    code = main(["predict", str(videos), "--model", str(exported), "--json", "--no-progress"])
    assert code == 3  # empty.mp4 and random.mp4 failed, the batch went on
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5 and all(list(r) == VERDICT_FIELDS for r in rows)
    status = {r["path"].split("/")[-1]: r["status"] for r in rows}
    assert status == {"empty.mp4": "failed", "mute.mp4": "ok", "noface.mp4": "ok", "random.mp4": "failed",
                      "talk.mp4": "ok"}
    reason = {r["path"].split("/")[-1]: r["reason"] for r in rows}
    assert reason["empty.mp4"] == "empty file (0 bytes)"
    assert reason["random.mp4"].startswith("not a readable media file (")
    out_csv = tmp_path / "v.csv"
    assert main(["predict", str(videos / "talk.mp4"), "--model", str(exported), "--csv", str(out_csv)]) == 0
    df = pd.read_csv(out_csv)
    assert list(df.columns) == VERDICT_FIELDS and json.loads(df.loc[0, "timeline"])
    assert main(["predict", str(videos / "talk.mp4"), "--model", str(tmp_path)]) == 2  # no card: usage error


def test_predict_py_entry_point(exported, videos):
    res = subprocess.run([sys.executable, "predict.py", "--video_path", str(videos / "talk.mp4"), "--model",
                          str(exported)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    printed = re.search(r"talk\.mp4: (REAL|FAKE|UNCERTAIN)\b.*?\bscore (\d\.\d{3}),", res.stdout)
    assert printed, res.stdout
    with Detector(exported) as det:  # the label is the model's own score against the card's threshold
        v = det.predict_video(videos / "talk.mp4")
    assert abs(float(printed.group(2)) - v.score) < 1e-3
    if v.in_distribution:
        assert printed.group(1) == ("FAKE" if v.score >= read_card(exported)["threshold"] else "REAL")
    else:
        assert printed.group(1) == "UNCERTAIN" and "unlike anything this model was trained on" in res.stdout


def test_explanations_are_written(exported, videos, tmp_path):
    out = tmp_path / "why"
    assert main(["predict", str(videos / "talk.mp4"), "--model", str(exported), "--explain", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["talk_faces.png", "talk_spectrogram.png", "talk_timeline.png"]
    assert all((out / p).stat().st_size > 10_000 for p in pngs)


def test_grad_cam_is_real_and_localised(exported, videos):
    from dfdetect.explain import grad_cam

    with Detector(exported) as det:
        v = det.predict_video(videos / "talk.mp4", keep_windows=True)
        w = v._windows[0]
        mask = w.mask.astype("float32")
        cams = {t: grad_cam(det.model, w.frames, w.audio, mask, target=t) for t in ("fake", "real", "predicted")}
        score = float(det.model({"frames": w.frames[None], "audio": w.audio[None], "mask": mask[None]})["fake"][0, 0])
    assert abs(cams["fake"]["score"] - score) < 1e-5  # the explained score is the model's
    assert cams["predicted"]["target"] == ("fake" if score >= 0.5 else "real")
    # a cell's contribution is positive for one target or the other: one of the two maps has evidence
    with_evidence = [c for c in (cams["fake"], cams["real"]) if sum(c["share"].values()) > 0]
    assert with_evidence
    for cam in with_evidence:
        assert set(cam["heat"]) == {"face", "mouth"} and np.isclose(sum(cam["share"].values()), 1.0)
        for heat in cam["heat"].values():
            assert heat.shape == w.frames.shape[:3] and heat.max() <= 1.0
            assert (heat[mask == 0] == 0).all()
        strongest = max(cam["heat"].values(), key=lambda h: h.max())
        assert np.isclose(strongest.max(), 1.0) and strongest[mask > 0].std() > 0.01  # spatial, not flat
        H = w.frames.shape[1]
        assert (cam["heat"]["mouth"][:, : int(H * 0.5)] == 0).all()  # the mouth stream sees the lower face only
    assert cams["fake"]["saliency"].shape == cams["fake"]["logmel"].shape and cams["fake"]["saliency"].sum() > 0


def test_export_finds_the_runs_evaluation_or_says_it_is_missing(tmp_path):
    from dfdetect.errors import MissingInput
    from dfdetect.export import find_evaluation

    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    reports = tmp_path / "reports"
    for name, who, which in (("other", tmp_path / "runs" / "theirs", "best"), ("final", run, "final"),
                             ("mine", run, "best")):
        (reports / name).mkdir(parents=True)
        (reports / name / "metrics.json").write_text(json.dumps({"run": str(who), "model": which}))
    # the evaluation of this run's checkpoint, not another run's nor another checkpoint's
    assert find_evaluation(run, "best", search=(reports,)) == reports / "mine"
    assert find_evaluation(run, "final", search=(reports,)) == reports / "final"
    assert find_evaluation(tmp_path / "runs" / "nobody", "best", search=(reports,)) is None
    (run / "report").mkdir()
    (run / "report" / "metrics.json").write_text("{}")
    assert find_evaluation(run, "best", search=(reports,)) == run / "report"  # RUN/report comes first
    with pytest.raises(MissingInput, match="has no metrics.json"):
        find_evaluation(run, "best", report_dir=tmp_path / "empty")
