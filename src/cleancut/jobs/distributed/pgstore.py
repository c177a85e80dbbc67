"""The job store on PostgreSQL (SQLAlchemy 2 Core over psycopg 3): the ``JobStore`` Protocol,
plus what workers on many machines need (claiming one job by id, heartbeats, the reaper's
queries, the live-workers table).

Every status change is one transaction that locks the row (``SELECT ... FOR UPDATE``) and
checks ``TRANSITIONS``; claims are single conditional ``UPDATE ... WHERE status = 'queued'``
statements, so of two deliveries of the same job exactly one wins. A store made by
:meth:`PgJobStore.fenced` additionally requires the job's ``attempts`` to still be the run's
own number in ``transition`` and ``set_progress``: a run whose job was taken over after its
worker went silent can no longer settle it or report progress.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cleancut.errors import JobConflict, JobNotFound, QueueFull
from cleancut.jobs.model import TERMINAL, Delivery, Job, JobStatus, check_transition
from cleancut.jobs.rows import COLUMNS, deliveries_to_sql, job_from_row, job_to_row, to_sql
from cleancut.jobs.store import MUTABLE_FIELDS

from .schema import jobs, workers

_COLS = [jobs.c[name] for name in COLUMNS]
_TERMINAL = [s.value for s in TERMINAL]
_QUEUED, _PROCESSING = JobStatus.QUEUED.value, JobStatus.PROCESSING.value
#: pg_advisory_xact_lock key serialising inserts while the queue bound is checked
_INSERT_LOCK = 0x636C6E6374696E73


def _row(row: Row[Any]) -> Job:
    return job_from_row(cast("Mapping[str, Any]", row._mapping))


def _job(row: Row[Any] | None) -> Job | None:
    return None if row is None else _row(row)


class PgJobStore:
    def __init__(
        self, engine: Engine, *, clock: Callable[[], float] = time.time, owns_engine: bool = True
    ) -> None:
        self.engine = engine
        self._clock = clock
        self._owns_engine = owns_engine
        self._fence: tuple[str, int] | None = None

    def fenced(self, job_id: str, attempt: int) -> PgJobStore:
        """This store, but ``transition``/``set_progress`` of ``job_id`` only succeed while its
        ``attempts`` is ``attempt`` (one run's view; shares the engine, ``close`` is a no-op)."""
        view = copy.copy(self)
        view._fence = (job_id, attempt)
        view._owns_engine = False
        return view

    def _attempt(self, job_id: str) -> int | None:
        return self._fence[1] if self._fence is not None and self._fence[0] == job_id else None

    # -- the JobStore Protocol ---------------------------------------------------------------

    def insert(self, job: Job, *, max_queued: int | None = None) -> tuple[Job, bool]:
        row = job_to_row(job)
        if job.status is JobStatus.QUEUED:
            row["enqueued_at"] = job.created_at
        with self.engine.begin() as conn:
            if job.idempotency_key is not None:
                found = self._find(conn, job.owner, job.idempotency_key)
                if found is not None:
                    return found, False
            if max_queued is not None and job.status is JobStatus.QUEUED:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INSERT_LOCK})
                queued = conn.scalar(
                    select(func.count()).select_from(jobs).where(jobs.c.status == _QUEUED)
                )
                if (queued or 0) >= max_queued:
                    raise QueueFull(f"the queue is full ({queued} jobs waiting)")
            stmt = pg_insert(jobs).values(row).on_conflict_do_nothing().returning(jobs.c.id)
            if conn.execute(stmt).first() is not None:
                return job, True
            if job.idempotency_key is not None:  # a concurrent insert with the same key won
                found = self._find(conn, job.owner, job.idempotency_key)
                if found is not None:
                    return found, False
        raise JobConflict(f"job {job.id} already exists")

    def _find(self, conn: Connection, owner: str | None, key: str) -> Job | None:
        stmt = select(*_COLS).where(
            func.coalesce(jobs.c.owner, "") == (owner or ""), jobs.c.idempotency_key == key
        )
        return _job(conn.execute(stmt).first())

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            return _job(conn.execute(select(*_COLS).where(jobs.c.id == job_id)).first())

    def find(self, owner: str | None, idempotency_key: str) -> Job | None:
        with self.engine.connect() as conn:
            return self._find(conn, owner, idempotency_key)

    def list_jobs(
        self,
        owner: str | None = None,
        limit: int = 50,
        statuses: Sequence[JobStatus] | None = None,
    ) -> list[Job]:
        stmt = select(*_COLS)
        if owner is not None:
            stmt = stmt.where(jobs.c.owner == owner)
        if statuses:
            stmt = stmt.where(jobs.c.status.in_([JobStatus(s).value for s in statuses]))
        stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        stmt = stmt.limit(max(0, min(int(limit), 2**62)))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def counts(self) -> dict[JobStatus, int]:
        stmt = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        out = dict.fromkeys(JobStatus, 0)
        with self.engine.connect() as conn:
            out.update({JobStatus(s): int(n) for s, n in conn.execute(stmt)})
        return out

    def claim_next(self, now: float) -> Job | None:
        oldest = (
            select(jobs.c.id)
            .where(jobs.c.status == _QUEUED)
            .order_by(jobs.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        return self._claim(and_(jobs.c.id == oldest, jobs.c.status == _QUEUED), now, None)

    def transition(
        self, job_id: str, to: JobStatus, *, expect: JobStatus | None = None, **changes: Any
    ) -> Job:
        if unknown := set(changes) - MUTABLE_FIELDS:
            raise ValueError(f"transition cannot change {sorted(unknown)}")
        to = JobStatus(to)
        attempt = self._attempt(job_id)
        now = self._clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(jobs.c.status, jobs.c.attempts).where(jobs.c.id == job_id).with_for_update()
            ).first()
            if row is None:
                raise JobNotFound(f"no job {job_id}")
            current = JobStatus(row.status)
            if attempt is not None and row.attempts != attempt:
                raise JobConflict(f"job {job_id} was taken over (attempt {row.attempts})")
            if expect is not None and current is not expect:
                raise JobConflict(f"job {job_id} is {current.value}, not {expect.value}")
            check_transition(job_id, current, to)
            values = {k: to_sql(k, v) for k, v in changes.items()}
            values.update(status=to.value, updated_at=now)
            if to is JobStatus.QUEUED:
                values.update(enqueued_at=now, heartbeat_at=None, worker=None)
            stmt = update(jobs).where(jobs.c.id == job_id).values(values).returning(*_COLS)
            done = _job(conn.execute(stmt).first())
        assert done is not None
        return done

    def set_progress(self, job_id: str, stage: str, progress: float) -> JobStatus | None:
        attempt = self._attempt(job_id)
        now = self._clock()
        where = [jobs.c.id == job_id, jobs.c.status == _PROCESSING]
        if attempt is not None:
            where.append(jobs.c.attempts == attempt)
        stmt = (
            update(jobs)
            .where(*where)
            .values(stage=stage, progress=float(progress), updated_at=now, heartbeat_at=now)
            .returning(jobs.c.status)
        )
        with self.engine.begin() as conn:
            if conn.execute(stmt).first() is not None:
                return JobStatus.PROCESSING
            row = conn.execute(
                select(jobs.c.status, jobs.c.attempts).where(jobs.c.id == job_id)
            ).first()
        if row is None or (attempt is not None and row.attempts != attempt):
            return None  # gone, or no longer this run's
        return JobStatus(row.status)

    def add_deliveries(self, job_id: str, deliveries: Sequence[Delivery], *, done: bool) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(*_COLS).where(jobs.c.id == job_id).with_for_update()).first()
            if row is None:
                return
            log = [*_row(row).deliveries, *deliveries]
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(deliveries=deliveries_to_sql(log), webhook_done=done)
            )

    def pending_webhooks(self) -> list[Job]:
        stmt = (
            select(*_COLS)
            .where(
                jobs.c.webhook.is_not(None),
                jobs.c.webhook_done.is_(False),
                jobs.c.status.in_(_TERMINAL),
            )
            .order_by(jobs.c.finished_at)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def expired(self, now: float, limit: int = 100) -> list[Job]:
        stmt = (
            select(*_COLS)
            .where(jobs.c.expires_at <= now, jobs.c.status.in_(_TERMINAL))
            .order_by(jobs.c.expires_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def exists(self, job_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is not None

    def delete(self, job_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(jobs).where(jobs.c.id == job_id)).rowcount > 0

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    # -- workers on many machines ------------------------------------------------------------

    def _claim(self, where: Any, now: float, worker: str | None) -> Job | None:
        stmt = (
            update(jobs)
            .where(where)
            .values(
                status=_PROCESSING,
                attempts=jobs.c.attempts + 1,
                started_at=now,
                updated_at=now,
                heartbeat_at=now,
                worker=worker,
                stage=None,
                progress=0.0,
            )
            .returning(*_COLS)
        )
        with self.engine.begin() as conn:
            return _job(conn.execute(stmt).first())

    def claim(self, job_id: str, now: float, worker: str | None = None) -> Job | None:
        """Move ``job_id`` from queued to processing (attempts + 1); None when it is not
        queued (another delivery claimed it, or it was canceled or finished)."""
        return self._claim(and_(jobs.c.id == job_id, jobs.c.status == _QUEUED), now, worker)

    def owns(self, job_id: str, attempt: int) -> tuple[JobStatus, bool] | None:
        """(status, whether ``attempts`` is still ``attempt``), or None when the job is gone."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(jobs.c.status, jobs.c.attempts).where(jobs.c.id == job_id)
            ).first()
        return None if row is None else (JobStatus(row.status), row.attempts == attempt)

    def heartbeat(self, running: Mapping[str, int], now: float) -> int:
        """Mark the runs in ``running`` (job id → attempt) alive; returns how many still are."""
        alive = 0
        with self.engine.begin() as conn:
            for job_id, attempt in running.items():
                stmt = (
                    update(jobs)
                    .where(
                        jobs.c.id == job_id,
                        jobs.c.status == _PROCESSING,
                        jobs.c.attempts == attempt,
                    )
                    .values(heartbeat_at=now)
                )
                alive += conn.execute(stmt).rowcount
        return alive

    def stale_processing(self, before: float, limit: int = 100) -> list[Job]:
        """Processing jobs without a heartbeat since ``before`` (their worker went silent)."""
        return self._older(_PROCESSING, jobs.c.heartbeat_at, before, limit)

    def requeue_stale(self, job_id: str, attempt: int, before: float, now: float) -> Job | None:
        """Back to queued, if it is still run ``attempt`` and still silent since ``before``."""
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.status == _PROCESSING,
                jobs.c.attempts == attempt,
                jobs.c.heartbeat_at < before,
            )
            .values(
                status=_QUEUED,
                stage=None,
                progress=0.0,
                updated_at=now,
                enqueued_at=now,
                heartbeat_at=None,
                worker=None,
            )
            .returning(*_COLS)
        )
        with self.engine.begin() as conn:
            return _job(conn.execute(stmt).first())

    def stale_queued(self, before: float, limit: int = 500) -> list[Job]:
        """Queued jobs whose message was last published before ``before``."""
        return self._older(_QUEUED, jobs.c.enqueued_at, before, limit)

    def _older(self, status: str, column: Any, before: float, limit: int) -> list[Job]:
        """Jobs in ``status`` whose ``column`` is before ``before``, oldest first."""
        stmt = (
            select(*_COLS)
            .where(jobs.c.status == status, column < before)
            .order_by(column)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def mark_enqueued(self, job_id: str, before: float, now: float) -> bool:
        """Record a new publish of a queued job, unless someone else did since ``before``."""
        stmt = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == _QUEUED, jobs.c.enqueued_at < before)
            .values(enqueued_at=now)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount > 0

    def worker_of(self, job_id: str) -> str | None:
        with self.engine.connect() as conn:
            worker: str | None = conn.scalar(select(jobs.c.worker).where(jobs.c.id == job_id))
        return worker

    def beat_worker(
        self, name: str, queues: Sequence[str], concurrency: int, busy: int, now: float
    ) -> None:
        values = {
            "name": name,
            "queues": ",".join(queues),
            "concurrency": concurrency,
            "busy": busy,
            "started_at": now,
            "heartbeat_at": now,
        }
        stmt = pg_insert(workers).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[workers.c.name],
            set_={"busy": busy, "heartbeat_at": now, "concurrency": concurrency},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def remove_worker(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.name == name))

    def live_workers(self, since: float) -> tuple[int, int]:
        """(concurrency, busy) summed over workers with a heartbeat since ``since``."""
        stmt = select(
            func.coalesce(func.sum(workers.c.concurrency), 0),
            func.coalesce(func.sum(workers.c.busy), 0),
        ).where(workers.c.heartbeat_at >= since)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).one()
        return int(row[0]), int(row[1])

    def prune_workers(self, before: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(workers).where(workers.c.heartbeat_at < before)).rowcount

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
