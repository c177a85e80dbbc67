from __future__ import annotations

import threading

import pytest

from cleancut.core.parallel import cores, map_threads


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
