"""A quiet console (native libraries' start-up logs hidden unless --verbose), ``python -m dfdetect`` and an
example in every command's --help."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from dfdetect.cli import build_parser
from dfdetect.quiet import NATIVE_LINE

# What the native libraries print when nothing stops them (seen on stderr of a `dfdetect predict` before).
NATIVE_PATTERNS = [
    re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"),  # absl / glog (TensorFlow, MediaPipe)
    re.compile(r"absl::InitializeLog"),
    re.compile(r"oneDNN custom operations"),
    re.compile(r"rebuild TensorFlow with the appropriate compiler flags"),
    re.compile(r"Created TensorFlow Lite XNNPACK delegate"),
    re.compile(r"Sparsity tensors may not yet be fully supported"),
    re.compile(r"^INFO: \[\S+\.cc:\d+\]"),
    re.compile(r"^WARNING:absl:"),
]


def _native_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(p.search(line) for p in NATIVE_PATTERNS)]


def _walk(parser: argparse.ArgumentParser, name: str = "dfdetect"):
    """Every parser under ``parser`` (itself included), with its command line."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _walk(child, f"{name} {sub}")


def test_every_command_help_has_an_example():
    parsers = dict(_walk(build_parser()))
    assert {"dfdetect predict", "dfdetect models fetch", "dfdetect datasets inspect", "dfdetect serve"} <= set(parsers)
    for name, parser in parsers.items():
        text = parser.format_help()
        assert "example" in text.lower(), f"`{name} --help` shows no example"
        assert "--verbose" in text, f"`{name} --help` has no --verbose"


def test_native_line_filter_keeps_our_lines():
    native = ["I0000 00:00:1796100711.488860   13680 port.cc:153] oneDNN custom operations are on.",
              "W0000 00:00:1796100713.4   13680 inference_feedback_manager.cc:114] Feedback manager requires",
              "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
              "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
              "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
              "appropriate compiler flags."]
    ours = ["notice: the model card has no threshold", "Traceback (most recent call last):",
            "internal error: boom (traceback: /tmp/x.log)", "predict: 100%|##########| 1/1",
            "E0000 00:00:1796100711.4   13680 some.cc:1] an error is never hidden"]
    assert all(NATIVE_LINE.match(line) for line in native)
    assert not any(NATIVE_LINE.match(line) for line in ours)


def test_python_m_dfdetect():
    proc = subprocess.run([sys.executable, "-m", "dfdetect", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: dfdetect") and "predict" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "dfdetect", "no-such-command"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2


@pytest.mark.timeout(600)
def test_predict_console_is_quiet(smoke_export, tmp_path):
    from dfdetect.sample_media import talking_clip

    clip = talking_clip(tmp_path / "clip.mp4", seconds=2.0)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel", "DFDETECT_VERBOSE")}
    cmd = [sys.executable, "-m", "dfdetect", "predict", str(clip), "--model", str(smoke_export), "--no-progress"]
    quiet = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert str(clip) in quiet.stdout and re.search(r"\b(fake|real|uncertain)\b", quiet.stdout), quiet.stdout
    assert _native_lines(quiet.stderr) == [], quiet.stderr[-3000:]

    loud = subprocess.run([*cmd, "--verbose"], capture_output=True, text=True, env=env, timeout=300)
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert loud.stdout == quiet.stdout  # same verdict, same words
    assert _native_lines(loud.stderr), "--verbose shows no native library line"


def test_filter_is_thread_safe_and_passes_exceptions_on(capfd, monkeypatch):
    import threading
    import time

    from dfdetect.quiet import native_logs_filtered

    monkeypatch.delenv("DFDETECT_VERBOSE", raising=False)
    native = b"I0000 00:00:1796100711.488860   13680 port.cc:153] oneDNN custom operations are on.\n"

    def noisy(i: int) -> None:
        with native_logs_filtered():
            os.write(2, native)
            time.sleep(0.05)
            os.write(2, f"ours-{i}\n".encode())

    threads = [threading.Thread(target=noisy, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(RuntimeError, match="boom"), native_logs_filtered():
        os.write(2, b"before the error\n")
        raise RuntimeError("boom")
    os.write(2, b"after\n")  # fd 2 is the real stderr again
    err = capfd.readouterr().err
    assert "oneDNN" not in err
    assert all(f"ours-{i}" in err for i in range(3)) and "before the error" in err and "after" in err
