"""Fixtures the compat tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import KEY, MakeApp


@pytest.fixture
def api(make_app: MakeApp) -> Iterator[TestClient]:
    app = make_app(api_keys=(KEY,), allow_private_networks=True)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
