"""The tools API's jobs and files: which jobs it answers for, the names it serves for each
(``{stem}_mask.png``, ``{stem}_original.png``, ``{stem}_nobg.{ext}``), their URLs, and effects
jobs over a cached matte."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from cleancut.api.compat.tools_settings import (
    META_KEY,
    mask_name,
    nobg_name,
    original_name,
    tools_meta,
)
from cleancut.api.compat.uuid_ids import as_uuid, job_id_of
from cleancut.core.types import Options
from cleancut.errors import InvalidInput, JobNotFound
from cleancut.jobs.model import CUTOUT, ORIGINAL, Job, JobStatus
from cleancut.jobs.service import JobService

DOWNLOAD = "/api/v1/download"


def check_name(filename: str) -> None:
    """Served names are plain ``{stem}_{kind}.{ext}``: anything with a path in it is refused
    before it is looked up (and a name is only ever a key into the job's own blobs)."""
    if (
        not filename
        or filename.startswith(".")
        or any(c in filename for c in "/\\\x00")
        or not filename.isprintable()
    ):
        raise InvalidInput("invalid file name")


def tools_job(service: JobService, job_id: str, owner: str | None) -> Job:
    """The job a tools id names (404 for other ids and for jobs the tools API did not make)."""
    own = job_id_of(job_id)
    job = service.get(own, owner) if own is not None else None
    if job is None or tools_meta(job.meta) is None:
        raise JobNotFound(f"job {job_id} not found")
    return job


def files(job: Job) -> dict[str, str]:
    """Served file name → blob name, for this job."""
    info = tools_meta(job.meta)
    if info is None or job.status is not JobStatus.SUCCEEDED:
        return {}
    filename = info["filename"]
    served = {original_name(filename): ORIGINAL}
    if info.get("kind") == "effects":
        served[nobg_name(filename, job.options.output.format)] = CUTOUT
    else:
        served[mask_name(filename)] = CUTOUT
    return served


def url(job: Job, name: str) -> str:
    return f"{DOWNLOAD}/{as_uuid(job.id)}/{quote(name)}"


def render_effects(
    service: JobService, parent: Job, options: Options, filename: str, owner: str | None
) -> Job:
    """An effects job over ``parent``'s matte (its refinement settings kept)."""
    info = tools_meta(parent.meta) or {}
    root = info.get("root") or parent.id
    meta = {META_KEY: {"kind": "effects", "filename": filename, "root": root}}
    options = replace(options, refine=parent.options.refine)
    return service.apply_effects(parent.id, options, owner, meta=meta)
