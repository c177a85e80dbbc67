"""The S3 blob store against moto's standalone S3 server (a separate process on loopback)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from cleancut.storage import BlobNotFound, InvalidKey, open_store
from cleancut.storage.s3 import S3BlobStore, S3Options, open_s3, parse_url
from tests.distributed.services import MotoServer


@pytest.fixture
def blobs(bucket: str, s3_options: S3Options) -> S3BlobStore:
    return open_s3(f"s3://{bucket}/some/prefix", s3_options)


def test_put_get_stat_and_etags(blobs: S3BlobStore) -> None:
    info = blobs.put("jobs/a/cutout", b"hello")
    assert info.size == 5 and info.etag == hashlib.sha256(b"hello").hexdigest()
    assert blobs.get("jobs/a/cutout") == b"hello"
    with blobs.open("jobs/a/cutout") as f:
        assert f.read() == b"hello"
    stat = blobs.stat("jobs/a/cutout")
    assert (stat.size, stat.etag) == (5, info.etag) and stat.modified > 0
    blobs.put("jobs/a/cutout", b"again")  # overwrite in place
    assert blobs.get("jobs/a/cutout") == b"again"
    assert blobs.exists("jobs/a/cutout") and not blobs.exists("jobs/a/mask")


def test_missing_blobs_and_bad_keys(blobs: S3BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        blobs.get("jobs/none/cutout")
    with pytest.raises(BlobNotFound):
        blobs.stat("jobs/none/cutout")
    assert not blobs.delete("jobs/none/cutout")
    for bad in ("../x", "/abs", "a//b", "a/./b", "a/.hidden", "a\\b", ""):
        with pytest.raises(InvalidKey):
            blobs.put(bad, b"x")


def test_prefixes_list_and_delete(blobs: S3BlobStore, bucket: str, s3_options: S3Options) -> None:
    for key in ("jobs/a/original", "jobs/a/mask", "jobs/ab/original", "other/x"):
        blobs.put(key, key.encode())
    assert sorted(blobs.iter_keys("jobs/a")) == ["jobs/a/mask", "jobs/a/original"]
    assert len(list(blobs.iter_keys())) == 4
    # another prefix of the same bucket is another store
    neighbour = open_s3(f"s3://{bucket}/elsewhere", s3_options)
    neighbour.put("jobs/a/original", b"theirs")
    assert blobs.delete_prefix("jobs/a") == 2
    assert sorted(blobs.iter_keys()) == ["jobs/ab/original", "other/x"]
    assert neighbour.get("jobs/a/original") == b"theirs"
    assert blobs.delete("other/x")


def test_presigned_urls_download_without_credentials(blobs: S3BlobStore) -> None:
    blobs.put("jobs/a/cutout", b"\x89PNG...")
    url = blobs.presigned_url("jobs/a/cutout", expires=60)
    assert httpx.get(url).content == b"\x89PNG..."


def test_open_store_takes_s3_urls(
    bucket: str, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto.secret)
    url = f"s3://{bucket}/p?endpoint={moto.endpoint}&region={moto.region}&path_style=1"
    assert parse_url(url)[:2] == (bucket, "p")
    store = open_store(url)
    assert isinstance(store, S3BlobStore)
    store.put("k", b"v")
    assert store.get("k") == b"v"
    store.ping()
    store.close()
