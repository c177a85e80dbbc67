"""The image store's records: each image is its bytes plus a small JSON record, both in the
app's blob store under ``images/`` (beside the jobs' ``jobs/``, which the job cleaner sweeps;
images stay until deleted). Everything is scoped by owner: one key never reads, changes or
even learns of another key's images.

Keys::

    images/owners/<owner>/<image id>/meta.json   the record (ImageRecord as JSON)
    images/owners/<owner>/<image id>/content     the image's bytes (jpeg, png or webp)
    images/public/<image id>                     {"owner": ...} once published

``<owner>`` is the caller's owner id (a digest prefix of its key) or ``shared`` when the
server runs without keys.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
from PIL import Image

from cleancut.core.io import decode, encode
from cleancut.core.types import U8
from cleancut.errors import CleancutError, CorruptImage
from cleancut.jobs.inspect import probe
from cleancut.jobs.model import BlobRef
from cleancut.storage import BlobNotFound, BlobStore

Format = Literal["jpeg", "png", "webp"]
FORMATS: tuple[Format, ...] = ("jpeg", "png", "webp")
MEDIA_TYPES: dict[str, str] = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
EXTENSIONS: dict[str, str] = {"jpeg": "jpg", "png": "png", "webp": "webp"}
ROOT = "images"
_ID = re.compile(r"image_[A-Za-z0-9]{1,64}")
#: EXIF orientations that swap width and height (rotated by 90 degrees).
_TRANSPOSED = {5, 6, 7, 8}


class ImageNotFound(CleancutError):
    code = "image_not_found"
    http_status = 404


@dataclass(frozen=True)
class ImageRecord:
    id: str
    owner: str | None
    name: str
    format: Format
    width: int
    height: int
    size: int
    etag: str
    created_at: float
    published: bool = False

    @property
    def filename(self) -> str:
        return f"{self.id}.{EXTENSIONS[self.format]}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def new_image_id() -> str:
    return "image_" + secrets.token_hex(12)


def describe(data: bytes, max_pixels: int) -> tuple[bytes, Format, int, int]:
    """``(bytes to store, format, width, height)`` of an upload. JPEG, PNG and WebP are kept
    as they are (width and height as displayed, after EXIF rotation); any other format
    cleancut reads is converted to PNG once, here."""
    fmt = probe(data, max_pixels)  # type, header and pixel limit: 415 / 422 / 413
    if fmt in FORMATS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as img:
                    width, height = img.size
                    orientation = img.getexif().get(0x0112, 1)
        except (OSError, ValueError, SyntaxError) as exc:
            raise CorruptImage(f"cannot read the {fmt} image: {exc}") from None
        if orientation in _TRANSPOSED:
            width, height = height, width
        return data, fmt, width, height
    image = decode(data, max_pixels=max_pixels)
    pixels = image.rgb if image.alpha is None else _rgba(image.rgb, image.alpha)
    width, height = image.size
    return encode(pixels, "png", icc_profile=image.icc_profile), "png", width, height


def convert(data: bytes, fmt: Format, quality: int, max_pixels: int) -> tuple[bytes, int, int]:
    """Re-encode an image as ``fmt``: JPEG flattens transparency onto white, WebP is lossy
    at ``quality`` (with alpha), PNG is lossless."""
    image = decode(data, max_pixels=max_pixels)
    pixels = image.rgb if image.alpha is None else _rgba(image.rgb, image.alpha)
    out = encode(pixels, fmt, quality=quality, lossless=False, icc_profile=image.icc_profile)
    width, height = image.size
    return out, width, height


def _rgba(rgb: U8, alpha: U8) -> U8:
    out: U8 = np.dstack([rgb, alpha])
    return out


class ImageRepo:
    """Images of every owner in one blob store; all methods are synchronous."""

    def __init__(self, blobs: Callable[[], BlobStore]) -> None:
        self._store = blobs  # looked up on use: the router is built before the service starts
        self._lock = threading.Lock()  # publish read-modifies-writes the record

    @property
    def _blobs(self) -> BlobStore:
        return self._store()

    @staticmethod
    def _folder(owner: str | None, image_id: str) -> str:
        return f"{ROOT}/owners/{owner or 'shared'}/{image_id}"

    def create(
        self, owner: str | None, name: str, data: bytes, fmt: Format, width: int, height: int
    ) -> ImageRecord:
        image_id = new_image_id()
        folder = self._folder(owner, image_id)
        info = self._blobs.put(f"{folder}/content", data)
        record = ImageRecord(
            id=image_id,
            owner=owner,
            name=name,
            format=fmt,
            width=width,
            height=height,
            size=info.size,
            etag=info.etag,
            created_at=time.time(),
        )
        try:
            self._write(record)
        except BaseException:
            self._blobs.delete_prefix(folder)
            raise
        return record

    def get(self, owner: str | None, image_id: str) -> ImageRecord:
        if not _ID.fullmatch(image_id):
            raise ImageNotFound(f"no image {image_id}")
        try:
            raw = json.loads(self._blobs.get(f"{self._folder(owner, image_id)}/meta.json"))
        except BlobNotFound:
            raise ImageNotFound(f"no image {image_id}") from None
        return ImageRecord(**raw)

    def content(self, record: ImageRecord) -> tuple[BlobRef, bytes]:
        key = f"{self._folder(record.owner, record.id)}/content"
        try:
            data = self._blobs.get(key)
        except BlobNotFound:
            raise ImageNotFound(f"image {record.id} has no content") from None
        return BlobRef(key, record.media_type, record.size, record.etag, record.filename), data

    def delete(self, owner: str | None, image_id: str) -> ImageRecord:
        record = self.get(owner, image_id)
        with self._lock:
            self._blobs.delete(f"{ROOT}/public/{image_id}")
            self._blobs.delete_prefix(self._folder(owner, image_id))
        return record

    def publish(self, owner: str | None, image_id: str) -> ImageRecord:
        with self._lock:
            record = self.get(owner, image_id)
            if not record.published:
                self._blobs.put(f"{ROOT}/public/{image_id}", json.dumps({"owner": owner}).encode())
                record = replace(record, published=True)
                self._write(record)
        return record

    def public(self, image_id: str) -> ImageRecord:
        """A published image, whoever owns it; ImageNotFound otherwise."""
        if not _ID.fullmatch(image_id):
            raise ImageNotFound(f"no public image {image_id}")
        try:
            owner = json.loads(self._blobs.get(f"{ROOT}/public/{image_id}"))["owner"]
        except BlobNotFound:
            raise ImageNotFound(f"no public image {image_id}") from None
        record = self.get(owner, image_id)
        if not record.published:
            raise ImageNotFound(f"no public image {image_id}")
        return record

    def _write(self, record: ImageRecord) -> None:
        folder = self._folder(record.owner, record.id)
        self._blobs.put(f"{folder}/meta.json", json.dumps(asdict(record)).encode())
