"""Running independent pieces of one image's work on every core the process may use.

numpy and OpenCV release the GIL inside their loops, so plain threads share a job's
full-resolution work (PNG bands, refinement tiles) without copying the image. Inference
is not run here: the runtimes keep their own thread pools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_threads(
    fn: Callable[[T], R], items: Iterable[T], threads: int | None = None, *, name: str
) -> list[R]:
    """``[fn(x) for x in items]``, in order, spread over ``threads`` threads (default: every
    core). One item or one core runs inline: a pool would cost more than it saves."""
    work = list(items)
    workers = min(threads or cores(), len(work))
    if workers <= 1:
        return [fn(x) for x in work]
    with ThreadPoolExecutor(workers, thread_name_prefix=f"cleancut-{name}") as pool:
        return list(pool.map(fn, work))
