"""Fuzzing the path from bytes to windows (issue #17): the seeds are valid, a short fixed-seed atheris
campaign breaks no invariant, and every input a campaign ever found stays fixed.

The invariant (``tests/fuzz/target.py``): any bytes end as ``ok`` or ``failed`` with a one-line reason,
within a time limit, without any other exception or a crash of the interpreter. Long campaigns:
``python bench/fuzz.py --seconds N``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"
ROOT = FUZZ.parent.parent
sys.path.insert(0, str(FUZZ))

from seeds import make_seeds  # noqa: E402

REGRESSIONS = FUZZ / "regressions"
EXPECTED = json.loads((REGRESSIONS / "expected.json").read_text())
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2"}


def test_seeds_are_valid_clips(tmp_path):
    """The corpus starts from real clips: the videos cut into windows, the rest fail for their own reason."""
    from target import check

    results = {p.name: check(p.read_bytes(), p.name) for p in make_seeds(tmp_path)}
    videos = {n: r for n, r in results.items() if not n.endswith((".wav", ".png"))}
    assert len(videos) == 5 and all(s == "ok" and w >= 1 for s, _, w in videos.values()), results
    assert results["tone.wav"][:2] == ("failed", "no video stream (audio-only file)")
    assert results["still.png"][:2] == ("failed", "a still image (png), not a video")
    assert all(p.stat().st_size < 20_000 for p in tmp_path.iterdir())


@pytest.mark.timeout(180)
def test_short_fixed_seed_campaign(tmp_path):
    """About a minute of atheris from the seeds (fixed seed): no finding, no crash, no hang."""
    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    make_seeds(corpus)
    artifacts.mkdir()
    proc = subprocess.run(
        [sys.executable, str(FUZZ / "fuzz_windows.py"), str(corpus), "-seed=17", "-runs=3000",
         "-max_total_time=50", "-max_len=65536", "-timeout=60", "-rss_limit_mb=0",  # target.py checks memory
         f"-artifact_prefix={artifacts}/", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=170, env={**ENV, "DFDETECT_FUZZ_TIME_LIMIT": "20"}, cwd=ROOT)
    log = proc.stderr + proc.stdout
    assert proc.returncode == 0, log[-3000:]
    assert not list(artifacts.iterdir()), log[-3000:]
    runs = int(re.search(r"stat::number_of_executed_units: (\d+)", log).group(1))
    assert runs >= 200, log[-2000:]  # it really fuzzed (the seeds alone are 7 inputs)


def _replay(paths: list[Path]) -> dict[str, dict]:
    """Runs each input through the target in a child process (a crash there fails the test, not pytest)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from target import check\n"
            "for p in sys.argv[2:]:\n"
            "    s, r, w = check(open(p, 'rb').read())\n"
            "    print(json.dumps({'file': p.rsplit('/', 1)[-1], 'status': s, 'reason': r, 'windows': w}),"
            " flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(FUZZ), *map(str, paths)], capture_output=True,
                          text=True, timeout=600, env=ENV, cwd=ROOT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {r["file"]: r for r in rows}


def test_regressions_stay_fixed():
    """Every input a campaign found (or a hostile file met while building this), with the outcome it must
    have: its status and a pattern its reason matches."""
    files = sorted(p for p in REGRESSIONS.iterdir() if p.name != "expected.json")
    assert files and {p.name for p in files} == set(EXPECTED), "every regression input needs its expected outcome"
    got = _replay(files)
    for name, want in EXPECTED.items():
        r = got[name]
        assert r["status"] == want["status"] and re.search(want["reason"], r["reason"]), (name, r, want)


def test_the_memory_bound_is_this_processs_own_peak(monkeypatch):
    """The target bounds memory by VmHWM, the fuzzing process's own peak, because libFuzzer's -rss_limit_mb
    reads ru_maxrss, which a child inherits from its parent over exec (CI: pytest at 3 GB -> an 'out-of-memory'
    before the first input). An input that pushes the peak over the limit is a finding."""
    import target

    code = (f"import resource, sys; sys.path.insert(0, {str(FUZZ)!r}); import target; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, int(target.peak_rss_mb()))")
    ballast = bytearray(600 * 1024 * 1024)  # this process's peak goes above 600 MB
    ballast[::4096] = b"\x01" * len(ballast[::4096])
    inherited, own = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                             timeout=120, cwd=ROOT).stdout.split())
    del ballast
    assert inherited >= 600 and own < 300  # the child's ru_maxrss is ours; its VmHWM is its own
    monkeypatch.setattr(target, "MEMORY_LIMIT_MB", 1.0)
    with pytest.raises(target.Finding, match=r"peak RSS \d+ MB, over the 1 MB limit"):
        target.check_memory()
