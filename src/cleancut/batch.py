"""Batch processing for the CLI: which files go where, then run them one by one.

One bad file never stops the batch: its error is printed and the rest still run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cleancut.core.predict import Segmenter
from cleancut.core.result import format_for_path
from cleancut.core.types import Options, OutputFormat
from cleancut.errors import CleancutError, InvalidInput, InvalidOptions

STDIO = "-"
IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".tif",
        ".tiff",
        ".bmp",
        ".gif",
        ".heic",
        ".heif",
        ".avif",
    }
)
_EXT: dict[str, str] = {
    "png": ".png",
    "webp": ".webp",
    "avif": ".avif",
    "jpeg": ".jpg",
    "tiff": ".tif",
    "psd": ".psd",
    "svg": ".svg",
}


@dataclass(frozen=True)
class Job:
    src: str  # a path, or "-" for stdin
    dest: str  # a path, or "-" for stdout
    format: OutputFormat
    error: str | None = None  # known before running (e.g. the input does not exist)


def _default_name(src: Path, options: Options, fmt: OutputFormat) -> str:
    tag = "mask" if options.output.mode == "mask" else "cutout"
    return f"{src.stem}.{tag}{_EXT[fmt]}"


def _scan(folder: Path, skip: Path | None) -> Iterator[Path]:
    """Images below ``folder``, leaving out ``skip`` (the output folder) when it lies inside
    it, so a second run never reads the first run's outputs. Resolved paths are compared:
    ``photos`` and ``/abs/photos/out`` must still match."""
    inside: Path | None = None
    if skip is not None:
        with contextlib.suppress(ValueError):
            inside = skip.resolve().relative_to(folder.resolve())
    for path in sorted(folder.rglob("*")):
        if inside is not None and path.relative_to(folder).is_relative_to(inside):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            yield path


def plan_jobs(
    inputs: list[str], output: str | None, options: Options, *, explicit_format: bool
) -> list[Job]:
    """Map every input to its destination, keeping folder structure below an output folder."""
    fmt: OutputFormat = options.output.format
    if STDIO in inputs:
        if len(inputs) > 1:
            raise InvalidOptions("'-' (stdin) cannot be combined with other inputs")
        if output not in (None, STDIO) and not explicit_format:
            fmt = _format_from_suffix(output)
        return [Job(STDIO, output or STDIO, fmt)]

    paths = [Path(p) for p in inputs]
    if len(paths) == 1 and not paths[0].is_dir():
        return [_single_file_job(paths[0], output, options, explicit_format=explicit_format)]

    if output == STDIO:
        raise InvalidOptions("several inputs cannot all be written to stdout; give -o FOLDER")
    out_dir = Path(output) if output else None
    looks_like_file = out_dir is not None and format_for_path(out_dir) is not None
    if out_dir is not None and (out_dir.is_file() or (looks_like_file and not out_dir.is_dir())):
        raise InvalidOptions(f"-o {output} must be a folder when there are several inputs")
    jobs: list[Job] = []
    for src in paths:
        if not src.exists():
            jobs.append(Job(str(src), "", fmt, error="no such file or folder"))
        elif src.is_dir():
            root = out_dir / src.name if out_dir and len(paths) > 1 else out_dir
            jobs.extend(_folder_jobs(src, root or src.parent / f"{src.name}-{_tag(options)}", fmt))
        else:
            folder = out_dir or src.parent
            jobs.append(Job(str(src), str(folder / _default_name(src, options, fmt)), fmt))
    sources = frozenset(Path(j.src).resolve() for j in jobs if j.error is None)
    return [_guarded(j, sources) for j in _dedupe(jobs)]


def _single_file_job(
    src: Path, output: str | None, options: Options, *, explicit_format: bool
) -> Job:
    fmt: OutputFormat = options.output.format
    if not src.exists():
        return Job(str(src), "", fmt, error="no such file")
    if output is None:
        return Job(str(src), str(src.with_name(_default_name(src, options, fmt))), fmt)
    if output == STDIO:
        return Job(str(src), STDIO, fmt)
    out = Path(output)
    if out.is_dir() or output.endswith(("/", os.sep)):
        return Job(str(src), str(out / _default_name(src, options, fmt)), fmt)
    if not explicit_format:
        fmt = _format_from_suffix(output)
    return _guarded(Job(str(src), str(out), fmt))


def _folder_jobs(src: Path, root: Path, fmt: OutputFormat) -> list[Job]:
    """Every image below ``src``, mirrored below ``root``."""
    if root.resolve() == src.resolve():
        raise InvalidOptions(
            f"the output folder {root} is the input folder itself: outputs would mix "
            "with and overwrite the inputs; choose another -o folder"
        )
    found = [
        Job(str(file), str(root / file.relative_to(src).with_suffix(_EXT[fmt])), fmt)
        for file in _scan(src, skip=root)
    ]
    return found or [Job(str(src), "", fmt, error="no images found in this folder")]


def _tag(options: Options) -> str:
    return "mask" if options.output.mode == "mask" else "cutout"


def _format_from_suffix(path: str) -> OutputFormat:
    fmt = format_for_path(path)
    if fmt is None:
        raise InvalidOptions(
            f"cannot tell the output format from {path!r}; use a .png/.webp/.jpg name or --format"
        )
    return fmt


def _guarded(job: Job, inputs: frozenset[Path] = frozenset()) -> Job:
    """Never write over the input we are reading, nor over another input of the batch
    (which may not have been read yet)."""
    if job.error is not None or job.dest == STDIO:
        return job
    dest = Path(job.dest).resolve()
    if dest == Path(job.src).resolve():
        return Job(job.src, job.dest, job.format, error="output would overwrite the input")
    if dest in inputs:
        return Job(
            job.src, job.dest, job.format, error=f"output {job.dest} would overwrite another input"
        )
    return job


def _dedupe(jobs: list[Job]) -> list[Job]:
    """photo.jpg and photo.png in one folder would both become photo.png: keep both."""
    seen: set[str] = set()
    out: list[Job] = []
    for job in jobs:
        dest = job.dest
        if job.error is None and dest in seen:
            p = Path(dest)
            dest = str(p.with_name(f"{Path(job.src).name}{p.suffix}"))
        seen.add(dest)
        out.append(Job(job.src, dest, job.format, job.error))
    return out


def _new_file_mode() -> int:
    """The mode a plain open() would give a new file: mkstemp's 0600 is too private for
    images the user wants to share. Read once per batch, from the CLI's single thread."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_atomic(dest: Path, data: bytes, mode: int = 0o644) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@dataclass
