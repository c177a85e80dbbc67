"""How the page is served (no browser needed): the page, its assets, nothing else from its
folder, and the switch that turns it off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cleancut.api import web
from cleancut.api.app import create_app
from cleancut.config import ServerSettings, Settings
from cleancut.core.models import ModelRegistry, ModelSpec
from cleancut.core.predict import ModelPool
from cleancut.core.runtimes import RuntimeConfig
from cleancut.core.weights import WeightsCache


def client_for(tmp_path: Path, spec: ModelSpec, **server: Any) -> TestClient:
    pool = ModelPool(
        ModelRegistry([spec]), WeightsCache(tmp_path / "cache"), RuntimeConfig("onnxruntime")
    )
    settings = Settings(
        default_model="tiny", server=ServerSettings(data_dir=tmp_path / "data", **server)
    )
    return TestClient(create_app(settings, pool=pool), raise_server_exceptions=False)


@pytest.fixture
def client(tmp_path: Path, tiny_spec: ModelSpec) -> Iterator[TestClient]:
    with client_for(tmp_path, tiny_spec) as c:
        yield c


def test_the_page_and_its_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # Everything the page loads comes from cleancut itself.
    refs = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert refs, page.text[:200]
    for ref in refs:
        assert ref.startswith("/web/"), ref
        assert client.get(ref).status_code == 200, ref
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        asset = client.get(f"/web/{name}")
        assert asset.headers["content-type"].startswith(kind)
        again = client.get(f"/web/{name}", headers={"If-None-Match": asset.headers["etag"]})
        assert again.status_code == 304


def test_module_imports_are_relative_and_present(client: TestClient) -> None:
    for path in sorted(web.ROOT.glob("*.js")):
        for target in re.findall(r'from "\./([^"]+)"', path.read_text()):
            assert (web.ROOT / target).is_file(), (path.name, target)
            assert client.get(f"/web/{target}").status_code == 200


@pytest.mark.parametrize(
    "path", ["/web/__init__.py", "/web/..%2F__init__.py", "/web/index.html", "/web/nothing.js"]
)
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_page_can_be_switched_off(tmp_path: Path, tiny_spec: ModelSpec) -> None:
    with client_for(tmp_path, tiny_spec, web=False) as c:
        assert c.get("/").status_code == 404
        assert c.get("/web/app.js").status_code == 404
        assert c.get("/healthz").status_code == 200
