"""Result downloads: headers, ETag / If-None-Match, dispositions, missing results."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import assert_error, png_bytes, submit, wait_done


@pytest.fixture
def done(client: TestClient) -> dict[str, object]:
    return wait_done(client, submit(client).json()["id"])


@pytest.mark.parametrize(
    ("path", "name", "media_type"),
    [
        ("result", "cutout", "image/png"),
        ("mask", "mask", "image/png"),
        ("original", "original", "image/png"),
    ],
)
def test_download_headers(
    client: TestClient, done: dict[str, object], path: str, name: str, media_type: str
) -> None:
    job_id = done["id"]
    r = client.get(f"/v1/jobs/{job_id}/{path}")
    assert r.status_code == 200
    ref = done["results"][name]  # type: ignore[index]
    assert r.headers["content-type"] == media_type
    assert int(r.headers["content-length"]) == len(r.content) == ref["size"]
    assert r.headers["etag"] == f'"{ref["etag"]}"'
    assert r.headers["content-disposition"].startswith("inline; filename=")
    assert ref["filename"] in r.headers["content-disposition"]
    assert r.headers["x-content-type-options"] == "nosniff"
    attached = client.get(f"/v1/jobs/{job_id}/{path}", params={"download": "true"})
    assert attached.headers["content-disposition"].startswith("attachment; ")


def test_original_is_the_upload_byte_for_byte(client: TestClient, done: dict[str, object]) -> None:
    body = client.get(f"/v1/jobs/{done['id']}/original").content
    assert hashlib.sha256(body).digest() == hashlib.sha256(png_bytes()).digest()


def test_if_none_match_gives_304(client: TestClient, done: dict[str, object]) -> None:
    url = f"/v1/jobs/{done['id']}/result"
    etag = client.get(url).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = client.get(url, headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
        assert r.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_missing_results_and_jobs(client: TestClient) -> None:
    assert_error(client.get("/v1/jobs/0123456789abcdef/result"), 404, "job_not_found")
    assert_error(client.get("/v1/jobs/bad id!/result"), 422, "validation_error")
    assert_error(client.get("/v1/jobs/x/nothing"), 404, "not_found")
