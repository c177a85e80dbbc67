"""Job ids written as UUIDs, for vendor APIs whose ids are UUIDs (both are 128 random bits)."""

from __future__ import annotations

import uuid


def as_uuid(job_id: str) -> str:
    """``3fa85f64...`` (32 hex digits) as ``3fa85f64-5717-4562-b3fc-2c963f66afa6``."""
    return str(uuid.UUID(hex=job_id))


def job_id_of(text: str) -> str | None:
    """The job id a UUID names (any spelling ``uuid.UUID`` takes), or None for other text."""
    if len(text) > 64:
        return None
    try:
        return uuid.UUID(text).hex
    except ValueError:
        return None
