"""The one exception family that means "the user can fix this".

``dfdetect`` tells apart three kinds of trouble, and the command line gives each its own exit code:

* a bad input among many (an unreadable video): ``dfdetect.media.MediaError``, reported per input, exit 3;
* a mistake the user can fix (a bad flag value, a missing folder, a bad config, a bad model card, a dataset
  layout error in strict mode): a ``UsageError``, exit 2 with its one-line message;
* anything else is a bug: exit 1, with the traceback in the command's log file.

Subclasses also derive from the built-in type they used to be (``ValueError``...), so callers that caught that
keep working.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from pathlib import Path


class UsageError(Exception):
    """Bad arguments, settings or a missing prerequisite the user can fix; the CLI exits 2."""


class BadArgument(UsageError, ValueError):
    """An argument the command cannot use (a flag value out of range, an output folder of other settings)."""


class MissingInput(UsageError, FileNotFoundError):
    """A file or folder the command needs is missing or is not what it should be (no run folder, no shards)."""


def one_line(e: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message`` (what a results row or one line on stderr can hold)."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:limit]}" if lines else type(e).__name__


def default_log(command: str) -> Path:
    """Where a command without an output folder of its own writes tracebacks: the system temp folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.gettempdir()) / f"dfdetect-{command}-{stamp}-{os.getpid()}.log"


def log_traceback(path: str | Path, what: str, text: str) -> Path:
    """Appends a traceback under a dated header to ``path`` and returns the file written: ``path``, or a file in
    the temp folder when ``path`` cannot be written (a crash report must never be lost to a second error)."""
    entry = f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n{text.rstrip()}\n\n"
    target = Path(path)
    for candidate in (target, default_log(target.stem)):
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            with open(candidate, "a") as f:
                f.write(entry)
            return candidate
        except OSError:
            continue
    return target  # nowhere writable: still name the intended file


# --- Ctrl-C that is not lost ------------------------------------------------------------------------------
# Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives. If that is inside a
# Python callback that C code runs (a library's log callback, say), the exception is printed and dropped, and
# the command would go on to the end. So the command line also remembers the signal, and long loops call
# ``checkpoint()`` between their items.
_interrupted = threading.Event()


def _on_sigint(signum, frame) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def remembered_interrupts():
    """While active (the main thread only; elsewhere it does nothing), Ctrl-C raises KeyboardInterrupt as usual
    and is also remembered for ``checkpoint``; the previous handler is restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:  # started with Ctrl-C ignored (nohup, a background job): leave it so
        yield
        return
    _interrupted.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupted.clear()


def checkpoint() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed since the command started, even if the exception it raised
    then was swallowed on the way."""
    if _interrupted.is_set():
        raise KeyboardInterrupt
