"""Typed errors. Each carries a stable machine ``code`` and the HTTP status it maps to,
so the CLI and (later) the server translate them in exactly one place."""

from __future__ import annotations


class CleancutError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InvalidInput(CleancutError):
    code = "invalid_input"
    http_status = 400


class InvalidOptions(InvalidInput):
    code = "invalid_options"
    http_status = 400


class UnsupportedFormat(CleancutError):
    code = "unsupported_format"
    http_status = 415


class CorruptImage(CleancutError):
    code = "corrupt_image"
    http_status = 422


class ImageTooLarge(CleancutError):
    code = "image_too_large"
    http_status = 413


class ModelUnavailable(CleancutError):
    """The model's weights are not in the cache and could not be obtained."""

    code = "model_unavailable"
    http_status = 503


class ModelNotFound(CleancutError):
    code = "model_not_found"
    http_status = 404


class ModelError(CleancutError):
    """The ONNX file loaded but does not fit its spec (wrong input/output names or shapes)."""

    code = "model_error"
    http_status = 500


class RuntimeUnavailable(CleancutError):
    """A requested inference runtime or device is missing; we never fall back silently."""

    code = "runtime_unavailable"
    http_status = 503


class JobNotFound(CleancutError):
    code = "job_not_found"
    http_status = 404


class ResultNotFound(CleancutError):
    """The job exists but has no such result (not finished, expired, or never produced)."""

    code = "result_not_found"
    http_status = 404


class JobConflict(CleancutError):
    """The request does not fit the job's state (cancel a finished job, effects on a failed one)."""

    code = "job_conflict"
    http_status = 409


class Unauthorized(CleancutError):
    code = "unauthorized"
    http_status = 401


class Forbidden(CleancutError):
    code = "forbidden"
    http_status = 403


class UploadTooLarge(CleancutError):
    code = "upload_too_large"
    http_status = 413


class _RetryLater(CleancutError):
    """Base of the refusals a client should retry; ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class RateLimited(_RetryLater):
    code = "rate_limited"
    http_status = 429


class QueueFull(_RetryLater):
    code = "queue_full"
    http_status = 503


class JobTimedOut(CleancutError):
    """A job ran past the server's per-job time limit."""

    code = "job_timeout"
    http_status = 504


class JobInterrupted(CleancutError):
    """The server stopped (or crashed) while the job ran, and its retries are used up."""

    code = "interrupted"
    http_status = 500


class OutputUploadFailed(CleancutError):
    """A job's result could not be PUT to the destination its submission named (a pre-signed
    URL): the job fails with this code and the reason in its message."""

    code = "output_upload_failed"
    http_status = 502
