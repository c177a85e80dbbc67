"""The page without a mouse, for a screen reader, on a phone, with an API key; and the README's
screenshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.api.serverproc import ServerProcess
from tests.browser.conftest import ARTIFACTS
from tests.browser.helpers import focus_by_tab, lowest_contrast, upload, wait_done, wait_shown
from tests.conftest import REPO

pytestmark = [pytest.mark.model, pytest.mark.slow]

OpenPage = Callable[..., Any]
KEY = "browser-test-key-0123456789"
#: Roles a person operates; each needs an accessible name.
CONTROLS = {
    "button",
    "checkbox",
    "radio",
    "slider",
    "textbox",
    "combobox",
    "spinbutton",
    "link",
    "progressbar",
    "ColorWell",
    "colorwell",
    "listbox",
    "searchbox",
}


def small_photo(eval_dir: Path) -> Path:
    return eval_dir / "people-removebg" / "images" / "p015.jpg"


def test_keyboard_only(page_at: OpenPage, eval_dir: Path) -> None:
    page = page_at()
    # Playwright switches file-chooser interception on when the first listener appears, and
    # asynchronously: a key press sent right after could reach the page first, open the
    # native dialog (which headless Chromium dismisses) and leave no event (1 run in 3).
    # A listener from the start has interception on before the press.
    page.on("filechooser", lambda _chooser: None)
    focus_by_tab(page, "el.id === 'file-input'", limit=4)  # skip link, key button, then this
    outline = "getComputedStyle(document.getElementById('drop-zone')).outlineStyle"
    assert page.evaluate(outline) == "solid"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(small_photo(eval_dir)))
    wait_done(page)
    wait_shown(page)

    focus_by_tab(page, "el.id === 'stage'")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    fitted = page.locator("#zoom-level").inner_text()
    page.keyboard.press("+")
    expect(page.locator("#zoom-level")).not_to_have_text(fitted)
    page.keyboard.press("0")
    expect(page.locator("#zoom-level")).to_have_text(fitted)
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#compare")).to_have_value("45")

    focus_by_tab(page, "el.name === 'bg'")
    page.keyboard.press("ArrowDown")  # radio groups move with the arrow keys
    expect(page.locator("input[name=bg][value=color]")).to_be_checked()
    expect(page.locator("#bg-color")).to_be_visible()
    wait_shown(page, "#ffffff background")

    focus_by_tab(page, "el.id === 'download'")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    assert info.value.suggested_filename == "p015-cutout.png"
    # Shift+Tab goes back the way it came.
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "format"


def accessible_controls(page: Any) -> list[tuple[str, str]]:
    cdp = page.context.new_cdp_session(page)
    nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    found = []
    for node in nodes:
        if node.get("ignored"):
            continue
        role = node.get("role", {}).get("value", "")
        if role in CONTROLS:
            found.append((role, str(node.get("name", {}).get("value", "")).strip()))
    return found


def test_every_control_has_an_accessible_name(page_at: OpenPage, eval_dir: Path) -> None:
    page = page_at()
    upload(page, small_photo(eval_dir))
    expect(page.locator(".item")).to_have_count(1)
    assert all(name for _, name in accessible_controls(page))  # while it is in progress
    wait_done(page)
    wait_shown(page)
    for value in ("color", "gradient", "blur", "image"):  # every background's fields once
        page.locator(f"input[name=bg][value={value}]").check()
        controls = accessible_controls(page)
        unnamed = [role for role, name in controls if not name]
        assert not unnamed, unnamed
    roles = {role for role, _ in controls}
    assert {"button", "radio", "slider", "checkbox", "combobox"} <= roles, roles
    names = {name for _, name in controls}
    assert {"Remove p015.jpg", "Zoom in", "Before / after", "API key"} <= names, names
    assert page.evaluate("document.documentElement.lang") == "en"
    live = page.locator("[aria-live], [role=alert]")
    assert live.count() >= 3  # announcements, errors, preview status


def test_fits_a_phone(page_at: OpenPage, eval_dir: Path) -> None:
    page = page_at(viewport={"width": 390, "height": 844})
    upload(page, small_photo(eval_dir))
    wait_done(page)
    wait_shown(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    for selector in ("#drop-zone", "#stage", "#adjust", "#download"):
        box = page.locator(selector).bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390 + 0.5, (selector, box)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)


def test_screenshot_for_the_readme(page_at: OpenPage) -> None:
    """The README's picture: written to test-artifacts/browser/web.png on every run, and to
    the path in CLEANCUT_DOCS_SCREENSHOT when set (docs/web.png is made that way). It shows
    the repository's public-domain sample, never an evaluation photo."""
    page = page_at(viewport={"width": 1440, "height": 900})
    upload(page, REPO / "examples" / "astronaut.jpg")
    wait_done(page)
    wait_shown(page, "astronaut.jpg")
    page.locator("input[name=bg][value=gradient]").check()
    page.locator("#grad-angle").fill("135")
    page.locator("#shadow-on").check()
    wait_shown(page, "gradient background, shadow")
    page.locator("#compare").fill("40")
    page.mouse.move(0, 0)
    page.evaluate("document.activeElement.blur()")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "web.png"
    page.screenshot(path=str(path), full_page=True)
    if target := os.environ.get("CLEANCUT_DOCS_SCREENSHOT"):
        shutil.copyfile(path, target)


