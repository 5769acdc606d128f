"""Many videos, one model: decoding and face tracking in worker processes, model calls in this one.

``iter_verdicts(det, paths)`` yields one ``Verdict`` per path, in input order, as
``[det.predict_video(p) for p in paths]`` would, but faster on a batch: each worker process (spawned, with a
``FaceDetector`` of its own, made once) runs ``extract_windows`` on its next video and sends the windows back
in chunks of ``det.batch_size`` (numpy arrays through a pipe), while the main process scores the windows of
the video before it (``Detector.predict_windows``). A worker holds at most ``depth`` chunks it has cut and not
yet sent, so memory stays bounded however long a video is. While no worker has started yet (a second or more:
imports, the face detector) the main process cuts the first videos itself rather than wait.

The contract is predict's: a bad file is ``failed`` with the decoder's one-line reason; a worker that dies
(a segfault in a native library, the out-of-memory killer) makes its current video ``failed`` with a reason
that says so, and a new worker is started for the videos that were queued behind it; a bug is ``error``
(``internal error: Type: message``; the traceback names the worker's frames). Ctrl-C stops the run and its
workers (they ignore SIGINT themselves: the main process ends them, so no worker prints a traceback).

A verdict's ``seconds`` is the wall time the run spent on that video: from the moment the main process turned
to it (after yielding the verdict before it) to its verdict, so waiting for its windows plus scoring them.
Over a run they add up to the run's wall time (less the caller's own time between verdicts); with
``workers=0`` they are each video's decode-and-score time, as ``predict_video`` reports them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dfdetect.config import Config
    from dfdetect.predict import Detector, Verdict
    from dfdetect.windows import VideoSummary

# One worker beside the main process. On 2 shared cores (bench/predict.py --batch --workers 1,2, 50 clips, three
# interleaved runs each, load 7-9) two workers were not reliably faster (medians 10.6 s vs 10.2 s in one
# session, 11.4 s vs 12.5 s in the next) and took 9-12% more CPU and a second process's memory: the main
# process's model calls need a core of their own, and extract_windows already decodes in a thread beside face
# tracking.
DEFAULT_WORKERS = 1
QUEUED_PER_WORKER = 2  # videos handed to a worker ahead of time: it starts the next as soon as one is cut
START_TIMEOUT_S = 120.0  # a worker that has not started (imports, FaceDetector) by then is broken


@dataclass
class BatchStats:
    """Where a run's time went (filled in by ``iter_verdicts`` when passed one): ``wait_s`` the main process
    spent blocked waiting for windows from a worker, ``decode_s`` the workers spent cutting windows (summed
    over workers, each video from its first frame to its last window), ``respawns`` workers started again
    after one died, ``in_process`` videos the main process cut itself because no worker had started yet,
    ``per_video`` one ``(wait_s, decode_s)`` per video (zeros for those)."""

    videos: int = 0
    in_process: int = 0
    wait_s: float = 0.0
    decode_s: float = 0.0
    respawns: int = 0
    per_video: list[tuple[float, float]] = field(default_factory=list)


class WorkerDied(Exception):
    """A worker process ended without finishing its video (raised inside a video's windows as ``MediaError``
    so that the video is ``failed``, never here to a caller)."""


class _Fatal(BaseException):
    """A worker could not start (``args[0]`` says why). A BaseException, so that ``predict_windows``, which
    makes every Exception one video's ``error`` verdict, lets it through: the run cannot go on."""


