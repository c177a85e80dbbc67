from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cleancut.core.types import Background, Options
from cleancut.errors import InvalidOptions, JobConflict, JobNotFound, QueueFull
from cleancut.jobs.model import BlobRef, Delivery, Destination, Job, JobStatus
from cleancut.jobs.sqlite import SCHEMA_VERSION, SQLiteJobStore
from cleancut.net import WebhookSpec

S = JobStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteJobStore]:
    s = SQLiteJobStore(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


def job(n: int | str = 1, status: JobStatus = S.QUEUED, **kw: Any) -> Job:
    return Job(
        id=f"job{n}",
        status=status,
        options=Options(model="tiny"),
        source_url=None,
        owner=kw.pop("owner", None),
        idempotency_key=kw.pop("idempotency_key", None),
        webhook=None,
        parent_id=None,
        created_at=kw.pop("created_at", float(n) if isinstance(n, int) else 1.0),
        updated_at=1.0,
        started_at=None,
        finished_at=None,
        expires_at=kw.pop("expires_at", 1000.0),
        **kw,
    )


def test_full_job_round_trips(store: SQLiteJobStore) -> None:
    original = replace(
        job(),
        options=Options(model="tiny", background=Background(kind="image", image=b"\x01\x02")),
        source_url="https://example.com/a.jpg",
        owner="key1",
        idempotency_key="idem",
        webhook=WebhookSpec("https://example.com/hook", "s3cret", max_attempts=2),
        parent_id="parent",
        started_at=2.0,
        finished_at=3.0,
        attempts=2,
        stage="inference",
        progress=0.5,
        error_code="x",
        error_message="y",
        results={"cutout": BlobRef("jobs/job1/cutout", "image/png", 3, "etag", "job1.png")},
        timings={"total": 1.5},
        deliveries=(Delivery(1, 5.0, 500, None, False, 0.1), Delivery(2, 6.0, None, "e", False)),
        destinations=(Destination("https://b.example/o?sig=1"), Destination("https://c/m", "mask")),
        meta={"vendor": "x", "echo": {"n": [1, 2.5, None, True]}},
    )
    assert store.insert(original) == (original, True)
    assert store.get("job1") == original
    assert store.get("nope") is None


def test_idempotency_key_is_unique_per_owner(store: SQLiteJobStore) -> None:
    first, created = store.insert(job(1, owner="a", idempotency_key="k"))
    assert created
    again, created = store.insert(job(2, owner="a", idempotency_key="k"))
    assert (again.id, created) == ("job1", False)
    assert store.insert(job(3, owner="b", idempotency_key="k"))[1]  # another owner
    assert store.insert(job(4, idempotency_key="k"))[1]  # no owner (auth off)
    assert store.insert(job(5, idempotency_key="k"))[0].id == "job4"
    assert store.find("a", "k") == first
    assert store.find(None, "k") is not None
    assert store.find("c", "k") is None
    with pytest.raises(sqlite3.IntegrityError):  # the index itself enforces it
        store._db.execute("UPDATE jobs SET owner='a', idempotency_key='k' WHERE id='job3'")


def test_insert_refuses_beyond_the_queue_bound(store: SQLiteJobStore) -> None:
    store.insert(job(1), max_queued=2)
    store.insert(job(2), max_queued=2)
    with pytest.raises(QueueFull):
        store.insert(job(3), max_queued=2)
    store.insert(job(4, S.SUCCEEDED), max_queued=2)  # finished records are not queued
    assert store.counts()[S.QUEUED] == 2


def test_claim_takes_the_oldest_and_counts_attempts(store: SQLiteJobStore) -> None:
    store.insert(job(2))
    store.insert(job(1))
    claimed = store.claim_next(now=50.0)
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.attempts, claimed.started_at) == (
        "job1",
        S.PROCESSING,
        1,
        50.0,
    )
    assert store.claim_next(51.0).id == "job2"  # type: ignore[union-attr]
    assert store.claim_next(52.0) is None


