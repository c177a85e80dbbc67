"""Tests for cleancut.net, the only outbound HTTP.

Safety rule of this file: real packets go to loopback only. SSRF vectors are checked at the
validation layer with an injected resolver (answers are made up, nothing is looked up) and a
connector that fails the test if it is ever called. Real round trips use http.server on 127.0.0.1,
dialled through ``Dialer``, which asserts that the address it really connects to is loopback.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cleancut.errors import CleancutError, InvalidOptions
from cleancut.net import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    FetchResult,
    InvalidURL,
    InvalidWebhook,
    NetPolicy,
    TooManyRedirects,
    URLFetchFailed,
    URLForbidden,
    URLTimeout,
    URLTooLarge,
    URLUploadFailed,
    WebhookSpec,
    check_url,
    classify,
    deliver,
    fetch,
    put,
    sign,
    signature_headers,
    validate_url,
    verify,
)
from cleancut.net_http import Deadline, _PinnedBackend
from tests import loopback
from tests.loopback import LoopbackHandler, make_ca, serve, server_tls

PUBLIC_V4 = "93.184.216.34"  # looks public; never dialled (the connectors below never connect)
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
LOCAL = NetPolicy(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=5)
HOOKS = NetPolicy(
    allow_private=True, webhook_https_only=False, connect_timeout=1, read_timeout=1, total_timeout=2
)


# --------------------------------------------------------------------------- fakes and spies


class NoDial:
    """A connector that must never be called: proves rejection happened before connecting."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, ip: str, port: int, timeout: float | None) -> socket.socket:
        self.calls.append((ip, port))
        raise AssertionError(f"a connection to {ip}:{port} was attempted")


class RefuseDial(NoDial):
    """Records the pinned address it is handed, then fails like a refused connection."""

    def __call__(self, ip: str, port: int, timeout: float | None) -> socket.socket:
        self.calls.append((ip, port))
        raise ConnectionRefusedError(111, "refused by the test")


class Dialer:
    """Records the pinned address; really connects to ``via`` (or that address), loopback only."""

    def __init__(self, via: tuple[str, int] | None = None) -> None:
        self.via = via
        self.calls: list[tuple[str, int]] = []

    def __call__(self, ip: str, port: int, timeout: float | None) -> socket.socket:
        self.calls.append((ip, port))
        real_ip, real_port = self.via or (ip, port)
        assert ipaddress.ip_address(real_ip).is_loopback, f"test tried to dial {real_ip}"
        return socket.create_connection((real_ip, real_port), timeout)


class FakeDNS:
    """``answers[host]`` is a list of answers, one per lookup (the last one repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[str] = []

    @classmethod
    def static(cls, **hosts: list[str]) -> FakeDNS:
        return cls({h.replace("_", "."): [a] for h, a in hosts.items()})

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        assert host in self.answers, f"unexpected DNS lookup of {host!r}"
        seq = self.answers[host]
        return seq[min(len(self.calls) - 1, len(seq) - 1)]


# --------------------------------------------------------------------------- loopback server


Route = Callable[["Handler"], None]


class Handler(LoopbackHandler):
    server: LoopbackServer

    def route_key(self) -> str:
        return urlsplit(self.path).path

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        all_headers = {"Content-Type": "text/plain", "Content-Length": str(len(body))}
        for name, value in {**all_headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer(loopback.LoopbackServer):
    handler = Handler

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    yield from serve(LoopbackServer())


def ok_route(body: bytes = b"PNGDATA", content_type: str = "image/png") -> Route:
    return lambda h: h.reply(200, body, {"Content-Type": content_type})


def redirect_route(location: str, status: int = 302) -> Route:
    return lambda h: h.reply(status, b"", {"Location": location})


def streaming_route(chunk: bytes, count: int) -> Route:
    """HTTP/1.0 body without Content-Length: the client only learns the size by reading."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        for _ in range(count):
            h.wfile.write(chunk)
            h.wfile.flush()

    return route


def drip_route(h: Handler) -> None:
    h.send_response(200)
    h.end_headers()
    while not h.server.stop.wait(0.02):
        h.wfile.write(b"x")
        h.wfile.flush()


