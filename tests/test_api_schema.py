"""The OpenAPI schema (drf-spectacular) validates without warnings, and schemathesis
fuzzes every operation in it, through the Django WSGI app in this process (no network),
as a finance user, a rights holder's user and a catalog admin: no input may cause a 5xx.

Generation is deterministic (``derandomize``): the same code yields the same requests.
"""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, Phase, settings

from core.roles import CATALOG_ADMIN, FINANCE
from tests.core.world import HOLDER_A, world_build

APP = WSGIHandler()
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP)

# Small enough to keep this module quick on shared cores.
FUZZ = settings(
    max_examples=8,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return world_build()


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """The WSGI handler closes stale connections after each request, which would end the
    test's transaction; Django's test client disconnects the same handler."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_schema_generation_has_no_warnings_or_errors(tmp_path):
    out = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
                 "--file", str(out))  # fmt: skip
    schema = json.loads(out.read_text())
    assert schema["components"]["securitySchemes"]["tokenAuth"]["type"] == "apiKey"
    assert len(schema["paths"]) >= 15


@pytest.mark.django_db
@pytest.mark.parametrize("role", [FINANCE, HOLDER_A, CATALOG_ADMIN])
@SCHEMA.parametrize()
@FUZZ
def test_no_input_causes_a_server_error(case, role, world, caplog):
    response = case.call(headers={"Authorization": f"Token {world.tokens[role]}"})
    assert response.status_code < 500, (
        f"{case.method} {case.path} as {role} -> {response.status_code}\n"
        f"{case.as_curl_command()}\n{caplog.text[-3000:]}"
    )


@pytest.mark.parametrize(
    ("url_name", "data"),
    [
        ("attribution:model-version-list", {"name": "m", "checkpoint_dir": "x" * 300}),
        ("catalog:api-import", {"folder": "x" * 300}),
    ],
)
def test_an_over_long_server_path_is_a_400_not_a_500(world, url_name, data):
    """Found by the fuzzing above (OSError ENAMETOOLONG from Path.is_dir), fixed in catalog:
    kept as a deterministic regression test."""
    client = Client(
        raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {world.tokens[CATALOG_ADMIN]}"
    )
    response = client.post(reverse(url_name), data, content_type="application/json")
    assert response.status_code == 400, response.status_code
