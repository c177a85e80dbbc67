"""The artworks API (seed 003): contract tests against the real app with the tiny model, the
webhook rules at the validation layer, a signed delivery to a loopback HTTPS receiver, and one
run of the real model through a ``cleancut serve`` process."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cleancut import net
from cleancut.api.app import create_app
from cleancut.api.compat.artworks import SECRET_FILE, check_webhook, load_secret
from cleancut.api.compat.artworks_schemas import render_error
from cleancut.api.errors import ErrorInfo
from cleancut.core.predict import ModelPool
from cleancut.errors import InvalidInput
from cleancut.jobs.local import LocalConfig, build_local_service
from cleancut.net import NetPolicy
from tests.api.conftest import KEY, OTHER_KEY, MakeApp, png_bytes, server_settings
from tests.api.serverproc import ServerProcess
from tests.conftest import require_shared
from tests.jobs.conftest import LoopbackServer, serve
from tests.loopback import make_ca, server_tls

URL = "/v2/artworks/remove-background"
STATES = {"starting", "processing", "succeeded", "failed", "canceled"}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}


def assert_artwork(body: dict[str, Any], image_url: str, fmt: str = "auto") -> None:
    """Every documented field, with its type and allowed values."""
    assert set(body) == {
        "id",
        "artworkType",
        "parameters",
        "duration",
        "results",
        "status",
        "createdAt",
    }
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["artworkType"] == "remove_background"
    assert body["parameters"]["imageUrl"] == image_url
    assert body["parameters"]["outputFormat"] == fmt
    assert set(body["parameters"]) <= {"imageUrl", "webhook", "outputFormat"}
    assert isinstance(body["duration"], int | float) and body["duration"] >= 0
    assert isinstance(body["results"], list)
    assert all(isinstance(u, str) for u in body["results"])
    assert body["status"] in STATES
    assert ISO_MS.match(body["createdAt"]), body["createdAt"]


def assert_vendor_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "statusCode", "error"}, body
    assert body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    if status in REASONS:
        assert body["error"] == REASONS[status]
    assert "Traceback" not in response.text
    return body


def wait_artwork(client: TestClient, artwork_id: str, **headers: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = client.get(f"/v2/artworks/{artwork_id}", headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in {"succeeded", "failed", "canceled"} or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


@pytest.fixture
def open_client(make_app: MakeApp) -> Iterator[TestClient]:
    """No keys (loopback-only mode) and private targets allowed, as in tests and intranets."""
    with TestClient(make_app(allow_private_networks=True), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("fmt", "media_type", "image_format"),
    [("auto", "image/webp", "WEBP"), ("webp", "image/webp", "WEBP"), ("png", "image/png", "PNG")],
)
def test_remove_background_goes_from_starting_to_succeeded_with_result_urls(
    open_client: TestClient, image_server: str, fmt: str, media_type: str, image_format: str
) -> None:
    image_url = f"{image_server}/square.png"
    r = open_client.post(URL, json={"imageUrl": image_url, "outputFormat": fmt})
    assert r.status_code == 202, r.text
    created = r.json()
    assert_artwork(created, image_url, fmt)
    assert created["status"] == "starting" and created["results"] == []
    assert "webhook" not in created["parameters"]

    done = wait_artwork(open_client, created["id"])
    assert_artwork(done, image_url, fmt)
    assert done["status"] == "succeeded", done
    assert done["id"] == created["id"] and done["createdAt"] == created["createdAt"]
    (result,) = done["results"]
    assert result.startswith(f"http://testserver/v2/artworks/{done['id']}/results/")
    image = open_client.get(result)  # a signed URL: fetched like a CDN link, no key
    assert image.status_code == 200
    assert image.headers["content-type"] == media_type
    with Image.open(io.BytesIO(image.content)) as img:
        assert img.format == image_format and img.mode == "RGBA"


def test_the_default_output_format_is_auto(open_client: TestClient, image_server: str) -> None:
    image_url = f"{image_server}/square.png"
    r = open_client.post(URL, json={"imageUrl": image_url, "ignored": True})
    assert r.status_code == 202, r.text
    assert r.json()["parameters"] == {"imageUrl": image_url, "outputFormat": "auto"}


def test_a_url_that_cannot_be_fetched_gives_a_failed_artwork(
    open_client: TestClient, image_server: str
) -> None:
    r = open_client.post(URL, json={"imageUrl": f"{image_server}/missing.png"})
    done = wait_artwork(open_client, r.json()["id"])
    assert done["status"] == "failed" and done["results"] == []


def test_result_urls_need_their_signature(open_client: TestClient, image_server: str) -> None:
    r = open_client.post(URL, json={"imageUrl": f"{image_server}/square.png"})
    done = wait_artwork(open_client, r.json()["id"])
    (result,) = done["results"]
    base, _, name = result.rpartition("/")
    forged = f"{base}/{'0' * 32}.webp"
    assert_vendor_error(open_client.get(forged), 404)
    assert_vendor_error(open_client.get(f"{base}/{name[:-4]}png"), 404)
    other = str(uuid.uuid4())
    assert_vendor_error(open_client.get(f"/v2/artworks/{other}/results/{name}"), 404)
    again = open_client.get(
        result, headers={"If-None-Match": open_client.get(result).headers["etag"]}
    )
    assert again.status_code == 304


def test_keys_are_required_when_configured_and_artworks_stay_private(
    make_app: MakeApp, image_server: str
) -> None:
    app = make_app(api_keys=[KEY, OTHER_KEY], allow_private_networks=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = {"imageUrl": f"{image_server}/square.png"}
        assert_vendor_error(client.post(URL, json=body), 401)
        bad = client.post(URL, json=body, headers={"Authorization": "Bearer nope"})
        assert_vendor_error(bad, 401)
        bearer = {"Authorization": f"Bearer {KEY}"}
        created = client.post(URL, json=body, headers=bearer)
        assert created.status_code == 202, created.text
        artwork_id = created.json()["id"]
        assert_vendor_error(client.get(f"/v2/artworks/{artwork_id}"), 401)
        other = client.get(f"/v2/artworks/{artwork_id}", headers={"x-api-key": OTHER_KEY})
        assert_vendor_error(other, 404)
        done = wait_artwork(client, artwork_id, **bearer)
        assert done["status"] == "succeeded"
        assert client.get(done["results"][0]).status_code == 200  # the signed URL alone


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "imageUrl"),
        ({"imageUrl": ""}, "imageUrl"),
        ({"imageUrl": "https://images.example/a.png", "outputFormat": "gif"}, "outputFormat"),
        ({"imageUrl": 42}, "imageUrl"),
        ({"imageUrl": "ftp://images.example/a.png"}, "scheme"),
        ({"imageUrl": "http://169.254.169.254/latest/meta-data"}, "metadata"),
        ({"imageUrl": "http://127.0.0.1:9/a.png"}, "loopback"),
        ({"imageUrl": "http://10.1.2.3/a.png"}, "private"),
        (
            {"imageUrl": "https://images.example/a.png", "webhook": "http://hooks.example/x"},
            "scheme",
        ),
        (
            {"imageUrl": "https://images.example/a.png", "webhook": "https://127.0.0.1/x"},
            "loopback",
        ),
        ({"imageUrl": "https://images.example/a.png", "webhook": "https://[::1]/x"}, "loopback"),
        (
            {"imageUrl": "https://images.example/a.png", "webhook": "https://localhost/x"},
            "loopback",
        ),
        (
            {"imageUrl": "https://images.example/a.png", "webhook": "https://169.254.3.4/x"},
            "link-local",
        ),
        (
            {"imageUrl": "https://images.example/a.png", "webhook": "https://192.168.1.20/x"},
            "private",
        ),
        (
            {"imageUrl": "https://images.example/a.png", "webhook": "https://169.254.169.254/x"},
            "metadata",
        ),
    ],
)
def test_bad_requests_are_400_in_the_vendor_envelope(
    client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    # The webhook is checked before the image URL is looked at, and neither is contacted.
    error = assert_vendor_error(client.post(URL, json=body), 400)
    assert fragment in error["message"], error


def test_malformed_bodies_and_unknown_artworks(client: TestClient) -> None:
    assert_vendor_error(
        client.post(URL, content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    assert_vendor_error(client.post(URL, json=["imageUrl"]), 400)
    assert_vendor_error(client.get(f"/v2/artworks/{uuid.uuid4()}"), 404)
    assert_vendor_error(client.get("/v2/artworks/not-a-uuid"), 404)
    assert_vendor_error(client.get("/v2/artworks/x/y/z"), 404)
    files = {"file": ("square.png", png_bytes(), "image/png")}
    native = client.post("/v1/jobs", files=files).json()["id"]  # not an artwork
    assert_vendor_error(client.get(f"/v2/artworks/{uuid.UUID(native)}"), 404)


def test_rate_limits_are_429_with_retry_after(make_app: MakeApp) -> None:
    app = make_app(api_keys=[KEY], rate_limit={"per_minute": 1, "burst": 1})
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {KEY}"}
        first = client.get(f"/v2/artworks/{uuid.uuid4()}", headers=headers)
        assert_vendor_error(first, 404)
        second = client.get(f"/v2/artworks/{uuid.uuid4()}", headers=headers)
        assert_vendor_error(second, 429)
        assert int(second.headers["retry-after"]) >= 1
        assert second.headers["x-ratelimit-remaining"] == "0"


def test_the_envelope_renders_forbidden_and_server_errors() -> None:
    for status, reason in ((403, "Forbidden"), (500, "Internal Server Error")):
        response = render_error(ErrorInfo(status, "x", "it went wrong"))
        assert response.status_code == status
        assert json.loads(bytes(response.body)) == {
            "message": "it went wrong",
            "statusCode": status,
            "error": reason,
        }
    unprocessable = render_error(ErrorInfo(422, "validation_error", "imageUrl: Field required"))
    assert unprocessable.status_code == 400  # the vendor's validation errors are 400s


def test_the_routes_are_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"][URL]["post"]
    assert post["tags"] == ["compat: artworks"]
    assert {"202", "400", "401", "403", "429", "500"} <= set(post["responses"])
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["imageUrl"]
    assert schema["properties"]["outputFormat"]["enum"] == ["auto", "png", "webp"]
    assert "/v2/artworks/{artwork_id}" in spec["paths"]


# --------------------------------------------------------------------------- webhook rules


def _resolver(table: dict[str, str]) -> net.Resolver:
    def resolve(host: str, _port: int) -> list[Any]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return [ip_address(table[host])]

    return resolve


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example/cb", "scheme"),
        ("https://127.0.0.1/cb", "loopback"),
        ("https://127.1/cb", "loopback"),
        ("https://[::1]/cb", "loopback"),
        ("https://localhost/cb", "loopback"),
        ("https://169.254.10.10/cb", "link-local"),
        ("https://[fe80::1]/cb", "link-local"),
        ("https://10.0.0.8/cb", "private"),
        ("https://172.16.5.5/cb", "private"),
        ("https://192.168.0.10/cb", "private"),
        ("https://[fd00::1]/cb", "private"),
        ("https://169.254.169.254/cb", "metadata"),
        ("https://metadata.google.internal/cb", "metadata"),
        ("https://sneaky.example/cb", "private"),  # a public name that resolves inside
        ("https://nowhere.example/cb", "resolve"),
    ],
)
def test_webhooks_must_be_https_on_public_hosts(url: str, reason: str) -> None:
    resolver = _resolver({"sneaky.example": "10.9.8.7"})
    with pytest.raises(InvalidInput) as info:
        check_webhook(url, NetPolicy(), resolver)
    assert info.value.http_status == 400
    assert reason in info.value.message, info.value.message


def test_public_https_webhooks_pass_and_private_ones_only_when_allowed() -> None:
    resolver = _resolver({"hooks.example": "93.184.215.14", "intranet.example": "10.0.0.5"})
    check_webhook("https://hooks.example/cb", NetPolicy(), resolver)
    check_webhook("https://93.184.215.14:8443/cb", NetPolicy(), resolver)
    intranet = NetPolicy(allow_private=True)
    check_webhook("https://intranet.example/cb", intranet, resolver)
    check_webhook("https://127.0.0.1:9443/cb", intranet, resolver)
    with pytest.raises(InvalidInput):  # metadata stays closed even then
        check_webhook("https://169.254.169.254/cb", intranet, resolver)
    with pytest.raises(InvalidInput):  # and so does plain http
        check_webhook("http://127.0.0.1/cb", intranet, resolver)


def test_the_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_secret(tmp_path / "data")
    assert len(first) >= 32
    assert load_secret(tmp_path / "data") == first
    path = tmp_path / "data" / SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("my-own-secret-0123456789\n")
    assert load_secret(tmp_path / "data") == b"my-own-secret-0123456789"


# --------------------------------------------------------------------------- webhook delivery


@pytest.fixture(scope="module")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    return make_ca(tmp_path_factory.mktemp("artworks-tls"))


@pytest.fixture
def receiver(tls_ca: tuple[Any, Path]) -> Iterator[LoopbackServer]:
    yield from serve(LoopbackServer(tls=server_tls(tls_ca[0])))


def test_the_final_artwork_is_posted_to_the_webhook_signed(
    tmp_path: Path,
    api_pool: ModelPool,
    image_server: str,
    receiver: LoopbackServer,
    tls_ca: tuple[Any, Path],
) -> None:
    receiver.routes["/artworks"] = lambda h: h.reply(200)
    settings = server_settings(tmp_path / "data", allow_private_networks=True)
    # The job layer delivers with a policy that trusts the test CA; the API validates with the
    # app's own policy (private targets allowed, as the setting says).
    policy = NetPolicy(allow_private=True, ca_file=str(tls_ca[1]))
    service = build_local_service(
        LocalConfig(settings.server.data_dir, cleanup_interval=3600.0), api_pool, policy, print
    )
    app = create_app(settings, service=service, pool=api_pool, heartbeat=0.2)
    hook = receiver.url("/artworks")
    image_url = f"{image_server}/square.png"
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(URL, json={"imageUrl": image_url, "webhook": hook, "outputFormat": "png"})
        assert r.status_code == 202, r.text
        assert r.json()["parameters"] == {
            "imageUrl": image_url,
            "webhook": hook,
            "outputFormat": "png",
        }
        deadline = time.monotonic() + 60
        while not receiver.seen and time.monotonic() < deadline:
            time.sleep(0.02)
        final = client.get(f"/v2/artworks/{r.json()['id']}").json()
        secret = (tmp_path / "data" / SECRET_FILE).read_text().strip()
        (seen,) = receiver.seen
        assert seen.method == "POST"
        assert net.verify(secret, seen.headers, seen.body)
        posted = json.loads(seen.body)
        assert_artwork(posted, image_url, "png")
        assert posted == final
        assert posted["status"] == "succeeded"
        assert client.get(posted["results"][0]).headers["content-type"] == "image/png"


# --------------------------------------------------------------------------- end to end


@pytest.mark.model
def test_a_real_photo_through_a_running_server(tmp_path: Path) -> None:
    """The documented flow with plain httpx: POST, poll GET, download the result URL."""
    folder = require_shared() / "people-removebg"
    photo = (folder / "images" / "p101.jpg").read_bytes()
    truth = np.asarray(Image.open(folder / "masks" / "p101.png").convert("L")) > 127
    photos = LoopbackServer()
    photos.routes["/p101.jpg"] = lambda h: h.reply(200, photo, "image/jpeg")
    server = ServerProcess(tmp_path / "data", {"api_keys": KEY, "allow_private_networks": "true"})
    with contextmanager(serve)(photos):
        server.start()
        try:
            server.wait_ready()
            headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
            with httpx.Client(timeout=30) as http:
                body = {"imageUrl": photos.url("/p101.jpg")}
                created = http.post(f"{server.url}{URL}", json=body, headers=headers)
                assert created.status_code == 202, created.text
                artwork_id = created.json()["id"]
                deadline = time.monotonic() + 300
                while True:
                    art = http.get(f"{server.url}/v2/artworks/{artwork_id}", headers=headers)
                    done = art.json()
                    if done["status"] in {"succeeded", "failed"} or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                assert done["status"] == "succeeded", done
                assert done["duration"] > 0
                result = http.get(done["results"][0])  # no key: the signed URL
                assert result.headers["content-type"] == "image/webp"
        finally:
            assert server.stop()
    with Image.open(io.BytesIO(result.content)) as img:
        alpha = np.asarray(img.getchannel("A"))
    assert alpha.shape == truth.shape
    found = alpha > 127
    assert (found & truth).sum() / max(1, (found | truth).sum()) > 0.85
