"""Schemathesis against a real ``llmvigil up``: whatever its OpenAPI schema allows, and bodies
around it, never gets a 5xx (bounded examples per operation)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.server.test_up import Owner


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    owner = Owner(tmp_path_factory.mktemp("schemathesis"))
    try:
        yield schemathesis.openapi.from_url(f"{owner.url}/openapi.json")
    finally:
        owner.stop()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_the_schema_allows_gets_a_server_error(case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
