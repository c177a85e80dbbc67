"""Schemathesis against the OpenAPI document of the real app: no generated input makes it
answer 5xx, and every answer conforms to what the document declares.

The operations are driven by hand (hypothesis over ``operation.as_strategy()``), which works
with any pytest; schemathesis' own pytest plugin does not run under pytest 9.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from cleancut.api.app import create_app
from cleancut.core.predict import ModelPool
from tests.api.conftest import KEY, server_settings

EXAMPLES = 30
AUTH = {"x-api-key": KEY}
#: A schema-valid body can still be refused for what it means, not its shape: random bytes in
#: ``file`` are no image (415), a random ``model`` name is unknown (404), a URL may be forbidden.
EXCLUDED = [positive_data_acceptance]
#: In a multipart/form-data body every field is text on the wire: a negative case that turns a
#: string field into a boolean or a number sends ``false`` or ``0``, which is a valid string,
#: and schemathesis does not always see that (CI once failed on ``name=false`` for
#: ``POST /v1/images``). So its rejection check is left out for form bodies only; what a form
#: must be refused for (no file, a name too long, no image) is asserted by the upload and
#: contract tests.
EXCLUDED_FORMS = [*EXCLUDED, negative_data_rejection]


def excluded_checks(case: Case) -> list[Any]:
    form = (case.media_type or "").startswith("multipart/form-data")
    return EXCLUDED_FORMS if form else EXCLUDED


@pytest.fixture(scope="module")
def api_schema(api_pool: ModelPool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    settings_ = server_settings(Path(data), queue_size=100_000, workers=2, api_keys=(KEY,))
    app = create_app(settings_, pool=api_pool, heartbeat=0.2)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.cleancut.service.stop()


def test_no_input_gives_a_5xx(api_schema: Any) -> None:
    tally = {"cases": 0, "5xx": 0, "operations": 0}
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        tally["operations"] += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Case) -> None:
                response = case.call(headers=AUTH)
                tally["cases"] += 1
                if response.status_code >= 500:
                    tally["5xx"] += 1
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
                skip = excluded_checks(case)
                case.validate_response(response, headers=AUTH, excluded_checks=skip)

            try:
                check()
            except Unsatisfiable:  # nothing to get wrong (no parameters): no negative cases
                assert mode is GenerationMode.NEGATIVE, operation.label
    print(f"\nschemathesis: {tally}")
    assert tally["5xx"] == 0, failures
    assert tally["operations"] >= 12
