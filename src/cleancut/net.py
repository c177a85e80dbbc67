"""The only outbound HTTP of cleancut: URL inputs, uploads to pre-signed URLs, webhooks.

Every request goes through the same steps: :func:`validate_url` (scheme, credentials, host
spelling, port, forbidden names; DNS resolved once and every address checked against SSRF rules),
then a connection pinned to those checked addresses (see ``net_http``), with connect/read timeouts,
a total deadline and a streamed byte cap. Redirects are followed by hand, each hop re-validated
before anything is dialled. Errors are typed (``net_errors``) and carry ``code``/``http_status``.

The pieces live in siblings: ``net_policy`` (NetPolicy), ``net_validate`` (SSRF rules),
``net_http`` (pinned transport), ``net_webhooks`` (signing and delivery), ``net_errors``.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from cleancut.net_errors import (
    InvalidURL,
    InvalidWebhook,
    TooManyRedirects,
    URLFetchFailed,
    URLForbidden,
    URLTimeout,
    URLTooLarge,
    URLUploadFailed,
)
from cleancut.net_http import Connector, Deadline, open_response, read_capped, tcp_connect
from cleancut.net_policy import NetPolicy
from cleancut.net_validate import (
    ParsedURL,
    ResolvedTarget,
    Resolver,
    check_url,
    classify,
    getaddrinfo_resolver,
    validate_url,
)
from cleancut.net_webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryAttempt,
    WebhookSpec,
    deliver,
    sign,
    signature_headers,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Connector",
    "DeliveryAttempt",
    "FetchResult",
    "InvalidURL",
    "InvalidWebhook",
    "NetPolicy",
    "ParsedURL",
    "PutResult",
    "ResolvedTarget",
    "Resolver",
    "TooManyRedirects",
    "URLFetchFailed",
    "URLForbidden",
    "URLTimeout",
    "URLTooLarge",
    "URLUploadFailed",
    "WebhookSpec",
    "check_url",
    "classify",
    "deliver",
    "fetch",
    "getaddrinfo_resolver",
    "put",
    "sign",
    "signature_headers",
    "tcp_connect",
    "validate_url",
    "verify",
]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchResult:
    content: bytes
    content_type: str | None
    final_url: str


@dataclass(frozen=True)
class PutResult:
    status_code: int
    etag: str | None


def fetch(
    url: str,
    policy: NetPolicy,
    *,
    resolver: Resolver | None = None,
    connector: Connector | None = None,
) -> FetchResult:
    """GET ``url`` under ``policy``, following at most ``policy.max_redirects`` redirects.

    Raises InvalidURL / URLForbidden before anything is dialled, URLFetchFailed (remote HTTP
    error in ``remote_status``, unreachable or unresolvable host), TooManyRedirects, URLTimeout,
    URLTooLarge.
    """
    deadline = Deadline(policy.total_timeout)
    current = url
    for hop in range(policy.max_redirects + 1):
        target = _validate_hop(current, policy, resolver, hop)
        with open_response("GET", target, policy, deadline, connector=connector) as response:
            location = _redirect_location(response, target)
            if location is None:
                _raise_for_status(response, target.url)
                content = read_capped(response, policy.max_bytes, target.url)
                return FetchResult(content, response.headers.get("content-type"), target.url)
        current = location
    raise TooManyRedirects(f"{url} redirected more than {policy.max_redirects} times")


def put(
    url: str,
    data: bytes,
    content_type: str,
    policy: NetPolicy,
    *,
    headers: dict[str, str] | None = None,
    resolver: Resolver | None = None,
    connector: Connector | None = None,
) -> PutResult:
    """PUT ``data`` to ``url`` (typically a pre-signed object-store URL). Same validation and
    pinning as :func:`fetch`; redirects are not followed (a pre-signed URL never needs one), and
    the answer's body is never read. Any non-2xx answer raises URLUploadFailed (``remote_status``).
    Connection failures raise URLUploadFailed too, timeouts URLTimeout. ``data`` is ours, so
    ``max_bytes`` (a cap on what remote servers send us) does not apply."""
    try:
        return _put(url, data, content_type, policy, headers, resolver, connector)
    except (URLUploadFailed, URLTimeout):
        raise
    except URLFetchFailed as exc:  # unresolvable, refused, reset: still an upload failure
        raise URLUploadFailed(f"upload failed: {exc.message}") from exc


def _put(
    url: str,
    data: bytes,
    content_type: str,
    policy: NetPolicy,
    headers: dict[str, str] | None,
    resolver: Resolver | None,
    connector: Connector | None,
) -> PutResult:
    target = validate_url(url, policy, resolver=resolver)
    request_headers = {**(headers or {}), "Content-Type": content_type}
    deadline = Deadline(policy.total_timeout)
    with open_response(
        "PUT",
        target,
        policy,
        deadline,
        connector=connector,
        content=data,
        headers=request_headers,
    ) as response:
        if not response.is_success:
            raise URLUploadFailed(
                f"upload to {target.host} answered HTTP {response.status_code}",
                remote_status=response.status_code,
            )
        return PutResult(response.status_code, response.headers.get("etag"))


def _validate_hop(
    url: str, policy: NetPolicy, resolver: Resolver | None, hop: int
) -> ResolvedTarget:
    try:
        return validate_url(url, policy, resolver=resolver)
    except (InvalidURL, URLForbidden, URLFetchFailed) as exc:
        if hop == 0:
            raise
        raise type(exc)(f"redirect {hop}: {exc.message}", hint=exc.hint) from exc


def _redirect_location(response: httpx.Response, target: ResolvedTarget) -> str | None:
    if response.status_code not in _REDIRECTS:
        return None
    location = response.headers.get("location")
    if not location:
        raise URLFetchFailed(
            f"{target.url} answered HTTP {response.status_code} without a Location",
            remote_status=response.status_code,
        )
    try:
        return str(httpx.URL(target.url).join(location.strip()))
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidURL(f"{target.url} redirects to an invalid URL: {exc}") from None


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.is_success:
        return
    status = response.status_code  # the body is not read: a stalling error page costs nothing
    raise URLFetchFailed(
        f"{url} answered HTTP {status} {response.reason_phrase}".rstrip(), remote_status=status
    )