@pytest.fixture
def keyed_server(tmp_path: Path, eval_dir: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", settings={"api_keys": KEY})
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def test_api_key_is_asked_for_kept_and_sent(
    page_at: OpenPage, keyed_server: ServerProcess, eval_dir: Path
) -> None:
    """With keys on, the page asks for one; the event stream (fetch, with the header) works."""
    page = page_at(url=keyed_server.url, expected_errors=("status of 401",))
    expect(page.locator("#key-panel")).to_be_visible()
    expect(page.locator("#key-note")).to_contain_text("needs an API key")
    expect(page.locator("#api-key")).to_be_focused()
    page.locator("#api-key").fill("wrong-key-0000000000")
    page.locator("#api-key").press("Enter")
    expect(page.locator("#key-note")).to_contain_text("did not accept")
    page.locator("#api-key").fill(KEY)
    page.get_by_role("button", name="Save key").click()
    expect(page.locator("#key-note")).to_contain_text("saved")
    upload(page, small_photo(eval_dir))
    wait_done(page)
    wait_shown(page)
    page.reload()
    page.locator("html[data-ready=true]").wait_for()
    expect(page.locator("#key-panel")).to_be_hidden()
    expect(page.locator("#key-toggle")).to_contain_text("API key saved")
    assert page.evaluate("localStorage.getItem('cleancut.apiKey')") == KEY


def test_key_panel_opens_on_request_without_keys(page_at: OpenPage) -> None:
    page = page_at()
    expect(page.locator("#key-panel")).to_be_hidden()
    page.locator("#key-toggle").click()
    expect(page.locator("#key-panel")).to_be_visible()
    expect(page.locator("#key-toggle")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#api-key")).to_be_focused()
    page.locator("#key-toggle").click()
    expect(page.locator("#key-panel")).to_be_hidden()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast(page_at: OpenPage, eval_dir: Path, tmp_path: Path, scheme: str) -> None:
    """WCAG AA: at least 4.5:1 for all text, in both colour schemes, with a finished and a
    failed image in the queue."""
    page = page_at(expected_errors=("the server responded with a status of",))
    page.emulate_media(color_scheme=scheme)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    upload(page, small_photo(eval_dir), broken)
    wait_done(page)
    expect(page.locator(".item[data-state=failed]")).to_have_count(1)
    wait_shown(page)
    page.locator("#key-toggle").click()
    worst = lowest_contrast(page)
    assert worst
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"scheme-{scheme}.png"), full_page=True)
    assert worst[0][0] >= 4.5, worst
