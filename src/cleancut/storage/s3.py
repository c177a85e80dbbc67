"""S3-compatible object storage as a blob store (boto3): ``s3://bucket/prefix``.

Keys are checked like the local store's and live under the URL's prefix. A ``put`` is one
``PutObject``, which S3 makes atomic (readers see the old or the new object); the content's
sha256 travels as object metadata, so ``stat`` reports the same etag as the local store.
Endpoint, region and credentials come from :class:`S3Options` (the server's settings), else
from the URL's query (``?endpoint=http://127.0.0.1:9000&region=eu-west-1``), else from boto3's
own chain (``AWS_*`` variables, config files, instance roles).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from cleancut.errors import InvalidOptions
from cleancut.storage import BlobInfo, BlobNotFound, check_key

_MISSING = {"NoSuchKey", "404", "NotFound"}
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None  # None: AWS itself (or AWS_ENDPOINT_URL)
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    #: path-style addressing (``endpoint/bucket/key``), which most self-hosted servers want
    path_style: bool = False
    #: lifetime of pre-signed download URLs, seconds
    presign_expiry: int = 900


def parse_url(url: str) -> tuple[str, str, S3Options]:
    """``s3://bucket/prefix?endpoint=...&region=...`` → (bucket, prefix, options)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise InvalidOptions(f"not an s3://bucket/prefix URL: {url!r}")
    prefix = parts.path.strip("/")
    if prefix:
        check_key(prefix)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    options = S3Options(
        endpoint_url=query.get("endpoint"),
        region=query.get("region"),
        path_style=query.get("path_style", "").lower() in ("1", "true", "yes"),
    )
    return parts.netloc, prefix, options


def open_s3(url: str, options: S3Options | None = None) -> S3BlobStore:
    """The store at ``url``; set fields of ``options`` win over the URL's query."""
    bucket, prefix, from_url = parse_url(url)
    if options is not None:
        from_url = replace(
            options,
            endpoint_url=options.endpoint_url or from_url.endpoint_url,
            region=options.region or from_url.region,
            path_style=options.path_style or from_url.path_style,
        )
    return S3BlobStore(bucket, prefix, options=from_url)


def make_client(options: S3Options) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path" if options.path_style else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=32,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
        config=config,
    )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    def __init__(
        self, bucket: str, prefix: str = "", *, options: S3Options | None = None, client: Any = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = options or S3Options()
        self._client = client if client is not None else make_client(self.options)

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, exc: Exception) -> bool:
        return _code(exc) in _MISSING

    def put(self, key: str, data: bytes) -> BlobInfo:
        digest = hashlib.sha256(data).hexdigest()
        self._client.put_object(
            Bucket=self.bucket, Key=self._full(key), Body=data, Metadata={"sha256": digest}
        )
        return BlobInfo(key, len(data), digest, time.time())

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if self._missing(exc):
                raise BlobNotFound(f"no blob {key!r}") from None
            raise
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.get(key))

    def stat(self, key: str) -> BlobInfo:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if self._missing(exc):
                raise BlobNotFound(f"no blob {key!r}") from None
            raise
        etag = head.get("Metadata", {}).get("sha256") or str(head.get("ETag", "")).strip('"')
        return BlobInfo(key, int(head["ContentLength"]), etag, head["LastModified"].timestamp())

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except BlobNotFound:
            return False
        return True

    def delete(self, key: str) -> bool:
        if not self.exists(key):
            return False
        self._client.delete_object(Bucket=self.bucket, Key=self._full(key))
        return True

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.iter_keys(prefix))
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": self._full(k)} for k in keys[start : start + _DELETE_BATCH]]
            response = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if errors := response.get("Errors"):
                raise OSError(f"deleting {len(errors)} blobs under {prefix!r} failed: {errors[0]}")
        return len(keys)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        folder = prefix.strip("/")
        if folder:
            check_key(folder)
        root = f"{self.prefix}/" if self.prefix else ""
        listing = f"{root}{folder}/" if folder else root
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=listing):
            for item in page.get("Contents", ()):
                key = str(item["Key"])[len(root) :]
                if not any(part.startswith(".") for part in key.split("/")):
                    yield key

    def presigned_url(self, key: str, expires: int | None = None) -> str:
        """A URL that downloads the blob without credentials until it expires."""
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._full(key)},
            ExpiresIn=expires or self.options.presign_expiry,
        )
        return url

    def ping(self) -> None:
        """Raises when the bucket cannot be reached (readiness)."""
        self._client.head_bucket(Bucket=self.bucket)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
