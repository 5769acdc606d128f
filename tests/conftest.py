"""Shared fixtures: clips the tests encode themselves, from real photographs (see dfdetect.sample_media).

Also the suite's rule on skips: a test marked ``browser``, ``beam`` or ``engine`` that is skipped while ``CI``
is set fails instead (CI must run it or go red), and every skipped test is listed at the end with its reason.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dfdetect.config import FaceConfig  # noqa: E402

BITS = 10

# Markers whose tests CI must run: a skip there means a missing install step, not an optional extra.
REQUIRED_IN_CI = ("browser", "beam", "engine")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and os.environ.get("CI")) or hasattr(report, "wasxfail"):
        return
    marker = next((m for m in REQUIRED_IN_CI if item.get_closest_marker(m)), None)
    if marker is not None:
        report.outcome = "failed"
        report.longrepr = f"a {marker} test was skipped in CI, which must run it: {_skip_reason(report)}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.section(f"{len(skipped)} skipped test(s), with reasons")
        for report in skipped:
            terminalreporter.write_line(f"{report.nodeid}: {_skip_reason(report)}")


def index_frame(i: int, size: tuple[int, int] = (160, 96)) -> np.ndarray:
    """A frame whose content encodes its index: BITS black/white blocks (robust to lossy codecs)."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    bw = w // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            img[:, b * bw:(b + 1) * bw] = 255
    return img


def read_index(img: np.ndarray) -> int:
    h, w = img.shape[:2]
    bw = w // BITS
    value = 0
    for b in range(BITS):
        if img[h // 4: 3 * h // 4, b * bw + bw // 4:(b + 1) * bw - bw // 4].mean() > 127:
            value |= 1 << b
    return value


@pytest.fixture(scope="session")
def detector():
    from dfdetect.faces import FaceDetector

    det = FaceDetector(FaceConfig())
    yield det
    det.close()


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """A small built-in benchmark, preprocessed with the ``smoke`` preset (12 fps, 1 s windows, 64 px)."""
    from dfdetect.config import get_config
    from dfdetect.preprocess import preprocess
    from dfdetect.synth import synthesize

    root = tmp_path_factory.mktemp("smoke")
    # the three portraits' benchmark: 24 clips of 45 held-out people would leave one real clip in val, and
    # the tests that share this data check plumbing, not generalisation (tests/test_synth.py checks the split)
    synthesize(root / "raw", n=24, seed=3, workers=2, progress=False, faces="photos")
    preprocess([root / "raw"], root / "processed", config=get_config("smoke"), workers=2, progress=False)
    return root / "processed"


@pytest.fixture(scope="session")
def smoke_run(smoke_data, tmp_path_factory):
    """One epoch of the ``smoke`` model on ``smoke_data``: a run folder shared by the tests that only need a
    model that runs (a model that learned is ``tests/test_learning.py``'s business)."""
    from dfdetect.config import get_config
    from dfdetect.train import train

    run = tmp_path_factory.mktemp("smoke_run") / "run"
    train(smoke_data, run, get_config("smoke"), epochs=1, verbose=0)
    return run


@pytest.fixture(scope="session")
def smoke_export(smoke_run, tmp_path_factory):
    """``smoke_run`` exported (SavedModel, .keras, model card)."""
    from dfdetect.export import export_model

    return export_model(smoke_run, tmp_path_factory.mktemp("smoke_export") / "export")


@pytest.fixture
def export_copy(smoke_export, tmp_path):
    """``export_copy(name)``: a copy of ``smoke_export`` under ``tmp_path`` for a test to change (tamper with a
    file, drop the familiarity statistics...) without touching the session's export."""
    import shutil

    def copy(name: str = "copy"):
        dst = tmp_path / name
        shutil.copytree(smoke_export, dst)
        return dst

    return copy


@pytest.fixture
def stub_videos(monkeypatch):
    """The local preprocess runner without decoding: every input is a failed row, as a missing file is (for
    tests of what happens around the per-video work: input lists, splits, leak checks)."""
    from dfdetect import preprocess as pp

    def run(todo, config, tmp_dir):
        for rec in todo:
            yield rec, {"video_id": pp.video_id(rec.path), "status": "failed", "reason": "stub", "windows": 0,
                        "tmp": str(tmp_dir / "none.tfrecord"), "window_rows": []}

    monkeypatch.setattr(pp, "_iter_inprocess", run)
