"""Settings, read from CLEANCUT_* environment variables (nested with "__").

Built by the CLI or the app when they start, never at import time, and passed down.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cleancut.core.runtimes import Device, Mode, Precision, RuntimeConfig, RuntimeName
from cleancut.core.weights import default_cache_dir

if TYPE_CHECKING:
    from cleancut.core.models import ModelRegistry
    from cleancut.core.predict import LogFn, ModelPool
    from cleancut.core.weights import WeightsCache
    from cleancut.jobs.distributed.config import DistributedConfig


def default_models_file() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg).expanduser() / "cleancut" / "models.json"


def default_data_dir() -> Path:
    """Where the server keeps its job database and blobs: ``$XDG_DATA_HOME/cleancut/server``."""
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "cleancut" / "server"


def hash_api_key(key: str) -> str:
    """The sha256 hex digest under which an API key is stored and compared."""
    return hashlib.sha256(key.encode()).hexdigest()


def _string_list(value: Any) -> Any:
    """A list from JSON (``["a","b"]``) or a comma-separated string (``a,b``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


class RateLimitSettings(BaseModel):
    """A token bucket per API key (or per client address when auth is off)."""

    model_config = {"frozen": True}

    per_minute: float = Field(default=600.0, ge=0, description="sustained requests/minute; 0 = off")
    burst: int = Field(default=60, ge=1, description="requests allowed at once")


class CompatSettings(BaseModel):
    """Vendor-compatible routers, each on by default: CLEANCUT_SERVER__COMPAT__REMOVEBG=false."""

    model_config = {"frozen": True}

    adobe_v1: bool = True
    adobe_v2: bool = True
    image_store: bool = True
    artworks: bool = True
    tools: bool = True
    removebg: bool = True


class S3Settings(BaseModel):
    """S3-compatible storage for ``BLOB_URL=s3://bucket/prefix`` (CLEANCUT_SERVER__S3__*); unset
    fields fall back to boto3's own chain (AWS_* variables, config files, instance roles)."""

    model_config = {"frozen": True}

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    path_style: bool = False


class ServerSettings(BaseModel):
    """``cleancut serve``: CLEANCUT_SERVER__* variables, e.g. CLEANCUT_SERVER__PORT=8080."""

    model_config = {"frozen": True}

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
    workers: int = Field(default=1, ge=1, le=64)
    queue_size: int = Field(default=64, ge=1)
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    retention_seconds: float = Field(default=24 * 3600.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)
    job_timeout: float = Field(default=300.0, gt=0)
    sync_timeout: float = Field(default=120.0, gt=0)
    #: plain keys are accepted on input (CLEANCUT_SERVER__API_KEYS=k1,k2), hashed at once into
    #: api_key_hashes and dropped: this field is always empty after validation.
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(default=(), exclude=True, repr=False)
    api_key_hashes: Annotated[tuple[str, ...], NoDecode] = ()
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    allow_private_networks: bool = False
    compat: CompatSettings = Field(default_factory=CompatSettings)
    #: "local": the embedded default (SQLite, a folder, in-process workers). "distributed":
    #: an API node only, on the servers below; `cleancut worker` processes run the jobs.
    backend: Literal["local", "distributed"] = "local"
    database_url: str | None = None  # postgresql://user:password@host:5432/db
    broker_url: str | None = None  # redis://host:6379/0 or amqp://user:password@host:5672//
    events_url: str | None = None  # redis://host:6379/0; default: BROKER_URL when it is Redis
    blob_url: str | None = None  # s3://bucket/prefix, or a folder every node shares
    s3: S3Settings = Field(default_factory=S3Settings)
    #: answer result downloads with a 307 to the object store's pre-signed URL (S3 stores
    #: only; the bytes then never pass through the API node)
    presigned_downloads: bool = False
    #: prefix of queue names and Redis channels (several deployments on one broker)
    namespace: str = Field(default="cleancut", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    #: seconds without a worker heartbeat before its job is queued again
    worker_lease: float = Field(default=30.0, gt=0)
    #: seconds before a queued job's message is published again (a broker that lost it)
    redeliver_after: float = Field(default=300.0, gt=0)
    #: the web page at / (CLEANCUT_SERVER__WEB=false turns it off)
    web: bool = True

    @model_validator(mode="before")
    @classmethod
    def _hash_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("api_keys"):
            return data
        data = dict(data)
        plain = _string_list(data.pop("api_keys"))
        if not isinstance(plain, list | tuple) or not all(isinstance(k, str) for k in plain):
            raise ValueError("api_keys must be a list of strings")
        hashes = list(_string_list(data.get("api_key_hashes") or []))
        hashes += [hash_api_key(k) for k in plain if k]
        data["api_key_hashes"] = tuple(dict.fromkeys(hashes))
        return data

    @field_validator("api_key_hashes", "cors_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _string_list(value)

    @field_validator("api_key_hashes")
    @classmethod
    def _hex_digests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(v.strip().lower() for v in value)
        for v in out:
            if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
                raise ValueError("api_key_hashes must be sha256 hex digests (64 hex digits)")
        return out

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_key_hashes)


class InferenceSettings(BaseModel):
    runtime: RuntimeName = "auto"
    device: Device = "cpu"
    precision: Precision = "auto"
    threads: int | None = Field(default=None, ge=1)
    #: OpenVINO infer requests; default: as many as jobs run at once (server workers)
    requests: int | None = Field(default=None, ge=1, le=16)
    #: ``auto``: throughput (one stream per request) where a server runs several jobs at
    #: once with several requests, else latency
    mode: Literal["auto", "latency", "throughput"] = "auto"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLEANCUT_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    cache_dir: Path = Field(default_factory=default_cache_dir)
    models_file: Path = Field(default_factory=default_models_file)
    default_model: str = "isnet-general"
    max_pixels: int = Field(default=50_000_000, ge=1)
    npm: str = "npm"
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    def runtime_config(self, jobs: int = 1) -> RuntimeConfig:
        """The session settings for a process that runs ``jobs`` jobs at once."""
        inf = self.inference
        requests = inf.requests or jobs
        mode: Mode = "throughput" if jobs > 1 and requests > 1 else "latency"
        return RuntimeConfig(
            runtime=inf.runtime,
            device=inf.device,
            precision=inf.precision,
            threads=inf.threads,
            requests=requests,
            mode=mode if inf.mode == "auto" else inf.mode,
            cache_dir=self.cache_dir / "openvino",
        )

    def registry(self) -> ModelRegistry:
        from cleancut.core.models import ModelRegistry

        return ModelRegistry.load(self.models_file)

    def weights(self, log: LogFn | None = None) -> WeightsCache:
        from cleancut.core.weights import WeightsCache

        return WeightsCache(self.cache_dir, npm=self.npm, log=log)

    def distributed_config(self) -> DistributedConfig:
        """The distributed backend's configuration (``cleancut worker``, API nodes)."""
        from cleancut.errors import InvalidOptions
        from cleancut.jobs.distributed.config import DistributedConfig
        from cleancut.storage.s3 import S3Options

        srv = self.server
        events = srv.events_url or (
            srv.broker_url if (srv.broker_url or "").startswith(("redis", "rediss")) else None
        )
        missing = [
            f"CLEANCUT_SERVER__{name.upper()}"
            for name, value in (
                ("database_url", srv.database_url),
                ("broker_url", srv.broker_url),
                ("events_url", events),
                ("blob_url", srv.blob_url),
            )
            if not value
        ]
        if missing:
            raise InvalidOptions(
                f"the distributed backend needs {', '.join(missing)}",
                hint="see the README's deployment section",
            )
        assert srv.database_url and srv.broker_url and events and srv.blob_url
        secret = srv.s3.secret_access_key
        return DistributedConfig(
            database_url=srv.database_url,
            broker_url=srv.broker_url,
            events_url=events,
            blob_url=srv.blob_url,
            s3=S3Options(
                endpoint_url=srv.s3.endpoint_url,
                region=srv.s3.region,
                access_key_id=srv.s3.access_key_id,
                secret_access_key=secret.get_secret_value() if secret else None,
                path_style=srv.s3.path_style,
            ),
            namespace=srv.namespace,
            default_model=self.default_model,
            queue_size=srv.queue_size,
            max_attempts=srv.max_attempts,
            retention_seconds=srv.retention_seconds,
            job_timeout=srv.job_timeout,
            lease_seconds=srv.worker_lease,
            redeliver_after=srv.redeliver_after,
            cleanup_interval=300.0,
        )

    def model_pool(self, log: LogFn | None = None, *, jobs: int = 1) -> ModelPool:
        """Models for a process that runs ``jobs`` jobs at once (server workers)."""
        from cleancut.core.predict import ModelPool

        return ModelPool(self.registry(), self.weights(log), self.runtime_config(jobs), log)
