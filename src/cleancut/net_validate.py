"""URL and address validation against SSRF, done before any connection is attempted.

Order of checks in :func:`validate_url`: syntax and scheme → credentials → host spelling →
port → (names) forbidden names → DNS, once → every address classified. Numeric hosts are parsed
the way ``inet_aton``/getaddrinfo and the WHATWG URL standard do (``2130706433``, ``0177.0.0.1``,
``0x7f.1``, ``127.1`` are all 127.0.0.1), and a host whose last label is numeric is never sent to
DNS: it must parse as IPv4 or it is rejected.

IPv6 forms that embed IPv4 are judged by the embedded address: IPv4-mapped ``::ffff:a.b.c.d`` (we
pin and connect to the plain IPv4 address), NAT64 ``64:ff9b::/96`` and 6to4 ``2002::/16`` (allowed
only when the embedded IPv4 is public, since DNS64 networks legitimately hand out NAT64 addresses).
The deprecated IPv4-compatible ``::a.b.c.d`` form, Teredo ``2001::/32``, and zone ids
(``fe80::1%eth0``) are always refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import httpx

from cleancut.net_errors import InvalidURL, URLFetchFailed, URLForbidden
from cleancut.net_policy import NetPolicy

IPAddress = IPv4Address | IPv6Address
#: ``resolver(host, port)`` returns every address of ``host`` (strings or ip_address objects).
Resolver = Callable[[str, int], Iterable[str | IPAddress]]

MAX_URL_LENGTH = 8192
DEFAULT_PORTS = {"http": 80, "https": 443}

# Categories. The first four open up with NetPolicy.allow_private; the others never do.
LOOPBACK, PRIVATE, LINK_LOCAL, CGNAT = "loopback", "private", "link-local", "shared (CGNAT)"
METADATA, UNSPECIFIED, MULTICAST, BROADCAST = (
    "cloud metadata",
    "unspecified",
    "multicast",
    "broadcast",
)
RESERVED = "reserved"
PRIVATE_LIKE = frozenset({LOOPBACK, PRIVATE, LINK_LOCAL, CGNAT})

_V4 = IPv4Network
_V6 = IPv6Network
_V4_RULES: tuple[tuple[IPv4Network, str], ...] = (
    (_V4("169.254.169.254/32"), METADATA),  # AWS, GCP, Azure, OpenStack, Oracle...
    (_V4("169.254.170.2/32"), METADATA),  # AWS ECS task metadata
    (_V4("100.100.100.200/32"), METADATA),  # Alibaba Cloud
    (_V4("168.63.129.16/32"), METADATA),  # Azure WireServer
    (_V4("0.0.0.0/32"), UNSPECIFIED),
    (_V4("0.0.0.0/8"), RESERVED),  # "this network"; Linux connects 0.x to localhost
    (_V4("127.0.0.0/8"), LOOPBACK),
    (_V4("10.0.0.0/8"), PRIVATE),
    (_V4("172.16.0.0/12"), PRIVATE),
    (_V4("192.168.0.0/16"), PRIVATE),
    (_V4("100.64.0.0/10"), CGNAT),
    (_V4("169.254.0.0/16"), LINK_LOCAL),
    (_V4("224.0.0.0/4"), MULTICAST),
    (_V4("255.255.255.255/32"), BROADCAST),
    (_V4("240.0.0.0/4"), RESERVED),
    (_V4("192.0.0.0/24"), RESERVED),  # IETF protocol assignments (incl. Oracle metadata)
    (_V4("192.0.2.0/24"), RESERVED),  # documentation
    (_V4("198.51.100.0/24"), RESERVED),
    (_V4("203.0.113.0/24"), RESERVED),
    (_V4("198.18.0.0/15"), RESERVED),  # benchmarking
    (_V4("192.88.99.0/24"), RESERVED),  # 6to4 relay anycast
)
_V6_RULES: tuple[tuple[IPv6Network, str], ...] = (
    (_V6("fd00:ec2::254/128"), METADATA),  # AWS IMDS over IPv6
    (_V6("::/128"), UNSPECIFIED),
    (_V6("::1/128"), LOOPBACK),
    (_V6("::/96"), RESERVED),  # deprecated IPv4-compatible ::a.b.c.d
    (_V6("::ffff:0:0:0/96"), RESERVED),  # SIIT
    (_V6("64:ff9b:1::/48"), PRIVATE),  # local-use NAT64
    (_V6("2001::/32"), RESERVED),  # Teredo
    (_V6("2001:db8::/32"), RESERVED),  # documentation
    (_V6("100::/64"), RESERVED),  # discard
    (_V6("fc00::/7"), PRIVATE),  # unique local
    (_V6("fe80::/10"), LINK_LOCAL),
    (_V6("fec0::/10"), PRIVATE),  # deprecated site-local
    (_V6("ff00::/8"), MULTICAST),
)
_NAT64 = _V6("64:ff9b::/96")

METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class ParsedURL:
    """A URL that passed every check that needs no DNS. ``url`` is normalised (numeric hosts
    canonical, trailing dot and fragment dropped); ``host`` is ASCII, without IPv6 brackets, and is
    what goes into the Host header, SNI and certificate verification."""

    url: str
    scheme: str
    host: str
    port: int
    ip: IPAddress | None  # set when the host is an IP literal


@dataclass(frozen=True)
class ResolvedTarget:
    """A validated URL with the addresses it was resolved to, once. Connections go only to
    ``addresses`` (in order), never to a fresh lookup of ``host``."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def address(self) -> IPAddress:
        """The pinned address tried first."""
        return self.addresses[0]


