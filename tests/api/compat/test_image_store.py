"""The image-store API (``/v1/images``, seed 002) against the real app and the tiny model:
the Image object's every field, each endpoint, the seed's remove-background example, owner
scoping, public URLs, the operation counts and the error envelope."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import KEY, OTHER_KEY, MakeApp, png_bytes
from tests.api.serverproc import ServerProcess
from tests.conftest import require_shared

AUTH = {"x-api-key": KEY}
FIELDS = {"id", "name", "url", "width", "height", "format", "size", "created_at"}


@pytest.fixture
def store(make_app: MakeApp) -> Iterator[TestClient]:
    app = make_app(api_keys=(KEY, OTHER_KEY), allow_private_networks=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(AUTH)
        yield client


def assert_image(body: Any) -> dict[str, Any]:
    """Every documented field of the Image object, with its type and allowed values."""
    assert set(body) == FIELDS, body
    assert re.fullmatch(r"image_[A-Za-z0-9]+", body["id"])
    assert isinstance(body["name"], str)
    assert body["url"] is None or body["url"].startswith("http")
    assert isinstance(body["width"], int)
    assert body["width"] > 0
    assert isinstance(body["height"], int)
    assert body["height"] > 0
    assert body["format"] in ("jpeg", "png", "webp")
    assert isinstance(body["size"], int)
    assert body["size"] > 0
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None
    result: dict[str, Any] = body
    return result


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The image store's envelope: {"error": {"status", "code", "message", "hint"?, "param"?}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert (
        {"status", "code", "message"}
        <= set(error)
        <= {
            "status",
            "code",
            "message",
            "hint",
            "param",
        }
    )
    assert error["status"] == status
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def upload(client: TestClient, data: bytes | None = None, **form: str) -> dict[str, Any]:
    files = {"file": ("cat.png", png_bytes() if data is None else data, "image/png")}
    r = client.post("/v1/images", files=files, data=form)
    assert r.status_code == 200, r.text
    assert r.headers["X-Usage-Operations"] == "0"
    return assert_image(r.json())


def test_upload_get_content_and_delete(store: TestClient) -> None:
    image = upload(store, name="Cat")
    assert image["name"] == "Cat"
    assert image["url"] is None
    assert (image["width"], image["height"], image["format"]) == (200, 150, "png")
    assert image["size"] == len(png_bytes())
    got = store.get(f"/v1/images/{image['id']}")
    assert got.status_code == 200
    assert got.json() == image
    content = store.get(f"/v1/images/{image['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/png"
    assert content.content == png_bytes()
    etag = content.headers["ETag"]
    assert store.get(content.url, headers={"If-None-Match": etag}).status_code == 304
    deleted = store.delete(f"/v1/images/{image['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": image["id"], "deleted": True}
    assert_error(store.get(f"/v1/images/{image['id']}"), 404, "image_not_found")
    assert_error(store.delete(f"/v1/images/{image['id']}"), 404, "image_not_found")


def test_upload_names_formats_and_orientation(store: TestClient) -> None:
    assert upload(store)["name"] == "cat.png"  # the file name by default
    buf = io.BytesIO()
    photo = Image.fromarray(np.zeros((30, 40, 3), np.uint8))
    exif = photo.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: displayed 30 wide, 40 high
    photo.save(buf, "JPEG", exif=exif.tobytes())
    jpeg = upload(store, buf.getvalue())
    assert (jpeg["format"], jpeg["width"], jpeg["height"]) == ("jpeg", 30, 40)
    buf = io.BytesIO()
    photo.save(buf, "BMP")  # read, but not a store format: kept as PNG
    bmp = upload(store, buf.getvalue())
    assert (bmp["format"], bmp["width"], bmp["height"]) == ("png", 40, 30)


def test_upload_by_url(store: TestClient, image_server: str) -> None:
    r = store.post("/v1/images", json={"url": f"{image_server}/square.png"})
    assert r.status_code == 200, r.text
    image = assert_image(r.json())
    assert image["name"] == "square.png"
    named = store.post("/v1/images", json={"url": f"{image_server}/square.png", "name": "Sq"})
    assert named.json()["name"] == "Sq"


def test_remove_background_as_the_seed_shows(store: TestClient) -> None:
    original = upload(store, name="Cat image")
    # POST /v1/images/{imageId}/remove-background, no body: the name stays
    r = store.post(f"/v1/images/{original['id']}/remove-background")
    assert r.status_code == 200, r.text
    assert r.headers["X-Usage-Operations"] == "2"
    new = assert_image(r.json())
    assert new["id"] != original["id"]
    assert new["name"] == "Cat image"
    assert new["format"] == "png"
    assert (new["width"], new["height"]) == (200, 150)
    cutout = Image.open(io.BytesIO(store.get(f"/v1/images/{new['id']}/content").content))
    assert cutout.mode == "RGBA"
    alpha = np.asarray(cutout.getchannel("A"))
    assert alpha[75, 100] == 255
    assert alpha[5, 5] == 0
    assert store.get(f"/v1/images/{original['id']}").status_code == 200  # the old one stays
    renamed = store.post(
        f"/v1/images/{original['id']}/remove-background", json={"name": "Cat, no background"}
    )
    assert renamed.json()["name"] == "Cat, no background"


@pytest.mark.parametrize(("fmt", "pil"), [("webp", "WEBP"), ("jpeg", "JPEG"), ("png", "PNG")])
def test_convert_creates_a_new_image(store: TestClient, fmt: str, pil: str) -> None:
    original = upload(store)
    r = store.post(f"/v1/images/{original['id']}/convert", json={"format": fmt})
    assert r.status_code == 200, r.text
    assert r.headers["X-Usage-Operations"] == "1"
    new = assert_image(r.json())
    assert new["id"] != original["id"]
    assert new["format"] == fmt
    content = store.get(f"/v1/images/{new['id']}/content")
    assert content.headers["content-type"] == f"image/{fmt}"
    assert Image.open(io.BytesIO(content.content)).format == pil
    assert new["size"] == len(content.content)


def test_publish_serves_a_public_url_without_a_key(store: TestClient) -> None:
    image = upload(store)
    r = store.post(f"/v1/images/{image['id']}/publish")
    assert r.status_code == 200, r.text
    published = assert_image(r.json())
    assert published["url"] is not None
    assert published["id"] == image["id"]
    assert store.get(f"/v1/images/{image['id']}").json()["url"] == published["url"]
    public = store.get(published["url"], headers={"x-api-key": ""})
    assert public.status_code == 200
    assert public.content == png_bytes()
    assert public.headers["content-type"] == "image/png"
    unpublished = upload(store)
    guessed = published["url"].replace(image["id"], unpublished["id"])
    assert_error(store.get(guessed), 404, "image_not_found")
    store.delete(f"/v1/images/{image['id']}")
    assert_error(store.get(published["url"]), 404, "image_not_found")


def test_images_are_scoped_to_their_key(store: TestClient) -> None:
    image = upload(store)
    other = {"x-api-key": OTHER_KEY}
    for method, path in [
        ("GET", ""),
        ("GET", "/content"),
        ("DELETE", ""),
        ("POST", "/remove-background"),
        ("POST", "/publish"),
    ]:
        r = store.request(method, f"/v1/images/{image['id']}{path}", headers=other)
        assert_error(r, 404, "image_not_found")
    assert store.get(f"/v1/images/{image['id']}").status_code == 200


def test_errors_use_the_image_store_envelope(store: TestClient) -> None:
    image = upload(store)
    assert_error(store.get("/v1/images/image_doesnotexist"), 404, "image_not_found")
    bad_format = store.post(f"/v1/images/{image['id']}/convert", json={"format": "gif"})
    assert assert_error(bad_format, 422, "validation_error")["param"] == "format"
    not_image = store.post("/v1/images", files={"file": ("a.txt", b"hello", "text/plain")})
    assert_error(not_image, 415, "unsupported_format")
    files = {"file": ("a.png", png_bytes(), "image/png")}
    long_name = store.post("/v1/images", files=files, data={"name": "n" * 256})
    assert assert_error(long_name, 422, "validation_error")["param"] == "name"
    no_file = store.post("/v1/images", files={"other": ("a.png", png_bytes(), "image/png")})
    assert_error(no_file, 422, "validation_error")
    assert_error(store.post("/v1/images", content=b"x", headers={"content-type": "text/x"}), 415)
    forbidden = store.post("/v1/images", json={"url": "http://169.254.169.254/meta"})
    assert_error(forbidden, 400, "url_forbidden")
    broken = store.post(
        f"/v1/images/{image['id']}/remove-background",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_error(broken, 400, "invalid_input")
    assert_error(store.get("/v1/images", headers={"x-api-key": "nope-nope-nope"}), 405)
    assert_error(store.get(f"/v1/images/{image['id']}", headers={"x-api-key": "bad"}), 401)
    # /v1/jobs keeps our own envelope
    assert set(store.get("/v1/jobs/nope").json()["error"]) == {"code", "message"}


def test_too_large_and_rate_limited(make_app: MakeApp) -> None:
    app = make_app(api_keys=(KEY,), max_upload_bytes=4096, rate_limit={"per_minute": 1, "burst": 2})
    with TestClient(app, raise_server_exceptions=False) as client:
        noisy = np.random.default_rng(2).integers(0, 255, (80, 80, 3), dtype=np.uint8)
        files = {"file": ("n.png", png_bytes(noisy), "image/png")}
        assert_error(client.post("/v1/images", files=files, headers=AUTH), 413, "upload_too_large")
        client.get("/v1/images/image_x", headers=AUTH)
        limited = client.get("/v1/images/image_x", headers=AUTH)
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) >= 1


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_end_to_end_with_requests_and_the_real_model(tmp_path: Path) -> None:
    """Upload a photo, remove its background, publish the result and fetch it without a key,
    with ``requests`` against a ``cleancut serve`` process and the real model."""
    folder = require_shared() / "people-removebg"
    truth = np.asarray(Image.open(folder / "masks" / "p101.png").convert("L")) > 127
    server = ServerProcess(tmp_path / "data", {"api_keys": KEY})
    try:
        base = server.start()
        server.wait_ready()
        http = requests.Session()
        http.headers["x-api-key"] = KEY
        with (folder / "images" / "p101.jpg").open("rb") as photo:
            r = http.post(f"{base}/v1/images", files={"file": photo}, data={"name": "p101"})
        assert r.status_code == 200, r.text
        original = assert_image(r.json())
        assert original["format"] == "jpeg"
        r = http.post(f"{base}/v1/images/{original['id']}/remove-background", timeout=300)
        assert r.status_code == 200, r.text
        assert r.headers["X-Usage-Operations"] == "2"
        removed = assert_image(r.json())
        assert (removed["name"], removed["format"]) == ("p101", "png")
        published = http.post(f"{base}/v1/images/{removed['id']}/publish", timeout=30).json()
        public = requests.get(published["url"], timeout=30)
        assert public.status_code == 200
        cutout = Image.open(io.BytesIO(public.content))
        assert cutout.size == (removed["width"], removed["height"]) == truth.shape[::-1]
        found = np.asarray(cutout.getchannel("A")) > 127
        iou = (found & truth).sum() / max(1, (found | truth).sum())
        assert iou > 0.85, iou
    finally:
        if server.proc is not None:
            server.stop()
