"""dfdetect.batch: decoding in worker processes, the model in this one, verdicts as the serial run gives them.

Real worker processes (spawned), real decoding and face tracking, the smoke model; a worker is killed for real
(SIGKILL, as the out-of-memory killer would) through the test hook ``_kill_in``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from dfdetect.batch import BatchStats, iter_verdicts
from dfdetect.predict import Detector
from dfdetect.sample_media import faceless_clip, talking_clip

TOL = 1e-6


@pytest.fixture(scope="module")
def det(smoke_export):
    with Detector(smoke_export) as d:
        yield d


@pytest.fixture(scope="module")
def clips(smoke_data, tmp_path_factory) -> dict[str, Path]:
    """Four benchmark clips, a longer talking head (several chunks of windows), a corrupt file and a faceless,
    silent clip."""
    tmp = tmp_path_factory.mktemp("batch")
    raw = sorted((smoke_data.parent / "raw").rglob("*.mp4"))
    out = {f"bench{i}": p for i, p in enumerate(raw[:4])}
    out["long"] = talking_clip(tmp / "long.mp4", seconds=12.0, fps=12, size=(240, 180))
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))  # an MP4 header, then garbage
    out["corrupt"] = corrupt
    out["faceless"] = faceless_clip(tmp / "faceless.mp4", "text", seconds=2.0, size=(160, 120), audio=False)
    return out


@pytest.fixture(scope="module")
def serial(det, clips):
    return {v.path: v for v in iter_verdicts(det, clips.values(), workers=0)}


def assert_same(a, b) -> None:
    """Two verdicts on one video agree: status, reason, label, windows, segments; scores within ``TOL``."""
    assert (a.path, a.status, a.reason, a.label, a.windows, a.windows_skipped) == \
        (b.path, b.status, b.reason, b.label, b.windows, b.windows_skipped)
    for k in ("score", "video_fake", "audio_fake", "av_mismatch", "probability", "familiarity"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None) == (y is None), k
        if x is not None:
            assert abs(x - y) <= TOL, (k, x, y)
    assert len(a.segments) == len(b.segments)
    for s, t in zip(a.segments, b.segments):
        assert s["modality"] == t["modality"] and abs(s["start"] - t["start"]) <= TOL and \
            abs(s["end"] - t["end"]) <= TOL
    assert (a.face_ratio, a.has_audio) == (b.face_ratio, b.has_audio)


def workers_alive() -> list[mp.Process]:
    return [p for p in mp.active_children() if p.name == "dfdetect-batch-worker"]


def test_serial_run_is_what_predict_video_says(det, clips, serial):
    """workers=0 is today's behaviour; the clips are what the other tests need them to be."""
    assert_same(serial[str(clips["bench0"])], det.predict_video(clips["bench0"]))
    bad = serial[str(clips["corrupt"])]
    assert bad.status == "failed" and bad.reason and not bad.reason.startswith("internal error")
    faceless = serial[str(clips["faceless"])]
    assert faceless.status == "ok" and faceless.label == "uncertain" and faceless.windows == 0
    assert not faceless.has_audio and "no face found" in faceless.reason
    assert serial[str(clips["long"])].windows > det.batch_size  # more than one chunk from the worker
    assert all(serial[str(clips[f"bench{i}"])].status == "ok" for i in range(4))


def test_overlapped_verdicts_equal_serial_in_input_order(det, clips, serial):
    stats = BatchStats()
    t = time.time()
    # every video from the workers (main_decodes=False): how many the main process would cut itself while they
    # start depends on the machine's load, and this test is about what workers send back
    got = list(iter_verdicts(det, clips.values(), workers=2, stats=stats, main_decodes=False))
    wall = time.time() - t
    assert [v.path for v in got] == [str(p) for p in clips.values()]
    for v in got:
        assert_same(v, serial[v.path])
    assert stats.videos == len(clips) and stats.respawns == 0 and stats.decode_s > 0
    assert stats.in_process == 0
    # seconds: the run's wall time spent on each video (waiting for its windows, scoring them): they add up
    # to the run's (worker start-up in the first video's), where per-video decode times would add up to more
    assert all(v.seconds >= 0 for v in got)
    assert 0.8 * wall <= sum(v.seconds for v in got) <= wall + 0.01
    assert not workers_alive()  # the workers ended with the run


