"""remove.bg's API (``/v1.0/removebg``, ``/v1.0/account``) against the real app and the tiny
model: the documented request styles, every documented response field and header, each
parameter's effect on the result, and remove.bg's error envelope and codes."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from tests import tinymodels
from tests.api.conftest import KEY, MakeApp, png_bytes
from tests.api.serverproc import ServerProcess
from tests.conftest import require_shared

URL = "/v1.0/removebg"
AUTH = {"X-Api-Key": KEY}
#: The synthetic photo: 200x150, a bright subject at (50, 40)-(150, 110).
SUBJECT = (50, 40, 100, 70)  # left, top, width, height
IMAGE_HEADERS = (
    "X-Type",
    "X-Width",
    "X-Height",
    "X-Foreground-Top",
    "X-Foreground-Left",
    "X-Foreground-Width",
    "X-Foreground-Height",
    "X-Credits-Charged",
)


@pytest.fixture
def rb(make_app: MakeApp) -> Iterator[TestClient]:
    app = make_app(api_keys=(KEY,), allow_private_networks=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(AUTH)
        yield client


def photo_file(data: bytes | None = None) -> dict[str, Any]:
    return {"image_file": ("photo.png", png_bytes() if data is None else data, "image/png")}


def decode(content: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(content))
    img.load()
    return img


def assert_errors(response: Any, status: int, code: str) -> dict[str, Any]:
    """remove.bg's envelope: {"errors": [{"title", "code", "detail"}]}, nothing else."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}
    assert isinstance(body["errors"], list)
    assert len(body["errors"]) == 1
    error: dict[str, Any] = body["errors"][0]
    assert set(error) == {"title", "code", "detail"}
    assert all(isinstance(error[k], str) and error[k] for k in error)
    assert error["code"] == code, error
    assert "Traceback" not in response.text
    return error


def foreground(response: Any) -> tuple[int, int, int, int]:
    h = response.headers
    return (
        int(h["X-Foreground-Left"]),
        int(h["X-Foreground-Top"]),
        int(h["X-Foreground-Width"]),
        int(h["X-Foreground-Height"]),
    )


def near(box: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 2) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(box, expected, strict=True))


# -- the documented request styles -----------------------------------------------------------