def stall_route(h: Handler) -> None:
    h.server.stop.wait(5)  # sends nothing until the test ends


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Safety net for the whole file: any real DNS lookup of a name, or any connect to a
    non-loopback address, fails the test instead of leaving the machine."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def loopback(host: object) -> None:
        ok = isinstance(host, str) and _is_loopback_literal(host)
        assert ok, f"this test tried to reach {host!r} (only loopback is allowed)"

    def connect(self: socket.socket, address: Any) -> None:
        loopback(address[0] if isinstance(address, tuple) else address)
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        loopback(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_the_safety_net_itself() -> None:
    # Chosen so that nothing leaves the machine even if the guard were broken: "localhost" comes
    # from /etc/hosts, and connecting a UDP socket sends no packet.
    with pytest.raises(AssertionError, match="only loopback"):
        socket.getaddrinfo("localhost", 80)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with udp, pytest.raises(AssertionError, match="only loopback"):
        udp.connect(("192.0.2.1", 9))


# --------------------------------------------------------------------------- SSRF vectors

_NO_DNS: dict[str, list[list[str]]] = {}


def _v(url: str, error: type[CleancutError], dns: dict[str, list[str]] | None = None) -> Any:
    answers = {host: [addrs] for host, addrs in (dns or {}).items()}
    return pytest.param(url, answers, error, id=url if not dns else f"{url}->{dns}")


SSRF_VECTORS = [
    # schemes
    _v("file:///etc/passwd", InvalidURL),
    _v("gopher://127.0.0.1:25/_HELO", InvalidURL),
    _v("ftp://example.com/file", InvalidURL),
    _v("data:text/plain,hello", InvalidURL),
    _v("javascript:alert(1)", InvalidURL),
    _v("dict://127.0.0.1:11211/stats", InvalidURL),
    # structure
    _v("http:///no-host", InvalidURL),
    _v("http://user:pass@example.com/", InvalidURL),
    _v("http://user@example.com/", InvalidURL),
    _v("http://example.com\\@127.0.0.1/", InvalidURL),
    _v("http://[fe80::1%25eth0]/", InvalidURL),
    _v("http://127.0.0.1%2509/", InvalidURL),
    _v("http://example.com:0/", InvalidURL),
    _v("http://1.2.3.4.5/", InvalidURL),
    _v("http://08.0.0.1/", InvalidURL),
    _v("http://256.0.0.1/", InvalidURL),
    _v("http://example.0x10/", InvalidURL),
    # loopback, private, link-local, CGNAT literals
    _v("http://127.0.0.1/", URLForbidden),
    _v("http://127.254.1.2:8080/", URLForbidden),
    _v("http://[::1]/", URLForbidden),
    _v("http://10.0.0.1/", URLForbidden),
    _v("http://172.16.5.4/", URLForbidden),
    _v("http://172.31.255.255/", URLForbidden),
    _v("http://192.168.1.1/", URLForbidden),
    _v("http://[fc00::1]/", URLForbidden),
    _v("http://[fd12:3456::1]/", URLForbidden),
    _v("http://169.254.169.254/latest/meta-data/", URLForbidden),
    _v("http://169.254.1.1/", URLForbidden),
    _v("http://[fe80::1]/", URLForbidden),
    _v("http://100.64.0.1/", URLForbidden),
    _v("http://100.127.255.254/", URLForbidden),
    _v("http://100.100.100.200/", URLForbidden),
    _v("http://[fd00:ec2::254]/", URLForbidden),
    # multicast, reserved, unspecified, broadcast, documentation
    _v("http://224.0.0.1/", URLForbidden),
    _v("http://[ff02::1]/", URLForbidden),
    _v("http://240.0.0.1/", URLForbidden),
    _v("http://0.0.0.0/", URLForbidden),
    _v("http://0.1.2.3/", URLForbidden),
    _v("http://[::]/", URLForbidden),
    _v("http://255.255.255.255/", URLForbidden),
    _v("http://192.0.2.10/", URLForbidden),
    # IPv6 forms embedding IPv4
    _v("http://[::ffff:127.0.0.1]/", URLForbidden),
    _v("http://[::ffff:7f00:1]/", URLForbidden),
    _v("http://[::ffff:169.254.169.254]/", URLForbidden),
    _v("http://[::127.0.0.1]/", URLForbidden),
    _v("http://[64:ff9b::7f00:1]/", URLForbidden),
    _v("http://[64:ff9b::10.0.0.1]/", URLForbidden),
    _v("http://[2002:7f00:1::]/", URLForbidden),
    _v("http://[2002:c0a8:101::1]/", URLForbidden),
    _v("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", URLForbidden),  # Teredo
    # numeric spellings of 127.0.0.1 / 169.254.169.254 (never sent to DNS: _NO_DNS)
    _v("http://2130706433/", URLForbidden),
    _v("http://0177.0.0.1/", URLForbidden),
    _v("http://0x7f.0.0.1/", URLForbidden),
    _v("http://0x7f000001/", URLForbidden),
    _v("http://127.1/", URLForbidden),
    _v("http://0x7f.1/", URLForbidden),
    _v("http://017700000001/", URLForbidden),
    _v("http://0xA9FEA9FE/", URLForbidden),
    _v("http://127.0.0.1./", URLForbidden),
    # names
    _v("http://localhost/", URLForbidden),
    _v("http://LOCALHOST./", URLForbidden),
    _v("http://api.localhost/", URLForbidden),
    _v("http://metadata.google.internal/computeMetadata/v1/", URLForbidden),
    _v("http://metadata/", URLForbidden),
    _v("http://instance-data/latest/", URLForbidden),
    # names whose DNS answers include a forbidden address
    _v("http://intranet.example/", URLForbidden, {"intranet.example": ["10.1.2.3"]}),
    _v("http://mixed.example/", URLForbidden, {"mixed.example": [PUBLIC_V4, "127.0.0.1"]}),
    _v("http://mixed6.example/", URLForbidden, {"mixed6.example": [PUBLIC_V6, "::1"]}),
    _v("http://imds.example/", URLForbidden, {"imds.example": ["169.254.169.254"]}),
    _v("http://mapped.example/", URLForbidden, {"mapped.example": ["::ffff:10.0.0.1"]}),
    _v("http://127.0.0.1.nip.io/", URLForbidden, {"127.0.0.1.nip.io": ["127.0.0.1"]}),
    _v("http://zoned.example/", URLForbidden, {"zoned.example": ["fe80::1%eth0"]}),
    _v("http://cgnat.example/", URLForbidden, {"cgnat.example": ["100.64.1.1"]}),
]


@pytest.mark.parametrize(("url", "answers", "error"), SSRF_VECTORS)
def test_ssrf_vector_rejected_before_connecting(
    url: str, answers: dict[str, list[list[str]]], error: type[CleancutError]
) -> None:
    dns, dialer = FakeDNS(answers), NoDial()
    with pytest.raises(error) as info:
        fetch(url, NetPolicy(), resolver=dns, connector=dialer)
    assert dialer.calls == []
    assert info.value.http_status == 400
    assert info.value.code == ("invalid_url" if error is InvalidURL else "url_forbidden")
    assert len(dns.calls) <= 1


def test_there_are_enough_distinct_vectors() -> None:
    assert len({p.values[0] for p in SSRF_VECTORS}) >= 60


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/",
        "http://0.0.0.0/",
        "http://224.0.0.251/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://[64:ff9b::7f00:1]/",
        "http://[::127.0.0.1]/",
    ],
)
def test_allow_private_never_opens_metadata_or_odd_ranges(url: str) -> None:
    dialer = NoDial()
    with pytest.raises(URLForbidden):
        fetch(url, LOCAL, resolver=FakeDNS(), connector=dialer)
    assert dialer.calls == []


