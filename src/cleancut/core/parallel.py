"""Running independent pieces of one image's work on every core the process may use.

numpy and OpenCV release the GIL inside their loops, so plain threads share a job's
full-resolution work (PNG bands, refinement tiles) without copying the image. Inference
is not run here: the runtimes keep their own thread pools.

A process that runs several jobs at once gives each job its share of the cores
(``budget``, ``share``): the other jobs keep the remaining cores busy anyway, and splitting
one image's work across threads costs CPU of its own (at 12 MP, refinement on two
threads took 232 ms of CPU against 174 on one, for 159 ms of wall time against 171;
docs/benchmarks.md, "Server").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Threads one image's work may use in the current context (None: every core).
_budget: ContextVar[int | None] = ContextVar("cleancut_parallel_budget", default=None)


def cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share(jobs: int) -> int | None:
    """Threads each of ``jobs`` concurrent jobs should use: None (every core) for one job,
    else an equal share of the cores, at least one."""
    return None if jobs <= 1 else max(1, cores() // jobs)


@contextmanager
def budget(threads: int | None) -> Iterator[None]:
    """Within this block (this thread's context), ``map_threads`` uses at most ``threads``
    threads unless told otherwise; None lifts the limit."""
    if threads is not None and threads < 1:
        raise ValueError(f"a thread budget must be at least 1, got {threads}")
    token = _budget.set(threads)
    try:
        yield
    finally:
        _budget.reset(token)


def library_threads(threads: int | None) -> int:
    """Set OpenCV's own thread pool (process-wide) to ``threads`` (None: its default, every
    core); returns the previous setting, for restoring it."""
    import cv2

    previous = int(cv2.getNumThreads())
    cv2.setNumThreads(-1 if threads is None else threads)
    return previous


def map_threads(
    fn: Callable[[T], R], items: Iterable[T], threads: int | None = None, *, name: str
) -> list[R]:
    """``[fn(x) for x in items]``, in order, spread over ``threads`` threads (default: the
    context's ``budget``, else every core). One item or one thread runs inline: a pool
    would cost more than it saves."""
    work = list(items)
    workers = min(threads or _budget.get() or cores(), len(work))
    if workers <= 1:
        return [fn(x) for x in work]
    with ThreadPoolExecutor(workers, thread_name_prefix=f"cleancut-{name}") as pool:
        return list(pool.map(fn, work))
