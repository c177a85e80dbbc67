"""The PostgreSQL job store: the JobStore contract, the claim/fence/heartbeat queries the
workers rely on, and the migrated schema itself."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import inspect, text

from cleancut.core.types import Background, Options
from cleancut.errors import JobConflict, JobNotFound, QueueFull
from cleancut.jobs.distributed import migrate
from cleancut.jobs.distributed.pgstore import PgJobStore
from cleancut.jobs.distributed.schema import jobs as jobs_table
from cleancut.jobs.model import BlobRef, Delivery, Destination, JobStatus
from cleancut.jobs.rows import COLUMNS
from cleancut.net import WebhookSpec
from tests.distributed.conftest import new_job

S = JobStatus


def test_migrated_schema_matches_the_tables_and_the_row_codec(store: PgJobStore) -> None:
    columns = {c["name"] for c in inspect(store.engine).get_columns("cleancut_jobs")}
    assert columns == {c.name for c in jobs_table.columns}
    assert set(COLUMNS) <= columns, "a column of jobs/rows.py needs an Alembic migration"
    indexes = {i["name"] for i in inspect(store.engine).get_indexes("cleancut_jobs")}
    assert {"cleancut_jobs_status_created", "cleancut_jobs_idempotency"} <= indexes
    migrate.check(store.engine)  # at head


def test_an_outdated_database_is_refused(store: PgJobStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE cleancut_alembic_version SET version_num = 'old'"))
    try:
        with pytest.raises(migrate.SchemaOutdated, match="cleancut db upgrade"):
            migrate.check(store.engine)
    finally:
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE cleancut_alembic_version SET version_num = :v"), {"v": migrate.head()}
            )


def test_full_job_round_trips(store: PgJobStore) -> None:
    job = replace(
        new_job(),
        options=Options(model="tiny", background=Background(kind="image", image=b"\x01\x02")),
        source_url="https://example.com/a.jpg",
        owner="key1",
        idempotency_key="idem",
        webhook=WebhookSpec("https://example.com/hook", "s3cret", max_attempts=2),
        results={"original": BlobRef("jobs/x/original", "image/png", 3, "ab", "x.png")},
        timings={"inference": 0.5},
        destinations=(Destination("https://example.com/put"),),
        meta={"vendor": {"a": [1, 2]}},
    )
    assert store.insert(job) == (job, True)
    assert store.get(job.id) == job
    assert store.find("key1", "idem") == job
    assert store.exists(job.id) and not store.exists("nope")


def test_idempotency_keys_are_per_owner_and_race_safely(store: PgJobStore) -> None:
    first, created = store.insert(new_job(owner="a", idempotency_key="k"))
    assert created
    again, created = store.insert(new_job(owner="a", idempotency_key="k"))
    assert (again.id, created) == (first.id, False)
    assert store.insert(new_job(owner="b", idempotency_key="k"))[1]
    assert store.insert(new_job(owner=None, idempotency_key="k"))[1]

    results: list[tuple[str, bool]] = []

    def submit() -> None:
        job, made = store.insert(new_job(owner="race", idempotency_key="same"))
        results.append((job.id, made))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(made for _, made in results) == 1
    assert len({job_id for job_id, _ in results}) == 1


def test_queue_bound_is_checked_atomically(store: PgJobStore) -> None:
    errors: list[Exception] = []

    def submit() -> None:
        try:
            store.insert(new_job(), max_queued=5)
        except QueueFull as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.counts()[S.QUEUED] == 5
    assert len(errors) == 7


def test_of_many_concurrent_claims_exactly_one_wins(store: PgJobStore) -> None:
    job, _ = store.insert(new_job())
    won: list[int] = []

    def claim() -> None:
        claimed = store.claim(job.id, 5.0, threading.current_thread().name)
        if claimed is not None:
            won.append(claimed.attempts)

    threads = [threading.Thread(target=claim) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert won == [1]
    got = store.get(job.id)
    assert got is not None and got.status is S.PROCESSING and got.started_at == 5.0
    assert store.claim(job.id, 6.0) is None  # not queued any more


def test_claim_next_takes_the_oldest_and_never_one_twice(store: PgJobStore) -> None:
    for n in range(20):
        store.insert(new_job(created_at=float(n)))
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def drain() -> None:
        while (job := store.claim_next(1.0)) is not None:
            with lock:
                seen[job.id] += 1

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 20 and set(seen.values()) == {1}


def test_transitions_follow_the_table(store: PgJobStore) -> None:
    job, _ = store.insert(new_job())
    with pytest.raises(JobConflict):
        store.transition(job.id, S.SUCCEEDED)
    with pytest.raises(JobConflict):
        store.transition(job.id, S.CANCELED, expect=S.PROCESSING)
    with pytest.raises(JobNotFound):
        store.transition("missing", S.CANCELED)
    with pytest.raises(ValueError, match="cannot change"):
        store.transition(job.id, S.CANCELED, owner="x")
    done = store.transition(job.id, S.CANCELED, finished_at=9.0)
    assert done.status is S.CANCELED and done.finished_at == 9.0


def test_a_fenced_run_cannot_settle_a_job_that_was_taken_over(store: PgJobStore) -> None:
    job, _ = store.insert(new_job())
    first = store.claim(job.id, 1.0, "w1")
    assert first is not None and first.attempts == 1
    mine = store.fenced(job.id, 1)
    assert mine.set_progress(job.id, "inference", 0.3) is S.PROCESSING
    # w1 goes silent; the reaper hands the job to w2
    later = time.time() + 100  # progress wrote a real-clock heartbeat
    assert store.requeue_stale(job.id, 1, before=later, now=later) is not None
    assert mine.set_progress(job.id, "inference", 0.5) is S.QUEUED
    second = store.claim(job.id, later + 1, "w2")
    assert second is not None and second.attempts == 2
    assert mine.set_progress(job.id, "refine", 0.8) is None  # no longer run 1's
    with pytest.raises(JobConflict, match="taken over"):
        mine.transition(job.id, S.SUCCEEDED, expect=S.PROCESSING)
    theirs = store.fenced(job.id, 2)
    assert theirs.transition(job.id, S.SUCCEEDED, expect=S.PROCESSING).status is S.SUCCEEDED
    assert store.worker_of(job.id) == "w2"


def test_heartbeats_keep_a_run_off_the_stale_list(store: PgJobStore) -> None:
    a, _ = store.insert(new_job())
    b, _ = store.insert(new_job())
    store.claim(a.id, 100.0, "w1")
    store.claim(b.id, 100.0, "w1")
    assert store.heartbeat({a.id: 1, b.id: 7}, 150.0) == 1  # b's attempt is not 7
    stale = store.stale_processing(before=120.0)
    assert [j.id for j in stale] == [b.id]
    assert store.requeue_stale(b.id, 1, before=120.0, now=151.0) is not None
    assert store.requeue_stale(b.id, 1, before=120.0, now=152.0) is None  # once
    back = store.get(b.id)
    assert back is not None and back.status is S.QUEUED and back.attempts == 1


def test_lost_messages_are_found_once_per_period(store: PgJobStore) -> None:
    job, _ = store.insert(new_job(created_at=100.0))
    assert [j.id for j in store.stale_queued(before=200.0)] == [job.id]
    assert store.mark_enqueued(job.id, before=200.0, now=300.0)
    assert not store.mark_enqueued(job.id, before=200.0, now=301.0)
    assert store.stale_queued(before=200.0) == []


def test_deliveries_expiry_listing_and_counts(store: PgJobStore) -> None:
    a, _ = store.insert(new_job(created_at=1.0, owner="me", expires_at=50.0))
    b, _ = store.insert(new_job(created_at=2.0, owner="me"))
    store.insert(new_job(created_at=3.0, owner="you"))
    store.transition(a.id, S.CANCELED)
    store.add_deliveries(a.id, [Delivery(1, 5.0, 500, None, False)], done=False)
    store.add_deliveries(a.id, [Delivery(2, 6.0, 200, None, True)], done=True)
    got = store.get(a.id)
    assert got is not None and [d.attempt for d in got.deliveries] == [1, 2]
    assert [j.id for j in store.expired(now=60.0)] == [a.id]
    assert [j.id for j in store.list_jobs(owner="me")] == [b.id, a.id]
    assert len(store.list_jobs(limit=2)) == 2
    assert [j.id for j in store.list_jobs(statuses=[S.CANCELED])] == [a.id]
    assert store.counts()[S.QUEUED] == 2 and store.counts()[S.CANCELED] == 1
    assert store.delete(a.id) and not store.delete(a.id)


def test_live_workers(store: PgJobStore) -> None:
    store.beat_worker("w1", ["ns.tiny"], 2, 1, now=100.0)
    store.beat_worker("w2", ["ns.tiny"], 1, 0, now=100.0)
    store.beat_worker("w1", ["ns.tiny"], 2, 2, now=110.0)
    assert store.live_workers(since=90.0) == (3, 2)
    assert store.live_workers(since=105.0) == (2, 2)
    store.remove_worker("w1")
    assert store.live_workers(since=0.0) == (1, 0)
    assert store.prune_workers(before=101.0) == 1
