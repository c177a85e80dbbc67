from __future__ import annotations

import json
from typing import Any

import pytest

from cleancut.core.types import Background, Layout, Length, Options, OutputSpec, Shadow
from cleancut.errors import InvalidOptions, JobConflict
from cleancut.jobs.codec import (
    options_from_json,
    options_to_json,
    webhook_from_json,
    webhook_to_json,
)
from cleancut.jobs.model import (
    TERMINAL,
    TRANSITIONS,
    BlobRef,
    JobEvent,
    JobStatus,
    can_transition,
    check_transition,
    new_job_id,
)
from cleancut.net import WebhookSpec
from tests.jobs.records import job_record

S = JobStatus


def test_terminal_states_have_no_way_out() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELED} == TERMINAL
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    assert set(TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (S.QUEUED, S.PROCESSING, True),
        (S.QUEUED, S.CANCELED, True),
        (S.QUEUED, S.SUCCEEDED, False),
        (S.PROCESSING, S.SUCCEEDED, True),
        (S.PROCESSING, S.FAILED, True),
        (S.PROCESSING, S.CANCELED, True),
        (S.PROCESSING, S.QUEUED, True),  # retry after a crash
        (S.SUCCEEDED, S.CANCELED, False),
        (S.CANCELED, S.QUEUED, False),
        (S.FAILED, S.PROCESSING, False),
    ],
)
def test_transition_table(old: JobStatus, new: JobStatus, ok: bool) -> None:
    assert can_transition(old, new) is ok
    if ok:
        check_transition("j", old, new)
    else:
        with pytest.raises(JobConflict):
            check_transition("j", old, new)


def test_job_ids_are_url_safe_and_unique() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and i.isalnum() for i in ids)


FULL = Options(
    model="tiny",
    output=OutputSpec(format="jpeg", quality=77, flatten_color=(1, 2, 3), clip_path=True),
    max_pixels=1234,
    background=Background(kind="image", image=b"\x00\xffbytes", color=(9, 8, 7, 6), fit="fit"),
    shadow=Shadow(enabled=True, offset=(-1.5, 2.0)),
    layout=Layout(trim=True, margin=Length(5.0, "%"), scale=0.8, position=(0.25, 1.0)),
)


@pytest.mark.parametrize("options", [Options(), FULL])
def test_options_round_trip_losslessly_through_json_text(options: Options) -> None:
    encoded = json.loads(json.dumps(options_to_json(options)))
    assert options_from_json(encoded) == options


def test_missing_keys_take_defaults() -> None:
    assert options_from_json({"model": "tiny", "output": {"format": "webp"}}) == Options(
        model="tiny", output=OutputSpec(format="webp")
    )


@pytest.mark.parametrize(
    "data",
    [
        {"colour": 1},
        {"output": {"fmt": "png"}},
        {"output": {"format": "gif"}},
        {"output": {"quality": "high"}},
        {"output": {"lossless": 1}},
        {"max_pixels": 1.5},
        {"max_pixels": True},
        {"background": {"image": "not base64!"}},
        {"background": {"color": [1, 2, 3]}},
        {"layout": {"position": [0.5]}},
        {"layout": "trim"},
        {"model": None},
    ],
)
def test_bad_or_unknown_keys_raise(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptions):
        options_from_json(data)


@pytest.mark.parametrize("secret", ["text-secret", b"\x00binary"])
def test_webhook_round_trip(secret: str | bytes) -> None:
    spec = WebhookSpec("https://example.com/hook", secret, max_attempts=3, backoff_base=0.5)
    assert webhook_from_json(json.loads(json.dumps(webhook_to_json(spec)))) == spec
    with pytest.raises(InvalidOptions):
        webhook_from_json({**webhook_to_json(spec), "extra": 1})


def test_event_of_describes_the_current_state() -> None:
    ref = BlobRef("jobs/j1/cutout", "image/png", 10, "e", "j1.png")
    done = JobEvent.of(job_record(S.SUCCEEDED, results={"cutout": ref}, timings={"total": 1.0}))
    assert done.kind == "complete"
    assert done.final
    assert done.data["results"]["cutout"] == {
        "media_type": "image/png",
        "size": 10,
        "filename": "j1.png",
    }
    failed = JobEvent.of(job_record(S.FAILED, error_code="corrupt_image", error_message="bad"))
    assert (failed.kind, failed.data["code"], failed.final) == ("error", "corrupt_image", True)
    canceled = JobEvent.of(job_record(S.CANCELED))
    assert (canceled.kind, canceled.final) == ("state", True)
    running = JobEvent.of(job_record(S.PROCESSING, stage="inference", progress=0.4))
    assert (running.kind, running.stage, running.progress, running.final) == (
        "state",
        "inference",
        0.4,
        False,
    )
