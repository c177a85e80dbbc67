"""Latency bookkeeping for ``JobService.stats()`` (Prometheus-shaped histograms)."""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from dataclasses import dataclass

#: the pipeline stages whose times each succeeded job reports (``Job.timings``)
STAGES: tuple[str, ...] = ("decode", "inference", "refine", "encode")
BOUNDS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, math.inf)


@dataclass(frozen=True)
class Histogram:
    """A cumulative histogram in Prometheus' shape: ``counts[i]`` observations <= ``bounds[i]``
    (the last bound is ``inf``), their ``sum`` and ``count``."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float
    count: int


class Recorder:
    """Thread-safe histogram plus the most recent samples."""

    def __init__(self, bounds: tuple[float, ...] = BOUNDS, recent: int = 1000) -> None:
        self._bounds = bounds
        self._buckets = [0] * len(bounds)
        self._sum = 0.0
        self._count = 0
        self._recent: deque[float] = deque(maxlen=recent)
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        with self._lock:
            self._buckets[bisect.bisect_left(self._bounds, seconds)] += 1
            self._sum += seconds
            self._count += 1
            self._recent.append(seconds)

    def histogram(self) -> Histogram:
        with self._lock:
            cumulative, total = [], 0
            for n in self._buckets:
                total += n
                cumulative.append(total)
            return Histogram(self._bounds, tuple(cumulative), self._sum, self._count)

    def recent(self) -> tuple[float, ...]:
        with self._lock:
            return tuple(self._recent)

    def mean(self, default: float) -> float:
        with self._lock:
            return sum(self._recent) / len(self._recent) if self._recent else default
