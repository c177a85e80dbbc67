"""Run the app under uvicorn on a socket we bind ourselves (so port 0 prints its real URL)."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

from cleancut.config import Settings

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def safe_host(settings: Settings) -> tuple[str, str | None]:
    """The host to bind, and a warning when a keyless server was asked to listen beyond loopback."""
    host = settings.server.host
    if settings.server.auth_enabled or is_loopback(host):
        return host, None
    return LOOPBACK, (
        f"no API key is configured, so the server listens on {LOOPBACK} only, not {host}; "
        "set CLEANCUT_SERVER__API_KEYS (or __API_KEY_HASHES) to serve other machines"
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    # Listen at once: clients that connect before uvicorn has started wait in the backlog
    # instead of being refused (the URL is announced before the app's startup runs).
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def run(settings: Settings, *, announce: Callable[[str], None], log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; the app's lifespan starts and stops the job service."""
    import uvicorn

    from cleancut.api.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    host, warning = safe_host(settings)
    if warning:
        logging.getLogger("cleancut.server").warning(warning)
    sock = bind(host, settings.server.port)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    url = url_of(sock)
    announce(f"serving on {url} (API docs: {url}/docs, data: {settings.server.data_dir})")
    uvicorn.Server(config).run(sockets=[sock])
