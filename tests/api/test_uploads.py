"""Inputs: streamed size cap, content sniffing, corrupt images, bombs, malformed bodies."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from collections.abc import AsyncIterator

import httpx
import numpy as np
from fastapi.testclient import TestClient

from tests.api.conftest import MakeApp, assert_error, png_bytes

CAP = 256 * 1024


def png_header(width: int, height: int) -> bytes:
    """A small real PNG whose header is patched to declare width×height (a decompression
    bomb's calling card: tiny file, huge canvas)."""
    data = bytearray(png_bytes())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def post_file(client: TestClient, data: bytes, name: str = "a.png", ctype: str = "image/png"):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", files={"file": (name, data, ctype)})


def test_oversized_upload_is_413(make_app: MakeApp) -> None:
    with TestClient(make_app(max_upload_bytes=CAP), raise_server_exceptions=False) as client:
        noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
        big = png_bytes(noise)
        assert len(big) > CAP
        err = assert_error(post_file(client, big), 413, "upload_too_large")
        assert "hint" in err
        assert client.get("/v1/jobs").json()["jobs"] == []


def test_oversized_upload_is_refused_while_streaming(make_app: MakeApp) -> None:
    """A chunked body far beyond the cap: refused after about the cap, never read whole."""
    app = make_app(max_upload_bytes=CAP)
    sent = {"bytes": 0}
    chunk = b"\x00" * 65536
    total = 64 * 1024 * 1024

    async def body() -> AsyncIterator[bytes]:
        head = (
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n"
        )
        yield head
        while sent["bytes"] < total:
            sent["bytes"] += len(chunk)
            yield chunk

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post(
                "/v1/jobs",
                content=body(),
                headers={"content-type": "multipart/form-data; boundary=XyZ"},
            )

    response = asyncio.run(go())
    assert_error(response, 413, "upload_too_large")
    assert sent["bytes"] < CAP + 2 * 1024 * 1024  # a tiny part of the 64 MiB offered
    assert sent["bytes"] < total


def test_declared_content_length_over_the_cap_is_refused_unread(make_app: MakeApp) -> None:
    with TestClient(make_app(max_upload_bytes=CAP), raise_server_exceptions=False) as client:
        r = client.post(
            "/v1/jobs",
            content=b"x" * (CAP * 4),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert_error(r, 413, "upload_too_large")


def test_non_images_are_415_whatever_their_name(client: TestClient) -> None:
    err = assert_error(post_file(client, b"%PDF-1.7 not an image", "photo.png"), 415)
    assert err["code"] == "unsupported_format"
    assert_error(post_file(client, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.svg"), 415)


def test_image_type_comes_from_content_not_name(client: TestClient) -> None:
    r = post_file(client, png_bytes(fmt="JPEG"), "photo.png", "application/octet-stream")
    assert r.status_code == 202, r.text


def test_wrong_request_content_type_is_415(client: TestClient) -> None:
    r = client.post("/v1/jobs", content=b"hello", headers={"content-type": "text/plain"})
    assert_error(r, 415, "unsupported_format")
    assert_error(client.post("/v1/jobs", content=png_bytes()), 415)  # no content type at all


def test_corrupt_image_is_422(client: TestClient) -> None:
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20
    assert_error(post_file(client, broken), 422, "corrupt_image")


def test_decompression_bomb_is_refused_before_decoding(client: TestClient) -> None:
    assert_error(post_file(client, png_header(100_000, 100_000)), 413, "image_too_large")


def test_a_truncated_image_fails_its_job_with_a_clear_code(client: TestClient) -> None:
    from tests.api.conftest import wait_done

    full = png_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    r = post_file(client, full[: len(full) // 2])
    if r.status_code == 422:  # refused up front: just as good
        assert_error(r, 422, "corrupt_image")
        return
    assert r.status_code == 202, r.text
    done = wait_done(client, r.json()["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "corrupt_image"


def test_missing_file_and_bad_fields_name_the_field(client: TestClient) -> None:
    err = assert_error(
        client.post("/v1/jobs", data={"options": "{}"}, files={"x": ("a", b"1")}), 422
    )
    assert err["field"] == "file"
    files = {"file": ("a.png", png_bytes(), "image/png")}
    err = assert_error(client.post("/v1/jobs", files=files, data={"options": "{nope"}), 422)
    assert err["field"] == "options"
    opts = json.dumps({"background": {"type": "color", "color": {"r": 999, "g": 0, "b": 0}}})
    err = assert_error(client.post("/v1/jobs", files=files, data={"options": opts}), 422)
    assert err["field"].startswith("options.background.color")
    bad = json.dumps({"shadow": {"opacity": 200}})
    err = assert_error(client.post("/v1/jobs", files=files, data={"options": bad}), 422)
    assert err["field"] == "options.shadow.opacity"
    err = assert_error(
        client.post("/v1/jobs", files=files, data={"options": '{"model": "nope"}'}), 404
    )
    assert err["code"] == "model_not_found"


def test_malformed_bodies_are_400(client: TestClient) -> None:
    r = client.post("/v1/jobs", content=b"{", headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_input")
    r = client.post(
        "/v1/jobs", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"}
    )
    assert_error(r, 400, "invalid_input")
    err = assert_error(client.post("/v1/jobs", json={"options": {}}), 422)
    assert err["field"] == "url"
    err = assert_error(client.post("/v1/jobs", json=[1, 2]), 422)


def test_background_image_part(client: TestClient) -> None:
    from PIL import Image

    from tests.api.conftest import wait_done

    backdrop = png_bytes(np.full((10, 10, 3), (0, 0, 255), dtype=np.uint8))
    files = [
        ("file", ("a.png", png_bytes(), "image/png")),
        ("background_image", ("bg.png", backdrop, "image/png")),
    ]
    options = json.dumps({"background": {"type": "image"}})
    r = client.post("/v1/jobs", files=files, data={"options": options})
    assert r.status_code == 202, r.text
    done = wait_done(client, r.json()["id"])
    img = Image.open(io.BytesIO(client.get(done["links"]["result"]).content)).convert("RGB")
    assert img.getpixel((3, 3)) == (0, 0, 255)
