"""The web page in a real browser against a real server and the real model: upload, result
pixels, mask/cut-out, adjustments through the effects endpoint, downloads, errors."""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import UPLOAD_CAP
from tests.browser.helpers import (
    JOB_LIMIT_MS,
    Point,
    checked_points,
    choose_view,
    download,
    hand_over,
    open_bytes,
    open_image,
    pixels,
    upload,
    wait_done,
    wait_shown,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

OpenPage = Callable[..., Any]
#: GT04: grass in the lower left, and the left doll's face
POINTS = ((60, 500), (345, 300))
COLOUR = (18, 196, 160)  # #12c4a0
HTTP_ERRORS = ("the server responded with a status of",)  # Chromium logs failed requests


@pytest.fixture
def photo(eval_dir: Path) -> tuple[Path, Path]:
    """The photo (read in place, never copied) and its ground-truth mask."""
    folder = eval_dir / "alphamatting"
    return folder / "images" / "GT04.png", folder / "masks" / "GT04.png"


def shown(page_at: OpenPage, photo: tuple[Path, Path]) -> tuple[Any, tuple[Point, Point]]:
    """A page showing the photo's finished cut-out, and its checked background and subject
    points."""
    page = page_at()
    upload(page, photo[0])
    wait_done(page)
    wait_shown(page)
    return page, checked_points(photo[1], *POINTS)


def test_upload_shows_the_cutout_with_live_progress(
    page_at: OpenPage, photo: tuple[Path, Path]
) -> None:
    page = page_at()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    upload(page, photo[0])
    item = page.locator(".item").first
    expect(item.locator(".item-name")).to_have_text("GT04.png")
    wait_done(page)
    wait_shown(page, "GT04.png: cut-out, transparent background")
    background, subject = checked_points(photo[1], *POINTS)
    size, (bg, fg) = pixels(page, "#after-img", [background, subject])
    assert size == (800, 563)
    assert bg[3] == 0, bg
    assert fg[3] == 255, fg
    # Progress came from the event stream, not from polling the job.
    assert any(r.startswith("GET ") and r.endswith("/events") for r in requests), requests
    job_reads = [r for r in requests if re.fullmatch(r"GET .*/v1/jobs/[\w-]+", r)]
    assert not job_reads, job_reads
    # The comparison: the photo is behind the divider at the same size.
    expect(page.locator("#before")).to_be_visible()
    size, _ = pixels(page, "#before-img", [background])
    assert size == (800, 563)


def test_mask_toggle_and_png_download(
    page_at: OpenPage, photo: tuple[Path, Path], tmp_path: Path
) -> None:
    page, (background, subject) = shown(page_at, photo)
    choose_view(page, "mask")
    wait_shown(page, "GT04.png: mask")
    _, (bg, fg) = pixels(page, "#after-img", [background, subject])
    assert bg == [0, 0, 0, 255], bg
    assert fg == [255, 255, 255, 255], fg
    choose_view(page, "cutout")
    wait_shown(page, "cut-out")
    _, (bg, _fg) = pixels(page, "#after-img", [background, subject])
    assert bg[3] == 0

    path = download(page, "#download", tmp_path)
    assert path.name == "GT04-cutout.png"
    image = open_image(path)
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    assert image.size == (800, 563)
    assert image.getpixel(background)[3] == 0
    assert image.getpixel(subject)[3] == 255
    expect(page.locator("#download-status")).to_contain_text("Saved GT04-cutout.png")


def test_colour_background_reaches_the_download(
    page_at: OpenPage, photo: tuple[Path, Path], tmp_path: Path
) -> None:
    page, (background, subject) = shown(page_at, photo)
    page.locator("input[name=bg][value=color]").check()
    page.locator("#bg-color").fill("#12c4a0")
    wait_shown(page, "#12c4a0 background")
    _, (bg, _fg) = pixels(page, "#after-img", [background, subject])
    assert np.abs(np.array(bg[:3]) - COLOUR).max() <= 3, bg  # the preview is lossy WebP

    png = open_image(download(page, "#download", tmp_path))
    assert png.convert("RGB").getpixel(background) == COLOUR
    page.locator("#format").select_option("jpeg")
    jpeg = open_image(download(page, "#download", tmp_path))
    assert jpeg.format == "JPEG"
    assert np.abs(np.array(jpeg.convert("RGB").getpixel(background)) - COLOUR).max() <= 6
    page.locator("#format").select_option("psd")
    expect(page.locator("#format-note")).to_contain_text("Photoshop")
    psd = download(page, "#download", tmp_path)
    assert psd.read_bytes()[:4] == b"8BPS"


def test_corrupt_file_shows_an_error(page_at: OpenPage, tmp_path: Path) -> None:
    page = page_at(expected_errors=HTTP_ERRORS)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8)
    upload(page, broken)
    item = page.locator(".item[data-state=failed]")
    expect(item).to_have_count(1, timeout=JOB_LIMIT_MS)
    status = item.locator(".item-status")
    expect(status).to_contain_text("Not a readable image")
    expect(page.locator("#alerter")).to_contain_text("broken.jpg")
    expect(item.get_by_role("button", name="Retry broken.jpg")).to_be_visible()


