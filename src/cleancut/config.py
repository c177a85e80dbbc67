"""Settings, read from CLEANCUT_* environment variables (nested with "__").

Built by the CLI or the app when they start, never at import time, and passed down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cleancut.core.runtimes import Device, Precision, RuntimeConfig, RuntimeName
from cleancut.core.weights import default_cache_dir

if TYPE_CHECKING:
    from cleancut.core.models import ModelRegistry
    from cleancut.core.predict import LogFn, ModelPool
    from cleancut.core.weights import WeightsCache


def default_models_file() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg).expanduser() / "cleancut" / "models.json"


class InferenceSettings(BaseModel):
    runtime: RuntimeName = "auto"
    device: Device = "cpu"
    precision: Precision = "auto"
    threads: int | None = Field(default=None, ge=1)
    requests: int = Field(default=1, ge=1, le=16)


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

    def runtime_config(self) -> RuntimeConfig:
        inf = self.inference
        return RuntimeConfig(
            runtime=inf.runtime,
            device=inf.device,
            precision=inf.precision,
            threads=inf.threads,
            requests=inf.requests,
            cache_dir=self.cache_dir / "openvino",
        )

    def registry(self) -> ModelRegistry:
        from cleancut.core.models import ModelRegistry

        return ModelRegistry.load(self.models_file)

    def weights(self, log: LogFn | None = None) -> WeightsCache:
        from cleancut.core.weights import WeightsCache

        return WeightsCache(self.cache_dir, npm=self.npm, log=log)

    def model_pool(self, log: LogFn | None = None) -> ModelPool:
        from cleancut.core.predict import ModelPool

        return ModelPool(self.registry(), self.weights(log), self.runtime_config(), log)
