"""Job <-> database row (column name -> SQL value), shared by SQL-backed stores."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cleancut.jobs.codec import (
    options_from_json,
    options_to_json,
    webhook_from_json,
    webhook_to_json,
)
from cleancut.jobs.model import BlobRef, Delivery, Destination, Job, JobStatus

COLUMNS: tuple[str, ...] = (
    "id",
    "status",
    "owner",
    "idempotency_key",
    "parent_id",
    "source_url",
    "options",
    "webhook",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "expires_at",
    "attempts",
    "stage",
    "progress",
    "error_code",
    "error_message",
    "results",
    "timings",
    "deliveries",
    "destinations",
    "meta",
)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def results_to_sql(results: Mapping[str, BlobRef]) -> str:
    return _dump(
        {
            name: {
                "key": r.key,
                "media_type": r.media_type,
                "size": r.size,
                "etag": r.etag,
                "filename": r.filename,
            }
            for name, r in results.items()
        }
    )


def deliveries_to_sql(deliveries: tuple[Delivery, ...] | list[Delivery]) -> str:
    return _dump(
        [
            {
                "attempt": d.attempt,
                "at": d.at,
                "status_code": d.status_code,
                "error": d.error,
                "ok": d.ok,
                "duration": d.duration,
            }
            for d in deliveries
        ]
    )


def to_sql(name: str, value: Any) -> Any:
    """One field of a Job as the value stored in its column."""
    match name:
        case "status":
            return JobStatus(value).value
        case "options":
            return _dump(options_to_json(value))
        case "webhook":
            return None if value is None else _dump(webhook_to_json(value))
        case "results":
            return results_to_sql(value)
        case "timings":
            return _dump({k: float(v) for k, v in value.items()})
        case "deliveries":
            return deliveries_to_sql(value)
        case "destinations":
            return _dump([{"url": d.url, "blob": d.blob} for d in value])
        case "meta":
            return _dump(dict(value))
    return value


def job_to_row(job: Job) -> dict[str, Any]:
    return {name: to_sql(name, getattr(job, name)) for name in COLUMNS}


def job_from_row(row: Mapping[str, Any]) -> Job:
    webhook = row["webhook"]
    return Job(
        id=row["id"],
        status=JobStatus(row["status"]),
        options=options_from_json(json.loads(row["options"])),
        source_url=row["source_url"],
        owner=row["owner"],
        idempotency_key=row["idempotency_key"],
        webhook=None if webhook is None else webhook_from_json(json.loads(webhook)),
        parent_id=row["parent_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
        attempts=row["attempts"],
        stage=row["stage"],
        progress=row["progress"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        results={k: BlobRef(**v) for k, v in json.loads(row["results"]).items()},
        timings=json.loads(row["timings"]),
        deliveries=tuple(Delivery(**d) for d in json.loads(row["deliveries"])),
        destinations=tuple(Destination(**d) for d in json.loads(row["destinations"])),
        meta=json.loads(row["meta"]),
    )