def test_the_main_process_cuts_videos_while_the_workers_start(det, clips, serial):
    stats = BatchStats()
    paths = [clips["bench0"], clips["bench1"]]
    got = list(iter_verdicts(det, paths, workers=1, stats=stats))
    assert stats.in_process >= 1  # the first video at least: a worker takes a second or more to start
    for v in got:
        assert_same(v, serial[v.path])
    assert not workers_alive()


def test_a_killed_worker_fails_its_video_and_the_run_goes_on(det, clips, serial):
    """One worker, so that the videos queued behind the dead one's go to the worker started in its place;
    every video through a worker (main_decodes=False), so that the victim is decoded in one."""
    names = ["bench0", "long", "bench1", "bench2", "corrupt", "bench3"]
    stats = BatchStats()
    got = list(iter_verdicts(det, [clips[n] for n in names], workers=1, stats=stats, main_decodes=False,
                             _kill_in="long.mp4"))
    by = dict(zip(names, got))
    dead = by.pop("long")
    assert dead.status == "failed"
    assert "worker process decoding this file died" in dead.reason and "SIGKILL" in dead.reason
    assert stats.respawns == 1 and stats.in_process == 0
    for v in by.values():
        assert_same(v, serial[v.path])
    assert not workers_alive()


def test_ctrl_c_in_workers_is_ignored_and_in_the_main_process_stops_the_run(det, clips, serial):
    paths = [clips[n] for n in ("bench0", "bench1", "bench2", "bench3", "long")]
    it = iter_verdicts(det, paths, workers=2)
    first = next(it)
    assert_same(first, serial[first.path])
    pids = [p.pid for p in workers_alive()]
    assert len(pids) == 2
    for pid in pids:  # a Ctrl-C reaches the whole process group: the workers leave it to us
        os.kill(pid, signal.SIGINT)
    second = next(it)
    assert_same(second, serial[second.path])
    assert sorted(p.pid for p in workers_alive()) == sorted(pids)
    # Ctrl-C in the main process while it waits: KeyboardInterrupt out of the run, the workers ended
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in it:
            pass
        timer.join()
        signal.raise_signal(signal.SIGINT)  # the run outpaced the timer: interrupt it as it ended
    timer.join()
    assert not workers_alive()


def test_stopping_early_ends_the_workers(det, clips):
    with closing(iter_verdicts(det, [clips["bench0"], clips["long"], clips["bench1"]], workers=1)) as it:
        assert next(it).status == "ok"
        assert len(workers_alive()) == 1
    assert not workers_alive()



FILTER_PROBE = """
import os, sys
from dfdetect.batch import _NativeLogFilter
f = _NativeLogFilter().start()
os.write(2, b"WARNING: Logging before InitGoogle() is written to STDERR\\n")
os.write(2, b"W0000 00:00:1796114289.585901   11851 inference_runner_litert.cc:1433] Input tensor memory\\n")
print("ours", file=sys.stderr)
f.stop()
print("after", file=sys.stderr)
"""


@pytest.mark.parametrize("verbose", ["", "1"])
def test_a_workers_native_log_lines_stay_off_the_console(verbose):
    """A worker imports no TensorFlow, so nothing initialises absl there and MediaPipe's warnings reach fd 2
    whatever GLOG_minloglevel says (seen from a `dfdetect predict` worker: an alignment warning): its fd 2 is
    filtered as dfdetect.quiet filters start-up, our own lines pass, and --verbose shows everything."""
    import subprocess
    import sys

    env = {**os.environ, "DFDETECT_VERBOSE": verbose}
    err = subprocess.run([sys.executable, "-c", FILTER_PROBE], capture_output=True, text=True, env=env,
                         timeout=60).stderr
    assert "ours\n" in err and err.rstrip().endswith("after")
    assert ("InitGoogle" in err and "Input tensor memory" in err) == bool(verbose), err
