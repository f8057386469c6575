"""The permission matrix: every URL of the project, as every kind of caller.

The URL patterns are enumerated from the resolver (so a new page or endpoint is covered
the moment it is routed), path parameters are filled with real objects owned by rights
holder A, and each URL is requested with GET by five callers: anonymous, rights holder B
(not the owner), rights holder A (the owner), a catalog admin and finance.

``EXPECTED`` is the reviewed table of who may open what, keyed by URL name. A URL without
an entry fails ``test_every_url_is_classified``: whoever adds a URL decides here who may
open it. The rules the matrix checks for every (URL, caller):

- no 5xx, ever;
- anonymous: pages redirect to the log-in page, the API answers 401/403, admin pages
  redirect to the admin's log-in;
- a signed-in caller whose role may not open the URL gets 403;
- holder B gets 404 for a URL naming one of A's objects, and no page or API answer to B
  contains A's name (``SECRET_A``);
- a caller refused on GET is refused on POST too (no write through a missing check).

DRF's routers add a ``<url>.json`` twin of every API route (format suffixes); the matrix
requests those too, and ``test_format_suffix_twins_take_their_writes`` sends the twins of
write actions their own methods, which GET and the POST probe above do not reach.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import RoutePattern

from core.roles import ALL_ROLES, CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from tests.core.world import (
    ANONYMOUS,
    CALLERS,
    HOLDER_A,
    HOLDER_B,
    SECRET_A,
    World,
    world_build,
)

PAGE, API, PUBLIC, ADMIN = "page", "api", "public", "admin"
EVERYONE = frozenset(ALL_ROLES)
HOLDER = frozenset({RIGHTS_HOLDER})
CATALOG = frozenset({CATALOG_ADMIN})
FIN = frozenset({FINANCE})

Args = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Expect:
    kind: str
    roles: frozenset[str] = EVERYONE  # roles that may open it; other signed-in users: 403
    ok: int = 200  # what GET answers a caller who may open it (405: POST-only)
    owned: bool = False  # the URL names one of A's objects: only A and `sees_all` get `ok`,
    sees_all: frozenset[str] = frozenset({CATALOG_ADMIN, FINANCE})  # the others 404
    args: Args | None = None  # path parameters, from the world
    by_caller: tuple[tuple[str, int], ...] = ()  # exceptions to the rules, per caller


def page(roles=EVERYONE, **kw) -> Expect:
    return Expect(PAGE, frozenset(roles), **kw)


def api(roles=EVERYONE, **kw) -> Expect:
    return Expect(API, frozenset(roles), **kw)


def pk(attribute: str) -> Args:
    return lambda w: {"pk": getattr(w, attribute).pk}


def statement_args(w: World) -> dict[str, Any]:
    return {"holder_id": w.holder_a.pk, "period_id": w.period.pk, "currency": "USD"}


STAGED_TOKEN = {"token": "0" * 32}  # no such staged import: 404 for those who may look

# Who may open what. Holders see their own objects; finance and catalog admins read
# everything they need; writes are role-only.
EXPECTED: dict[str, Expect] = {
    # --- site-wide
    "home": page(ok=302),  # every role is sent to its dashboard
    "healthz": Expect(PUBLIC),
    "login": Expect(PUBLIC, ok=302),  # signed in: sent on
    "logout": Expect(PUBLIC, ok=405),  # POST only
    "api-schema": Expect(PUBLIC),
    "api-docs": Expect(PUBLIC),
    "admin:*": Expect(ADMIN),  # Django admin: staff only, checked per model by the admin
    "admin:login": Expect(PUBLIC, by_caller=((CATALOG_ADMIN, 302),)),  # staff: sent on
    # POST only; anonymous and non-staff callers are sent away, nothing happens.
    "admin:logout": Expect(
        PUBLIC,
        ok=405,
        by_caller=((ANONYMOUS, 302), (HOLDER_B, 302), (HOLDER_A, 302), (FINANCE, 302)),
    ),
    # --- catalog pages
    "catalog:my-catalog": page(),
    "catalog:opt-out-request": page(HOLDER | CATALOG),
    "catalog:opt-out-withdraw-page": page(  # GET: the confirmation
        HOLDER | CATALOG, owned=True, args=pk("opt_out_a")
    ),
    "catalog:opt-out-rule": Expect(PUBLIC),
    "catalog:reference-licences": page(HOLDER | CATALOG),
    "catalog:reference-licence-withdraw-page": page(  # POST only
        HOLDER | CATALOG, ok=405, args=pk("licence_a")
    ),
    "catalog:import": page(CATALOG),
    "catalog:import-staged": page(CATALOG, ok=404, args=lambda w: STAGED_TOKEN),
    "catalog:import-confirm": page(CATALOG, ok=405, args=lambda w: STAGED_TOKEN),
    # --- catalog API
    "catalog:api-root": api(),
    "catalog:api-import": api(CATALOG, ok=405),
    "catalog:api-import-check": api(CATALOG, ok=405),
    "catalog:api-import-staged": api(CATALOG, ok=404, args=lambda w: STAGED_TOKEN),
    "catalog:api-import-confirm": api(CATALOG, ok=405, args=lambda w: STAGED_TOKEN),
    "catalog:rights-holder-list": api(),
    "catalog:rights-holder-detail": api(owned=True, args=pk("holder_a")),
    "catalog:recording-list": api(),
    "catalog:recording-detail": api(owned=True, args=pk("recording_a")),
    "catalog:recording-shares": api(ok=405, owned=True, args=pk("recording_a")),
    "catalog:opt-out-list": api(),
    "catalog:opt-out-detail": api(owned=True, args=pk("opt_out_a")),
    "catalog:opt-out-withdraw": api(ok=405, owned=True, args=pk("opt_out_a")),
    "catalog:reference-licence-list": api(),
    "catalog:reference-licence-detail": api(owned=True, args=pk("licence_a")),
    "catalog:reference-licence-withdraw": api(ok=405, owned=True, args=pk("licence_a")),
    # --- attribution pages
    "attribution:generation-audio": page(owned=True, args=pk("generation_a")),
    "attribution:jobs": page(CATALOG),
    "attribution:jobs-status": page(),  # JSON polled by the pages; runs the caller may see
    "attribution:run-rerun": page(CATALOG, ok=405, args=pk("run_a")),
    "attribution:generation-audit": page(CATALOG | FIN, ok=405, args=pk("generation_a")),
    "attribution:generation-second-opinion": page(CATALOG | FIN, ok=405, args=pk("generation_a")),
    "attribution:model-versions": page(CATALOG),
    "attribution:model-version-register": page(CATALOG),
    "attribution:model-version": page(CATALOG, args=pk("model_version")),
    "attribution:model-version-status": page(CATALOG, args=pk("model_version")),
    "attribution:model-version-compute": page(CATALOG, ok=405, args=pk("model_version")),
    "attribution:model-version-unlearn": page(CATALOG, ok=405, args=pk("model_version")),
    "attribution:unlearning": page(CATALOG, args=pk("unlearning")),
    "attribution:unlearning-status": page(CATALOG, args=pk("unlearning")),
    "attribution:unlearning-promote": page(CATALOG, ok=405, args=pk("unlearning")),
    # --- attribution API
    "attribution:api-generations": api(),
    "attribution:api-generation-audio": api(owned=True, args=pk("generation_a")),
    "attribution:api-runs": api(),
    "attribution:api-run": api(owned=True, args=pk("run_a")),
    "attribution:api-run-rerun": api(CATALOG, ok=405, args=pk("run_a")),
    "attribution:api-generation-audit": api(CATALOG | FIN, ok=405, args=pk("generation_a")),
    "attribution:api-generation-second-opinion": api(
        CATALOG | FIN, ok=405, args=pk("generation_a")
    ),
    "attribution:model-version-list": api(),
    "attribution:model-version-detail": api(args=pk("model_version")),
    "attribution:model-version-artifacts": api(args=pk("model_version")),
    "attribution:model-version-compute-artifacts": api(CATALOG, ok=405, args=pk("model_version")),
    "attribution:model-version-training-set": api(args=pk("model_version")),
    "attribution:model-version-api-unlearnings": api(args=pk("model_version")),
    "attribution:model-version-api-unlearn": api(CATALOG, ok=405, args=pk("model_version")),
    "attribution:api-unlearning-detail": api(CATALOG, args=pk("unlearning")),
    "attribution:api-unlearning-promote": api(CATALOG, ok=405, args=pk("unlearning")),
    # --- ledger pages
    # Earnings and statements of the holders the user acts for (finance: of any holder); a
    # user who acts for none gets an empty page. Finance's dashboard is the journal.
    "ledger:dashboard": page(by_caller=((FINANCE, 302),)),
    "ledger:statements": page(),
    "ledger:statement": page(owned=True, sees_all=FIN, args=statement_args),
    "ledger:statement-download-csv": page(owned=True, sees_all=FIN, args=statement_args),
    "ledger:statement-download-pdf": page(owned=True, sees_all=FIN, args=statement_args),
    "ledger:statement-download-xlsx": page(owned=True, sees_all=FIN, args=statement_args),
    # Payments to the holders the user acts for (finance: any holder, picked with ?holder=).
    "ledger:holder-payouts": page(),
    "ledger:journal": page(FIN),
    "ledger:entry": page(FIN, args=lambda w: {"seq": w.entry_a.seq}),
    "ledger:accounts": page(FIN),
    "ledger:verify": page(FIN),
    "ledger:periods": page(FIN),
    "ledger:period-close": page(FIN, args=pk("period")),  # GET: the confirmation
    "ledger:payouts": page(FIN),
    "ledger:payout": page(FIN, args=pk("payout_batch")),
    "ledger:payout-export": page(FIN, ok=405, args=pk("payout_batch")),
    "ledger:payout-mark-paid": page(FIN, args=pk("payout_batch")),  # GET: the confirmation
    "ledger:payout-line-fail": page(FIN, ok=405, args=pk("payout_line_a")),
    # What generations paid (under /attribution/generations/): holders see those that paid them.
    "ledger:generations": page(),
    "ledger:generation": page(owned=True, args=pk("generation_a")),
    "ledger:generation-evidence": page(owned=True, args=pk("generation_a")),
    "ledger:generation-explain": page(owned=True, args=pk("generation_a")),
    # What a recording earned: its owners' holders, catalog admins and finance.
    "ledger:recording": page(owned=True, args=pk("recording_a")),
    # --- ledger API
    "ledger:api-root": api(),
    "ledger:api-balances": api(),
    "ledger:api-verify": api(FIN, ok=405),  # POST only
    "ledger:entry-list": api(FIN),
    "ledger:entry-detail": api(FIN, args=lambda w: {"pk": w.entry_a.seq}),
    "ledger:account-list": api(FIN),
    "ledger:account-detail": api(FIN, args=lambda w: {"pk": w.entry_a.postings.first().account_id}),
    "ledger:statement-list": api(),
    # The statements of the holders the caller acts for (finance: ?rights_holder= any);
    # generate names its holder in the POST body: another holder's is 404 there.
    "ledger:statement-available": api(),
    "ledger:statement-generate": api(ok=405),  # POST only
    "ledger:statement-detail": api(owned=True, sees_all=FIN, args=pk("statement_a")),
    "ledger:statement-csv": api(owned=True, sees_all=FIN, args=pk("statement_a")),
    "ledger:statement-pdf": api(owned=True, sees_all=FIN, args=pk("statement_a")),
    "ledger:statement-xlsx": api(owned=True, sees_all=FIN, args=pk("statement_a")),
    "ledger:statement-period-list": api(FIN),
    "ledger:statement-period-detail": api(FIN, args=pk("period")),
    "ledger:statement-period-close": api(FIN, ok=405, args=pk("period")),
    "ledger:payout-batch-list": api(FIN),
    "ledger:payout-batch-detail": api(FIN, args=pk("payout_batch")),
    "ledger:payout-batch-export": api(FIN, args=pk("payout_batch")),
    "ledger:payout-batch-mark-paid": api(FIN, ok=405, args=pk("payout_batch")),
    "ledger:payout-batch-fail-line": api(FIN, ok=405, args=pk("payout_batch")),
    "ledger:api-generation": api(owned=True, args=pk("generation_a")),  # /attribution/api/
    "ledger:api-generation-evidence": api(owned=True, args=pk("generation_a")),
}


# --- enumerating the URL patterns -------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str | None  # namespaced, e.g. "catalog:recording-detail"; None when unnamed
    pattern: str  # the concatenated pattern text, for messages
    params: tuple[str, ...]
    route_text: str | None  # the path() text when every part is a route (not a regex)
    view: Callable = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        if self.name in ("admin:login", "admin:logout"):
            return self.name
        if self.name is None or self.name.startswith("admin:"):
            return "admin:*" if self.pattern.startswith("admin/") else f"<unnamed {self.pattern}>"
        return self.name


def _params(pattern) -> tuple[str, ...]:
    if isinstance(pattern, RoutePattern):
        return tuple(pattern.converters)
    return tuple(pattern.regex.groupindex)


def routes(patterns=None, namespaces=(), prefix="", params=(), all_routes=True) -> list[Route]:
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        text = prefix + str(entry.pattern)
        own = params + _params(entry.pattern)
        is_route = all_routes and isinstance(entry.pattern, RoutePattern)
        if isinstance(entry, URLResolver):
            namespace = (*namespaces, entry.namespace) if entry.namespace else namespaces
            found += routes(entry.url_patterns, namespace, text, own, is_route)
        else:
            assert isinstance(entry, URLPattern)
            name = ":".join((*namespaces, entry.name)) if entry.name else None
            plain = is_route and "format" not in own  # DRF's suffix converter: reverse()
            found.append(Route(name, text, own, text if plain else None, entry.callback))
    return found


# --- filling in the parameters ----------------------------------------------------------


def _admin_args(route: Route, world: World) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in route.params:
        if param == "app_label":
            values[param] = re.search(r"\(\?P<app_label>(\w+)", route.pattern).group(1)
        elif param == "content_type_id":
            values[param] = ContentType.objects.get_for_model(world.holder_a).pk
        elif param in ("object_id", "id") and "content_type_id" in route.params:
            values[param] = world.holder_a.pk
        elif param in ("object_id", "id"):
            app_label, model_name = route.pattern.split("/")[1:3]
            model = apps.get_model(app_label, model_name)
            obj = model.objects.order_by("pk").first()
            values[param] = obj.pk if obj is not None else 999_999
        elif param == "url":
            values[param] = "no-such-admin-page/"
        else:
            raise AssertionError(f"no value for admin parameter {param!r} in {route.pattern}")
    return values


def url_of(route: Route, world: World) -> str:
    if route.key == "admin:*":
        values = _admin_args(route, world)
    else:
        expect = EXPECTED[route.key]
        values = dict(expect.args(world)) if expect.args else {}
        if "format" in route.params:
            values["format"] = "json"
        missing = set(route.params) - set(values)
        assert not missing, f"{route.key}: give args for {sorted(missing)} in EXPECTED"
    if route.route_text is not None:
        path = route.route_text
        for param, value in values.items():
            path = re.sub(rf"<(?:\w+:)?{param}>", str(value), path)
        return "/" + path
    if route.name is not None:
        url = reverse(route.name, kwargs=values)
        assert resolve(url).func is route.view, f"{url} does not reach {route.pattern}"
        return url
    assert route.pattern == "admin/(?P<url>.*)$", route.pattern  # the admin's catch-all
    return f"/admin/{values['url']}"


# --- the checks -------------------------------------------------------------------------


def role_of(caller: str) -> str | None:
    return {HOLDER_A: RIGHTS_HOLDER, HOLDER_B: RIGHTS_HOLDER}.get(caller, caller)


def expected_status(expect: Expect, caller: str) -> set[int]:
    special = dict(expect.by_caller)
    if caller in special:
        return {special[caller]}
    if caller == ANONYMOUS:
        return {
            PAGE: {302},
            API: {401, 403},
            PUBLIC: {expect.ok if expect.ok != 302 else 200},
            ADMIN: {302},
        }[expect.kind]
    if expect.kind == PUBLIC:
        return {expect.ok}
    if expect.kind == ADMIN:
        # Non-staff are sent to the admin's log-in; staff get what their model
        # permissions allow (the admin checks them per model), never a 5xx.
        return {302} if caller != CATALOG_ADMIN else {200, 302, 403, 404, 405}
    if role_of(caller) not in expect.roles:
        # A POST-only view may check the method before the role; POST checks the role.
        return {403, 405} if expect.ok == 405 else {403}
    if not may_open(expect, caller) and expect.ok != 405:
        return {404}  # someone else's object
    return {expect.ok}


def may_open(expect: Expect, caller: str) -> bool:
    """Whether ``caller`` may use the URL at all (so POST is not probed for refusal)."""
    if caller == ANONYMOUS:
        return False
    if expect.kind in (PUBLIC, ADMIN):
        return caller == CATALOG_ADMIN or expect.kind == PUBLIC
    if role_of(caller) not in expect.roles:
        return False
    return not expect.owned or caller == HOLDER_A or role_of(caller) in expect.sees_all


def _post_refused(client: Client, url: str, caller: str, expect: Expect) -> str | None:
    """A caller who may not open a URL must not get anywhere with POST either: 403, 404
    or 405 (a GET-only view), or for anonymous and non-staff callers of the admin a
    redirect to the log-in page. A redirect elsewhere is what a successful form post
    answers, so it counts as a failure."""
    response = client.post(url)
    status = response.status_code
    if status in {403, 404, 405} or (caller == ANONYMOUS and status == 401):
        return None
    if status == 302 and (caller == ANONYMOUS or expect.kind == ADMIN):
        location = response["Location"]
        if location.startswith((settings.LOGIN_URL, "/admin/login/")):
            return None
        return f"302 to {location}"
    return str(status)


@pytest.fixture
def world(db, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    return world_build()


@pytest.fixture
def clients(world) -> dict[str, Client]:
    # A view's exception becomes the 500 it would be for a user, recorded as a problem.
    result = {ANONYMOUS: Client(raise_request_exception=False)}
    for caller in CALLERS[1:]:
        result[caller] = Client(raise_request_exception=False)
        result[caller].force_login(world.users[caller])
    return result


def test_every_url_is_classified():
    keys = {route.key for route in routes()}
    unclassified = sorted(keys - set(EXPECTED))
    assert not unclassified, f"add these URL names to EXPECTED: {unclassified}"
    stale = sorted(set(EXPECTED) - keys)
    assert not stale, f"these EXPECTED entries name no URL any more: {stale}"


def test_url_names_are_not_shared_between_views():
    """One name, one view (DRF's format-suffix twins aside): otherwise ``{% url %}``
    and this matrix could silently pick the other one."""
    views: dict[str, dict] = {}
    for route in routes():
        if route.name:
            views.setdefault(route.name, {})[route.view] = route.pattern
    shared = {name: sorted(v.values()) for name, v in views.items() if len(v) > 1}
    assert not shared, f"URL names used by several views: {shared}"


def test_the_world_gives_holder_b_nothing_of_a(world):
    """The premise of the matrix: B acts for B only, and A's generation pays only A."""
    from attribution.selectors import generations_for_user

    assert world.generation_a not in generations_for_user(world.users[HOLDER_B])
    assert world.generation_a in generations_for_user(world.users[HOLDER_A])


def test_permission_matrix(world, clients):
    problems = []
    for route in routes():
        expect = EXPECTED[route.key]
        url = url_of(route, world)
        for caller in CALLERS:
            client = clients[caller]
            response = client.get(url)
            status = response.status_code
            allowed = expected_status(expect, caller)
            where = f"GET {url} ({route.key}) as {caller}: {status}"
            if status >= 500 or status not in allowed:
                problems.append(f"{where}, expected {sorted(allowed)}")
                continue
            if status == 302 and caller == ANONYMOUS and caller not in dict(expect.by_caller):
                login = "/admin/login/" if expect.kind == ADMIN else settings.LOGIN_URL
                if not response["Location"].startswith(login):
                    problems.append(f"{where} redirects to {response['Location']}, not {login}")
            if caller == HOLDER_B and status == 200 and SECRET_A in _text(response):
                problems.append(f"{where} shows A's data to holder B")
            if not may_open(expect, caller) and expect.kind != PUBLIC:
                problem = _post_refused(client, url, caller, expect)
                if problem:
                    problems.append(f"POST {url} ({route.key}) as {caller}: {problem}")
    assert not problems, "\n".join(problems)


def _text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def test_format_suffix_twins_take_their_writes(world, clients):
    """The ``<url>.json`` twin of a write action (POST withdraw, PUT shares, ...) reaches
    the action for a caller who may use it: a 2xx or a 4xx about the (empty) input, never
    a 5xx. The matrix's GET and its POST probe of refused callers stop before the action's
    own method, so an action without a ``format`` argument is only caught here."""
    problems, probed = [], []
    for route in routes():
        actions = getattr(route.view, "actions", None)  # DRF viewsets: method -> action
        if "format" not in route.params or not actions:
            continue
        expect = EXPECTED[route.key]
        url = url_of(route, world)
        for method in sorted(set(actions) - {"get", "head", "options"}):
            for caller in (HOLDER_A, CATALOG_ADMIN, FINANCE):
                if not may_open(expect, caller):
                    continue
                send = getattr(clients[caller], method)
                status = send(url, "{}", content_type="application/json").status_code
                probed.append(f"{method.upper()} {url}")
                if status >= 500:
                    problems.append(f"{method.upper()} {url} ({route.key}) as {caller}: {status}")
    assert f"POST /catalog/api/opt-outs/{world.opt_out_a.pk}/withdraw.json" in probed
    assert not problems, "\n".join(problems)
