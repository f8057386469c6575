"""The audit trail: every action a catalog admin or finance takes through a page or the API
leaves an ``AuditEvent`` naming the action, the object and the user who took it.

``ACTIONS`` drives each action the way a user does (page form or API call). Every audit
action that a service writes (found by reading the services' source) must appear either
in ``ACTIONS`` or in ``NOT_FROM_PAGES`` with the reason, so a new audited service cannot
be added without deciding how this test covers it.
"""

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from django.test import Client, TestCase
from django.urls import reverse

from attribution.models import AttributionRun
from catalog.models import Recording
from core.models import AuditEvent
from core.roles import CATALOG_ADMIN, FINANCE
from ledger.services import generation_settle
from tests.attribution.test_model_versions import write_checkpoint
from tests.catalog.conftest import CatalogFolder
from tests.conftest import REPO_ROOT
from tests.core.world import World, world_build
from tests.ledger import factories as ledger_factories

Perform = Callable[[Client, World, Path], object]


def api_json(client: Client, method: str, url: str, data: dict):
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


# --- catalog admin ----------------------------------------------------------------------


def rights_holder_create(client, world, tmp):
    data = {"legal_name": "Newcomer Music", "kind": "label", "payout_currency": "EUR"}
    return api_json(client, "post", reverse("catalog:rights-holder-list"), data)


def rights_holder_update(client, world, tmp):
    url = reverse("catalog:rights-holder-detail", args=[world.holder_a.pk])
    return api_json(client, "patch", url, {"contact_email": "new@example.com", "reason": "moved"})


def recording_update(client, world, tmp):
    url = reverse("catalog:recording-detail", args=[world.recording_a.pk])
    return api_json(client, "patch", url, {"title": "Retitled", "reason": "typo"})


def recording_shares_set(client, world, tmp):
    url = reverse("catalog:recording-shares", args=[world.recording_a.pk])
    shares = [
        {"rights_holder": world.holder_a.pk, "percent": "60"},
        {"rights_holder": world.holder_b.pk, "percent": "40"},
    ]
    return api_json(client, "put", url, {"ownership_shares": shares, "reason": "deal"})


def opt_out_create(client, world, tmp):
    data = {
        "rights_holder": world.holder_a.pk,
        "recording": "",  # the whole catalog
        "effective_from": date(2030, 1, 1).isoformat(),
        "reason": "whole catalog",
    }
    return client.post(reverse("catalog:opt-out-request"), data)


def opt_out_withdraw(client, world, tmp):
    return client.post(reverse("catalog:opt-out-withdraw", args=[world.opt_out_a.pk]))


