"""Settling with the first-order method and auditing with the exact one (eager tasks, on
PostgreSQL): the audit books nothing, and the generation page shows both side by side."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from attribution import services
from attribution.models import AttributionRun, Generation, ModelArtifact
from core.exceptions import ApplicationError
from ledger.models import JournalEntry
from ledger.selectors import generation_detail, live_settlements
from tests.attribution.test_services import record
from tests.ledger.generation_world import user


@pytest.fixture
def first_order(attribution_settings):
    attribution_settings.ATTRIBUTION_METHOD = "first_order"
    attribution_settings.ATTRIBUTION_ENGINE = {
        **attribution_settings.ATTRIBUTION_ENGINE,
        "first_order_timesteps": 4,
        "projection_dim": 64,
    }
    return attribution_settings


@pytest.fixture
def finance(db):
    return user("finance-user", "finance")


def settle(model_version, key, callbacks):
    with callbacks(execute=True):
        generation = record(model_version, finance_actor(), key=key)
    return AttributionRun.objects.get(generation=generation, purpose="settlement")


def finance_actor():
    return get_user_model().objects.get_or_create(username="generator-service")[0]


def test_the_fast_method_pays_and_the_exact_audit_books_nothing(
    tiny_model_version, first_order, finance, django_capture_on_commit_callbacks, client
):
    artifacts = services.model_version_artifacts_compute(model_version=tiny_model_version)
    assert set(artifacts) >= {"fisher", "base_losses", "features"}
    assert {artifacts[k].status for k in ("fisher", "base_losses", "features")} == {
        ModelArtifact.Status.READY
    }
    run = settle(tiny_model_version, "gen-fast", django_capture_on_commit_callbacks)
    assert run.status == AttributionRun.Status.SUCCEEDED, run.error
    assert run.method == "first_order"
    assert run.provenance["method"] == "first_order"
    assert run.query_state_sha256 and not Path(run.query_state_path).exists()  # deleted when done
    generation = run.generation
    assert generation.status == Generation.Status.SETTLED
    entries = JournalEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        audit = services.attribution_run_audit(generation=generation, actor=finance)
    audit.refresh_from_db()
    assert audit.status == AttributionRun.Status.SUCCEEDED, audit.error
    assert (audit.method, audit.purpose) == ("unlearning", "audit")
    assert JournalEntry.objects.count() == entries  # an audit pays nothing
    assert live_settlements().get(generation=generation).attribution_run_id == run.pk
    generation.refresh_from_db()
    assert generation.status == Generation.Status.SETTLED
    with pytest.raises(ApplicationError, match="already been audited"):
        services.attribution_run_audit(generation=generation, actor=finance)

    detail = generation_detail(generation=generation, user=finance)
    assert detail.run.pk == run.pk and detail.method_label.startswith("first-order")
    comparison = detail.audit
    assert comparison is not None and comparison.audit_run.pk == audit.pk
    assert -1.0 <= comparison.spearman <= 1.0
    assert 0 <= comparison.top10_overlap <= 5  # five training tracks
    assert 0.0 <= comparison.holder_l1 <= 2.0
    paid = sum(row.paid for row in comparison.holders)
    would = sum(row.audit for row in comparison.holders)
    assert paid == would == detail.total  # both split the same pool in full

    client.force_login(finance)
    page = client.get(f"/attribution/generations/{generation.pk}/").content.decode()
    assert f'id="method-spearman-{audit.pk}"' in page and "first-order unlearning" in page
    for shown in (run, audit):  # each run's step and its regime, as its provenance has them
        shown.refresh_from_db()
        assert f'id="run-step-{shown.pk}"' in page and shown.step_summary in page
        assert "regime" in shown.step_summary


def test_an_audit_needs_a_settlement_paid_by_another_method(
    tiny_model_version, attribution_settings, finance, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        generation = record(tiny_model_version, finance_actor(), key="gen-unsettled")
    with pytest.raises(ApplicationError, match="Only a settled generation"):
        services.attribution_run_audit(generation=generation, actor=finance)

    services.model_version_artifacts_compute(model_version=tiny_model_version)
    run = settle(tiny_model_version, "gen-exact", django_capture_on_commit_callbacks)
    assert run.method == "unlearning"
    with pytest.raises(ApplicationError, match="paid by the exact method already"):
        services.attribution_run_audit(generation=run.generation, actor=finance)


def test_the_api_audits_for_finance_only_and_an_audit_run_is_never_settled(
    tiny_model_version, first_order, finance, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    from ledger.services import generation_settle

    services.model_version_artifacts_compute(model_version=tiny_model_version)
    run = settle(tiny_model_version, "gen-guard", django_capture_on_commit_callbacks)
    url = f"/attribution/api/generations/{run.generation_id}/audit/"
    api = APIClient()
    api.force_authenticate(finance_actor())  # the generating service: not finance
    assert api.post(url).status_code == 403
    api.force_authenticate(finance)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url, {"reason": "quarterly check"})
    assert response.status_code == 201, response.content
    assert (response.json()["purpose"], response.json()["method"]) == ("audit", "unlearning")
    detail = api.get(f"/attribution/api/generations/{run.generation_id}/").json()
    assert detail["attribution_method"] == "first_order"
    assert detail["audit"]["audit_run"] == response.json()["id"]
    assert 0 <= detail["audit"]["top10_overlap"] <= 5
    audit = AttributionRun.objects.get(pk=response.json()["id"])
    with pytest.raises(ApplicationError, match="audit run"):
        generation_settle(attribution_run=audit)
