"""Inputs: uploads vetted at submit (by content, header pixel count), and URL inputs fetched
by the worker through the SSRF-safe net module."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from cleancut.core.predict import ModelPool
from cleancut.core.types import Options
from cleancut.errors import (
    CleancutError,
    CorruptImage,
    ImageTooLarge,
    InvalidInput,
    UnsupportedFormat,
)
from cleancut.jobs.model import CUTOUT, ORIGINAL, JobStatus
from cleancut.jobs.service import Submission
from cleancut.net import InvalidURL, NetPolicy, URLForbidden, WebhookSpec
from tests.jobs.conftest import TINY, Factory, LoopbackServer

S = JobStatus
LOOPBACK = NetPolicy(allow_private=True, webhook_https_only=False, total_timeout=10)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but carries (almost) no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)


@pytest.mark.parametrize(
    ("upload", "options", "error"),
    [
        (b"", TINY, InvalidInput),
        (b"GIF? no, just some text that is long enough", TINY, UnsupportedFormat),
        (b"%PDF-1.7\n" + b"0" * 100, TINY, UnsupportedFormat),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", TINY, UnsupportedFormat),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, TINY, CorruptImage),
        (png_header(8000, 8000), TINY, ImageTooLarge),  # over the 50 MP default
        (png_header(100_000, 100_000), TINY, ImageTooLarge),  # a decompression bomb
        ("small", Options(model="tiny", max_pixels=1000), ImageTooLarge),
    ],
)
def test_bad_uploads_are_refused_at_submit(
    make_service: Factory,
    pool: ModelPool,
    image: bytes,
    tmp_path: Path,
    upload: bytes | str,
    options: Options,
    error: type[CleancutError],
) -> None:
    svc = make_service(pool, start=False)
    data = image if upload == "small" else upload
    assert isinstance(data, bytes)
    with pytest.raises(error):
        svc.submit(Submission(options, upload=data))
    assert svc.list() == []
    assert not (tmp_path / "data" / "blobs" / "jobs").exists()


def test_exactly_one_input(make_service: Factory, pool: ModelPool, image: bytes) -> None:
    svc = make_service(pool, start=False)
    with pytest.raises(InvalidInput, match="exactly one"):
        svc.submit(Submission(TINY))
    with pytest.raises(InvalidInput, match="exactly one"):
        svc.submit(Submission(TINY, upload=image, url="http://example.com/a.png"))


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://127.0.0.1/a.png", URLForbidden),
        ("http://169.254.169.254/latest/meta-data", URLForbidden),
        ("http://[::ffff:10.0.0.1]/", URLForbidden),
        ("http://0x7f000001/", URLForbidden),
        ("http://localhost/a.png", URLForbidden),
        ("file:///etc/passwd", InvalidURL),
        ("http://user:pw@example.com/", InvalidURL),
    ],
)
def test_forbidden_urls_are_refused_before_dialling(
    make_service: Factory, pool: ModelPool, url: str, error: type[CleancutError]
) -> None:
    svc = make_service(pool, start=False)
    with pytest.raises(error):
        svc.submit(Submission(TINY, url=url))
    assert svc.list() == []


def test_webhook_url_is_vetted_at_submit(
    make_service: Factory, pool: ModelPool, image: bytes
) -> None:
    svc = make_service(pool, start=False, policy=NetPolicy(allow_private=True))
    plain_http = WebhookSpec("http://127.0.0.1:9/hook", "secret")  # webhooks need https
    with pytest.raises(InvalidURL):
        svc.submit(Submission(TINY, upload=image, webhook=plain_http))
    assert svc.list() == []


def test_url_input_is_fetched_by_the_worker(
    make_service: Factory, pool: ModelPool, image: bytes, http_server: LoopbackServer
) -> None:
    http_server.routes["/photo"] = lambda h: h.reply(200, image, "image/png")
    svc = make_service(pool, policy=LOOPBACK)
    job = svc.submit(Submission(TINY, url=http_server.url("/photo")))
    assert job.results == {} and job.source_url == http_server.url("/photo")
    done = svc.wait(job.id, 30)
    assert done.status is S.SUCCEEDED, done.error_message
    assert svc.open_blob(done, ORIGINAL)[1] == image  # kept for effects
    assert svc.open_blob(done, CUTOUT)[0].media_type == "image/png"
    assert [s.path for s in http_server.seen] == ["/photo"]


@pytest.mark.parametrize(
    ("route", "code"),
    [
        ("/missing", "url_fetch_failed"),
        ("/text", "unsupported_format"),
    ],
)
def test_url_input_failures_fail_the_job_with_a_reason(
    make_service: Factory, pool: ModelPool, http_server: LoopbackServer, route: str, code: str
) -> None:
    http_server.routes["/text"] = lambda h: h.reply(200, b"<html>not an image</html>", "text/html")
    svc = make_service(pool, policy=LOOPBACK)
    done = svc.run_sync(Submission(TINY, url=http_server.url(route)), timeout=30)
    assert (done.status, done.error_code) == (S.FAILED, code)
    assert done.results == {}