def _catalog_upload(client, tmp) -> str:
    """Step 1 of the import page: upload the files; returns the checked import's URL. The
    check is a task sent on commit (run in-process here): run it as a commit would."""
    folder = CatalogFolder(tmp / "import")
    folder.write()
    with (
        (folder.root / "rights_holders.csv").open("rb") as holders,
        (folder.root / "recordings.csv").open("rb") as recordings,
        (folder.root / "ownership_shares.csv").open("rb") as shares,
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        response = client.post(
            reverse("catalog:import"),
            {
                "rights_holders": holders,
                "recordings": recordings,
                "ownership_shares": shares,
                "audio_folder": str(folder.root),
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"]


def catalog_import_check(client, world, tmp):
    _catalog_upload(client, tmp)


def catalog_import_confirm(client, world, tmp):
    staged_url = _catalog_upload(client, tmp)
    with TestCase.captureOnCommitCallbacks(execute=True):  # the import task, as on commit
        response = client.post(staged_url.rstrip("/") + "/confirm/")
    assert Recording.objects.filter(title="Track 0").exists()
    return response


def model_version_register(client, world, tmp):
    folder = write_checkpoint(tmp / "ckpt", [world.recording_a, world.recording_b])
    data = {"name": "audited-model", "checkpoint_dir": str(folder), "override_reason": ""}
    return client.post(reverse("attribution:model-version-register"), data)


def model_version_artifacts_queue(client, world, tmp):
    url = reverse("attribution:model-version-compute", args=[world.model_version.pk])
    return client.post(url)


def attribution_run_rerun(client, world, tmp):
    generation = ledger_factories.generation_create(model_version=world.model_version)
    run = AttributionRun.objects.create(
        generation=generation,
        model_version=world.model_version,
        status=AttributionRun.Status.FAILED,
        error="worker lost",
        checkpoint_sha256=world.model_version.checkpoint_sha256,
        manifest_sha256=world.model_version.manifest_sha256,
        engine_config={},
        seed=0,
    )
    return client.post(reverse("attribution:run-rerun", args=[run.pk]), {"reason": "retry"})


def attribution_run_audit(client, world, tmp):
    generation = ledger_factories.generation_create(model_version=world.model_version)
    run = ledger_factories.run_create(
        generation=generation, scores=[0.5, 3.0, -1.0], method="first_order"
    )
    generation_settle(attribution_run=run)
    url = reverse("attribution:generation-audit", args=[generation.pk])
    return client.post(url, {"reason": "check the payment"})


# --- finance ------------------------------------------------------------------------------


def payout_batch_create(client, world, tmp):
    # Something new to pay: the world's draft batch already holds what was owed.
    generation = ledger_factories.generation_create(model_version=world.model_version)
    run = ledger_factories.run_create(generation=generation, scores=[3.0, -1.0, 0.5])
    generation_settle(attribution_run=run)
    data = {"currency": "USD", "threshold": "0.01", "period": ""}
    return client.post(reverse("ledger:payouts"), data)


def payout_batch_export(client, world, tmp):
    url = reverse("ledger:payout-export", args=[world.payout_batch.pk])
    return client.post(url, {"fmt": "csv"})


def confirmed(client, url, data=None):
    """POST ``url`` with the token its confirmation page shows (irreversible actions)."""
    data = dict(data or {})
    shown = (client.post(url, data) if data else client.get(url)).content.decode()
    token = re.search(r'name="confirm" value="([^"]+)"', shown)
    return client.post(url, data | {"confirm": token.group(1) if token else ""})


def payout_batch_mark_paid(client, world, tmp):
    return confirmed(client, reverse("ledger:payout-mark-paid", args=[world.payout_batch.pk]))


def payout_line_fail(client, world, tmp):
    payout_batch_mark_paid(client, world, tmp)
    url = reverse("ledger:payout-line-fail", args=[world.payout_line_a.pk])
    return confirmed(client, url, {"reason": "the bank returned it"})


def ledger_verify(client, world, tmp):
    return client.post(reverse("ledger:verify"), {"expect": ""})


def statement_period_create(client, world, tmp):
    data = {"starts_at": "2020-01-01T00:00", "ends_at": "2020-02-01T00:00"}
    return client.post(reverse("ledger:periods"), data)


def statement_period_close(client, world, tmp):
    from datetime import UTC, datetime

    from ledger.services import statement_period_create as create

    period = create(
        starts_at=datetime(2020, 1, 1, tzinfo=UTC), ends_at=datetime(2020, 2, 1, tzinfo=UTC)
    )
    return confirmed(client, reverse("ledger:period-close", args=[period.pk]))


def statement_generate(client, world, tmp):
    url = reverse(
        "ledger:statement",
        kwargs={"holder_id": world.holder_b.pk, "period_id": world.period.pk, "currency": "USD"},
    )
    return client.get(url)


@dataclass(frozen=True)
class Action:
    audit: str  # AuditEvent.action
    role: str  # who takes it
    perform: Perform


ACTIONS = [
    Action("rights_holder.create", CATALOG_ADMIN, rights_holder_create),
    Action("rights_holder.update", CATALOG_ADMIN, rights_holder_update),
    Action("recording.update", CATALOG_ADMIN, recording_update),
    Action("recording.shares_set", CATALOG_ADMIN, recording_shares_set),
    Action("opt_out.create", CATALOG_ADMIN, opt_out_create),
    Action("opt_out.withdraw", CATALOG_ADMIN, opt_out_withdraw),
    Action("catalog_import.check", CATALOG_ADMIN, catalog_import_check),
    Action("catalog_import.confirm", CATALOG_ADMIN, catalog_import_confirm),
    Action("catalog_import.apply", CATALOG_ADMIN, catalog_import_confirm),
    Action("recording.create", CATALOG_ADMIN, catalog_import_confirm),
    Action("model_version.register", CATALOG_ADMIN, model_version_register),
    Action("model_version.artifacts_queue", CATALOG_ADMIN, model_version_artifacts_queue),
    Action("attribution_run.rerun", CATALOG_ADMIN, attribution_run_rerun),
    Action("attribution_run.audit", FINANCE, attribution_run_audit),
    Action("ledger.payout_batch.create", FINANCE, payout_batch_create),
    Action("ledger.payout_batch.export", FINANCE, payout_batch_export),
    Action("ledger.payout_batch.mark_paid", FINANCE, payout_batch_mark_paid),
    Action("ledger.payout_line.fail", FINANCE, payout_line_fail),
    Action("ledger.verify", FINANCE, ledger_verify),
    Action("ledger.statement.generate", FINANCE, statement_generate),
    Action("ledger.period.create", FINANCE, statement_period_create),
    Action("ledger.period.close", FINANCE, statement_period_close),
]

# Audited service actions that no admin or finance page or API call takes, and why.
NOT_FROM_PAGES = {
    "user.create": "manage.py demo / user set-up, not a page",
    "user.update": "manage.py demo / user set-up, not a page",
    "generation.record": "the generating service's account (API), not an admin or finance user",
    "attribution_run.fail": "written by the attribution worker",
    "attribution_run.succeed": "written by the attribution worker",
    "ledger.generation.settle": "booked by the attribution worker with the scores",
    "ledger.entry.reverse": "corrections are a service call (no page yet)",
    "model_version.opt_out_override": "register with an override reason: the same page as "
    "model_version.register, tested in tests/attribution",
    "attribution_run.second_opinion": "the audit row and its user are checked in "
    "tests/attribution/test_second_opinion_requests.py",
    "reference_licence.grant": "page, API and admin rows checked in tests/catalog/test_licences.py",
    "reference_licence.withdraw": "page, API and admin rows checked in "
    "tests/catalog/test_licences.py",
    "unlearning.request": "started from the model version's page; the flow and its rows are "
    "in tests/attribution/test_unlearning.py",
    "unlearning.promote": "tests/attribution/test_unlearning.py",
    "unlearning.validation_override": "tests/attribution/test_unlearning.py",
    "unlearning.ready": "written by the gpu worker that ran the job",
    "unlearning.failed": "written by the gpu worker that ran the job",
}


def _literals(node: ast.expr) -> set[str]:
    """A string literal, or the literals of an ``a if c else b`` expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _literals(node.body) | _literals(node.orelse)
    return set()


def audited_actions_in_services() -> set[str]:
    """The literal ``action="..."`` of every ``audit_record(...)`` call in the services of
    every app (``*/services.py`` or the modules of ``*/services/``; actions built at run
    time, e.g. f-strings, are not seen)."""
    found = set()
    for path in [*REPO_ROOT.glob("*/services.py"), *REPO_ROOT.glob("*/services/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "audit_record":
                for keyword in node.keywords:
                    if keyword.arg == "action":
                        found |= _literals(keyword.value)
    return found


def test_every_audited_action_is_covered():
    covered = {action.audit for action in ACTIONS} | set(NOT_FROM_PAGES)
    in_services = audited_actions_in_services()
    assert in_services, "no audit_record call found: has the service layout changed?"
    assert sorted(in_services - covered) == [], "add them to ACTIONS or NOT_FROM_PAGES"
    assert sorted(set(NOT_FROM_PAGES) - in_services) == [], "stale NOT_FROM_PAGES entries"


@pytest.fixture
def world(db, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DATA_DIR = tmp_path / "data"
    return world_build()


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.audit)
def test_the_action_leaves_an_audit_row_naming_its_user(action, world, tmp_path):
    user = world.users[action.role]
    client = Client()
    client.force_login(user)
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = action.perform(client, world, tmp_path)
    if response is not None:
        assert response.status_code < 400, response.content.decode()[:2000]
    rows = AuditEvent.objects.filter(id__gt=last, action=action.audit)
    assert rows.exists(), sorted(
        AuditEvent.objects.filter(id__gt=last).values_list("action", flat=True)
    )
    assert {row.actor_id for row in rows} == {user.pk}
    assert all(row.object_type for row in rows)  # a verification run names no single row
