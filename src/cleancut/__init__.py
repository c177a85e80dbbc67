"""cleancut: self-hosted background removal.

    >>> import cleancut
    >>> result = cleancut.remove("photo.jpg")
    >>> result.save("photo.png")

Importing this package is cheap; numpy, Pillow and the runtimes load on first use.
"""

from __future__ import annotations

import threading
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cleancut.config import Settings
    from cleancut.core.predict import ModelPool, Segmenter
    from cleancut.core.result import Result
    from cleancut.core.types import Options, OutputSpec, ProgressFn, Source

__all__ = [
    "Options",
    "OutputSpec",
    "Result",
    "__version__",
    "default_pool",
    "load_model",
    "remove",
]

_pool: ModelPool | None = None
_pool_lock = threading.Lock()


def default_pool(settings: Settings | None = None) -> ModelPool:
    """The process-wide model pool, built from CLEANCUT_* settings on first use."""
    global _pool
    with _pool_lock:
        if _pool is None or settings is not None:
            from cleancut.config import Settings

            _pool = (settings or Settings()).model_pool(log=_stderr_log)
        return _pool


def _stderr_log(message: str) -> None:
    import sys

    print(f"cleancut: {message}", file=sys.stderr, flush=True)


def load_model(name: str = "isnet-general", pool: ModelPool | None = None) -> Segmenter:
    """Load (pulling if needed) and return a model; repeated calls return the same one."""
    return (pool or default_pool()).get(name)


def build_options(options: Options | None = None, **kwargs: Any) -> Options:
    """Merge flat keyword options (``format="webp"``, ``model=...``) into an Options."""
    from cleancut.core.types import Options, OutputSpec
    from cleancut.errors import InvalidOptions

    base = options or Options()
    top = {f.name for f in fields(Options)}
    out = {f.name for f in fields(OutputSpec)}
    unknown = set(kwargs) - top - out
    if unknown:
        raise InvalidOptions(f"unknown option(s): {', '.join(sorted(unknown))}")
    output = replace(base.output, **{k: v for k, v in kwargs.items() if k in out})
    return replace(base, output=output, **{k: v for k, v in kwargs.items() if k in top})


def remove(
    source: Source,
    options: Options | None = None,
    *,
    progress: ProgressFn | None = None,
    pool: ModelPool | None = None,
    **kwargs: Any,
) -> Result:
    """Cut the subject out of ``source`` (bytes, path, file object, PIL image or ndarray).

    Keyword options: ``model``, ``max_pixels``, and the output ones used by
    ``Result.encode()``: ``format``, ``mode``, ``mask``, ``threshold``, ``quality``,
    ``lossless``, ``background``.
    """
    from cleancut.core import pipeline

    opts = build_options(options, **kwargs)
    segmenter = load_model(opts.model, pool)
    return pipeline.run(source, opts, segmenter, progress)


def __getattr__(name: str) -> Any:
    if name in ("Options", "OutputSpec"):
        from cleancut.core import types

        return getattr(types, name)
    if name == "Result":
        from cleancut.core.result import Result

        return Result
    raise AttributeError(f"module 'cleancut' has no attribute {name!r}")