def test_ports_restricted_by_policy() -> None:
    policy = NetPolicy(ports=frozenset({443}))
    dns, dialer = FakeDNS.static(example_com=[PUBLIC_V4]), NoDial()
    with pytest.raises(URLForbidden, match="port 22"):
        fetch("https://example.com:22/", policy, resolver=dns, connector=dialer)
    with pytest.raises(URLForbidden, match="port 80"):
        fetch("http://example.com/", policy, resolver=dns, connector=dialer)
    assert dialer.calls == []
    assert dns.calls == []  # the port is checked before DNS


def test_unresolvable_host_is_a_fetch_failure() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(URLFetchFailed, match="could not resolve") as info:
        fetch("http://nowhere.example/", NetPolicy(), resolver=failing, connector=NoDial())
    assert info.value.code == "url_fetch_failed"


# --------------------------------------------------------------------------- validation details


def test_validate_normalises_and_pins_all_answers() -> None:
    dns = FakeDNS.static(example_com=[PUBLIC_V4, PUBLIC_V6, PUBLIC_V4])
    target = validate_url("HTTP://Example.COM./a/b?q=1#frag", NetPolicy(), resolver=dns)
    assert target.url == "http://example.com/a/b?q=1"
    assert (target.scheme, target.host, target.port) == ("http", "example.com", 80)
    assert target.addresses == (ipaddress.ip_address(PUBLIC_V4), ipaddress.ip_address(PUBLIC_V6))
    assert target.address == ipaddress.ip_address(PUBLIC_V4)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://2130706433:8080/x", "http://127.0.0.1:8080/x"),
        ("http://0177.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://0x7f.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://127.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://[0:0:0:0:0:0:0:1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_numeric_hosts_are_canonicalised(url: str, canonical: str) -> None:
    target = validate_url(url, LOCAL, resolver=FakeDNS())
    assert target.url == canonical
    assert target.address.is_loopback


def test_public_embedded_forms_are_allowed_and_mapped_is_pinned_as_ipv4() -> None:
    policy, dns = NetPolicy(), FakeDNS()
    assert validate_url("http://[::ffff:8.8.8.8]/", policy, resolver=dns).address == (
        ipaddress.IPv4Address("8.8.8.8")
    )
    assert classify(ipaddress.ip_address("64:ff9b::808:808")) is None  # DNS64 networks use it
    assert classify(ipaddress.ip_address("2002:808:808::1")) is None
    assert classify(ipaddress.ip_address(PUBLIC_V4)) is None


def test_check_url_needs_no_dns_and_idna_is_encoded() -> None:
    parsed = check_url("https://bücher.example/p", NetPolicy())
    assert (parsed.host, parsed.port, parsed.ip) == ("xn--bcher-kva.example", 443, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"schemes": frozenset({"ftp"})},
        {"schemes": frozenset()},
        {"max_redirects": -1},
        {"max_bytes": 0},
        {"connect_timeout": 0},
        {"total_timeout": -1},
        {"ports": frozenset({0})},
        {"user_agent": "a\r\nX-Injected: 1"},
    ],
)
def test_invalid_policy(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptions):
        NetPolicy(**kwargs)