class _RemoteTraceback(Exception):
    """The worker's traceback, chained as the cause of the exception re-raised in the main process."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------------------------------------

class _NativeLogFilter:
    """fd 2 of a worker through a pipe whose lines reach the real stderr less native log lines
    (``dfdetect.quiet.NATIVE_LINE``), for the worker's whole life. A worker imports no TensorFlow, so nothing
    initialises absl's logging there and MediaPipe's warnings ignore ``GLOG_minloglevel`` ("Logging before
    InitGoogle() is written to STDERR", then "Input tensor memory is not aligned ..." whenever a frame's buffer
    happens to be misaligned: seen from a worker of ``dfdetect predict``). Our own lines and tracebacks pass.
    Nothing is filtered with ``--verbose``."""

    def __init__(self) -> None:
        self.saved: int | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> _NativeLogFilter:
        from dfdetect.quiet import NATIVE_LINE, verbose

        if verbose():
            return self
        try:
            saved = os.dup(2)
        except OSError:
            return self  # no fd 2 to filter
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
        self.saved = saved
        out = os.dup(saved)  # the pump's own copy: stop() closes ``saved``

        def pump() -> None:
            with os.fdopen(r, "rb") as src, os.fdopen(out, "wb", buffering=0) as dst:
                for line in src:
                    if not NATIVE_LINE.match(line.decode("utf-8", "replace")):
                        dst.write(line)

        self.thread = threading.Thread(target=pump, name="dfdetect-batch-stderr", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """The real stderr back on fd 2, and every line written before this passed on."""
        if self.saved is None:
            return
        import sys

        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.saved, 2)  # closes the pipe's last write end: the pump reads to its end and stops
        os.close(self.saved)
        self.saved = None
        if self.thread is not None:
            self.thread.join(timeout=5)


def _worker_main(tasks, results, config: Config, chunk: int, depth: int, kill_in: str | None) -> None:
    """A worker's life: make its ``FaceDetector`` once, then cut the windows of each ``(index, path)`` that
    ``tasks`` brings, until ``None`` or the main process goes away. Messages on ``results``:
    ``("ready",)``, then per video ``("win", i, [Window, ...])`` chunks and one of ``("end", i, summary,
    seconds)``, ``("bad", i, summary, reason)``, ``("bug", i, summary, exception, traceback)``; or
    ``("fatal", exception, traceback)`` when the worker cannot start."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle (it ends us)
    logs = _NativeLogFilter().start()
    try:
        _serve(tasks, results, config, chunk, depth, kill_in)
    finally:
        logs.stop()


def _serve(tasks, results, config: Config, chunk: int, depth: int, kill_in: str | None) -> None:
    import queue

    out: queue.Queue = queue.Queue(maxsize=max(1, depth))
    broken = threading.Event()

    def send_all() -> None:
        # A thread of its own, so that cutting the next chunk goes on while this one waits for the main
        # process to take the last (a pipe holds only ~64 KB; a chunk is megabytes).
        while (msg := out.get()) is not None:
            if broken.is_set():
                continue  # drain, so that the cutting thread never blocks on a dead pipe
            try:
                results.send(msg)
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
                broken.set()  # the main process is gone: stop

    sender = threading.Thread(target=send_all, name="dfdetect-batch-send", daemon=True)
    sender.start()
    try:
        from dfdetect.faces import FaceDetector

        detector = FaceDetector(config.faces)
    except BaseException as e:  # noqa: BLE001 - reported to the main process, which ends the run
        out.put(("fatal", _picklable(e), traceback.format_exc()))
        out.put(None)
        sender.join()
        return
    out.put(("ready",))
    try:
        while not broken.is_set():
            try:
                task = tasks.recv()
            except (EOFError, OSError):
                break  # the main process is gone
            if task is None:
                break
            index, path = task
            _cut_one(index, path, config, detector, chunk, out, broken, kill_in)
    finally:
        out.put(None)
        sender.join()
        detector.close()


