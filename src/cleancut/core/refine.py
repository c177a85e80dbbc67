"""Edge refinement and colour decontamination at full resolution, guided by the photo.

The model sees the photo at 1024² at most, so its matte is soft and a little misplaced
along every outline, and it knows nothing of the colours it cuts through. Refinement
revisits only the uncertain band around the matte's 0.5 contour; decontamination replaces
the old background's colour in semi-transparent pixels with an estimate of the subject's.

Levels (``Refine.level``):

0. the model's matte, unchanged.
1. **snap**: inside a band of ±0.5 % of the long side around the contour, a colour guided
   filter of the binarised matte (radius 2 px at ≤1024 px) moves solid outlines onto the
   photo's colour edges and makes them crisp; where a local foreground/background colour
   model says pixels are mixed (hair, fur, nets), the model's own soft alpha is kept.
2. **snap + local colour matting**: as 1 with a tighter filter (radius 1 px), and in mixed
   zones alpha is taken half from the colour model (projection of each pixel's colour
   onto the line between the nearby sure-foreground and sure-background mean colours,
   trusted in proportion to how well they separate relative to their spread).
3. **two passes of 2**: the second pass re-derives the band, the sure regions and the
   colour samples from the first pass's matte, which sits closer to the true outline.

Every pass leaves the model's alpha alone where the model is unsure over a whole
neighbourhood (a plateau near 0.5 rather than a ramp): there a snapped edge would only be
a confident guess. See ``refine_band`` for the pass itself; all three stay inside the
band (definite foreground, definite background and holes never change), work tile by tile
on the tiles that touch the band, and never stretch or re-normalise values.

Measured cost (2026-12-04, 2-core AMD EPYC VM, ``bench/quality.py --refinement``: medians
over 174 eval photos sampled from every set, and over 3 runs on a 12 MP photo, an eval
photo upscaled to 4000×3000):

=========================  ===========================  ==================================
operation                  eval photos (0.1–1 MP)       12 MP: wall s (CPU s)
=========================  ===========================  ==================================
level 1                    20 ms                        0.24 (0.34)
level 2 (the default)      20 ms                        0.20 (0.30)
level 3                    40 ms                        0.36 (0.54)
decontaminate (any > 0)    +65 ms                       0.84 (0.87)
=========================  ===========================  ==================================

Memory stays at a few bytes per pixel: on the 12 MP speed-benchmark photo (3654×3284) the
peak of level 2 is about 6.6 bytes per pixel and that of decontamination about 12, outputs
included (``tracemalloc``, 2026-12-04; decontamination grows with the soft pixels, and the
tests hold a 12 MP disc under 8 and 12), because all float work happens per tile.

Decontamination uses multi-level foreground estimation (``refine_fg``) and blends the photo
toward the estimated foreground colour by ``strength``, only where 0 < α < 255.
"""

from __future__ import annotations

import cv2
import numpy as np

from cleancut.core import refine_fg
from cleancut.core.refine_band import PassParams, refine_pass
from cleancut.core.refine_ops import TILE
from cleancut.core.types import U8, Refine
from cleancut.errors import InvalidInput

#: Tile side of the foreground estimate (its tiles carry a halo of only 3 px).
FG_TILE = 256

_SNAP = PassParams(snap_radius=2, gate=(0.1, 0.4), gate_kappa=2.0, use_colour=0.0)
_MATTE = PassParams(snap_radius=1, gate=(0.2, 0.5), gate_kappa=2.0, kappa=16.0, use_colour=0.5)
#: The passes run for each level, in order.
PASSES: dict[int, tuple[PassParams, ...]] = {
    0: (),
    1: (_SNAP,),
    2: (_MATTE,),
    3: (_MATTE, _MATTE),
}


def apply(rgb: U8, matte: U8, options: Refine) -> tuple[U8, U8 | None]:
    """(refined alpha, decontaminated colours or None) for ``options``."""
    alpha = refine(rgb, matte, options.level)
    if options.decontaminate == 0.0:
        return alpha, None
    return alpha, decontaminate(rgb, alpha, options.decontaminate)


def refine(rgb: U8, alpha: U8, level: int, *, tile: int = TILE) -> U8:
    """The matte refined at ``level`` (0–3) with the photo as guide; uint8, straight alpha.

    ``tile`` bounds the working memory (a few dozen float32 arrays of tile² plus halo);
    it changes nothing in the result.
    """
    Refine(level=level)  # validates
    _check_pair(rgb, alpha)
    out = alpha
    for params in PASSES[level]:
        out = refine_pass(rgb, out, params, tile)
    return out


def estimate_foreground(rgb: U8, alpha: U8, *, tile: int = FG_TILE) -> U8:
    """The subject's own colour F (H×W×3 uint8) where 0 < α < 255, such that α·F + (1−α)·B
    reproduces the photo with a smooth background B. Opaque and fully transparent pixels
    keep the photo's colour."""
    _check_pair(rgb, alpha)
    return refine_fg.estimate(rgb, alpha, tile=tile)


def decontaminate(rgb: U8, alpha: U8, strength: float, *, tile: int = FG_TILE) -> U8:
    """The photo with semi-transparent pixels moved toward their estimated foreground colour
    by ``strength`` (0 = unchanged, 1 = fully replaced), so the old background no longer
    tints soft edges. Opaque and fully transparent pixels are returned unchanged."""
    Refine(level=0, decontaminate=strength)  # validates
    _check_pair(rgb, alpha)
    if strength == 0.0:
        return rgb.copy()
    fg = refine_fg.estimate(rgb, alpha, tile=tile)
    if strength == 1.0:
        return fg
    # uint8 in, uint8 out, rounded: no full-size float copies of a 12 MP photo.
    cv2.addWeighted(rgb, 1.0 - strength, fg, strength, 0.0, dst=fg)
    return fg


def _check_pair(rgb: U8, alpha: U8) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InvalidInput(f"image must be H×W×3 uint8, not {rgb.shape} {rgb.dtype}")
    if alpha.shape != rgb.shape[:2] or alpha.dtype != np.uint8:
        raise InvalidInput(
            f"alpha must be H×W uint8 matching the image {rgb.shape[:2]}, "
            f"not {alpha.shape} {alpha.dtype}"
        )
