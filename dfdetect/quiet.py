"""A quiet console: the native libraries' start-up logs (TensorFlow, MediaPipe, LiteRT) kept off stderr.

TensorFlow and MediaPipe log from C++ through absl, and what they print before ``absl::InitializeLog()`` (the
oneDNN notice, "Could not find cuda drivers", the CPU-feature notice, LiteRT's "Created TensorFlow Lite
XNNPACK delegate") ignores ``TF_CPP_MIN_LOG_LEVEL`` and ``GLOG_minloglevel``: it goes straight to file
descriptor 2. So besides the variables, ``native_logs_filtered`` points fd 2 at a temporary file while such a
library initialises, then replays every line that is not a native log line: our own messages and Python
tracebacks always reach the console. ``--verbose`` (``DFDETECT_VERBOSE=1``) turns all of this off.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "DFDETECT_VERBOSE"
# fd 2 is one per process: two threads filtering at once would restore each other's temporary file as stderr
_FD2_LOCK = threading.RLock()

# One native log line each: absl/glog ("I0000 00:00:1796100711.488860   13680 port.cc:153] ..."), absl's
# preamble, TensorFlow's CPU-feature notice (two lines), and TFLite/LiteRT's own "INFO: ..." lines.
NATIVE_LINE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|INFO: Created TensorFlow Lite .*delegate"
    r"|WARNING: Logging before InitGoogle\(\) is written to STDERR"
    r"|(?:INFO|WARNING): \[[\w./-]+:\d+\])"
)


def verbose() -> bool:
    """True when the user asked for the native libraries' logs (``--verbose`` sets ``DFDETECT_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def quiet_env(verbose_logs: bool | None = None) -> None:
    """Sets the variables the native libraries read when they load, so call it before they load. Inherited
    by worker processes; a value the user set is kept."""
    if verbose_logs is None:
        verbose_logs = verbose()
    if verbose_logs:
        os.environ[VERBOSE_ENV] = "1"  # worker processes follow the parent's choice
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    # 3, not 2: TensorFlow logs notices at ERROR level ("failed call to cuInit" on a machine without a GPU,
    # "oneDNN supports DT_UINT8 only on platforms with AVX-512"); its real errors are Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    # absl's Python logger (TensorFlow and Keras warn through it when saving/loading): errors only
    logging.getLogger("absl").setLevel(logging.ERROR)


@contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Inside: fd 2 goes to a temporary file; on exit its lines come back to stderr, less native log lines.

    Only for a library's initialisation (an import, a detector's creation): nothing of ours is held back for
    long, and an exception raised inside is printed by its caller after fd 2 is back."""
    if verbose():
        yield
        return
    with _FD2_LOCK:
        yield from _filtered()


def _filtered() -> Iterator[None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (a closed or replaced stderr): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not NATIVE_LINE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow (and so Keras' backend) with its start-up logs filtered; later imports are free."""
    if "tensorflow" in sys.modules:
        return
    with native_logs_filtered():
        import tensorflow  # noqa: F401
