"""The one orchestrator: decode → predict → upsample → refine. Encoding happens on the Result."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from cleancut.core import compose, io, matte, refine, resample
from cleancut.core.predict import Segmenter
from cleancut.core.result import Result
from cleancut.core.types import U8, DecodedImage, Options, ProgressFn, Source, Timings


def _noop(_stage: str, _fraction: float) -> None:
    return None


def model_input(image: DecodedImage) -> U8:
    """Transparent areas of the source hold arbitrary colour; show them to the model as
    plain white so they never look like part of the subject."""
    if image.alpha is None:
        return image.rgb
    a = image.alpha[..., np.newaxis].astype(np.float32) / 255.0
    flat = image.rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    out: U8 = np.clip(flat + 0.5, 0, 255).astype(np.uint8)
    return out


def run(
    source: Source | DecodedImage,
    options: Options,
    segmenter: Segmenter,
    progress: ProgressFn | None = None,
) -> Result:
    report = progress or _noop
    t0 = time.perf_counter()
    report("decode", 0.0)
    image = (
        source
        if isinstance(source, DecodedImage)
        else io.decode(source, max_pixels=options.max_pixels)
    )
    t1 = time.perf_counter()
    report("decode", 1.0)
    report("inference", 0.0)
    prob = segmenter.predict(model_input(image))
    t2 = time.perf_counter()
    report("inference", 1.0)
    report("refine", 0.0)
    model_matte = matte.combine(matte.upsample_u8(prob, image.size), image.alpha)
    result = Result.refined(
        image, model_matte, options, model=segmenter.spec.name, runtime=segmenter.runtime
    )
    t3 = time.perf_counter()
    report("refine", 1.0)
    return replace(result, timings=Timings(decode=t1 - t0, inference=t2 - t1, refine=t3 - t2))


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the loops of the model-input resize,
    refinement and composition on a tiny synthetic photo, so that a server's first job
    does not pay for it (about half a second in a fresh process)."""
    # A square and a long strip: photos of 2048 px a side or more take the snap's
    # coarse path (``refine_band._snap_field``), which has loops of its own.
    for h, w in ((64, 64), (64, 2048)):
        yy, xx = np.mgrid[0:h, 0:w]
        alpha = np.where(np.hypot(yy - h / 2, (xx - w / 2) * h / w) < 20, 255, 0).astype(np.uint8)
        rgb = np.dstack([alpha, 255 - alpha, np.full_like(alpha, 90)])
        refined = refine.refine(rgb, alpha, max(refine.PASSES))
    compose.cutout(rgb, refined)
    # Both kernels, and the row pass on bytes and on floats.
    resample.to_planes(rgb, (48, 80), ("lanczos", "area"), (0.0,) * 3, (1.0,) * 3)
