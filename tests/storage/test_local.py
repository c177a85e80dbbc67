from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cleancut.errors import InvalidOptions, ResultNotFound
from cleancut.storage import BlobNotFound, InvalidKey, check_key, open_store
from cleancut.storage.local import LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_put_get_stat_round_trip(store: LocalBlobStore) -> None:
    info = store.put("jobs/abc/cutout", b"hello")
    assert info.key == "jobs/abc/cutout"
    assert info.size == 5
    assert info.etag == hashlib.sha256(b"hello").hexdigest()
    assert store.get("jobs/abc/cutout") == b"hello"
    assert store.stat("jobs/abc/cutout") == info
    with store.open("jobs/abc/cutout") as f:
        assert f.read() == b"hello"
    assert store.exists("jobs/abc/cutout")
    assert not store.exists("jobs/abc/mask")


def test_overwrite_is_atomic_and_leaves_no_temp_files(store: LocalBlobStore) -> None:
    store.put("a/b", b"old")
    store.put("a/b", b"new content")
    assert store.get("a/b") == b"new content"
    assert [p.name for p in (store.root / "a").iterdir()] == ["b"]


def test_missing_blobs_raise_not_found(store: LocalBlobStore) -> None:
    for call in (store.get, store.open, store.stat):
        with pytest.raises(BlobNotFound):
            call("jobs/none/x")
    assert issubclass(BlobNotFound, ResultNotFound)
    assert store.delete("jobs/none/x") is False


def test_delete_prefix_and_iteration(store: LocalBlobStore) -> None:
    for key in ("jobs/a/original", "jobs/a/mask", "jobs/b/original", "other/x"):
        store.put(key, key.encode())
    assert list(store.iter_keys("jobs")) == ["jobs/a/mask", "jobs/a/original", "jobs/b/original"]
    assert store.delete_prefix("jobs/a") == 2
    assert not (store.root / "jobs" / "a").exists()  # emptied folders are pruned
    assert list(store.iter_keys()) == ["jobs/b/original", "other/x"]
    assert store.delete("other/x") is True
    assert list(store.iter_keys("nothing")) == []


@pytest.mark.parametrize(
    "key",
    [
        "",
        "..",
        "../x",
        "a/../../b",
        "a/./b",
        "/etc/passwd",
        "C:/windows",
        "a\\b",
        "a\x00b",
        "a//b",
        "a/",
        ".hidden",
        "a/.tmp-x",
        "a/\nb",
    ],
)
def test_unsafe_keys_are_rejected(store: LocalBlobStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)
    with pytest.raises(InvalidKey):
        store.put(key, b"x")
    with pytest.raises(InvalidKey):
        store.get(key)


def test_symlink_out_of_the_root_is_refused(store: LocalBlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(outside, store.root / "link")
    with pytest.raises(InvalidKey):
        store.get("link/secret")


def test_open_store_by_scheme(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "p"), LocalBlobStore)
    by_url = open_store(f"file://{tmp_path}/u")
    assert isinstance(by_url, LocalBlobStore)
    assert by_url.root == (tmp_path / "u").resolve()
    with pytest.raises(InvalidOptions, match="unsupported storage URL scheme"):
        open_store("gopher://bucket/prefix")
    with pytest.raises(InvalidOptions, match="must be local"):
        open_store("file://elsewhere/path")
