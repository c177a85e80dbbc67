"""Output destinations: after the result is stored, the runner PUTs the named blobs to their
(pre-signed) URLs through ``cleancut.net``; a failed upload fails the job as
``output_upload_failed``. Destinations and the submitter's metadata persist with the job."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleancut.core.predict import ModelPool
from cleancut.core.types import Options, OutputSpec
from cleancut.errors import InvalidInput
from cleancut.jobs.model import CUTOUT, MASK, Destination, JobStatus
from cleancut.jobs.service import Submission
from cleancut.jobs.sqlite import _MIGRATIONS, SCHEMA_VERSION, SQLiteJobStore
from cleancut.net import NetPolicy, URLForbidden
from tests.jobs.conftest import TINY, Factory, LoopbackServer

S = JobStatus
LOOPBACK = NetPolicy(allow_private=True, total_timeout=10)


def test_result_and_mask_are_put_to_their_destinations(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    http_server.routes["/bucket/out.png?sig=abc"] = lambda h: h.reply(200)
    http_server.routes["/bucket/mask.png"] = lambda h: h.reply(201)
    svc = make_service(pool, policy=LOOPBACK)
    destinations = (
        Destination(http_server.url("/bucket/out.png?sig=abc")),
        Destination(http_server.url("/bucket/mask.png"), MASK),
    )
    job = svc.submit(
        Submission(TINY, upload=image, destinations=destinations, meta={"vendor": {"a": [1]}})
    )
    assert job.destinations == destinations and job.meta == {"vendor": {"a": [1]}}
    done = svc.wait(job.id, 30)
    assert done.status is S.SUCCEEDED, done.error_message
    assert "upload" in done.timings
    puts = [s for s in http_server.seen if s.method == "PUT"]
    assert [p.path for p in puts] == ["/bucket/out.png?sig=abc", "/bucket/mask.png"]
    cutout_ref, cutout = svc.open_blob(done, CUTOUT)
    mask = svc.open_blob(done, MASK)[1]
    assert puts[0].body == cutout and puts[0].headers["Content-Type"] == cutout_ref.media_type
    assert puts[1].body == mask and puts[1].headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(puts[1].body)).mode == "L"
    assert svc.get(job.id).meta == {"vendor": {"a": [1]}}


def test_a_mask_output_is_what_the_cutout_destination_receives(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    http_server.routes["/m"] = lambda h: h.reply(200)
    svc = make_service(pool, policy=LOOPBACK)
    options = Options(model="tiny", output=OutputSpec(mode="mask", mask="binary"))
    sub = Submission(options, upload=image, destinations=(Destination(http_server.url("/m")),))
    done = svc.run_sync(sub, timeout=30)
    assert done.status is S.SUCCEEDED, done.error_message
    (put,) = [s for s in http_server.seen if s.method == "PUT"]
    mask = Image.open(io.BytesIO(put.body))
    assert mask.mode == "L"
    assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}


def test_a_refused_upload_fails_the_job_with_a_clear_code(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    http_server.routes["/denied?X-Amz-Signature=secret"] = lambda h: h.reply(403, b"<Error/>")
    svc = make_service(pool, policy=LOOPBACK)
    url = http_server.url("/denied?X-Amz-Signature=secret")
    done = svc.run_sync(Submission(TINY, upload=image, destinations=(Destination(url),)), 30)
    assert (done.status, done.error_code) == (S.FAILED, "output_upload_failed")
    assert done.error_message is not None
    assert "403" in done.error_message and f"127.0.0.1:{http_server.port}" in done.error_message
    assert "secret" not in done.error_message  # the pre-signed query stays out of messages
    assert done.results == {}  # a failed job keeps no blobs


def test_an_unreachable_destination_fails_the_job(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    svc = make_service(pool, policy=LOOPBACK)
    closed = LoopbackServer()  # bound, then closed: nothing listens on its port any more
    url = closed.url("/x")
    closed.server_close()
    done = svc.run_sync(Submission(TINY, upload=image, destinations=(Destination(url),)), 30)
    assert (done.status, done.error_code) == (S.FAILED, "output_upload_failed")


def test_destinations_are_vetted_at_submit(
    make_service: Factory, pool: ModelPool, image: bytes
) -> None:
    svc = make_service(pool, start=False)  # default policy: no private networks
    with pytest.raises(URLForbidden):
        svc.submit(Submission(TINY, upload=image, destinations=(Destination("http://10.0.0.1/x"),)))
    dest = Destination("https://example.com/x", "original")
    with pytest.raises(InvalidInput, match="original"):
        svc.submit(Submission(TINY, upload=image, destinations=(dest,)))
    with pytest.raises(InvalidInput, match="metadata"):
        svc.submit(Submission(TINY, upload=image, meta={"big": "x" * 20_000}))
    with pytest.raises(InvalidInput, match="JSON"):
        svc.submit(Submission(TINY, upload=image, meta={"bytes": b"\x00"}))
    assert svc.list() == []


def test_a_v1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for statement in filter(str.strip, _MIGRATIONS[0].split(";")):
        db.execute(statement)
    db.execute(
        "INSERT INTO jobs (id, status, options, created_at, updated_at, expires_at) "
        "VALUES ('old', 'succeeded', '{\"model\": \"tiny\"}', 1, 1, 1000)"
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = SQLiteJobStore(path)
    try:
        old = store.get("old")
        assert old is not None and old.destinations == () and old.meta == {}
    finally:
        store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    db.close()
