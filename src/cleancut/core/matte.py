"""Pure ndarray operations on mattes. Mattes are float32 in [0, 1] until they are stored."""

from __future__ import annotations

import cv2
import numpy as np

from cleancut.core.types import F32, U8


def upsample(prob: F32, size: tuple[int, int]) -> F32:
    """Resize the model's map to ``size`` (width, height) smoothly.

    Bicubic on float values gives smooth edges without the stair-steps of nearest or the
    softness of bilinear at 3-4x; its small overshoot is clipped back into [0, 1].
    """
    w, h = size
    if prob.shape[1] == w and prob.shape[0] == h:
        return prob
    out = _resize(prob, size)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def upsample_u8(prob: F32, size: tuple[int, int]) -> U8:
    """``to_u8(upsample(prob, size))`` without a full-size float matte. Enlarging runs
    bicubic on the map in 16-bit fixed point: the 12 MP matte took 9 ms of CPU instead
    of 21 in float (and a 48 MB float array less). The two differ by one level at
    rounding boundaries, under 0.1 % of pixels; OpenCV also rounds halves to even where
    ``to_u8`` rounds them up."""
    w, h = size
    if prob.shape[1] == w and prob.shape[0] == h:
        return to_u8(prob)
    if _shrinks(prob, size):
        # Area averaging of values in [0, 1] stays there: nothing to clip.
        return np.asarray(cv2.convertScaleAbs(_resize(prob, size), alpha=255.0), np.uint8)
    # 16-bit resizing saturates the bicubic overshoot at both ends, as clipping does.
    fixed = (np.clip(prob, 0.0, 1.0) * np.float32(65535.0) + np.float32(0.5)).astype(np.uint16)
    big = cv2.resize(fixed, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.asarray(cv2.convertScaleAbs(big, alpha=255.0 / 65535.0), np.uint8)


def _resize(prob: F32, size: tuple[int, int]) -> F32:
    """Area averaging when shrinking, bicubic when enlarging (see ``upsample``); unclipped."""
    interp = cv2.INTER_AREA if _shrinks(prob, size) else cv2.INTER_CUBIC
    out: F32 = np.asarray(cv2.resize(prob, size, interpolation=interp), dtype=np.float32)
    return out


def _shrinks(prob: F32, size: tuple[int, int]) -> bool:
    """Whether ``size`` (width, height) holds fewer pixels than the map."""
    return size[0] * size[1] < int(prob.shape[0]) * int(prob.shape[1])


def to_u8(alpha: F32) -> U8:
    out: U8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def binary(alpha: U8, threshold: float = 0.5) -> U8:
    """A hard mask: 255 where the matte reaches ``threshold`` (0..1), else 0."""
    cut = round(threshold * 255)
    out: U8 = np.where(alpha >= max(cut, 1), 255, 0).astype(np.uint8)
    return out


def combine(model_alpha: U8, source_alpha: U8 | None) -> U8:
    """Pixels that were already transparent in the source stay transparent."""
    if source_alpha is None:
        return model_alpha
    prod = model_alpha.astype(np.uint16) * source_alpha.astype(np.uint16)
    return ((prod + 127) // 255).astype(np.uint8)
