"""A real ``cleancut serve`` (real model) and Debian's chromium driven by Playwright.

No browser is downloaded: chromium comes from apt (``.ci/run`` and ``scripts/setup.sh`` install
it). A failing test leaves a screenshot of its page in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.api.serverproc import ServerProcess
from tests.conftest import REPO, require_shared

CHROMIUM = Path(os.environ.get("CLEANCUT_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts" / "browser"
DESKTOP = {"width": 1440, "height": 900}
UPLOAD_CAP = 4 * 1024 * 1024


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, eval_dir: Path) -> Iterator[ServerProcess]:
    """One server for the session: the real model, loopback only, no keys, private URLs
    allowed (the URL test serves its photo from a loopback HTTP server), a 4 MiB upload cap."""
    root = tmp_path_factory.mktemp("web-server")
    proc = ServerProcess(
        root / "data",
        settings={"allow_private_networks": "true", "max_upload_bytes": str(UPLOAD_CAP)},
    )
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); "
            "the browser tests never download a browser",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageProblems:
    """What the page reported: uncaught errors, console errors (CSP violations among them)."""

    errors: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.errors.append(text)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def open_page(browser: Any, viewport: dict[str, int]) -> tuple[Any, Any, PageProblems]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    problems = PageProblems()
    page.on("pageerror", lambda exc: problems.add(f"uncaught: {exc}"))
    page.on(
        "console",
        lambda msg: problems.add(f"console: {msg.text}") if msg.type == "error" else None,
    )
    return context, page, problems


def screenshot_on_failure(request: pytest.FixtureRequest, page: Any, name: str) -> None:
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failing page: {path}")


@pytest.fixture
def page_at(browser: Any, server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``page_at(viewport=None, expected_errors=(), url=None)`` opens the page (of the session's
    server unless ``url`` names another); after the test, a failed test's pages are
    photographed and console errors not expected fail the test."""
    opened: list[tuple[Any, Any, PageProblems, tuple[str, ...]]] = []

    def open_(
        viewport: dict[str, int] | None = None,
        expected_errors: tuple[str, ...] = (),
        url: str | None = None,
    ) -> Any:
        context, page, problems = open_page(browser, viewport or DESKTOP)
        opened.append((context, page, problems, expected_errors))
        page.goto(f"{url or server.url}/")
        page.locator("html[data-ready=true]").wait_for()
        return page

    yield open_
    unexpected: list[str] = []
    for n, (context, page, problems, expected) in enumerate(opened):
        screenshot_on_failure(request, page, f"{request.node.name}-{n}")
        unexpected += [e for e in problems.errors if not any(x in e for x in expected)]
        context.close()
    assert not unexpected, unexpected
