"""The layout: role-aware navigation, the home page's routing, role-only pages, errors."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from core import navigation
from core.navigation import NavItem, dashboard_url_for, nav_links_for
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER, role_required
from tests.catalog.factories import UserFactory

pytestmark = pytest.mark.django_db


def nav_hrefs(html: str) -> list[str]:
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S).group(0)
    return re.findall(r'href="([^"]+)"', nav)


class TestNavigation:
    def test_each_role_sees_only_its_own_resolvable_pages(self, users):
        for role, user in users.items():
            links = nav_links_for(user)
            assert links, role
            assert {link.role for link in links} == {role}
            expected = [
                reverse(item.url_name)
                for item in navigation.NAV_ITEMS
                if item.role == role and navigation._url(item.url_name)
            ]
            assert [link.url for link in links] == expected

    def test_names_that_do_not_resolve_are_left_out(self, users, monkeypatch):
        monkeypatch.setattr(
            navigation,
            "NAV_ITEMS",
            (
                NavItem("Not built yet", "nowhere:page", RIGHTS_HOLDER),
                NavItem("My catalog", "catalog:my-catalog", RIGHTS_HOLDER),
            ),
        )
        links = nav_links_for(users[RIGHTS_HOLDER])
        assert [(link.label, link.url) for link in links] == [("My catalog", "/catalog/")]
        assert dashboard_url_for(users[RIGHTS_HOLDER]) == "/catalog/"

    def test_the_page_marks_its_nav_link_current(self, client, users):
        client.force_login(users[RIGHTS_HOLDER])
        html = client.get(reverse("catalog:my-catalog")).content.decode()
        assert '<a href="/catalog/" aria-current="page">My catalog</a>' in html
        assert "/catalog/" in nav_hrefs(html)
        assert reverse("catalog:import") not in nav_hrefs(html)

    def test_anonymous_pages_have_no_navigation(self, client):
        html = client.get(reverse("login")).content.decode()
        assert 'class="site-nav"' not in html
        assert nav_links_for(AnonymousUser()) == []


class TestHome:
    def test_anonymous_is_sent_to_log_in(self, client):
        response = client.get("/")
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    @pytest.mark.parametrize("role", [RIGHTS_HOLDER, CATALOG_ADMIN, FINANCE])
    def test_each_role_starts_on_its_first_page(self, client, users, role):
        client.force_login(users[role])
        response = client.get("/")
        assert response.status_code == 302
        assert response["Location"] == nav_links_for(users[role])[0].url

    def test_superuser_gets_an_overview_of_every_role(self, client):
        client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
        response = client.get("/")
        assert response.status_code == 200
        html = response.content.decode()
        for heading in ("Rights holder", "Catalog admin", "Finance"):
            assert f"<h2>{heading}</h2>" in html
        assert 'href="/catalog/import/"' in html

    def test_user_without_a_role_is_told_so(self, client):
        client.force_login(UserFactory(username="nobody"))
        response = client.get("/")
        assert response.status_code == 200
        assert "no role yet" in response.content.decode()


class TestRoleRequired:
    @pytest.fixture
    def view(self):
        @role_required(FINANCE)
        def finance_only(request):
            return HttpResponse("secret")

        return finance_only

    def test_other_roles_get_403(self, users, view):
        request = RequestFactory().get("/x/")
        request.user = users[RIGHTS_HOLDER]
        with pytest.raises(PermissionDenied, match="for finance users"):
            view(request)

    def test_the_role_passes_and_anonymous_is_sent_to_log_in(self, users, view):
        request = RequestFactory().get("/x/")
        request.user = users[FINANCE]
        assert view(request).content == b"secret"
        request.user = AnonymousUser()
        response = view(request)
        assert response.status_code == 302
        assert reverse("login") in response["Location"]


class TestErrorPages:
    def test_403_page_says_why_inside_the_layout(self, client, users):
        client.force_login(users[RIGHTS_HOLDER])
        response = client.get(reverse("catalog:import"))
        assert response.status_code == 403
        html = response.content.decode()
        assert "This page is for catalog admins." in html  # the view's own reason
        assert 'class="site-nav"' in html

    def test_404_page(self, client, users):
        client.force_login(users[RIGHTS_HOLDER])
        response = client.get("/no-such-page/")
        assert response.status_code == 404
        assert "<h1>Not found</h1>" in response.content.decode()


def test_pages_load_no_script_or_style_from_another_host(client, users):
    """No CDN: every script and stylesheet a page or the API docs load is our own."""
    client.force_login(users[FINANCE])
    for url in ("/", reverse("catalog:my-catalog"), reverse("api-docs"), reverse("login")):
        response = client.get(url, follow=True)
        html = response.content.decode()
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
        assert sources, url
        assert all(src.startswith("/") for src in sources), (url, sources)


def test_api_docs_script_is_a_file_not_inline(client, users):
    client.force_login(users[FINANCE])
    html = client.get(reverse("api-docs")).content.decode()
    assert "<script>" not in html  # the CSP allows no inline script
    script = re.findall(r'<script src="([^"]+\?[^"]*script[^"]*)"', html)
    assert script
    response = client.get(script[0].replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in response.content.decode()
