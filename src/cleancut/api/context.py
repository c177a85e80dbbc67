"""What the routers need, built once by ``create_app`` and handed to each router factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from cleancut.api.auth import Authenticator
from cleancut.api.errors import BodyInvalid
from cleancut.api.options import RemovalOptions, parse_options, to_core
from cleancut.core.types import Options
from cleancut.errors import CleancutError
from cleancut.jobs.service import JobService

if TYPE_CHECKING:
    from cleancut.config import Settings
    from cleancut.core.predict import ModelPool


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    service: JobService
    pool: ModelPool
    auth: Authenticator
    heartbeat: float = 15.0

    @property
    def upload_limit(self) -> int:
        return self.settings.server.max_upload_bytes

    @property
    def json_limit(self) -> int:
        # JSON bodies may carry a base64 background image: 4/3 of the upload cap, plus slack.
        return self.upload_limit * 4 // 3 + 64 * 1024

    def core_options(
        self,
        public: RemovalOptions,
        *,
        default_model: str | None = None,
        background_image: bytes | None = None,
    ) -> Options:
        options = to_core(
            public,
            default_model=default_model or self.settings.default_model,
            max_pixels=self.settings.max_pixels,
            background_image=background_image,
        )
        self.pool.registry.get(options.model)  # ModelNotFound for an unknown name, before queueing
        return options


def validate_body(model: type[BaseModel], raw: Any, *prefix: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BodyInvalid(_prefixed(exc, prefix)) from None


def validate_options(raw: str | None, field: str = "options") -> RemovalOptions:
    try:
        return parse_options(raw)
    except ValidationError as exc:
        raise BodyInvalid(_prefixed(exc, (field,))) from None


def missing(field: str, message: str = "Field required") -> BodyInvalid:
    return BodyInvalid([{"loc": (field,), "msg": message, "type": "missing"}])


def _prefixed(exc: ValidationError, prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {**err, "loc": (*prefix, *err["loc"])}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def error_for_code(code: str | None, message: str | None) -> CleancutError:
    """Rebuild the typed error a failed job recorded (by its stable code)."""
    pending: list[type[CleancutError]] = [CleancutError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            try:
                return cls(message or code)
            except TypeError:
                break
        pending.extend(cls.__subclasses__())
    error = CleancutError(message or "the job failed")
    error.code = code or "internal_error"
    return error
