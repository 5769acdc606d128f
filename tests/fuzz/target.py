"""The fuzz target: bytes -> a file -> ``extract_windows`` (PyAV decoding, face tracking, windows).

The invariant it checks, for any bytes: the file ends as ``ok`` (windows cut, or none and a note) or
``failed`` with a one-line reason (a ``MediaError``), within a time limit. Any other exception, a reason that
is empty or spans lines, or an input that takes longer than ``TIME_LIMIT`` raises ``Finding``, which the
fuzzer reports as a crash and saves. A crash of the interpreter itself (a segfault in FFmpeg) kills the
process; ``bench/fuzz.py`` restarts the campaign and keeps the input.

Run under atheris: ``python tests/fuzz/fuzz_windows.py CORPUS_DIR -runs=1000`` (libFuzzer flags), or call
``check(data)`` directly (the regression tests do).
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")

TIME_LIMIT = float(os.environ.get("DFDETECT_FUZZ_TIME_LIMIT", "20"))  # seconds per input
# Peak memory of the fuzzing process, checked after every input from /proc/self/status (VmHWM: this process's
# own peak). libFuzzer's -rss_limit_mb reads getrusage's ru_maxrss instead, which Linux carries over exec from
# the parent: under a pytest process already at 3 GB it reported 3000 MB before the first input. So the
# launchers pass -rss_limit_mb=0 and the bound is kept here.
MEMORY_LIMIT_MB = float(os.environ.get("DFDETECT_FUZZ_MEMORY_MB", "2048"))

_STATE: dict = {}


class Finding(AssertionError):
    """An input that broke the invariant."""


def _setup():
    if not _STATE:
        from dfdetect.config import get_config
        from dfdetect.faces import FaceDetector

        config = get_config("smoke")
        _STATE["config"] = config
        _STATE["detector"] = FaceDetector(config.faces)
        _STATE["dir"] = tempfile.mkdtemp(prefix="dfdetect-fuzz-")
    return _STATE["config"], _STATE["detector"], _STATE["dir"]


def check(data: bytes, name: str = "input.mp4") -> tuple[str, str, int]:
    """Runs one input through the bytes-to-windows path. Returns ``(status, reason, windows)``; raises
    ``Finding`` if the invariant breaks."""
    from dfdetect.media import MediaError
    from dfdetect.windows import VideoSummary, extract_windows

    config, detector, folder = _setup()
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    summary = VideoSummary()
    t0 = time.monotonic()
    windows = 0
    try:
        for w in extract_windows(path, config, detector, summary):
            windows += 1
            if w.frames.shape[1:] != (config.faces.crop_size, config.faces.crop_size, 3):
                raise Finding(f"window of shape {w.frames.shape}")
            if w.audio.shape != (config.samples_per_window,):
                raise Finding(f"window audio of shape {w.audio.shape}")
        status, reason = "ok", "; ".join(summary.warnings)
    except MediaError as e:
        status, reason = "failed", str(e)
        if not reason.strip():
            raise Finding("failed with an empty reason") from e
    except Finding:
        raise
    except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
        raise Finding(f"{type(e).__name__} escaped: {e}") from e
    finally:
        os.unlink(path)
    if "\n" in reason or "\r" in reason:
        raise Finding(f"{status} with a reason of several lines: {reason!r}")
    took = time.monotonic() - t0
    if took > TIME_LIMIT:
        raise Finding(f"took {took:.1f} s, over the {TIME_LIMIT:g} s limit per input")
    return status, reason, windows


def check_memory() -> None:
    """Raises ``Finding`` when this process's peak memory passed ``MEMORY_LIMIT_MB``: the fuzzing process
    calls it after every input (not ``check``, which tests also call inside a pytest process of their own
    size)."""
    peak = peak_rss_mb()
    if peak is not None and peak > MEMORY_LIMIT_MB:
        raise Finding(f"peak RSS {peak:.0f} MB, over the {MEMORY_LIMIT_MB:g} MB limit")


def peak_rss_mb() -> float | None:
    """This process's peak resident memory since it started (VmHWM), in MB; None where /proc has none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