def _cut_one(index: int, path: str, config: Config, detector, chunk: int, out, broken: threading.Event,
             kill_in: str | None) -> None:
    """Cuts one video's windows into ``out`` (in chunks), then its summary or why it could not."""
    from dfdetect.media import MediaError
    from dfdetect.windows import VideoSummary, extract_windows

    summary = VideoSummary()
    t0 = time.perf_counter()
    batch: list = []
    try:
        for n, w in enumerate(extract_windows(path, config, detector, summary)):
            batch.append(w)
            if kill_in is not None and n == 1 and path.endswith(kill_in):
                # test hook: die mid-video, as the OOM killer would, once a first chunk is on its way
                out.put(("win", index, batch))
                while not out.empty():
                    time.sleep(0.01)
                os.kill(os.getpid(), signal.SIGKILL)
            if len(batch) >= chunk:
                out.put(("win", index, batch))
                batch = []
            if broken.is_set():
                return
        if batch:
            out.put(("win", index, batch))
        out.put(("end", index, summary, time.perf_counter() - t0))
    except MediaError as e:
        out.put(("bad", index, summary, str(e)))
    except Exception as e:  # noqa: BLE001 - a bug: the main process makes it an `error` verdict
        out.put(("bug", index, summary, _picklable(e), traceback.format_exc()))


def _picklable(e: BaseException) -> BaseException:
    """``e`` if it survives pickling (so the main process raises the same type), else a RuntimeError saying
    what it was."""
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any failure to pickle
        from dfdetect.errors import one_line

        return RuntimeError(one_line(e))


# ---------------------------------------------------------------------------------------------------------
# The main process
# ---------------------------------------------------------------------------------------------------------

