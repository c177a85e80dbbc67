"""Typed errors of the outbound-HTTP layer (``cleancut.net``).

Statuses, chosen from the point of view of *our* API's caller, who supplied the URL:

=====================  ======  ====================================================
code                   status  meaning
=====================  ======  ====================================================
invalid_url            400     not a URL we can fetch: syntax, scheme, credentials,
                               missing host, zone id, malformed numeric host
url_forbidden          400     the URL (or a redirect, or its DNS answer) points at a
                               destination the policy forbids (loopback, private,
                               metadata, port...). 400 rather than 403: it is an
                               input-validation failure, and 403 means "your
                               credentials may not do this" to clients and proxies
url_fetch_failed       422     the remote answered an HTTP error (``remote_status``
                               holds it), or could not be reached / resolved
url_too_many_redirects 422     more than ``NetPolicy.max_redirects`` hops
url_timeout            504     connect/read timeout or the total deadline expired
url_too_large          413     body (or announced Content-Length) above ``max_bytes``
url_upload_failed      502     a PUT of our result to a (pre-signed) URL failed
invalid_webhook        400     a WebhookSpec that can never be delivered
=====================  ======  ====================================================
"""

from __future__ import annotations

from cleancut.errors import CleancutError, InvalidInput


class InvalidURL(InvalidInput):
    code = "invalid_url"
    http_status = 400


class URLForbidden(InvalidInput):
    code = "url_forbidden"
    http_status = 400


class URLFetchFailed(CleancutError):
    """The remote side failed. ``remote_status`` is its HTTP status when it answered one."""

    code = "url_fetch_failed"
    http_status = 422

    def __init__(
        self, message: str, *, remote_status: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.remote_status = remote_status


class TooManyRedirects(URLFetchFailed):
    code = "url_too_many_redirects"
    http_status = 422


class URLTimeout(URLFetchFailed):
    code = "url_timeout"
    http_status = 504


class URLTooLarge(URLFetchFailed):
    code = "url_too_large"
    http_status = 413


class URLUploadFailed(URLFetchFailed):
    code = "url_upload_failed"
    http_status = 502


class InvalidWebhook(InvalidInput):
    code = "invalid_webhook"
    http_status = 400
