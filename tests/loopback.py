"""A loopback HTTP(S) server for tests: routes by path, records every request it is sent.

Subclasses give the handler's ``reply`` (and the server's ``url``) the shape their tests use.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

S = TypeVar("S", bound="LoopbackServer")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackHandler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def route_key(self) -> str:
        """What ``routes`` is looked up by: the request target, query included."""
        return self.path

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        route = self.server.routes.get(self.route_key())
        if route is None:
            self.reply(404, b"not found")
        else:
            route(self)

    do_GET = do_POST = do_PUT = _dispatch

    def reply(self, status: int, body: bytes = b"") -> None:
        raise NotImplementedError

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: nothing outlives a test
    handler: type[LoopbackHandler] = LoopbackHandler

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), self.handler)
        self.tls = tls
        self.routes: dict[str, Callable[[Any], None]] = {}
        self.seen: list[Seen] = []
        self.stop = threading.Event()
        self.port = self.server_address[1]

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:  # handshake in the handler thread, on first read
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up on purpose (caps, timeouts) are expected


def serve(server: S) -> Iterator[S]:
    """Serve ``server`` in a thread for as long as the generator is open (a fixture's body)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


def make_ca(directory: Path) -> tuple[Any, Path]:
    """A throwaway CA (trustme) and its certificate, written as ``ca.pem`` in ``directory``."""
    import trustme

    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca, ca_file


def server_tls(ca: Any, host: str = "127.0.0.1") -> ssl.SSLContext:
    """A server-side TLS context with a certificate for ``host`` issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(context)
    return context
