"""The OpenAPI schema: it generates, validates, and the API keeps its promises under generated input.

Schemathesis (4.x) generates requests for every operation of the schema from its parameters and
bodies; each is sent in-process to the WSGI application with a token, and the answer must not be
a server error and must match the schema where the schema documents the status. Bounded by
MAX_EXAMPLES per operation so that the file runs in well under two minutes.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.models import ApiToken
from tests.api.conftest import make_token

pytestmark = pytest.mark.django_db(transaction=False)

MAX_EXAMPLES = 10


def generate() -> dict:
    """The schema as clients get it from /api/v1/schema/?format=json (lazy strings rendered)."""
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))


@functools.cache
def _generated() -> str:
    return json.dumps(generate())


def generated() -> dict:
    """The same, generated once for this module (a generation takes seconds); a fresh copy each call."""
    return json.loads(_generated())


def test_it_generates_a_valid_openapi_schema():
    schema = generated()
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    assert schema["info"]["title"] == "CIMS API"
    assert "token" in schema["components"]["securitySchemes"]
    for path, operations in schema["paths"].items():
        assert path.startswith("/api/v1/"), path
        assert "delete" not in operations, f"{path}: the API never deletes"


def test_it_generates_the_schema_without_warnings():
    # Every warning is a place where the documentation guesses: an authenticator it cannot
    # describe, an enum named by a hash (StatusB00Enum) that changes when choices change.
    GENERATOR_STATS.reset()
    generate()
    warnings = sorted(GENERATOR_STATS._warn_cache)
    GENERATOR_STATS.reset()
    assert not warnings, "\n".join(warnings)


def test_it_serves_the_schema_it_generates(api_for, administrator):
    api, _token = api_for(administrator, scope=ApiToken.Scope.READ)
    response = api.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    served = json.loads(response.content)
    assert served["paths"].keys() == generated()["paths"].keys()


@pytest.fixture
def sample_data(administrator, sales_rep):
    """A few records, so that list answers are not all empty and small ids find something."""
    from tests.customers.factories import CustomerFactory

    return [CustomerFactory(owner=owner) for owner in (administrator, sales_rep, sales_rep)]


def _operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


@pytest.fixture
def application(settings):
    """The project as a WSGI application, in this test's database transaction.

    Built now, not imported from cims.wsgi: middleware reads settings once, when it is built, and
    the test settings (no HTTPS redirect) are applied after this module is imported. Like Django's
    test client, it keeps the connection open between requests: closing it at the end of each
    request (close_old_connections) would end the test's transaction on PostgreSQL."""
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _fuzz(application, user, *, mode: schemathesis.GenerationMode, checks) -> tuple[list[str], Counter]:
    """Send generated requests to every operation as ``user``: the failures, one line each, and
    how many answers had each status (so a run where nothing got through shows)."""
    _token, raw = make_token(user, scope=ApiToken.Scope.READ_WRITE, rate_limit=1_000_000)
    headers = {"Authorization": f"Bearer {raw}", "Accept-Language": "en"}
    schema = schemathesis.openapi.from_dict(generated())
    schema.app = application
    failures: list[str] = []
    statuses: Counter = Counter()
    for operation in _operations(schema):

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def run(case):
            response = case.call(app=application, headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=checks, headers=headers)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - every failing operation is reported, not just the first
            failures.append(f"{operation.label}: {str(exc).strip()[:1500]}")
    return failures, statuses


@pytest.mark.parametrize("who", ["administrator", "sales_rep"])
def test_it_answers_generated_valid_requests_without_server_errors_and_as_documented(
    request, application, sample_data, who
):
    failures, statuses = _fuzz(
        application,
        request.getfixturevalue(who),
        mode=schemathesis.GenerationMode.POSITIVE,
        checks=[not_a_server_error, response_schema_conformance],
    )
    assert not failures, "\n\n".join(failures)
    # The token got in, and some requests succeeded: the run tested the endpoints, not the door.
    assert statuses[200] > 0 and statuses[401] == 0, statuses


def test_it_answers_generated_invalid_requests_without_server_errors(application, sample_data, administrator):
    failures, statuses = _fuzz(
        application, administrator, mode=schemathesis.GenerationMode.NEGATIVE, checks=[not_a_server_error]
    )
    assert not failures, "\n\n".join(failures)
    # Invalid input was refused as such (negative cases may also drop the token: 401 is fine).
    assert statuses[400] > 0, statuses


def test_it_serves_the_swagger_ui_without_inline_script(client_for, administrator):
    # Our Content-Security-Policy allows scripts from our own origin only: the docs page must load
    # its start-up code as a file (drf-spectacular's split view), never inline.
    client = client_for(administrator)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all("src=" in attributes for attributes in scripts), scripts
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "an on…= handler attribute is inline script"
    start = client.get("/api/v1/docs/?script=")
    assert start.status_code == 200 and "SwaggerUIBundle" in start.content.decode()


def test_it_refuses_the_docs_to_a_portal_customer(client_for, portal_customer):
    assert client_for(portal_customer).get("/api/v1/docs/").status_code == 403
