"""schemathesis (property-based, from our OpenAPI document) against the in-process app, with
an admin API key: no operation may answer 5xx, and every response must match the document
(status code, content type, headers, body schema). Bounded: a few examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from iotpki.app import api_services
from iotpki.core.integration.principal import Role
from iotpki.protocols.rest.app import create_api

# Generated requests start from what the document says is valid, then break it.
EXAMPLES = 15  # per operation: the whole run stays well under 2 minutes
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]


@pytest.fixture
def database_url() -> None:
    """SQLite only: the document and its handlers do not depend on the database."""
    return None


@pytest.fixture
def admin_key(demo_pki) -> str:  # type: ignore[no-untyped-def]
    key = demo_pki.principals.create_api_key("operatorco", Role.ADMIN, "fuzz", "test").api_key
    assert key is not None
    return key


@pytest.fixture
def api_schema(demo_pki) -> schemathesis.schemas.BaseSchema:  # type: ignore[no-untyped-def]
    app: FastAPI = create_api(api_services(demo_pki))
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def test_api_conforms_to_its_openapi_document(api_schema: schemathesis.schemas.BaseSchema,
                                              admin_key: str) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