def getaddrinfo_resolver(host: str, port: int) -> list[str]:
    """The default resolver: every TCP address of ``host`` from the system resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def check_url(url: str, policy: NetPolicy) -> ParsedURL:
    """Every check that needs no DNS (for example, to vet a webhook URL when a job is submitted)."""
    if not isinstance(url, str) or not url:
        raise InvalidURL("the URL must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_URL_CHARS.search(url):
        raise InvalidURL("the URL contains whitespace, control characters or a backslash")
    try:
        parsed = httpx.URL(_canonical_numeric_host(url))
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidURL(f"not a valid URL: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in policy.schemes:
        allowed = ", ".join(sorted(policy.schemes))
        raise InvalidURL(f"URL scheme {scheme or '(none)'!r} is not allowed (only {allowed})")
    if parsed.userinfo or "@" in _authority(url):
        # Pre-signed and public URLs never need them; they would leak into logs and third-party
        # requests, and "trusted@evil" is a classic parser-confusion trick.
        raise InvalidURL("credentials (user:password@) in URLs are not accepted")
    host, ip = _normalise_host(parsed.raw_host.decode("ascii"))
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise InvalidURL(f"port {port} is out of range")
    if policy.ports is not None and port not in policy.ports:
        raise URLForbidden(f"port {port} is not allowed", hint=f"allowed: {sorted(policy.ports)}")
    if ip is not None:
        _check_address(ip, policy, None)
        host = str(ip)
    else:
        _check_name(host, policy)
    normalised = parsed.copy_with(scheme=scheme, host=host, fragment=None)
    return ParsedURL(url=str(normalised), scheme=scheme, host=host, port=port, ip=ip)


def validate_url(url: str, policy: NetPolicy, resolver: Resolver | None = None) -> ResolvedTarget:
    """Check ``url`` fully and resolve it once. Raises InvalidURL, URLForbidden (any address of
    the name is forbidden → the whole name is) or URLFetchFailed (the name does not resolve)."""
    parsed = check_url(url, policy)
    if parsed.ip is not None:
        addresses: tuple[IPAddress, ...] = (_connectable(parsed.ip),)
    else:
        addresses = _resolve(parsed.host, parsed.port, resolver or getaddrinfo_resolver)
        for address in addresses:
            _check_address(address, policy, parsed.host)
        addresses = tuple(dict.fromkeys(_connectable(a) for a in addresses))
    return ResolvedTarget(parsed.url, parsed.scheme, parsed.host, parsed.port, addresses)


def classify(ip: IPAddress) -> tuple[str, str] | None:
    """``(category, description)`` of a non-public address, or None for a public one."""
    if isinstance(ip, IPv6Address):
        if ip.scope_id:
            return LINK_LOCAL, "an address with a zone id"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, v4 = embedded
            verdict = classify(v4)
            if verdict is None:
                return None
            # IPv4-mapped is the same host as the IPv4 address; the translated forms are odd
            # enough that we never open them, even with allow_private.
            category = verdict[0] if form == "IPv4-mapped" else RESERVED
            return category, f"{form} address embedding {verdict[1]} {v4}"
        rules: Iterable[tuple[IPv4Network | IPv6Network, str]] = _V6_RULES
    else:
        rules = _V4_RULES
    for network, category in rules:
        if ip in network:
            return category, category
    if not ip.is_global or ip.is_multicast:
        return RESERVED, "non-global"
    return None


def _authority(url: str) -> str:
    rest = url.split("//", 1)[1] if "//" in url else ""
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


_SPLIT = re.compile(r"(?s)([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)(.*)")


def _canonical_numeric_host(url: str) -> str:
    """Rewrite a numeric host (``0177.0.0.1``, ``0x7f.1``, ``2130706433``...) to dotted-quad
    before httpx parses the URL (httpx refuses some of these spellings, accepts others as names);
    the result is parsed and checked again, so this pre-pass only has to be right for hosts it
    changes."""
    match = _SPLIT.fullmatch(url)
    if match is None:
        return url
    prefix, authority, rest = match.groups()
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        return url
    host, colon, port = hostport.partition(":")
    labels = host.lower().removesuffix(".").split(".")
    if not host or not _is_numeric_label(labels[-1]):
        return url
    ip = _parse_ipv4_like_inet_aton(labels)
    return f"{prefix}{userinfo}{at}{ip}{colon}{port}{rest}"


def _normalise_host(raw: str) -> tuple[str, IPAddress | None]:
    host = raw.lower()
    if not host:
        raise InvalidURL("the URL has no host")
    if "%" in host:
        raise InvalidURL("IPv6 zone ids and percent-encoded hosts are not accepted")
    if ":" in host:
        try:
            return host, IPv6Address(host)
        except ValueError:
            raise InvalidURL(f"invalid IPv6 address {host!r}") from None
    if host.endswith("."):
        host = host[:-1]  # "localhost." is "localhost"
    labels = host.split(".")
    if _is_numeric_label(labels[-1]):
        return host, _parse_ipv4_like_inet_aton(labels)
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidURL(f"invalid host name {raw!r}")
    return host, None


def _is_numeric_label(label: str) -> bool:
    if label[:2] in ("0x", "0X"):
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return label.isascii() and label.isdigit()


def _parse_ipv4_like_inet_aton(parts: list[str]) -> IPv4Address:
    """``a``, ``a.b``, ``a.b.c``, ``a.b.c.d`` with decimal, 0-octal and 0x-hex parts (the WHATWG
    IPv4 parser, which agrees with glibc's inet_aton)."""
    if len(parts) > 4:
        raise InvalidURL(f"host {'.'.join(parts)!r} looks numeric but is not an IPv4 address")
    numbers = [_ipv4_part(p, ".".join(parts)) for p in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise InvalidURL(f"host {'.'.join(parts)!r} is an out-of-range IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def _ipv4_part(part: str, host: str) -> int:
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        if part.isascii() and part.isdigit():
            return int(part)
    except ValueError:
        pass
    raise InvalidURL(f"host {host!r} looks numeric but is not an IPv4 address")


def _check_name(host: str, policy: NetPolicy) -> None:
    if host in METADATA_NAMES:
        raise URLForbidden(f"host {host!r} is a cloud metadata endpoint")
    if (host == "localhost" or host.endswith(".localhost")) and not policy.allow_private:
        raise URLForbidden(f"host {host!r} is loopback")


def _check_address(ip: IPAddress, policy: NetPolicy, host: str | None) -> None:
    """``host`` is None for an IP literal (echoed in full: the caller wrote it), else the name
    it was resolved from (then we say what kind of address, never which: no internal-DNS oracle)."""
    verdict = classify(ip)
    if verdict is None or (policy.allow_private and verdict[0] in PRIVATE_LIKE):
        return
    category, description = verdict
    if host is None:
        raise URLForbidden(f"address {ip} is {description}")
    raise URLForbidden(f"host {host!r} resolves to a forbidden ({category}) address")


def _resolve(host: str, port: int, resolver: Resolver) -> tuple[IPAddress, ...]:
    try:
        answers = list(resolver(host, port))
    except (OSError, UnicodeError) as exc:
        raise URLFetchFailed(f"could not resolve host {host!r}: {exc}") from None
    if not answers:
        raise URLFetchFailed(f"host {host!r} has no addresses")
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            raise URLFetchFailed(f"the resolver returned a non-address {answer!r}") from None
    return tuple(addresses)


def _embedded_ipv4(ip: IPv6Address) -> tuple[str, IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        return "NAT64", IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    return None


def _connectable(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 addresses are connected to as the plain IPv4 address."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
