"""Schemathesis against /openapi.json: generated requests never get a 5xx or a response the spec denies."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_conforms_to_its_openapi_document(client: FlaskClient) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", client.application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 16  # 10, and the sites (list, detail, energy) and yield (panel, site, fleet)
    statuses: list[int] = []

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            statuses.append(case.call_and_validate(checks=CHECKS).status_code)

        check()
    # Bounded but real: every operation got several cases, and both accepted and rejected inputs occurred.
    assert len(statuses) >= 5 * len(operations)
    assert {200, 400} <= set(statuses)
