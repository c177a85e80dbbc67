from __future__ import annotations

import threading

import cv2
import pytest

from cleancut.core import parallel
from cleancut.core.parallel import budget, cores, library_threads, map_threads, share


def test_map_threads_keeps_order_and_uses_threads() -> None:
    seen: set[str] = set()

    def work(x: int) -> int:
        seen.add(threading.current_thread().name)
        return x * x

    assert map_threads(work, range(50), 2, name="t") == [x * x for x in range(50)]
    assert all(name.startswith("cleancut-t") for name in seen)
    assert cores() >= 1


def test_one_thread_or_one_item_runs_inline_and_errors_propagate() -> None:
    main = threading.current_thread().name
    assert map_threads(lambda _: threading.current_thread().name, [1], 4, name="t") == [main]
    assert map_threads(lambda _: threading.current_thread().name, [1, 2], 1, name="t") == [main] * 2

    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="bad"):
        map_threads(boom, [1, 2, 3], 2, name="t")


def _threads_used(n: int = 40) -> int:
    names: set[str] = set()
    barrier_free = threading.Lock()

    def work(_: int) -> None:
        with barrier_free:
            names.add(threading.current_thread().name)

    map_threads(work, range(n), name="b")
    return len(names)


def test_a_budget_limits_map_threads_in_its_context_only() -> None:
    with budget(1):
        assert _threads_used() == 1  # inline, on the caller's thread
        with budget(None):
            # None lifts the limit again; each item may land on any pool thread
            assert map_threads(lambda x: x + 1, range(8), name="b") == list(range(1, 9))
        assert _threads_used() == 1
        # an explicit count still wins over the budget
        assert map_threads(lambda x: x, range(8), 2, name="b") == list(range(8))
        # another thread does not inherit this thread's budget
        seen: list[int | None] = []
        t = threading.Thread(target=lambda: seen.append(parallel._budget.get()))
        t.start()
        t.join()
        assert seen == [None]
    assert parallel._budget.get() is None
    with pytest.raises(ValueError, match="at least 1"), budget(0):
        pass


def test_share_splits_the_cores_among_concurrent_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "cores", lambda: 8)
    assert share(1) is None
    assert share(2) == 4
    assert share(3) == 2
    assert share(16) == 1


def test_library_threads_sets_and_restores_opencv() -> None:
    before = cv2.getNumThreads()
    previous = library_threads(1)
    try:
        assert previous == before
        assert cv2.getNumThreads() == 1
    finally:
        library_threads(previous)
    assert cv2.getNumThreads() == before
