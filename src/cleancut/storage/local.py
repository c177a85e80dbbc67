"""A folder as a blob store: atomic writes (temp file, fsync, rename, fsync of the folder),
keys checked against traversal, etags as sha256 of the content."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cleancut.storage import BlobInfo, BlobNotFound, InvalidKey, check_key


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*check_key(key).split("/"))
        # Belt and braces: a symlink planted inside the root must not lead outside it.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey(f"blob key {key!r} leaves the store")
        return path

    def put(self, key: str, data: bytes) -> BlobInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
        return BlobInfo(key, len(data), hashlib.sha256(data).hexdigest(), path.stat().st_mtime)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(f"no blob {key!r}") from None

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(f"no blob {key!r}") from None

    def stat(self, key: str) -> BlobInfo:
        try:
            with self._path(key).open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
                st = os.fstat(f.fileno())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(f"no blob {key!r}") from None
        return BlobInfo(key, st.st_size, digest, st.st_mtime)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False
        self._prune(path.parent)
        return True

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for key in list(self.iter_keys(prefix)):
            count += self.delete(key)
        return count

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        folder = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not folder.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            base = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if not name.startswith("."):
                    yield (base / name).as_posix()

    def close(self) -> None:
        return None

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty by a delete, up to the root."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
