"""Naming and encoding of a job's blobs (shared by the runner and the effects path)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cleancut.core.io import encode, sniff_format
from cleancut.core.types import MEDIA_TYPES, U8, OutputFormat
from cleancut.errors import CorruptImage
from cleancut.jobs.model import CUTOUT, MASK, ORIGINAL, BlobRef
from cleancut.storage import BlobStore

#: Media type and file extension of each input format ``sniff_format`` names.
INPUT_TYPES: dict[str, tuple[str, str]] = {
    "jpeg": ("image/jpeg", "jpg"),
    "png": ("image/png", "png"),
    "webp": ("image/webp", "webp"),
    "tiff": ("image/tiff", "tiff"),
    "bmp": ("image/bmp", "bmp"),
    "gif": ("image/gif", "gif"),
    "heif": ("image/heif", "heic"),
    "avif": ("image/avif", "avif"),
    "psd": ("image/vnd.adobe.photoshop", "psd"),
    "exr": ("image/x-exr", "exr"),
    "hdr": ("image/vnd.radiance", "hdr"),
}
_OUTPUT_EXT: dict[str, str] = {"jpeg": "jpg"}


def prefix(job_id: str) -> str:
    return f"jobs/{job_id}"


def key(job_id: str, name: str) -> str:
    return f"{prefix(job_id)}/{name}"


def save(
    blobs: BlobStore, job_id: str, name: str, data: bytes, media_type: str, filename: str
) -> BlobRef:
    info = blobs.put(key(job_id, name), data)
    return BlobRef(info.key, media_type, info.size, info.etag, filename)


def save_original(blobs: BlobStore, job_id: str, data: bytes) -> BlobRef:
    fmt = sniff_format(data[:512]) or ""
    media_type, ext = INPUT_TYPES.get(fmt, ("application/octet-stream", "bin"))
    return save(blobs, job_id, ORIGINAL, data, media_type, f"{job_id}-original.{ext}")


def save_mask(blobs: BlobStore, job_id: str, matte: U8, name: str = MASK) -> BlobRef:
    return save(blobs, job_id, name, encode_mask(matte), "image/png", f"{job_id}-{name}.png")


def save_cutout(blobs: BlobStore, job_id: str, data: bytes, fmt: OutputFormat) -> BlobRef:
    filename = f"{job_id}.{_OUTPUT_EXT.get(fmt, fmt)}"
    return save(blobs, job_id, CUTOUT, data, MEDIA_TYPES[fmt], filename)


def encode_mask(matte: U8) -> bytes:
    """The model's matte as an 8-bit grayscale PNG (lossless, so effects see it exactly),
    through the same writer as the cut-outs: a job stores two of these, and at 12 MP
    Pillow's encoder took about 100 ms for each."""
    return encode(np.ascontiguousarray(matte, dtype=np.uint8), "png")


def decode_mask(data: bytes) -> U8:
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            out: U8 = np.asarray(img.convert("L"), dtype=np.uint8).copy()
            return out
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImage(f"the stored mask cannot be read: {exc}") from None
