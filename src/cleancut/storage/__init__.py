"""Blob storage behind one Protocol; ``open_store(url)`` picks the implementation by scheme.

Keys are relative, slash-separated paths (``jobs/<id>/cutout``). Implementations reject keys
that could escape their root (``..``, absolute paths, NUL, backslashes, empty or dot segments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from cleancut.errors import InvalidOptions, ResultNotFound


class InvalidKey(ValueError):
    """A blob key that is not a safe relative path."""


class BlobNotFound(ResultNotFound):
    code = "result_not_found"


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    etag: str  # hex sha256 of the content
    modified: float  # unix seconds


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> BlobInfo:
        """Store ``data`` under ``key`` atomically (readers see the old or the new blob)."""
        ...

    def get(self, key: str) -> bytes:
        """The blob's bytes; BlobNotFound when absent."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary file object; the caller closes it. BlobNotFound when absent."""
        ...

    def stat(self, key: str) -> BlobInfo: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """True when something was deleted; deleting a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key starts with the folder ``prefix``; returns the count."""
        ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...

    def close(self) -> None: ...


def check_key(key: str) -> str:
    """``key`` itself when it is a safe relative key, else InvalidKey."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("a blob key must be a non-empty string")
    if "\x00" in key or "\\" in key:
        raise InvalidKey(f"blob key {key!r} contains NUL or a backslash")
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise InvalidKey(f"blob key {key!r} is absolute")
    for part in key.split("/"):
        if not part or part.startswith(".") or any(ord(c) < 32 for c in part):
            raise InvalidKey(f"blob key {key!r} has an empty, dot or control segment")
    return key


def _open_local(url: str) -> BlobStore:
    from cleancut.storage.local import LocalBlobStore

    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidOptions(f"file:// storage URLs must be local, got host {parts.netloc!r}")
        return LocalBlobStore(Path(unquote(parts.path)))
    return LocalBlobStore(Path(url))


def _open_s3(url: str) -> BlobStore:
    from cleancut.storage.s3 import open_s3

    return open_s3(url)


#: Storage URL scheme -> opener. A plain path (no scheme) means a local folder; ``s3://bucket/
#: prefix`` is S3-compatible object storage (``storage/s3.py``, boto3).
OPENERS: dict[str, Callable[[str], BlobStore]] = {
    "": _open_local,
    "file": _open_local,
    "s3": _open_s3,
}


def open_store(url: str | Path) -> BlobStore:
    text = str(url)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    opener = OPENERS.get(scheme)
    if opener is None:
        known = ", ".join(sorted(s for s in OPENERS if s)) or "none"
        raise InvalidOptions(
            f"unsupported storage URL scheme {scheme!r}", hint=f"use a path or one of: {known}"
        )
    return opener(text)


__all__ = [
    "OPENERS",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "InvalidKey",
    "check_key",
    "open_store",
]