def test_policy_accepts_plain_iterables() -> None:
    policy = NetPolicy(schemes=("HTTPS",), ports=[443, "8443"])  # type: ignore[arg-type]
    assert policy.schemes == frozenset({"https"})
    assert policy.ports == frozenset({443, 8443})


# --------------------------------------------------------------------------- pinning


def test_dns_rebinding_connector_gets_the_pinned_first_answer() -> None:
    dns = FakeDNS({"rebind.example": [[PUBLIC_V4], ["127.0.0.1"]]})
    dialer = RefuseDial()
    with pytest.raises(URLFetchFailed, match="could not connect"):
        fetch("http://rebind.example/img.png", NetPolicy(), resolver=dns, connector=dialer)
    assert dns.calls == ["rebind.example"]  # resolved once, never again
    assert dialer.calls == [(PUBLIC_V4, 80)]


def test_every_validated_answer_is_tried_in_order_and_nothing_else() -> None:
    dns = FakeDNS.static(dual_example=[PUBLIC_V6, PUBLIC_V4])
    dialer = RefuseDial()
    with pytest.raises(URLFetchFailed):
        fetch("https://dual.example:8443/", NetPolicy(), resolver=dns, connector=dialer)
    assert dialer.calls == [(PUBLIC_V6, 8443), (PUBLIC_V4, 8443)]


def test_pinned_ip_with_original_host_header(server: LoopbackServer) -> None:
    server.routes["/host"] = lambda h: h.reply(200, h.headers["Host"].encode())
    dns, dialer = FakeDNS.static(pinned_test=["127.0.0.1"]), Dialer()
    result = fetch(server.url("/host", host="pinned.test"), LOCAL, resolver=dns, connector=dialer)
    assert result.content == f"pinned.test:{server.port}".encode()
    assert dialer.calls == [("127.0.0.1", server.port)]
    assert dns.calls == ["pinned.test"]
    headers = server.seen[0].headers
    assert headers["User-Agent"] == "cleancut"
    assert headers["Accept-Encoding"] == "identity"


def test_backend_refuses_any_other_host() -> None:
    target = validate_url(
        "http://example.com/", NetPolicy(), resolver=FakeDNS.static(example_com=[PUBLIC_V4])
    )
    dialer = NoDial()
    backend = _PinnedBackend(target, Deadline(1), dialer)
    with pytest.raises(URLForbidden):
        backend.connect_tcp("169.254.169.254", 80)
    with pytest.raises(URLForbidden):
        backend.connect_tcp("example.com", 8080)
    with pytest.raises(URLForbidden):
        backend.connect_unix_socket("/var/run/docker.sock")
    assert dialer.calls == []


# --------------------------------------------------------------------------- fetch round trips


def test_fetch_ok_with_default_connector(server: LoopbackServer) -> None:
    server.routes["/img"] = ok_route()
    result = fetch(server.url("/img?x=1"), LOCAL)
    assert result == FetchResult(b"PNGDATA", "image/png", server.url("/img?x=1"))


def test_redirect_chain_is_followed(server: LoopbackServer) -> None:
    server.routes["/a"] = redirect_route("/b", 301)
    server.routes["/b"] = redirect_route(server.url("/c", host="pinned.test"), 307)
    server.routes["/c"] = redirect_route("d?y=2", 308)
    server.routes["/d"] = ok_route(b"done")
    dns, dialer = FakeDNS.static(pinned_test=["127.0.0.1"]), Dialer()
    result = fetch(server.url("/a"), LOCAL, resolver=dns, connector=dialer)
    assert result.content == b"done"
    assert result.final_url == server.url("/d?y=2", host="pinned.test")
    assert [s.path for s in server.seen] == ["/a", "/b", "/c", "/d?y=2"]
    assert len(dialer.calls) == 4


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("http://10.0.0.5/secret", URLForbidden),
        ("http://169.254.169.254/latest/meta-data/", URLForbidden),
        ("http://[::ffff:127.0.0.1]/", URLForbidden),
        ("http://0x7f000001/", URLForbidden),
        ("http://localhost/", URLForbidden),
        ("http://internal.example/", URLForbidden),
        ("file:///etc/passwd", InvalidURL),
        ("http://u:p@example.com/", InvalidURL),
    ],
)
def test_redirect_to_forbidden_target_is_rejected_before_connecting(
    server: LoopbackServer, location: str, error: type[CleancutError]
) -> None:
    # Default policy (no private networks). "public.example" resolves to a public-looking address;
    # the dialer carries that one connection to the loopback server, which redirects.
    server.routes["/go"] = redirect_route(location)
    dns = FakeDNS.static(public_example=[PUBLIC_V4], internal_example=["192.168.0.7"])
    dialer = Dialer(via=("127.0.0.1", server.port))
    with pytest.raises(error, match="redirect 1"):
        fetch(
            f"http://public.example:{server.port}/go", NetPolicy(), resolver=dns, connector=dialer
        )
    assert dialer.calls == [(PUBLIC_V4, server.port)]  # the forbidden hop was never dialled


