"""The embedded job store: one SQLite file in WAL mode, which is also the durable queue.

Writes go through one connection guarded by a lock (SQLite serialises writers anyway);
reads use one connection per thread, which WAL lets run beside a writer, so a status poll never
waits for another request's commit. Multi-statement changes run in ``BEGIN IMMEDIATE``
transactions (``synchronous=FULL``: a committed job survives a crash); claiming the
next job is a single ``UPDATE ... RETURNING``, so a job is never claimed twice, even by another
process sharing the file. The schema is versioned with ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cleancut.errors import InvalidOptions, JobConflict, JobNotFound, QueueFull
from cleancut.jobs.model import TERMINAL, Delivery, Job, JobStatus, check_transition
from cleancut.jobs.rows import COLUMNS, deliveries_to_sql, job_from_row, job_to_row, to_sql
from cleancut.jobs.store import MUTABLE_FIELDS

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        owner TEXT,
        idempotency_key TEXT,
        parent_id TEXT,
        source_url TEXT,
        options TEXT NOT NULL,
        webhook TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        expires_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        stage TEXT,
        progress REAL NOT NULL DEFAULT 0,
        error_code TEXT,
        error_message TEXT,
        results TEXT NOT NULL DEFAULT '{}',
        timings TEXT NOT NULL DEFAULT '{}',
        deliveries TEXT NOT NULL DEFAULT '[]',
        webhook_done INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_status_created ON jobs (status, created_at);
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE INDEX jobs_expires ON jobs (expires_at);
    CREATE INDEX jobs_owner_created ON jobs (owner, created_at);
    CREATE UNIQUE INDEX jobs_idempotency ON jobs (coalesce(owner, ''), idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    """,
    # v2: output destinations (uploads after success) and the submitter's metadata
    """
    ALTER TABLE jobs ADD COLUMN destinations TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"
_TERMINAL = tuple(s.value for s in TERMINAL)
_IN_TERMINAL = f"status IN ({', '.join('?' * len(_TERMINAL))})"


class SQLiteJobStore:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: dict[threading.Thread, sqlite3.Connection] = {}
        self._closed = False
        self._db = self._connect()
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: every SELECT sees the latest commit)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with self._lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("the job store is closed")
                # Thread pools retire idle threads: close what the dead ones left behind.
                for thread in [t for t in self._readers if not t.is_alive()]:
                    self._readers.pop(thread).close()
                db = self._connect()
                db.execute("PRAGMA query_only=ON")
                self._readers[threading.current_thread()] = db
            self._local.db = db
        return db

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise InvalidOptions(
                    f"{self.path} has job schema v{version}; this cleancut knows v{SCHEMA_VERSION}"
                )
            for script in _MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Job | None:
        row = self._reader().execute(sql, params).fetchone()
        return None if row is None else job_from_row(row)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Job]:
        rows = self._reader().execute(sql, params).fetchall()
        return [job_from_row(r) for r in rows]

    def insert(self, job: Job, *, max_queued: int | None = None) -> tuple[Job, bool]:
        row = job_to_row(job)
        with self._tx() as db:
            if job.idempotency_key is not None:
                found = db.execute(
                    f"{_SELECT} WHERE coalesce(owner, '') = ? AND idempotency_key = ?",
                    (job.owner or "", job.idempotency_key),
                ).fetchone()
                if found is not None:
                    return job_from_row(found), False
            if max_queued is not None and job.status is JobStatus.QUEUED:
                (queued,) = db.execute(
                    "SELECT count(*) FROM jobs WHERE status = ?", (JobStatus.QUEUED.value,)
                ).fetchone()
                if queued >= max_queued:
                    raise QueueFull(f"the queue is full ({queued} jobs waiting)")
            names = ", ".join(row)
            marks = ", ".join(f":{n}" for n in row)
            db.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", row)
        return job, True

    def get(self, job_id: str) -> Job | None:
        return self._one(f"{_SELECT} WHERE id = ?", (job_id,))

    def find(self, owner: str | None, idempotency_key: str) -> Job | None:
        return self._one(
            f"{_SELECT} WHERE coalesce(owner, '') = ? AND idempotency_key = ?",
            (owner or "", idempotency_key),
        )

    def list_jobs(
        self,
        owner: str | None = None,
        limit: int = 50,
        statuses: Sequence[JobStatus] | None = None,
    ) -> list[Job]:
        where, params = [], []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(JobStatus(s).value for s in statuses)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"{_SELECT}{clause} ORDER BY created_at DESC, rowid DESC LIMIT ?"
        return self._all(sql, [*params, max(0, int(limit))])

    def counts(self) -> dict[JobStatus, int]:
        sql = "SELECT status, count(*) FROM jobs GROUP BY status"
        rows = self._reader().execute(sql).fetchall()
        out = dict.fromkeys(JobStatus, 0)
        out.update({JobStatus(s): n for s, n in rows})
        return out

    def claim_next(self, now: float) -> Job | None:
        sql = f"""
            UPDATE jobs SET status = 'processing', attempts = attempts + 1, started_at = ?,
                updated_at = ?, stage = NULL, progress = 0
            WHERE status = 'queued' AND id = (
                SELECT id FROM jobs WHERE status = 'queued'
                ORDER BY created_at, rowid LIMIT 1)
            RETURNING {", ".join(COLUMNS)}"""
        with self._lock:
            row = self._db.execute(sql, (now, now)).fetchone()
        return None if row is None else job_from_row(row)

    def transition(
        self, job_id: str, to: JobStatus, *, expect: JobStatus | None = None, **changes: Any
    ) -> Job:
        if unknown := set(changes) - MUTABLE_FIELDS:
            raise ValueError(f"transition cannot change {sorted(unknown)}")
        to = JobStatus(to)
        with self._tx() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(f"no job {job_id}")
            current = JobStatus(row[0])
            if expect is not None and current is not expect:
                raise JobConflict(f"job {job_id} is {current.value}, not {expect.value}")
            check_transition(job_id, current, to)
            values = {k: to_sql(k, v) for k, v in changes.items()}
            values.update(status=to.value, updated_at=self._clock(), id=job_id)
            sets = ", ".join(f"{k} = :{k}" for k in values if k != "id")
            updated = db.execute(
                f"UPDATE jobs SET {sets} WHERE id = :id RETURNING {', '.join(COLUMNS)}", values
            ).fetchone()
        return job_from_row(updated)

    def set_progress(self, job_id: str, stage: str, progress: float) -> JobStatus | None:
        with self._lock:
            row = self._db.execute(
                "UPDATE jobs SET stage = ?, progress = ?, updated_at = ? "
                "WHERE id = ? AND status = 'processing' RETURNING status",
                (stage, float(progress), self._clock(), job_id),
            ).fetchone()
            if row is None:
                row = self._db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else JobStatus(row[0])

    def add_deliveries(self, job_id: str, deliveries: Sequence[Delivery], *, done: bool) -> None:
        with self._tx() as db:
            row = db.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            log = [*job_from_row(row).deliveries, *deliveries]
            db.execute(
                "UPDATE jobs SET deliveries = ?, webhook_done = ? WHERE id = ?",
                (deliveries_to_sql(log), int(done), job_id),
            )

    def pending_webhooks(self) -> list[Job]:
        return self._all(
            f"{_SELECT} WHERE webhook IS NOT NULL AND webhook_done = 0 AND {_IN_TERMINAL}"
            " ORDER BY finished_at",
            _TERMINAL,
        )

    def expired(self, now: float, limit: int = 100) -> list[Job]:
        return self._all(
            f"{_SELECT} WHERE expires_at <= ? AND {_IN_TERMINAL} ORDER BY expires_at LIMIT ?",
            (now, *_TERMINAL, limit),
        )

    def exists(self, job_id: str) -> bool:
        row = self._reader().execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is not None

    def delete(self, job_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for db in (*self._readers.values(), self._db):
                db.close()
            self._readers.clear()


__all__ = ["SCHEMA_VERSION", "SQLiteJobStore", "to_sql"]