def _exit_text(code: int | None) -> str:
    """How a process ended, in words: ``killed by SIGKILL``, ``exit code 1``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ": out of memory?" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


class _Worker:
    """One worker process as the main process sees it: its pipes and the videos queued on it, in order."""

    def __init__(self, ctx, config: Config, chunk: int, depth: int, kill_in: str | None) -> None:
        self.tasks_r, self.tasks = ctx.Pipe(duplex=False)
        self.results, self.results_w = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_worker_main, name="dfdetect-batch-worker", daemon=True,
                                args=(self.tasks_r, self.results_w, config, chunk, depth, kill_in))
        self.queued: deque[tuple[int, str]] = deque()
        self.ready = False
        self.started = time.monotonic()
        _start_ignoring_sigint(self.proc)
        # our copies of the worker's ends: without closing them its death would never read as end-of-file
        self.tasks_r.close()
        self.results_w.close()

    def give(self, index: int, path: str) -> None:
        self.queued.append((index, path))
        try:
            self.tasks.send((index, path))
        except (BrokenPipeError, OSError):
            pass  # it died: found out when its results are read, and the video goes to its successor

    def recv(self, stats: BatchStats | None) -> tuple:
        """The next message; raises ``WorkerDied`` once the worker has ended and its pipe is drained."""
        from multiprocessing.connection import wait

        t = time.perf_counter()
        try:
            while True:
                timeout = None if self.ready else max(0.0, START_TIMEOUT_S - (time.monotonic() - self.started))
                ready = wait([self.results, self.proc.sentinel], timeout=timeout)
                if not ready:
                    raise RuntimeError(f"a batch worker did not start within {START_TIMEOUT_S:g} s")
                if self.results in ready:
                    try:
                        msg = self.results.recv()
                    except (EOFError, OSError):
                        msg = None  # died, perhaps half-way through a message
                    if msg is not None:
                        if not self._started(msg):
                            return msg
                        continue
                self.proc.join(timeout=5)  # data would have been read first: it is gone
                self._check_died_starting()
                raise WorkerDied(_exit_text(self.proc.exitcode))
        finally:
            if stats is not None:
                stats.wait_s += time.perf_counter() - t

    def _started(self, msg: tuple) -> bool:
        """Takes a start-up message (True): ``ready``, or ``fatal`` (raises ``_Fatal``)."""
        if msg[0] == "ready":
            self.ready = True
            return True
        if msg[0] == "fatal":
            err = RuntimeError(f"a batch worker could not start: {_one_line(msg[1])}")
            err.__cause__ = _RemoteTraceback(msg[2])
            raise _Fatal(err)
        return False

    def _check_died_starting(self) -> None:
        if not self.ready:
            raise _Fatal(RuntimeError(f"a batch worker died while starting ({_exit_text(self.proc.exitcode)})"))

    def poll_ready(self) -> bool:
        """Whether the worker has started (its ``FaceDetector`` made), without waiting."""
        if not self.ready:
            try:
                while not self.ready and self.results.poll(0):
                    self._started(self.results.recv())  # nothing but start-up messages before "ready"
            except (EOFError, OSError):
                self.proc.join(timeout=5)
                self._check_died_starting()
            if not self.ready and not self.proc.is_alive():
                self._check_died_starting()
        return self.ready

    def wait_ready(self) -> None:
        """Blocks until the worker has started."""
        from multiprocessing.connection import wait

        while not self.poll_ready():
            wait([self.results, self.proc.sentinel], timeout=1.0)
            if time.monotonic() - self.started > START_TIMEOUT_S:
                raise RuntimeError(f"a batch worker did not start within {START_TIMEOUT_S:g} s")

    def stop(self, now: bool) -> None:
        """Ends the worker: asks it to finish (``now`` False) or terminates it (Ctrl-C, an early stop)."""
        try:
            self.tasks.send(None)
        except (BrokenPipeError, OSError):
            pass
        if not now:
            self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        for conn in (self.tasks, self.results):
            conn.close()


def _start_ignoring_sigint(proc) -> None:
    """Starts ``proc`` with SIGINT ignored from its first instruction (a disposition inherited through exec),
    so that a Ctrl-C while it imports prints no traceback in it; the main process handles Ctrl-C and ends it.
    Only the main thread may change a handler: elsewhere the worker ignores SIGINT once it runs."""
    if threading.current_thread() is not threading.main_thread():
        proc.start()
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc.start()
    finally:
        signal.signal(signal.SIGINT, old)


def _copy_summary(dst: VideoSummary, src: VideoSummary) -> None:
    for f in fields(src):
        setattr(dst, f.name, getattr(src, f.name))


def iter_verdicts(det: Detector, paths: Iterable[str | Path], workers: int | None = None, depth: int = 4,
                  stats: BatchStats | None = None, main_decodes: bool = True,
                  _kill_in: str | None = None) -> Iterator[Verdict]:
    """Yields ``det``'s verdict on each of ``paths``, in order, decoding in ``workers`` processes.

    Args:
        det: a loaded ``Detector``; its model runs in this process only.
        paths: the videos.
        workers: worker processes that decode and track faces (default ``DEFAULT_WORKERS``, never more than
            there are videos); 0 = everything in this process, one video after another (``predict_video``).
        depth: chunks of ``det.batch_size`` windows a worker may hold cut and unsent (bounds its memory).
        stats: filled in with where the time went (``BatchStats``).
        main_decodes: while no worker has started (the first second or two of a run, or after one died),
            this process cuts the next video's windows itself instead of waiting; False: it waits.
        _kill_in: test hook: a worker kills itself (SIGKILL) after the first window of a video whose path ends
            with this, as the out-of-memory killer would.

    Close the iterator (``contextlib.closing``) when stopping before the end, so the workers end at once.
    """
    paths = [str(p) for p in paths]
    workers = DEFAULT_WORKERS if workers is None else workers
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    stats = stats if stats is not None else BatchStats()
    if workers == 0 or not paths:
        for p in paths:
            stats.videos += 1
            yield det.predict_video(p)
        return
    yield from _overlapped(det, paths, min(workers, len(paths)), depth, stats, main_decodes, _kill_in)


def _overlapped(det: Detector, paths: list[str], n: int, depth: int, stats: BatchStats, main_decodes: bool,
                kill_in: str | None) -> Iterator[Verdict]:
    import multiprocessing as mp

    from dfdetect.media import MediaError
    from dfdetect.windows import VideoSummary

    ctx = mp.get_context("spawn")  # TensorFlow and MediaPipe are not fork-safe
    config = det.scan_config()
    chunk = max(1, int(getattr(det, "batch_size", 8)))

    def spawn() -> _Worker:
        return _Worker(ctx, config, chunk, depth, kill_in)

    slots: list[_Worker] = []
    finished = False
    try:
        slots = [spawn() for _ in range(n)]
        owner: dict[int, int] = {}  # video index -> slot
        pending = list(range(len(paths)))  # not handed out yet, in order

        def hand_out() -> None:
            # in order, to the started worker with the fewest queued, each QUEUED_PER_WORKER videos ahead; a
            # video leaves its worker's queue once the main process has read all of it
            while pending:
                ready = [k for k, w in enumerate(slots) if w.poll_ready() and len(w.queued) < QUEUED_PER_WORKER]
                if not ready:
                    return
                k = min(ready, key=lambda k: len(slots[k].queued))
                i = pending.pop(0)
                slots[k].give(i, paths[i])
                owner[i] = k

        def end_if_last(i: int) -> bool:
            # all read: end the workers before the last verdict, which a caller (zip with a progress bar,
            # say) may never ask past
            if i < len(paths) - 1:
                return False
            for slot in slots:
                slot.stop(now=False)
            slots.clear()
            return True

        for i, path in enumerate(paths):
            hand_out()
            t_turn = time.time()
            if i not in owner and main_decodes:
                # no worker has started (start-up, or a respawn): this process cuts the video's windows
                # itself rather than wait, which is what running serially would have done
                pending.remove(i)
                stats.videos += 1
                stats.in_process += 1
                stats.per_video.append((0.0, 0.0))
                v = det.predict_video(path)
                finished = end_if_last(i)
                yield v
                continue
            while i not in owner:  # main_decodes=False: wait for a worker to start
                slots[min(range(n), key=lambda k: slots[k].ready)].wait_ready()
                hand_out()
            s = owner[i]
            summary = VideoSummary()
            state: dict[str, Any] = {"decode_s": 0.0, "wait_s": stats.wait_s}

            def windows(i: int = i, s: int = s, summary: VideoSummary = summary,
                        state: dict[str, Any] = state) -> Iterator:
                while True:
                    try:
                        msg = slots[s].recv(stats)
                    except WorkerDied as e:
                        state["died"] = True
                        raise MediaError(f"the worker process decoding this file died ({e}); the run went "
                                         "on with a new one") from None
                    kind, idx = msg[0], msg[1]
                    if idx != i:  # the protocol is in order; anything else is a bug here
                        raise RuntimeError(f"batch worker sent video {idx} while video {i} was expected")
                    if kind == "win":
                        yield from msg[2]
                        continue
                    _copy_summary(summary, msg[2])
                    state["done"] = True
                    if kind == "end":
                        state["decode_s"] = msg[3]
                        return
                    if kind == "bad":
                        raise MediaError(msg[3])
                    raise msg[3] from _RemoteTraceback(msg[4])  # "bug": the worker's own exception

            it = windows()
            try:
                v = det.predict_windows(path, it, summary, t0=t_turn)
            except _Fatal as e:
                raise e.args[0] from e.args[0].__cause__
            if not state.get("done") and not state.get("died"):
                # predict_windows stopped reading early (an exception of its own): read the rest of this
                # video's messages, so the next video starts at its own first message
                try:
                    for _ in it:
                        pass
                except Exception:  # noqa: BLE001 - the verdict already says what went wrong
                    pass
            it.close()
            slot = slots[s]
            if slot.queued and slot.queued[0][0] == i:
                slot.queued.popleft()
            if state.get("died"):
                stats.respawns += 1
                # queued behind the culprit: not their fault; handed out again (this process takes them while
                # the new worker starts)
                for idx, _ in slot.queued:
                    del owner[idx]
                    pending.append(idx)
                pending.sort()
                slot.stop(now=True)
                slots[s] = spawn()
            stats.videos += 1
            stats.decode_s += state["decode_s"]
            stats.per_video.append((stats.wait_s - state["wait_s"], state["decode_s"]))
            finished = end_if_last(i)
            yield v
    finally:
        for slot in slots:
            slot.stop(now=not finished)


def _one_line(e: BaseException) -> str:
    from dfdetect.errors import one_line

    return one_line(e)