def test_too_many_redirects(server: LoopbackServer) -> None:
    server.routes["/loop"] = redirect_route("/loop")
    policy = NetPolicy(allow_private=True, max_redirects=3)
    with pytest.raises(TooManyRedirects) as info:
        fetch(server.url("/loop"), policy, connector=Dialer())
    assert len(server.seen) == 4
    assert (info.value.code, info.value.http_status) == ("url_too_many_redirects", 422)


def test_max_redirects_zero_means_no_redirect(server: LoopbackServer) -> None:
    server.routes["/a"] = redirect_route("/b")
    with pytest.raises(TooManyRedirects):
        fetch(server.url("/a"), NetPolicy(allow_private=True, max_redirects=0), connector=Dialer())


def test_redirect_without_location_fails(server: LoopbackServer) -> None:
    server.routes["/a"] = lambda h: h.reply(302)
    with pytest.raises(URLFetchFailed, match="without a Location") as info:
        fetch(server.url("/a"), LOCAL, connector=Dialer())
    assert info.value.remote_status == 302


@pytest.mark.parametrize("status", [404, 403, 500, 304])
def test_remote_error_status(server: LoopbackServer, status: int) -> None:
    server.routes["/x"] = lambda h: h.reply(status, b"" if status == 304 else b"error page")
    with pytest.raises(URLFetchFailed, match=f"HTTP {status}") as info:
        fetch(server.url("/x"), LOCAL, connector=Dialer())
    assert type(info.value) is URLFetchFailed
    assert (info.value.code, info.value.http_status) == ("url_fetch_failed", 422)
    assert info.value.remote_status == status


def test_connection_refused_on_loopback() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(URLFetchFailed, match="could not connect") as info:
        fetch(f"http://127.0.0.1:{port}/", LOCAL, connector=Dialer())
    assert info.value.remote_status is None


# --------------------------------------------------------------------------- caps and timeouts

CAPPED = NetPolicy(allow_private=True, max_bytes=100_000, read_timeout=2, total_timeout=5)


def test_streamed_body_above_cap(server: LoopbackServer) -> None:
    server.routes["/big"] = streaming_route(b"x" * 65536, 64)  # 4 MiB, no Content-Length
    with pytest.raises(URLTooLarge) as info:
        fetch(server.url("/big"), CAPPED, connector=Dialer())
    assert (info.value.code, info.value.http_status) == ("url_too_large", 413)


def test_body_exactly_at_cap_is_fine(server: LoopbackServer) -> None:
    server.routes["/exact"] = streaming_route(b"y" * 50_000, 2)
    assert len(fetch(server.url("/exact"), CAPPED, connector=Dialer()).content) == 100_000


def test_content_length_above_cap_is_refused_before_reading(server: LoopbackServer) -> None:
    def liar(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(10**12))
        h.end_headers()
        h.wfile.write(b"tiny")
        h.server.stop.wait(5)  # would stall a client that waits for the announced body

    server.routes["/cl"] = liar
    started = time.monotonic()
    with pytest.raises(URLTooLarge, match="announces"):
        fetch(server.url("/cl"), CAPPED, connector=Dialer())
    assert time.monotonic() - started < 1


def test_gzip_is_inflated_within_the_cap(server: LoopbackServer) -> None:
    small = gzip.compress(b"a" * 1000)
    bomb = gzip.compress(b"\0" * 20_000_000)  # ~20 KB that inflates to 20 MB
    server.routes["/small"] = lambda h: h.reply(200, small, {"Content-Encoding": "gzip"})
    server.routes["/bomb"] = lambda h: h.reply(200, bomb, {"Content-Encoding": "gzip"})
    assert fetch(server.url("/small"), CAPPED, connector=Dialer()).content == b"a" * 1000
    with pytest.raises(URLTooLarge):
        fetch(server.url("/bomb"), CAPPED, connector=Dialer())


def test_unsupported_content_encoding(server: LoopbackServer) -> None:
    server.routes["/br"] = lambda h: h.reply(200, b"....", {"Content-Encoding": "br"})
    with pytest.raises(URLFetchFailed, match="Content-Encoding"):
        fetch(server.url("/br"), LOCAL, connector=Dialer())


def test_read_timeout(server: LoopbackServer) -> None:
    server.routes["/slow"] = stall_route
    policy = NetPolicy(allow_private=True, read_timeout=0.2, total_timeout=5)
    started = time.monotonic()
    with pytest.raises(URLTimeout) as info:
        fetch(server.url("/slow"), policy, connector=Dialer())
    assert time.monotonic() - started < 1.5
    assert (info.value.code, info.value.http_status) == ("url_timeout", 504)


