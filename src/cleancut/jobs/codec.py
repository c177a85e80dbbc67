"""Lossless JSON persistence of :class:`Options` (and the other values a job row holds).

The codec walks the dataclass tree by its type hints, so groups the core adds later (such as
``Options.refine``) round-trip without changes here. Tuples become lists, ``bytes`` become
base64 strings. Missing keys take the field's default (rows written by an older version still
load); unknown keys and ill-typed values raise InvalidOptions. This is internal persistence,
not the public API schema.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from cleancut.core.types import Options
from cleancut.errors import InvalidOptions
from cleancut.net_webhooks import WebhookSpec


def options_to_json(options: Options) -> dict[str, Any]:
    out = _encode(options)
    assert isinstance(out, dict)
    return out


def options_from_json(data: Mapping[str, Any]) -> Options:
    value = _decode(Options, data, "options")
    assert isinstance(value, Options)
    return value


def webhook_to_json(spec: WebhookSpec) -> dict[str, Any]:
    out = _encode(spec)
    assert isinstance(out, dict)
    if isinstance(spec.secret, bytes):
        out["secret"] = {"base64": base64.b64encode(spec.secret).decode("ascii")}
    return out


def webhook_from_json(data: Mapping[str, Any]) -> WebhookSpec:
    data = dict(data)
    secret = data.get("secret")
    if isinstance(secret, Mapping):
        data["secret"] = _b64(secret.get("base64"), "webhook.secret")
    kwargs = {f.name: data[f.name] for f in dataclasses.fields(WebhookSpec) if f.name in data}
    if extra := set(data) - set(kwargs):
        raise InvalidOptions(f"unknown webhook key(s): {', '.join(sorted(extra))}")
    return WebhookSpec(**kwargs)


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _decode_union(typing.get_args(tp), value, path)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise InvalidOptions(f"{path}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin is tuple:
        return _decode_tuple(typing.get_args(tp), value, path)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path)
    return _decode_scalar(tp, value, path)


def _decode_union(args: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None:
        if type(None) in args:
            return None
        raise InvalidOptions(f"{path}: must not be null")
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _decode(arg, value, path)
        except InvalidOptions as exc:
            errors.append(exc.message)
    raise InvalidOptions("; ".join(errors) or f"{path}: unexpected {value!r}")


def _decode_tuple(args: tuple[Any, ...], value: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidOptions(f"{path}: expected a list, got {type(value).__name__}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
        raise InvalidOptions(f"{path}: expected {len(args)} items, got {len(value)}")
    return tuple(
        _decode(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
    )


def _decode_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise InvalidOptions(f"{path}: expected an object, got {type(value).__name__}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    if unknown := set(value) - names:
        raise InvalidOptions(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    kwargs = {k: _decode(hints[k], v, f"{path}.{k}") for k, v in value.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidOptions(f"{path}: {exc}") from None


def _decode_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is Any:
        return value
    if tp is bytes:
        return _b64(value, path)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (str, bool):
        if isinstance(value, tp):
            return value
    else:
        raise InvalidOptions(f"{path}: cannot decode type {tp!r}")
    raise InvalidOptions(f"{path}: expected {tp.__name__}, got {type(value).__name__}")


def _b64(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidOptions(f"{path}: expected base64 text")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidOptions(f"{path}: invalid base64") from None