class Batch:
    jobs: list[Job]
    options: Options
    segmenter: Segmenter | None  # None only when every job already failed in planning
    quiet: bool = False
    done: int = field(default=0, init=False)
    failed: int = field(default=0, init=False)
    _mode: int = field(default=0o644, init=False, repr=False)

    def run(self) -> int:
        from tqdm import tqdm

        show_bar = not self.quiet and sys.stderr.isatty() and len(self.jobs) > 1
        self._mode = _new_file_mode()
        start = time.perf_counter()
        with tqdm(
            total=len(self.jobs),
            unit="img",
            disable=not show_bar,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as bar:
            for job in self.jobs:
                bar.set_postfix_str(Path(job.src).name[-30:], refresh=False)
                message = job.error or self._run_one(job)
                if message is None:
                    self.done += 1
                else:
                    self.failed += 1
                    (bar.write if show_bar else _eprint)(f"error: {job.src}: {message}")
                bar.update(1)
        elapsed = time.perf_counter() - start
        if not self.quiet and (len(self.jobs) > 1 or self.failed):
            rate = self.done / elapsed if elapsed > 0 else 0.0
            _eprint(
                f"cleancut: {self.done} done, {self.failed} failed in {elapsed:.1f} s "
                f"({rate:.2f} img/s)"
            )
        return self.failed

    def _run_one(self, job: Job) -> str | None:
        from dataclasses import replace

        from cleancut.core import pipeline

        options = replace(self.options, output=replace(self.options.output, format=job.format))
        if self.segmenter is None:
            return "no model loaded"
        try:
            if job.src == STDIO:
                data = sys.stdin.buffer.read()
                if not data:
                    raise InvalidInput("stdin was empty")
                result = pipeline.run(data, options, self.segmenter)
            else:
                result = pipeline.run(job.src, options, self.segmenter)
            encoded = result.encode()
            if job.dest == STDIO:
                sys.stdout.buffer.write(encoded)
                sys.stdout.buffer.flush()
            else:
                _write_atomic(Path(job.dest), encoded, self._mode)
        except CleancutError as exc:
            return str(exc)
        except OSError as exc:
            return f"{exc.strerror or exc} ({exc.filename or job.dest})"
        except Exception as exc:  # keep going: one odd file must not end a batch of thousands
            return f"internal error: {type(exc).__name__}: {exc}"
        return None


def _eprint(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