def test_multipart_upload_as_the_docs_show(rb: TestClient) -> None:
    # curl -H 'X-Api-Key: KEY' -F 'image_file=@file.jpg' -F 'size=auto' -f URL -o no-bg.png
    r = rb.post(URL, files=photo_file(), data={"size": "auto"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    for name in IMAGE_HEADERS:
        assert name in r.headers, name
    assert r.headers["X-Type"] == "other"
    assert r.headers["X-Credits-Charged"] == "0"
    img = decode(r.content)
    assert img.mode == "RGBA"
    assert (int(r.headers["X-Width"]), int(r.headers["X-Height"])) == img.size == (200, 150)
    assert near(foreground(r), SUBJECT)
    alpha = np.asarray(img.getchannel("A"))
    assert alpha[75, 100] == 255
    assert alpha[5, 5] == 0


def test_base64_in_an_urlencoded_form_with_a_json_answer(rb: TestClient) -> None:
    b64 = base64.b64encode(png_bytes()).decode()
    r = rb.post(
        URL,
        data={"image_file_b64": b64, "size": "full", "type": "product"},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()["data"]
    assert set(data) == {
        "result_b64",
        "foreground_top",
        "foreground_left",
        "foreground_width",
        "foreground_height",
    }
    for name in ("foreground_top", "foreground_left", "foreground_width", "foreground_height"):
        assert isinstance(data[name], int)
    box = (
        data["foreground_left"],
        data["foreground_top"],
        data["foreground_width"],
        data["foreground_height"],
    )
    assert box == foreground(r)
    assert near(box, SUBJECT)
    assert r.headers["X-Type"] == "product"
    assert decode(base64.b64decode(data["result_b64"])).size == (200, 150)


def test_image_url_in_a_json_body(rb: TestClient, image_server: str) -> None:
    r = rb.post(URL, json={"image_url": f"{image_server}/square.png", "size": "auto"})
    assert r.status_code == 200, r.text
    assert decode(r.content).size == (200, 150)
    assert near(foreground(r), SUBJECT)


# -- parameters ------------------------------------------------------------------------------


def test_size_preview_is_the_default_and_caps_the_pixels(rb: TestClient) -> None:
    big = tinymodels.square_image(1000, 750, (250, 200, 750, 550))
    r = rb.post(URL, files=photo_file(png_bytes(big)))
    assert r.status_code == 200, r.text
    w, h = decode(r.content).size
    assert w * h <= 250_000
    assert abs(w / h - 1000 / 750) < 0.01
    assert (int(r.headers["X-Width"]), int(r.headers["X-Height"])) == (w, h)
    left, top, fw, fh = foreground(r)
    assert near((left, top, fw, fh), (w // 4, h * 200 // 750, w // 2, h * 350 // 750), 10)
    medium = rb.post(URL, files=photo_file(png_bytes(big)), data={"size": "medium"})
    assert decode(medium.content).size == (1000, 750)  # within 1.5 MP: untouched


@pytest.mark.parametrize(
    ("fmt", "extra", "media", "mode"),
    [
        ("jpg", {}, "image/jpeg", "RGB"),
        ("webp", {}, "image/webp", "RGBA"),
        ("png", {"bg_color": "81d4fa"}, "image/png", "RGB"),
        ("auto", {"bg_color": "81d4fa"}, "image/jpeg", "RGB"),
        ("auto", {"bg_color": "81d4fa77"}, "image/png", "RGBA"),
        ("auto", {}, "image/png", "RGBA"),
    ],
)
def test_formats_and_background_colours(
    rb: TestClient, fmt: str, extra: dict[str, str], media: str, mode: str
) -> None:
    r = rb.post(URL, files=photo_file(), data={"format": fmt, "size": "auto", **extra})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media
    img = decode(r.content)
    assert img.mode == mode
    if "bg_color" in extra:
        corner = img.convert("RGBA").getpixel((3, 3))
        assert isinstance(corner, tuple)
        assert all(abs(a - b) <= 3 for a, b in zip(corner[:3], (0x81, 0xD4, 0xFA), strict=True))


def test_zip_holds_color_jpg_and_alpha_png(rb: TestClient) -> None:
    r = rb.post(URL, files=photo_file(), data={"format": "zip", "size": "auto"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
        color = decode(archive.read("color.jpg"))
        alpha = decode(archive.read("alpha.png"))
    assert color.format == "JPEG"
    assert alpha.format == "PNG"
    assert alpha.mode == "L"
    assert color.size == alpha.size == (200, 150)
    assert np.asarray(alpha)[75, 100] == 255


def test_channels_alpha_is_the_mask(rb: TestClient) -> None:
    r = rb.post(URL, files=photo_file(), data={"channels": "alpha", "size": "auto"})
    assert r.status_code == 200, r.text
    img = decode(r.content)
    assert img.mode == "L"
    mask = np.asarray(img)
    assert mask[75, 100] == 255
    assert mask[5, 5] == 0


def test_crop_with_a_margin(rb: TestClient) -> None:
    r = rb.post(URL, files=photo_file(), data={"crop": "true", "crop_margin": "10px"})
    assert r.status_code == 200, r.text
    assert near(decode(r.content).size, (120, 90))
    assert near(foreground(r), (10, 10, 100, 70))
    relative = rb.post(URL, files=photo_file(), data={"crop": "true", "crop_margin": "10%"})
    assert near(decode(relative.content).size, (120, 84))


def test_scale_centres_the_subject_and_position_moves_it(rb: TestClient) -> None:
    r = rb.post(URL, files=photo_file(), data={"scale": "50%", "size": "auto"})
    assert r.status_code == 200, r.text
    left, top, width, height = foreground(r)
    assert decode(r.content).size == (200, 150)
    assert near((width, height), (100, 70), 2) or width <= 100
    assert abs((left + width / 2) - 100) <= 2
    assert abs((top + height / 2) - 75) <= 2
    corner = rb.post(URL, files=photo_file(), data={"position": "0% 0%", "size": "auto"})
    assert near(foreground(corner)[:2], (0, 0))


def test_roi_keeps_everything_outside_it_background(rb: TestClient) -> None:
    r = rb.post(URL, files=photo_file(), data={"roi": "0% 0% 100px 150px", "size": "auto"})
    assert r.status_code == 200, r.text
    alpha = np.asarray(decode(r.content).getchannel("A"))
    assert alpha.shape == (150, 200)  # the whole canvas stays
    assert not alpha[:, 100:].any()
    assert alpha[75, 60] == 255
    left, _, width, _ = foreground(r)
    assert left + width <= 100


def test_background_image_file_and_url(rb: TestClient, image_server: str) -> None:
    backdrop = png_bytes(np.full((30, 40, 3), (200, 10, 10), np.uint8))
    files = {**photo_file(), "bg_image_file": ("bg.png", backdrop, "image/png")}
    r = rb.post(URL, files=files, data={"size": "auto"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"  # auto: opaque
    corner = decode(r.content).getpixel((2, 2))
    assert isinstance(corner, tuple)
    assert corner[0] > 150 > corner[1]
    by_url = rb.post(
        URL,
        files=photo_file(),
        data={"bg_image_url": f"{image_server}/square.png", "format": "png"},
    )
    assert by_url.status_code == 200, by_url.text
    assert decode(by_url.content).mode == "RGB"


def test_shadow_is_accepted(rb: TestClient) -> None:
    r = rb.post(URL, files=photo_file(), data={"add_shadow": "true", "size": "auto"})
    assert r.status_code == 200, r.text
    plain = rb.post(URL, files=photo_file(), data={"size": "auto"})
    assert r.content != plain.content


def test_account(rb: TestClient) -> None:
    r = rb.get("/v1.0/account")
    assert r.status_code == 200, r.text
    attributes = r.json()["data"]["attributes"]
    assert set(attributes["credits"]) == {"total", "subscription", "payg", "enterprise"}
    assert all(isinstance(v, int | float) for v in attributes["credits"].values())
    assert isinstance(attributes["api"]["free_calls"], int)
    assert attributes["api"]["sizes"] == "all"


# -- errors ----------------------------------------------------------------------------------


def test_missing_and_multiple_sources(rb: TestClient) -> None:
    assert_errors(rb.post(URL, data={"size": "auto"}), 400, "missing_source")
    assert_errors(rb.post(URL), 400, "missing_source")
    both = {"image_url": "https://example.com/a.jpg", "size": "auto"}
    assert_errors(rb.post(URL, files=photo_file(), data=both), 400, "multiple_sources")


def test_invalid_file_type_and_unknown_foreground(rb: TestClient) -> None:
    r = rb.post(URL, files={"image_file": ("a.txt", b"plain text, no image", "text/plain")})
    assert_errors(r, 400, "invalid_file_type")
    dark = png_bytes(np.full((60, 80, 3), 10, np.uint8))
    assert_errors(rb.post(URL, files=photo_file(dark)), 400, "unknown_foreground")


def test_file_too_large_and_resolution_too_high(make_app: MakeApp) -> None:
    with TestClient(make_app(max_upload_bytes=4096), raise_server_exceptions=False) as client:
        noisy = np.random.default_rng(1).integers(0, 255, (80, 80, 3), dtype=np.uint8)
        r = client.post(URL, files=photo_file(png_bytes(noisy)))
        assert_errors(r, 400, "file_too_large")
    huge = png_bytes(np.zeros((2100, 2000, 3), np.uint8))  # 4.2 MP, over the 4 MP limit
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        r = client.post(URL, files=photo_file(huge))
        assert_errors(r, 400, "resolution_too_high")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"bg_color": "not-a-colour"}, "invalid_bg_color"),
        ({"bg_color": "fff", "bg_image_url": "https://example.com/b.jpg"}, "multiple_bg_sources"),
        ({"size": "gigantic"}, "invalid_size"),
        ({"format": "gif"}, "invalid_format"),
        ({"channels": "rgb"}, "invalid_channels"),
        ({"roi": "0 0 10"}, "invalid_roi"),
        ({"crop_margin": "10px 20px", "crop": "true"}, "invalid_crop_margin"),
        ({"scale": "5%"}, "invalid_scale"),
        ({"position": "left"}, "invalid_position"),
        ({"crop": "maybe"}, "invalid_crop"),
        ({"type": "spaceship"}, "invalid_type"),
    ],
)
def test_invalid_parameters(rb: TestClient, fields: dict[str, str], code: str) -> None:
    assert_errors(rb.post(URL, files=photo_file(), data=fields), 400, code)


def test_urls_are_checked_before_anything_is_fetched(make_app: MakeApp) -> None:
    with TestClient(make_app(), raise_server_exceptions=False) as client:  # private nets off
        r = client.post(URL, data={"image_url": "http://127.0.0.1:9/a.png"})
        assert_errors(r, 400, "invalid_image_url")
        r = client.post(URL, data={"image_url": "file:///etc/passwd"})
        assert_errors(r, 400, "invalid_image_url")
        r = client.post(
            URL, files=photo_file(), data={"bg_image_url": "http://169.254.169.254/latest"}
        )
        assert_errors(r, 400, "invalid_bg_image_url")


def test_failed_download(rb: TestClient, image_server: str) -> None:
    r = rb.post(URL, data={"image_url": f"{image_server}/missing.png"})
    assert_errors(r, 400, "failed_to_download")


def test_auth_rate_limit_and_unknown_paths(make_app: MakeApp) -> None:
    app = make_app(api_keys=(KEY,), rate_limit={"per_minute": 1, "burst": 1})
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_errors(client.post(URL, files=photo_file()), 403, "auth_failed")
        wrong = client.post(URL, files=photo_file(), headers={"X-Api-Key": "wrong-key-000000"})
        assert_errors(wrong, 403, "auth_failed")
        assert client.get("/v1.0/account", headers=AUTH).status_code == 200
        limited = client.get("/v1.0/account", headers=AUTH)
        assert_errors(limited, 429, "rate_limit_exceeded")
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["X-RateLimit-Limit"] == "1"
        assert_errors(client.get("/v1.0/nothing-here", headers=AUTH), 404, "not_found")
        # our native API keeps its own envelope beside remove.bg's
        assert set(client.get("/v1/jobs/nope", headers=AUTH).json()) == {"error"}


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_end_to_end_with_requests_and_the_real_model(tmp_path: Path) -> None:
    """The docs' Python example (``requests``), only the host and key changed, against a
    ``cleancut serve`` process and the real model on one photo."""
    folder = require_shared() / "people-removebg"
    truth = np.asarray(Image.open(folder / "masks" / "p101.png").convert("L")) > 127
    server = ServerProcess(tmp_path / "data", {"api_keys": KEY})
    try:
        base = server.start()
        server.wait_ready()
        with (folder / "images" / "p101.jpg").open("rb") as photo:
            response = requests.post(
                f"{base}/v1.0/removebg",
                files={"image_file": photo},
                data={"size": "auto"},
                headers={"X-Api-Key": KEY},
                timeout=300,
            )
        assert response.status_code == requests.codes.ok, response.text
        cutout = decode(response.content)
        assert cutout.mode == "RGBA"
        assert cutout.size[::-1] == truth.shape
        found = np.asarray(cutout.getchannel("A")) > 127
        iou = (found & truth).sum() / max(1, (found | truth).sum())
        assert iou > 0.85, iou
        box = foreground(response)
        ys, xs = np.nonzero(found)
        assert near(box[:2], (int(xs.min()), int(ys.min())), 8)
        account = requests.get(f"{base}/v1.0/account", headers={"X-Api-Key": KEY}, timeout=30)
        assert account.status_code == 200
        denied = requests.get(f"{base}/v1.0/account", timeout=30)
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["code"] == "auth_failed"
    finally:
        if server.proc is not None:
            server.stop()
