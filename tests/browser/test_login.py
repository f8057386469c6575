"""Each role logs in through the real login page and lands on its home page."""

import pytest

from core.demo import DEMO_USERS
from core.services import user_create_or_update


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", [u[0] for u in DEMO_USERS])
def test_each_demo_role_logs_in_and_sees_its_role(live_server, page, screenshot, username):
    _, password, role, is_staff, is_superuser = next(u for u in DEMO_USERS if u[0] == username)
    user_create_or_update(
        username=username,
        password=password,
        role=role,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url  # anonymous users are sent to log in
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("h1")
    assert page.inner_text("h1") == f"Welcome, {username}"
    if role is not None:
        assert role in page.inner_text("main")
    screenshot("home")


@pytest.mark.django_db(transaction=True)
def test_wrong_password_is_refused(live_server, page):
    user_create_or_update(username="someone", password="right-password-123")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "someone")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "/accounts/login/" in page.url
    assert "enter a correct username and password" in page.inner_text("main")