@pytest.mark.parametrize("stores", [1, 3])
def test_concurrent_claims_take_every_job_exactly_once(tmp_path: Path, stores: int) -> None:
    """Many threads (sharing one store, or over several connections to the same file)."""
    opened = [SQLiteJobStore(tmp_path / "shared.sqlite3") for _ in range(stores)]
    try:
        for n in range(300):
            opened[0].insert(job(n))
        claims: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(12)

        def worker(i: int) -> None:
            s = opened[i % stores]
            start.wait()
            while (claimed := s.claim_next(0.0)) is not None:
                with lock:
                    claims.append(claimed.id)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counts = Counter(claims)
        assert len(counts) == 300
        assert max(counts.values()) == 1
        assert opened[0].counts()[S.PROCESSING] == 300
    finally:
        for s in opened:
            s.close()


def test_transition_checks_the_table_and_the_expected_status(store: SQLiteJobStore) -> None:
    store.insert(job())
    with pytest.raises(JobConflict):
        store.transition("job1", S.SUCCEEDED)
    with pytest.raises(JobConflict, match="not processing"):
        store.transition("job1", S.CANCELED, expect=S.PROCESSING)
    with pytest.raises(JobNotFound):
        store.transition("nope", S.CANCELED)
    with pytest.raises(ValueError, match="cannot change"):
        store.transition("job1", S.CANCELED, owner="x")
    done = store.transition("job1", S.CANCELED, finished_at=9.0, error_code=None)
    assert (done.status, done.finished_at) == (S.CANCELED, 9.0)
    with pytest.raises(JobConflict):
        store.transition("job1", S.QUEUED)


def test_progress_is_only_recorded_while_processing(store: SQLiteJobStore) -> None:
    store.insert(job())
    assert store.set_progress("job1", "decode", 0.1) is S.QUEUED
    store.claim_next(0.0)
    assert store.set_progress("job1", "inference", 0.5) is S.PROCESSING
    assert (store.get("job1").stage, store.get("job1").progress) == ("inference", 0.5)  # type: ignore[union-attr]
    store.transition("job1", S.CANCELED)
    assert store.set_progress("job1", "refine", 0.8) is S.CANCELED
    assert store.get("job1").progress == 0.5  # type: ignore[union-attr]
    assert store.set_progress("nope", "x", 0.0) is None


def test_list_counts_and_expiry(store: SQLiteJobStore) -> None:
    store.insert(job(1, owner="a", expires_at=5.0))
    store.insert(job(2, owner="b", expires_at=5.0))
    store.insert(job(3, owner="a", expires_at=50.0))
    assert [j.id for j in store.list_jobs()] == ["job3", "job2", "job1"]
    assert [j.id for j in store.list_jobs(owner="a", limit=1)] == ["job3"]
    assert store.list_jobs(statuses=[S.FAILED]) == []
    store.transition("job1", S.CANCELED)
    store.transition("job3", S.CANCELED)
    # job2 has expired too but is still queued: only finished jobs expire
    assert [j.id for j in store.expired(now=10.0)] == ["job1"]
    assert store.counts() == {
        S.QUEUED: 1,
        S.PROCESSING: 0,
        S.SUCCEEDED: 0,
        S.FAILED: 0,
        S.CANCELED: 2,
    }
    assert store.delete("job1") and not store.exists("job1")
    assert not store.delete("job1")


def test_webhook_log_and_pending_deliveries(store: SQLiteJobStore) -> None:
    hook = WebhookSpec("https://example.com/h", "s")
    store.insert(replace(job(1), webhook=hook))
    store.insert(job(2))
    assert store.pending_webhooks() == []  # not finished yet
    store.transition("job1", S.CANCELED)
    store.transition("job2", S.CANCELED)
    assert [j.id for j in store.pending_webhooks()] == ["job1"]
    store.add_deliveries("job1", [Delivery(1, 1.0, 503, None, False)], done=False)
    store.add_deliveries("job1", [Delivery(2, 2.0, 200, None, True)], done=True)
    assert [d.attempt for d in store.get("job1").deliveries] == [1, 2]  # type: ignore[union-attr]
    assert store.pending_webhooks() == []
    store.add_deliveries("gone", [], done=True)  # a deleted job is not an error


def test_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    SQLiteJobStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"jobs_status_created", "jobs_created", "jobs_expires", "jobs_idempotency"} <= indexes
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(InvalidOptions, match="schema"):
        SQLiteJobStore(path)


def test_reads_use_per_thread_connections_that_die_with_their_threads(
    store: SQLiteJobStore,
) -> None:
    store.insert(job(1))

    def read() -> None:
        assert store.get("job1") is not None

    for _ in range(5):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    read()
    assert len(store._readers) <= 2  # this thread's, and at most the last dead one's
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        read()
