"""Security: login rate limiting, CSRF on every form, upload limits, response headers."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from core import login_limits
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from tests.catalog.factories import UserFactory
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def post_login(client, username, password, address="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


class TestLoginRateLimit:
    @pytest.fixture(autouse=True)
    def limits(self, settings):
        settings.LOGIN_FAILURE_LIMIT = 3
        settings.LOGIN_LOCKOUT_SECONDS = 600

    @pytest.fixture
    def alice(self):
        return UserFactory(username="alice")  # password "pw"

    def test_locks_out_after_the_limit_even_with_the_right_password(self, client, alice):
        for _ in range(2):
            response = post_login(client, "alice", "wrong")
            assert response.status_code == 200
            assert "enter a correct username and password" in response.content.decode()
        response = post_login(client, "alice", "wrong")
        assert response.status_code == 429
        assert "Too many failed log-ins" in response.content.decode()
        assert "Try again in 10 minutes" in response.content.decode()
        response = post_login(client, "Alice", "pw")  # case does not escape the counter
        assert response.status_code == 429
        assert "_auth_user_id" not in client.session

    def test_lockout_is_per_username_and_address(self, client, alice):
        UserFactory(username="bob")
        for _ in range(3):
            post_login(client, "alice", "wrong")
        assert post_login(client, "alice", "pw", address="10.0.0.2").status_code == 302
        client.logout()
        assert post_login(client, "bob", "pw").status_code == 302

    def test_lockout_ends_after_its_time(self, client, alice, monkeypatch):
        for _ in range(3):
            post_login(client, "alice", "wrong")
        assert post_login(client, "alice", "pw").status_code == 429
        now = login_limits.time.time()
        monkeypatch.setattr(login_limits.time, "time", lambda: now + 601)
        # LocMemCache expires by its own clock; the lock value holds the deadline too.
        assert login_limits.login_lockout_remaining(username="alice", address="10.0.0.1") == 0
        assert post_login(client, "alice", "pw").status_code == 302

    def test_a_successful_log_in_resets_the_count(self, client, alice):
        for _ in range(2):
            post_login(client, "alice", "wrong")
        assert post_login(client, "alice", "pw").status_code == 302
        client.logout()
        for _ in range(2):
            assert post_login(client, "alice", "wrong").status_code == 200

    def test_the_admin_log_in_is_limited_too(self, client):
        UserFactory(username="staffer", is_staff=True)
        for _ in range(3):
            client.post(
                "/admin/login/", {"username": "staffer", "password": "wrong"}, REMOTE_ADDR="1.2.3.4"
            )
        response = client.post(
            "/admin/login/", {"username": "staffer", "password": "pw"}, REMOTE_ADDR="1.2.3.4"
        )
        assert "Too many failed log-ins" in response.content.decode()
        assert "_auth_user_id" not in client.session


class TestCsrf:
    def test_login_form_without_token_is_refused(self):
        UserFactory(username="carol")
        client = Client(enforce_csrf_checks=True)
        response = client.post(LOGIN, {"username": "carol", "password": "pw"})
        assert response.status_code == 403
        client.get(LOGIN)
        token = client.cookies["csrftoken"].value
        response = client.post(
            LOGIN, {"username": "carol", "password": "pw", "csrfmiddlewaretoken": token}
        )
        assert response.status_code == 302

    def test_page_form_without_token_is_refused_for_a_signed_in_user(self, users):
        client = Client(enforce_csrf_checks=True)
        client.force_login(users[RIGHTS_HOLDER])
        holder = users[RIGHTS_HOLDER].rights_holders.get()
        data = {"rights_holder": holder.pk, "effective_from": "2026-01-01", "reason": "x"}
        response = client.post(reverse("catalog:opt-out-request"), data)
        assert response.status_code == 403
        assert not holder.opt_outs.exists()

    def test_api_with_a_session_needs_the_token_but_token_auth_does_not(self, users):
        client = Client(enforce_csrf_checks=True)
        client.force_login(users[CATALOG_ADMIN])
        url = reverse("catalog:rights-holder-list")
        data = {"legal_name": "New Holder", "kind": "label"}
        assert client.post(url, data, content_type="application/json").status_code == 403
        token = Token.objects.create(user=users[CATALOG_ADMIN])
        api = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {token.key}")
        assert api.post(url, data, content_type="application/json").status_code == 201

    def test_every_post_form_in_the_templates_carries_the_token(self):
        forms = []
        for path in sorted((REPO_ROOT / "templates").rglob("*.html")):
            text = path.read_text()
            for form in re.findall(r"<form\b.*?</form>", text, re.S | re.I):
                if re.search(r'method="?post', form, re.I):
                    forms.append((path, form))
                    assert "{% csrf_token %}" in form, f"{path}: {form[:120]}"
        assert len(forms) >= 3  # log-in, log-out, the catalog's forms at least


class TestUploadLimits:
    def test_catalog_import_page_refuses_a_body_over_its_limit(self, client, users, settings):
        settings.UPLOAD_MAX_BYTES_BY_URL_NAME = {"catalog:import": 1000}
        client.force_login(users[CATALOG_ADMIN])
        big = ("recordings.csv", b"isrc,title\n" + b"x" * 2000)
        response = client.post(reverse("catalog:import"), {"recordings": _upload(*big)})
        assert response.status_code == 413
        assert "at most 0.0 MiB" in response.content.decode()
        small = ("recordings.csv", b"isrc,title,iswc,audio_path\n")
        response = client.post(reverse("catalog:import"), {"recordings": _upload(*small)})
        assert response.status_code == 302  # checked and kept: on to the report

    def test_api_answers_413_as_json(self, users, settings):
        settings.CATALOG_MAX_IMPORT_BYTES = 1000
        settings.UPLOAD_MAX_BYTES_BY_URL_NAME = {"catalog:api-import": 1000}
        token = Token.objects.create(user=users[CATALOG_ADMIN])
        api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
        body = _upload("recordings.csv", b"x" * 5000)
        response = api.post(reverse("catalog:api-import"), {"recordings": body})
        assert response.status_code == 413
        assert "too large" in response.json()["message"]

    def test_other_views_use_the_default_limit(self, client, users, settings):
        settings.UPLOAD_MAX_BYTES = 500
        client.force_login(users[RIGHTS_HOLDER])
        response = client.post(reverse("catalog:opt-out-request"), {"reason": "y" * 2000})
        assert response.status_code == 413

    def test_settings_tie_the_catalog_import_to_its_limit(self):
        from config.settings import base

        for name in ("catalog:import", "catalog:api-import", "catalog:api-import-check"):
            reverse(name)  # a renamed URL would silently fall back to the default limit
            limit = base.UPLOAD_MAX_BYTES_BY_URL_NAME[name]
            assert 3 * base.CATALOG_MAX_IMPORT_BYTES < limit < 4 * base.CATALOG_MAX_IMPORT_BYTES


def _upload(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_security_headers_on_pages_and_api(client, users):
    client.force_login(users[RIGHTS_HOLDER])
    for url in ("/catalog/", "/catalog/api/recordings/", LOGIN):
        response = client.get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def test_session_cookie_is_http_only_and_same_site(client):
    UserFactory(username="dave")
    response = post_login(client, "dave", "pw")
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_the_operations_guide_names_the_security_settings():
    guide = (REPO_ROOT / "docs" / "operations.md").read_text()
    for name in (
        "LOGIN_FAILURE_LIMIT",
        "LOGIN_LOCKOUT_SECONDS",
        "CATALOG_MAX_IMPORT_BYTES",
        "UPLOAD_MAX_BYTES",
        "DJANGO_CACHE_URL",
    ):
        assert name in guide, name


def test_a_token_made_as_the_api_guide_says_opens_the_api(users, capsys):
    from django.core.management import call_command

    call_command("drf_create_token", users[FINANCE].username)
    key = re.search(r"Generated token (\w+) for user", capsys.readouterr().out).group(1)
    url = reverse("ledger:api-balances")
    assert Client().get(url).status_code == 401
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get(url)
    assert response.status_code == 200
    assert response.json()["currency"] == "USD"


@pytest.mark.parametrize(
    "url", ["/ledger/api/balances/?currency=US%00D", "/catalog/api/recordings/?x%00=1", "/a%00b/"]
)
def test_nul_characters_in_urls_are_refused_not_500(client, users, url):
    client.force_login(users[FINANCE])
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
