"""A job's stored mattes: 8-bit grayscale PNGs that read back exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cleancut.errors import CorruptImage
from cleancut.jobs.blobs import decode_mask, encode_mask


@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (1500, 1200)])
def test_mask_round_trips_exactly(shape: tuple[int, int]) -> None:
    # The largest is split into parallel bands by the PNG writer.
    mask = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    data = encode_mask(mask)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.mode == "L" and img.size == shape[::-1]
    np.testing.assert_array_equal(decode_mask(data), mask)


def test_a_strided_matte_is_stored_as_its_values() -> None:
    mask = np.random.default_rng(4).integers(0, 256, (40, 60), dtype=np.uint8)
    view = np.asfortranarray(mask)[::2, ::3]
    np.testing.assert_array_equal(decode_mask(encode_mask(view)), mask[::2, ::3])


def test_a_damaged_mask_is_corrupt() -> None:
    data = encode_mask(np.zeros((30, 30), np.uint8))
    with pytest.raises(CorruptImage):
        decode_mask(data[: len(data) // 2])
