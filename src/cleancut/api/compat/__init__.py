"""Drop-in vendor APIs. Each vendor is one small module that translates its requests into our
``Options`` + a ``Submission`` and renders our ``Job`` in its own shapes; none runs the pipeline or
keeps a job store of its own.

A module exposes ``vendor(ctx, policy) -> Vendor``; ``_LOADERS`` is the one table of them, keyed
by the ``CompatSettings`` flag that switches each on or off.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter

from cleancut.api.errors import Renderer

if TYPE_CHECKING:
    from cleancut.api.context import ApiContext
    from cleancut.net import NetPolicy


@dataclass(frozen=True)
class Vendor:
    name: str
    router: APIRouter
    #: path prefixes whose errors this vendor's envelope renders
    prefixes: tuple[str, ...]
    render_error: Renderer
    tag: str


VendorFactory = Callable[["ApiContext", "NetPolicy"], Vendor]


def _loaders() -> dict[str, Callable[[], VendorFactory]]:
    # Imports happen only for the vendors switched on.
    return {
        "adobe_v1": lambda: importlib.import_module("cleancut.api.compat.adobe_v1").vendor,
        "adobe_v2": lambda: importlib.import_module("cleancut.api.compat.adobe_v2").vendor,
        "artworks": lambda: importlib.import_module("cleancut.api.compat.artworks").vendor,
        "tools": lambda: importlib.import_module("cleancut.api.compat.tools").vendor,
        "image_store": lambda: importlib.import_module("cleancut.api.compat.image_store").vendor,
        "removebg": lambda: importlib.import_module("cleancut.api.compat.removebg").vendor,
    }


def vendors(ctx: ApiContext, policy: NetPolicy) -> list[Vendor]:
    flags = ctx.settings.server.compat
    return [load()(ctx, policy) for name, load in _loaders().items() if getattr(flags, name, False)]