def test_total_deadline_beats_a_slow_drip(server: LoopbackServer) -> None:
    server.routes["/drip"] = drip_route  # a byte every 20 ms: never a read timeout
    policy = NetPolicy(allow_private=True, read_timeout=1, total_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(URLTimeout, match="deadline"):
        fetch(server.url("/drip"), policy, connector=Dialer())
    assert time.monotonic() - started < 1


def test_connect_timeout_maps_to_url_timeout() -> None:
    def slow_connect(ip: str, port: int, timeout: float | None) -> socket.socket:
        raise TimeoutError("timed out")

    dns = FakeDNS.static(example_com=[PUBLIC_V4])
    with pytest.raises(URLTimeout):
        fetch("http://example.com/", NetPolicy(), resolver=dns, connector=slow_connect)


# --------------------------------------------------------------------------- https (trustme)


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(tls_material: tuple[Any, Path]) -> Iterator[tuple[LoopbackServer, list[str]]]:
    ca, _ = tls_material
    context = server_tls(ca, "pinned.test")
    sni: list[str] = []
    context.sni_callback = lambda sock, name, ctx: sni.append(name) or None  # type: ignore[func-returns-value]
    for srv in serve(LoopbackServer(tls=context)):
        yield srv, sni


def test_https_pins_ip_but_verifies_and_sends_sni_for_the_name(
    tls_server: tuple[LoopbackServer, list[str]], tls_material: tuple[Any, Path]
) -> None:
    server, sni = tls_server
    server.routes["/host"] = lambda h: h.reply(200, h.headers["Host"].encode())
    policy = NetPolicy(allow_private=True, ca_file=str(tls_material[1]), total_timeout=5)
    dns, dialer = FakeDNS.static(pinned_test=["127.0.0.1"]), Dialer()
    url = server.url("/host", host="pinned.test", scheme="https")
    result = fetch(url, policy, resolver=dns, connector=dialer)
    assert result.content == f"pinned.test:{server.port}".encode()
    assert sni == ["pinned.test"]
    assert dialer.calls == [("127.0.0.1", server.port)]


@pytest.mark.parametrize("host", ["other.test", "pinned.test"])
def test_https_certificate_must_match_the_name_and_the_ca(
    tls_server: tuple[LoopbackServer, list[str]], tls_material: tuple[Any, Path], host: str
) -> None:
    server, _ = tls_server
    server.routes["/"] = ok_route()
    # other.test: right CA, wrong name. pinned.test: right name, CA not trusted (certifi bundle).
    ca_file = str(tls_material[1]) if host == "other.test" else None
    policy = NetPolicy(allow_private=True, ca_file=ca_file, total_timeout=5)
    dns = FakeDNS({host: [["127.0.0.1"]]})
    with pytest.raises(URLFetchFailed, match="TLS verification failed"):
        fetch(server.url("/", host=host, scheme="https"), policy, resolver=dns, connector=Dialer())


# --------------------------------------------------------------------------- put


def test_put_round_trip(server: LoopbackServer) -> None:
    server.routes["/bucket/key.png"] = lambda h: h.reply(200, b"", {"ETag": '"abc123"'})
    dns = FakeDNS.static(bucket_test=["127.0.0.1"])
    url = server.url("/bucket/key.png?X-Amz-Signature=deadbeef", host="bucket.test")
    result = put(url, b"\x89PNG-result", "image/png", LOCAL, resolver=dns, connector=Dialer())
    assert (result.status_code, result.etag) == (200, '"abc123"')
    seen = server.seen[0]
    assert (seen.method, seen.path, seen.body) == (
        "PUT",
        "/bucket/key.png?X-Amz-Signature=deadbeef",
        b"\x89PNG-result",
    )
    assert seen.headers["Content-Type"] == "image/png"
    assert seen.headers["Host"] == f"bucket.test:{server.port}"


def test_put_error_status(server: LoopbackServer) -> None:
    server.routes["/denied"] = lambda h: h.reply(403, b"<Error>SignatureDoesNotMatch</Error>")
    with pytest.raises(URLUploadFailed, match="HTTP 403") as info:
        put(server.url("/denied"), b"data", "image/png", LOCAL, connector=Dialer())
    assert (info.value.code, info.value.http_status, info.value.remote_status) == (
        "url_upload_failed",
        502,
        403,
    )


def test_put_connection_failure_is_an_upload_failure() -> None:
    dns = FakeDNS.static(bucket_example=[PUBLIC_V4])
    with pytest.raises(URLUploadFailed, match="upload failed") as info:
        put(
            "https://bucket.example/k",
            b"d",
            "image/png",
            NetPolicy(),
            resolver=dns,
            connector=RefuseDial(),
        )
    assert info.value.remote_status is None


def test_put_redirect_is_not_followed(server: LoopbackServer) -> None:
    server.routes["/moved"] = redirect_route("http://169.254.169.254/", 307)
    with pytest.raises(URLUploadFailed):
        put(server.url("/moved"), b"data", "image/png", LOCAL, connector=Dialer())
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://169.254.169.254/x", URLForbidden),
        ("http://[::ffff:10.0.0.1]/x", URLForbidden),
        ("http://bucket.example/x", URLForbidden),
        ("ftp://bucket.example/x", InvalidURL),
    ],
)
def test_put_is_validated_before_connecting(url: str, error: type[CleancutError]) -> None:
    dns, dialer = FakeDNS.static(bucket_example=["192.168.4.4"]), NoDial()
    with pytest.raises(error):
        put(url, b"d", "image/png", NetPolicy(), resolver=dns, connector=dialer)
    assert dialer.calls == []


