"""cleancut: self-hosted background removal.

    >>> import cleancut
    >>> result = cleancut.remove("photo.jpg")
    >>> result.save("photo.png")

Importing this package is cheap; numpy, Pillow and the runtimes load on first use.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cleancut.config import Settings
    from cleancut.core.predict import ModelPool, Segmenter
    from cleancut.core.result import Result
    from cleancut.core.types import Options, OutputSpec, ProgressFn, Source

__all__ = [
    "Background",
    "Layout",
    "Length",
    "Options",
    "OutputSpec",
    "Refine",
    "Result",
    "Shadow",
    "__version__",
    "compose",
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
    """Merge flat keyword options (``format="webp"``, ``kind="color"``, ``trim=True``,
    ``background=Background(...)``) into an Options."""
    from cleancut.core.result import merge_options
    from cleancut.core.types import Options

    return merge_options(options or Options(), **kwargs)


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
    ``lossless``, ``flatten_color``, ``clip_path``; effects such as ``kind``,
    ``color``, ``angle``, ``trim``, ``margin``, ``scale``; edge refinement ``level``
    (0–3) and ``decontaminate`` (0..1); or whole groups such as
    ``shadow=Shadow(enabled=True)`` (see ``cleancut.core.types``).
    """
    from cleancut.core import pipeline

    opts = build_options(options, **kwargs)
    segmenter = load_model(opts.model, pool)
    return pipeline.run(source, opts, segmenter, progress)


def compose(
    original: Source,
    mask: Source,
    options: Options | None = None,
    *,
    max_pixels: int | None = None,
    **kwargs: Any,
) -> Result:
    """Re-apply effects to a stored original and its model matte without running the model.

    ``mask`` is the model's grayscale matte (``Result.model_matte``, or a mask file) at the
    original's size. It is refined as ``options`` say (``level``, ``decontaminate``), so
    the returned Result encodes like one from ``remove``.
    """
    from cleancut.core import io
    from cleancut.core.result import Result

    opts = build_options(options, **kwargs)
    limit = max_pixels or opts.max_pixels
    image = io.decode(original, max_pixels=limit)
    matte = io.decode(mask, max_pixels=limit)
    gray = matte.rgb[..., 0] if matte.alpha is None else matte.alpha
    if matte.alpha is None and not (
        (matte.rgb[..., 0] == matte.rgb[..., 1]).all()
        and (matte.rgb[..., 1] == matte.rgb[..., 2]).all()
    ):
        from cleancut.errors import InvalidInput

        raise InvalidInput("the mask must be a grayscale image (or an RGBA cut-out)")
    return Result.from_mask(image, gray.copy(), opts, model=opts.model)


def __getattr__(name: str) -> Any:
    if name in ("Options", "OutputSpec", "Background", "Shadow", "Layout", "Length", "Refine"):
        from cleancut.core import types

        return getattr(types, name)
    if name == "Result":
        from cleancut.core.result import Result

        return Result
    raise AttributeError(f"module 'cleancut' has no attribute {name!r}")