def test_too_large_upload_is_explained(page_at: OpenPage, tmp_path: Path) -> None:
    page = page_at(expected_errors=HTTP_ERRORS)
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(UPLOAD_CAP + 1024))
    upload(page, big)
    item = page.locator(".item[data-state=failed]")
    expect(item).to_have_count(1, timeout=60_000)
    expect(item.locator(".item-status")).to_contain_text("Too large")


def test_busy_server_is_retried(page_at: OpenPage, eval_dir: Path) -> None:
    """A 503 with Retry-After (a full queue) shows as busy and the upload is tried again."""
    page = page_at(expected_errors=HTTP_ERRORS)
    refusals = []

    def refuse_once(route: Any) -> None:
        if route.request.method == "POST" and not refusals:
            refusals.append(route.request.url)
            body = {"error": {"code": "queue_full", "message": "the queue is full"}}
            route.fulfill(
                status=503,
                headers={"Retry-After": "1", "content-type": "application/json"},
                body=json.dumps(body),
            )
        else:
            route.continue_()

    page.route("**/v1/jobs", refuse_once)
    upload(page, eval_dir / "people-removebg" / "images" / "p015.jpg")
    expect(page.locator(".item-status")).to_contain_text("Server busy", timeout=10_000)
    wait_done(page)
    assert len(refusals) == 1


def test_paste_drop_and_zip_of_the_batch(page_at: OpenPage, eval_dir: Path, tmp_path: Path) -> None:
    page = page_at()
    folder = eval_dir / "people-removebg" / "images"
    pasted, dropped = folder / "p001.jpg", folder / "p004.jpg"
    hand_over(page, "paste", pasted)
    hand_over(page, "drop", dropped)
    wait_done(page, 2)
    expect(page.locator("#queue-count")).to_have_text("2 images · 2 done")
    archive = download(page, "#download-all", tmp_path)
    assert archive.name == "cleancut-images.zip"
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None  # every CRC matches
        assert sorted(z.namelist()) == ["p001-cutout.png", "p004-cutout.png"]
        for info in z.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            image = open_bytes(z.read(info))
            assert image.mode == "RGBA"


@pytest.fixture
def photo_server(eval_dir: Path) -> Iterator[str]:
    """A loopback HTTP server handing out one eval photo (read in place)."""
    body = (eval_dir / "people-removebg" / "images" / "p015.jpg").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/shop/photo.jpg"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_url_input(page_at: OpenPage, photo_server: str) -> None:
    page = page_at()
    page.locator("#url-input").fill("not a url")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#url-error")).to_be_visible()
    expect(page.locator("#url-input")).to_have_attribute("aria-invalid", "true")
    page.locator("#url-input").fill(photo_server)
    page.locator("#url-input").press("Enter")
    expect(page.locator(".item-name")).to_have_text("photo.jpg")
    wait_done(page)
    wait_shown(page, "photo.jpg")
    expect(page.locator("#url-error")).to_be_hidden()


def test_every_adjustment_previews_and_every_format_downloads(
    page_at: OpenPage, eval_dir: Path, tmp_path: Path
) -> None:
    page = page_at()
    folder = eval_dir / "people-removebg" / "images"
    upload(page, folder / "p015.jpg")
    wait_done(page)
    wait_shown(page)
    status = page.locator("#stage-status")

    page.locator("input[name=bg][value=gradient]").check()
    page.locator("#grad-angle").fill("90")
    expect(page.locator("#grad-angle-out")).to_have_text("90°")
    wait_shown(page, "gradient background")
    page.locator("input[name=bg][value=blur]").check()
    page.locator("#bg-blur").fill("80")
    wait_shown(page, "blur background")
    page.locator("input[name=bg][value=image]").check()
    wait_shown(page, "Choose a background picture")
    page.locator("#bg-image").set_input_files(str(folder / "p001.jpg"))
    wait_shown(page, "image background")
    page.locator("#shadow-on").check()
    page.locator("#shadow-opacity").fill("80")
    wait_shown(page, "image background, shadow")
    if page.locator("#refine-group").is_visible():
        page.locator("#refine-level").select_option("2")
        page.locator("#decontaminate").fill("50")
        expect(page.locator("#decontaminate-out")).to_have_text("50%")
    page.locator("#trim").check()
    page.locator("#margin").fill("5")
    page.locator("#margin-unit").select_option("%")
    wait_shown(page, "trimmed")
    expect(status).not_to_have_attribute("data-state", "error")
    expect(page.locator("#before")).to_be_hidden()  # a trimmed result has its own geometry
    expect(page.locator("#compare")).to_be_disabled()
    choose_view(page, "mask")
    wait_shown(page, "mask")
    expect(status).not_to_have_attribute("data-state", "error")

    page.get_by_role("button", name="Reset adjustments").click()
    choose_view(page, "cutout")
    wait_shown(page, "transparent background")
    expect(page.locator("#before")).to_be_visible()
    magic = {
        "webp": (b"RIFF", 0),
        "avif": (b"ftyp", 4),
        "jpeg-path": (b"\xff\xd8", 0),
        "svg": (b"<svg", None),
    }
    for fmt, (signature, offset) in magic.items():
        page.locator("#format").select_option(fmt)
        data = download(page, "#download", tmp_path).read_bytes()
        if offset is None:
            assert signature in data[:400], (fmt, data[:80])
        else:
            assert data[offset : offset + len(signature)] == signature, (fmt, data[:16])
        if fmt == "jpeg-path":
            assert b"8BIM" in data  # the Photoshop resource with the clipping path