# --------------------------------------------------------------------------- webhook signatures

SECRET = "whsec_test"
BODY = b'{"event":"job.succeeded","id":"j1"}'


def test_sign_matches_the_documented_construction() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, BODY) == f"sha256={expected}"
    assert sign(SECRET.encode(), 1700000000, BODY) == sign(SECRET, 1700000000, BODY)


def test_verify_good_signature_case_insensitive_headers() -> None:
    headers = {k.lower(): v for k, v in signature_headers(SECRET, 1700000000, BODY).items()}
    assert verify(SECRET, headers, BODY, now=1700000100)


@pytest.mark.parametrize(
    ("secret", "body", "now", "tweak"),
    [
        ("wrong-secret", BODY, 1700000000, None),  # wrong secret
        (SECRET, BODY + b" ", 1700000000, None),  # tampered body
        (SECRET, BODY, 1700000301, None),  # stale: outside the 300 s window
        (SECRET, BODY, 1699999699, None),  # from the future beyond tolerance
        (SECRET, BODY, 1700000000, {TIMESTAMP_HEADER: "1700000001"}),  # replayed with new stamp
        (SECRET, BODY, 1700000000, {TIMESTAMP_HEADER: "abc"}),
        (SECRET, BODY, 1700000000, {SIGNATURE_HEADER: "sha256=" + "0" * 64}),
        (SECRET, BODY, 1700000000, {SIGNATURE_HEADER: "sha256=é"}),
    ],
)
def test_verify_rejects(secret: str, body: bytes, now: float, tweak: dict[str, str] | None) -> None:
    headers = {**signature_headers(SECRET, 1700000000, BODY), **(tweak or {})}
    assert not verify(secret, headers, body, now=now)


def test_verify_missing_headers_and_rotation() -> None:
    assert not verify(SECRET, {}, BODY, now=1700000000)
    good = sign(SECRET, 1700000000, BODY)
    headers = {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: f"sha256=old, {good}"}
    assert verify(SECRET, headers, BODY, now=1700000000)


# --------------------------------------------------------------------------- webhook delivery


@dataclass
class Hook:
    """A loopback receiver answering a scripted sequence of statuses (the last one repeats)."""

    server: LoopbackServer
    statuses: list[int]
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server.routes["/hook"] = self._route

    def _route(self, h: Handler) -> None:
        status = self.statuses[min(len(self.server.seen) - 1, len(self.statuses) - 1)]
        h.reply(status, b"ok" if status < 300 else b"nope", self.extra)

    @property
    def url(self) -> str:
        return self.server.url("/hook")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_deliver_success_is_signed_json(server: LoopbackServer) -> None:
    hook = Hook(server, [200])
    sleeps = Sleeps()
    payload = {"event": "job.succeeded", "job": {"id": "j1", "ms": 12.5}, "name": "café"}
    log = deliver(WebhookSpec(hook.url, SECRET), payload, HOOKS, sleep=sleeps, connector=Dialer())
    assert [(a.attempt, a.status_code, a.error, a.ok) for a in log] == [(1, 200, None, True)]
    assert log[0].duration >= 0 and log[0].at > 1.6e9 and log[0].retry_in is None
    assert sleeps == []
    seen = server.seen[0]
    assert seen.method == "POST" and seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == payload
    assert verify(SECRET, seen.headers, seen.body)
    assert seen.headers["X-Cleancut-Attempt"] == "1"


def test_deliver_retries_5xx_with_exponential_backoff_then_succeeds(server: LoopbackServer) -> None:
    hook = Hook(server, [500, 502, 503, 200])
    sleeps, clock = Sleeps(), iter(range(1700000000, 1700000100, 10))
    spec = WebhookSpec(hook.url, SECRET, max_attempts=5, backoff_base=0.5, backoff_max=60)
    log = deliver(
        spec, {"a": 1}, HOOKS, sleep=sleeps, clock=lambda: next(clock), connector=Dialer()
    )
    assert [a.status_code for a in log] == [500, 502, 503, 200]
    assert log[-1].ok and not any(a.ok for a in log[:-1])
    assert len(sleeps) == 3 and sleeps == [a.retry_in for a in log[:-1]]
    for i, delay in enumerate(sleeps):  # equal jitter: in [d/2, d], d = base * 2**i
        assert 0.5 * 2**i / 2 <= delay <= 0.5 * 2**i
    assert [a.at for a in log] == [1700000000, 1700000010, 1700000020, 1700000030]
    # each attempt is signed afresh with its own timestamp; one delivery id throughout
    stamps = [int(s.headers[TIMESTAMP_HEADER]) for s in server.seen]
    assert stamps == [1700000000, 1700000010, 1700000020, 1700000030]
    assert all(
        verify(SECRET, s.headers, s.body, now=t) for s, t in zip(server.seen, stamps, strict=True)
    )
    assert len({s.headers["X-Cleancut-Delivery"] for s in server.seen}) == 1


