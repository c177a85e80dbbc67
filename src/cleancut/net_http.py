"""One pinned HTTP exchange: httpx on top of an httpcore network backend that can only dial the
addresses ``validate_url`` resolved and checked.

How the pinning works: the request keeps its original URL, so httpx/httpcore put the original
host in the Host header, in TLS SNI and in certificate verification, exactly as for any request.
Only the TCP connect is different: :class:`_PinnedBackend` ignores DNS and dials the pinned
addresses of the :class:`ResolvedTarget`, and refuses outright to dial any other host/port (so no
parser difference, proxy setting or library change can send the socket somewhere else). One
client, pool and connection per hop; ``trust_env=False`` (no proxies or netrc from the
environment); ``Connection: close``. Every socket operation's timeout is clamped to the time left
until the total deadline, so a slow-drip server cannot stretch a fetch past it.
"""

from __future__ import annotations

import functools
import select
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import certifi
import httpcore
import httpx

from cleancut.net_errors import URLFetchFailed, URLForbidden, URLTimeout, URLTooLarge
from cleancut.net_policy import NetPolicy
from cleancut.net_validate import ResolvedTarget

#: ``connector(ip, port, timeout)`` opens a TCP socket to exactly that address. Injected by
#: tests to spy on (or forbid) connections; the default is :func:`socket.create_connection`.
Connector = Callable[[str, int, float | None], socket.socket]


def tcp_connect(ip: str, port: int, timeout: float | None) -> socket.socket:
    return socket.create_connection((ip, port), timeout)


class Deadline:
    """The total time budget of one fetch/put/delivery attempt, redirects included."""

    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._end = monotonic() + seconds

    def remaining(self) -> float:
        return self._end - self._monotonic()

    def clamp(self, timeout: float | None, expired: type[Exception]) -> float:
        left = self.remaining()
        if left <= 0:
            raise expired("the total deadline expired")
        return left if timeout is None else min(timeout, left)


@contextmanager
def _socket_errors(
    deadline: Deadline, timeout_exc: type[Exception], other_exc: type[Exception]
) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
        expired = deadline.remaining() <= 0
        raise timeout_exc("the total deadline expired" if expired else "timed out") from exc
    except OSError as exc:
        raise other_exc(str(exc)) from exc


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _socket_errors(self._deadline, httpcore.ReadTimeout, httpcore.ReadError):
            self._sock.settimeout(self._deadline.clamp(timeout, httpcore.ReadTimeout))
            return self._sock.recv(max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _socket_errors(self._deadline, httpcore.WriteTimeout, httpcore.WriteError):
            while buffer:
                self._sock.settimeout(self._deadline.clamp(timeout, httpcore.WriteTimeout))
                sent = self._sock.send(buffer)
                buffer = buffer[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        try:
            with _socket_errors(self._deadline, httpcore.ConnectTimeout, httpcore.ConnectError):
                self._sock.settimeout(self._deadline.clamp(timeout, httpcore.ConnectTimeout))
                # server_hostname is the URL's host: SNI and certificate checks use the name,
                # while the socket underneath is connected to the pinned IP.
                tls = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except BaseException:
            self._sock.close()
            raise
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock  # offers selected_alpn_protocol(), all httpcore asks of it
        if info == "socket":
            return self._sock
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "is_readable":
            return self._sock.fileno() < 0 or bool(select.select([self._sock], [], [], 0)[0])
        return None


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, target: ResolvedTarget, deadline: Deadline, connector: Connector) -> None:
        self._target = target
        self._deadline = deadline
        self._connector = connector

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if host.lower().strip("[]") != self._target.host or port != self._target.port:
            raise URLForbidden(f"refusing to connect to {host}:{port}: not the validated target")
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for address in self._target.addresses:
            budget = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
            try:
                sock = self._connector(str(address), port, budget)
            except TimeoutError as exc:
                failure = httpcore.ConnectTimeout(f"connecting to {host} timed out")
                failure.__cause__ = exc
            except OSError as exc:
                failure = httpcore.ConnectError(f"could not connect to {host}: {exc}")
                failure.__cause__ = exc
            else:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return _DeadlineStream(sock, self._deadline)
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise URLForbidden("unix sockets are never dialled")


@contextmanager
def _mapped_errors(host: str) -> Iterator[None]:
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise URLTimeout(f"timed out talking to {host}: {exc}") from exc
    except httpcore.ConnectError as exc:
        # httpcore's pool re-raises "from None", so the socket error is the context, not the cause
        origin = exc.__cause__ or exc.__context__
        if isinstance(origin, ssl.SSLCertVerificationError):
            reason = origin.verify_message or "certificate verification failed"
            raise URLFetchFailed(f"TLS verification failed for {host}: {reason}") from exc
        raise URLFetchFailed(f"could not connect to {host}: {exc}") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        raise URLFetchFailed(f"connection to {host} failed: {exc}") from exc


class _MappedStream(httpx.SyncByteStream):
    def __init__(self, stream: Any, host: str) -> None:
        self._stream = stream
        self._host = host

    def __iter__(self) -> Iterator[bytes]:
        with _mapped_errors(self._host):
            yield from cast(Iterator[bytes], self._stream)

    def close(self) -> None:
        with _mapped_errors(self._host):
            self._stream.close()


class _PinnedTransport(httpx.BaseTransport):
    def __init__(
        self, target: ResolvedTarget, policy: NetPolicy, deadline: Deadline, connector: Connector
    ) -> None:
        self._host = target.host
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(policy.ca_file),
            max_connections=1,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinnedBackend(target, deadline, connector),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=cast(httpx.SyncByteStream, request.stream),
            extensions=request.extensions,
        )
        with _mapped_errors(self._host):
            response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_MappedStream(response.stream, self._host),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextmanager
def open_response(
    method: str,
    target: ResolvedTarget,
    policy: NetPolicy,
    deadline: Deadline,
    *,
    connector: Connector | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[httpx.Response]:
    """Send one request to ``target`` (no redirects followed) and yield the streaming response."""
    transport = _PinnedTransport(target, policy, deadline, connector or tcp_connect)
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    base = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity", "Connection": "close"}
    with (
        httpx.Client(transport=transport, trust_env=False, timeout=timeout, headers=base) as client,
        client.stream(method, target.url, content=content, headers=headers) as response,
    ):
        yield response


def read_capped(response: httpx.Response, limit: int, url: str) -> bytes:
    """The decoded body, aborting as soon as it (or its announced length) exceeds ``limit``.
    We ask for ``identity``; gzip/deflate sent anyway are inflated at most ``limit + 1`` bytes at a
    time, so a decompression bomb costs no more memory than an honest large body."""
    announced = response.headers.get("content-length", "")
    if announced.strip().isdigit() and int(announced) > limit:
        raise URLTooLarge(f"{url} announces {int(announced)} bytes, above the {limit}-byte cap")
    inflater = _inflater(response.headers.get("content-encoding", ""), url)
    body = bytearray()
    raw_total = 0
    for chunk in response.iter_raw():
        raw_total += len(chunk)
        if inflater is None:
            body += chunk
        else:
            data = chunk
            while data and len(body) <= limit:
                body += inflater.decompress(data, limit + 1 - len(body))
                data = inflater.unconsumed_tail
        if len(body) > limit or raw_total > limit:
            raise URLTooLarge(f"{url} sent more than the {limit}-byte cap")
    if inflater is not None and not inflater.eof:
        raise URLFetchFailed(f"{url} sent a truncated compressed body")
    return bytes(body)


def _inflater(encoding: str, url: str) -> Any:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    raise URLFetchFailed(f"{url} sent an unsupported Content-Encoding {encoding!r}")
