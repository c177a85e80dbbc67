"""``NetPolicy``: every knob of outbound HTTP in one frozen value, built by the composition root."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from cleancut.errors import InvalidOptions

SUPPORTED_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class NetPolicy:
    """Rules for one kind of outbound request.

    ``allow_private`` opens loopback, RFC 1918/ULA private, link-local and CGNAT addresses (for
    self-hosted intranets, and for tests on loopback). Cloud-metadata addresses and names,
    unspecified, multicast, broadcast and reserved/documentation ranges stay blocked even then.
    ``ports=None`` allows any port; production deployments should usually restrict it.
    ``webhook_https_only`` drops ``http`` from ``schemes`` for webhook delivery.
    ``ca_file`` replaces the certifi bundle for TLS verification.
    """

    schemes: frozenset[str] = SUPPORTED_SCHEMES
    webhook_https_only: bool = True
    allow_private: bool = False
    max_redirects: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 64 * 1024 * 1024
    ports: frozenset[int] | None = None
    user_agent: str = "cleancut"
    ca_file: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Accept any iterable (a tuple from settings, a list...) and store frozensets.
        raw_schemes: Iterable[str] = (
            (self.schemes,) if isinstance(self.schemes, str) else self.schemes
        )
        schemes = frozenset(s.lower() for s in raw_schemes)
        object.__setattr__(self, "schemes", schemes)
        if self.ports is not None:
            object.__setattr__(self, "ports", frozenset(int(p) for p in self.ports))
        if not schemes or not schemes <= SUPPORTED_SCHEMES:
            raise InvalidOptions(
                f"NetPolicy.schemes must be a non-empty subset of http/https, got {sorted(schemes)}"
            )
        if self.ports is not None and not all(0 < p < 65536 for p in self.ports):
            raise InvalidOptions("NetPolicy.ports must hold TCP ports 1..65535")
        if self.max_redirects < 0:
            raise InvalidOptions("NetPolicy.max_redirects must be >= 0")
        if self.max_bytes < 1:
            raise InvalidOptions("NetPolicy.max_bytes must be >= 1")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise InvalidOptions(f"NetPolicy.{name} must be > 0 seconds")
        if not self.user_agent or any(c in self.user_agent for c in "\r\n"):
            raise InvalidOptions("NetPolicy.user_agent must be a non-empty single line")

    def for_webhooks(self) -> NetPolicy:
        """This policy with ``http`` removed when ``webhook_https_only`` is set."""
        if not self.webhook_https_only or self.schemes == {"https"}:
            return self
        if "https" not in self.schemes:
            raise InvalidOptions("webhooks need https, but NetPolicy.schemes excludes it")
        return dataclasses.replace(self, schemes=frozenset({"https"}))