def test_deliver_gives_up_after_max_attempts_without_raising(server: LoopbackServer) -> None:
    hook = Hook(server, [503])
    sleeps = Sleeps()
    spec = WebhookSpec(hook.url, SECRET, max_attempts=6, backoff_base=1, backoff_max=5)
    log = deliver(spec, {"a": 1}, HOOKS, sleep=sleeps, jitter=lambda: 1.0, connector=Dialer())
    assert [(a.attempt, a.status_code, a.ok) for a in log] == [(n, 503, False) for n in range(1, 7)]
    assert sleeps == [1, 2, 4, 5, 5]  # doubling, capped by backoff_max
    assert log[-1].retry_in is None
    assert len(server.seen) == 6


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
def test_deliver_does_not_retry_other_answers(server: LoopbackServer, status: int) -> None:
    hook = Hook(server, [status])
    sleeps = Sleeps()
    log = deliver(WebhookSpec(hook.url, SECRET), {}, HOOKS, sleep=sleeps, connector=Dialer())
    assert [(a.status_code, a.ok, a.retry_in) for a in log] == [(status, False, None)]
    assert sleeps == []


def test_deliver_honours_retry_after_on_429(server: LoopbackServer) -> None:
    hook = Hook(server, [429, 200], extra={"Retry-After": "7"})
    sleeps = Sleeps()
    spec = WebhookSpec(hook.url, SECRET, backoff_base=1, backoff_max=30)
    log = deliver(spec, {}, HOOKS, sleep=sleeps, jitter=lambda: 0.0, connector=Dialer())
    assert [a.status_code for a in log] == [429, 200]
    assert sleeps == [7]


def test_deliver_retries_connection_errors_and_timeouts(server: LoopbackServer) -> None:
    dns = FakeDNS.static(hooks_example=[PUBLIC_V4])
    sleeps = Sleeps()
    spec = WebhookSpec("https://hooks.example/h", SECRET, max_attempts=3)
    log = deliver(spec, {}, NetPolicy(), sleep=sleeps, resolver=dns, connector=RefuseDial())
    assert [a.attempt for a in log] == [1, 2, 3] and len(sleeps) == 2
    assert all(a.status_code is None and "url_fetch_failed" in (a.error or "") for a in log)

    server.routes["/hook"] = stall_route
    quick = NetPolicy(allow_private=True, webhook_https_only=False, read_timeout=0.1)
    spec = WebhookSpec(server.url("/hook"), SECRET, max_attempts=2)
    log = deliver(spec, {}, quick, sleep=Sleeps(), connector=Dialer())
    assert [a.error.split(":")[0] for a in log if a.error] == ["url_timeout", "url_timeout"]


def test_deliver_stops_when_the_name_resolves_somewhere_forbidden() -> None:
    dns = FakeDNS.static(hooks_example=["10.0.0.8"])
    dialer, sleeps = NoDial(), Sleeps()
    spec = WebhookSpec("https://hooks.example/h", SECRET)
    log = deliver(spec, {}, NetPolicy(), sleep=sleeps, resolver=dns, connector=dialer)
    assert len(log) == 1 and (log[0].error or "").startswith("url_forbidden")
    assert dialer.calls == [] and sleeps == []


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: WebhookSpec("https://h.example/", ""), InvalidWebhook),
        (lambda: WebhookSpec("https://h.example/", "s", max_attempts=0), InvalidWebhook),
        (lambda: WebhookSpec("https://h.example/", "s", backoff_base=-1), InvalidWebhook),
        (
            lambda: WebhookSpec("https://h.example/", "s", backoff_base=9, backoff_max=1),
            InvalidWebhook,
        ),
    ],
)
def test_invalid_spec(make: Callable[[], WebhookSpec], error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


@pytest.mark.parametrize(
    ("url", "payload", "error"),
    [
        ("http://hooks.example/h", {}, InvalidURL),  # https only by default
        ("https://169.254.169.254/h", {}, URLForbidden),
        ("https://localhost/h", {}, URLForbidden),
        ("https://hooks.example/h", {"bad": object()}, InvalidWebhook),
    ],
)
def test_deliver_raises_only_for_an_undeliverable_spec(
    url: str, payload: dict[str, Any], error: type[Exception]
) -> None:
    dialer = NoDial()
    with pytest.raises(error):
        deliver(
            WebhookSpec(url, SECRET),
            payload,
            NetPolicy(),
            sleep=Sleeps(),
            resolver=FakeDNS(),
            connector=dialer,
        )
    assert dialer.calls == []


def test_spec_repr_hides_the_secret() -> None:
    assert SECRET not in repr(WebhookSpec("https://h.example/", SECRET))
