"""The site's navigation: which pages each role sees, built from URL names.

``NAV_ITEMS`` is the one list of (label, URL name, role). An item whose URL name does not
resolve (a page not built yet, or removed) is left out instead of breaking every page,
so the navigation follows ``urls.py`` without edits here beyond the list.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER, ROLE_LABELS, user_roles


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    role: str


# In order; the first item that resolves for a role is that role's dashboard (home page).
NAV_ITEMS = (
    NavItem("Dashboard", "ledger:dashboard", RIGHTS_HOLDER),
    NavItem("Statements", "ledger:statements", RIGHTS_HOLDER),
    NavItem("Payments", "ledger:holder-payouts", RIGHTS_HOLDER),
    NavItem("Generations", "ledger:generations", RIGHTS_HOLDER),
    NavItem("My catalog", "catalog:my-catalog", RIGHTS_HOLDER),
    NavItem("Import", "catalog:import", CATALOG_ADMIN),
    NavItem("Model versions", "attribution:model-versions", CATALOG_ADMIN),
    NavItem("Generations & jobs", "attribution:jobs", CATALOG_ADMIN),
    NavItem("Ledger", "ledger:journal", FINANCE),
    NavItem("Periods", "ledger:periods", FINANCE),
    NavItem("Payouts", "ledger:payouts", FINANCE),
    NavItem("Verify", "ledger:verify", FINANCE),
)


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    role: str


def _url(url_name: str) -> str | None:
    try:
        return reverse(url_name)
    except NoReverseMatch:
        return None


def nav_links_for(user: AbstractBaseUser | AnonymousUser) -> list[NavLink]:
    """The resolvable links of every role ``user`` holds (a URL appears once)."""
    roles = user_roles(user)
    links: list[NavLink] = []
    seen: set[str] = set()
    for item in NAV_ITEMS:
        if item.role not in roles:
            continue
        url = _url(item.url_name)
        if url is None or url in seen:
            continue
        seen.add(url)
        links.append(NavLink(item.label, url, item.role))
    return links


def dashboard_url_for(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """Where a user with exactly one role starts: that role's first page. ``None`` for
    users with no role or several (superusers), who get the overview on the home page."""
    roles = user_roles(user)
    if len(roles) != 1:
        return None
    links = nav_links_for(user)
    return links[0].url if links else None


def _active(path: str, links: list[NavLink]) -> str | None:
    """The URL of the link the page at ``path`` belongs to: the longest matching prefix."""
    matching = [link.url for link in links if path == link.url or path.startswith(link.url)]
    return max(matching, key=len) if matching else None


def navigation(request: HttpRequest) -> dict:
    """Context processor: ``nav_links``, ``nav_active_url`` and ``nav_roles``."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": [], "nav_active_url": None, "nav_roles": []}
    links = nav_links_for(user)
    return {
        "nav_links": links,
        "nav_active_url": _active(request.path, links),
        "nav_roles": [ROLE_LABELS[role] for role in user_roles(user)],
    }
