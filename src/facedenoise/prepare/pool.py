"""The worker pool: processes that examine candidates, end with their parent, and stop at once.

Workers ignore Ctrl-C (the main process decides), are killed by the kernel when the main
process dies, even by `kill -9` (Linux: PR_SET_PDEATHSIG; elsewhere a thread polls the parent),
and `stop()` terminates them instead of waiting for work nobody needs any more.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from itertools import islice

from facedenoise.prepare.worker import Context, Examined, Job, examine_batch, set_context

BATCH = 8  # candidates per pool task: amortises inter-process overhead
BATCHES_PER_WORKER = 4  # tasks in flight per worker: keeps workers busy, memory bounded
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PARENT_POLL_SECONDS = 1.0


class InProcessPool:
    """The pool interface, run in the calling process (workers=1): no start-up cost."""

    def __init__(self, context: Context):
        set_context(context)

    def submit(self, function, *args) -> Future:
        future = Future()
        future.set_result(function(*args))
        return future

    def stop(self) -> None:
        """Nothing runs in the background."""


class ProcessPool:
    """`workers` processes started with "spawn" (the caller may hold threads: TensorFlow,
    rich's refresh thread), each given `context` once."""

    def __init__(self, workers: int, context: Context):
        import multiprocessing

        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(context, os.getpid()),
        )

    def submit(self, function, *args) -> Future:
        return self._executor.submit(function, *args)

    def stop(self) -> None:
        """End the workers now, abandoning what they run, and wait until they are gone."""
        with _quiet_abandoned_futures():
            terminate = getattr(self._executor, "terminate_workers", None)  # Python >= 3.14
            if terminate is not None:
                terminate()
            else:  # the executor's own table of its processes: no public way before 3.14
                for process in list((getattr(self._executor, "_processes", None) or {}).values()):
                    with contextlib.suppress(OSError, ValueError):
                        process.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _quiet_abandoned_futures():
    """Silence one known race while the workers are stopped: the executor's manager thread,
    seeing them terminated, marks every pending future failed, and on Python 3.11 raises
    InvalidStateError for those already cancelled (by `in_order` or the shutdown), printing a
    thread traceback after Ctrl-C. Their results were abandoned anyway; other errors pass."""
    previous = threading.excepthook

    def hook(args) -> None:
        if args.exc_type is not None and issubclass(args.exc_type, InvalidStateError):
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


def start_pool(workers: int, context: Context) -> InProcessPool | ProcessPool:
    """A pool of `workers` processes (1: the calling process itself)."""
    return InProcessPool(context) if workers == 1 else ProcessPool(workers, context)


def _init_worker(context: Context, parent_pid: int) -> None:
    import cv2

    _die_with_parent(parent_pid)
    set_context(context)
    # Ctrl-C is the main process's to handle; workers just get stopped.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)  # one process per core already
    # A hostile file's problems are reported in the manifest; warnings printed by a worker
    # would only scramble the progress bar.
    warnings.simplefilter("ignore")


def _die_with_parent(parent_pid: int) -> None:
    """Make this process end when `parent_pid` dies, however it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # it died before the request took effect
                    os._exit(1)
                return
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)  # orphaned: nobody will read our results


def in_order(pool, jobs: Iterator[Job], workers: int) -> Iterator[Examined]:
    """Examine `jobs` in the pool, yielding results in job order with bounded look-ahead.

    Closing the iterator early cancels what has not started; `pool.stop()` ends the rest.
    """
    pending: deque[Future] = deque()
    try:
        while True:
            while len(pending) < workers * BATCHES_PER_WORKER:
                batch = list(islice(jobs, BATCH))
                if not batch:
                    break
                pending.append(pool.submit(examine_batch, batch))
            if not pending:
                return
            yield from pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
