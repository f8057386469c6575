"""Asking for a second opinion (``attribution_run_second_opinion``): finance and catalog admins
name any registered method for a settled generation, through the page or the API; the request
is validated and recorded in the audit trail, and the run is an audit run that pays nothing."""

import pytest
from rest_framework.test import APIClient

from attribution import services
from attribution.models import AttributionRun
from core.exceptions import ApplicationError
from core.models import AuditEvent
from tests.ledger import factories
from tests.ledger.generation_world import logged_in, settled_world


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settled_world()


def audit_runs(world):
    return AttributionRun.objects.filter(generation=world.generation, purpose="audit")


def test_an_unknown_method_is_refused_by_the_service_the_api_and_the_page(world, client):
    with pytest.raises(ApplicationError, match="Unknown attribution method 'astrology'") as exc:
        services.attribution_run_second_opinion(
            generation=world.generation, method="astrology", actor=world.finance
        )
    assert exc.value.field == "method"
    api = APIClient()
    api.force_authenticate(world.finance)
    url = f"/attribution/api/generations/{world.generation.pk}/second-opinion/"
    response = api.post(url, {"method": "astrology"})
    assert response.status_code == 400
    assert response.json()["field"] == "method" and "audio_similarity" in response.json()["message"]
    page = logged_in(client, world.admin).post(
        f"/attribution/generations/{world.generation.pk}/second-opinion/",
        {"method": "astrology"},
        follow=True,
    )
    assert "Unknown attribution method" in page.content.decode()
    assert not audit_runs(world).exists()
    assert not AuditEvent.objects.filter(action="attribution_run.second_opinion").exists()


def test_a_second_opinion_is_an_audited_audit_run_and_is_not_repeated_unless_forced(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as sent:  # the first stage, once committed
        run = services.attribution_run_second_opinion(
            generation=world.generation,
            method="audio_similarity",
            actor=world.finance,
            reason="does it sound alike?",
        )
    assert len(sent) == 1
    assert (run.method, run.purpose, run.status) == ("audio_similarity", "audit", "queued")
    event = AuditEvent.objects.get(action="attribution_run.second_opinion", object_id=str(run.pk))
    assert event.actor == world.finance and event.reason == "does it sound alike?"
    assert event.after == {"method": "audio_similarity", "force": False}
    with pytest.raises(ApplicationError, match=f"Attribution run {run.pk} .* still active"):
        services.attribution_run_second_opinion(
            generation=world.generation, method="audio_similarity", actor=world.finance
        )
    AttributionRun.objects.filter(pk=run.pk).update(status=AttributionRun.Status.SUCCEEDED)
    with pytest.raises(ApplicationError, match=f"Run {run.pk} already attributed"):
        services.attribution_run_second_opinion(
            generation=world.generation, method="audio_similarity", actor=world.finance
        )
    # the run that paid counts too: the configured method already scored this generation
    with pytest.raises(ApplicationError, match=f"Run {world.run.pk} already attributed"):
        services.attribution_run_second_opinion(
            generation=world.generation, method=world.run.method, actor=world.finance
        )
    again = services.attribution_run_second_opinion(
        generation=world.generation, method="audio_similarity", actor=world.admin, force=True
    )
    assert again.pk != run.pk and again.purpose == "audit"
    with pytest.raises(ApplicationError, match=f"Attribution run {again.pk} .* still active"):
        services.attribution_run_second_opinion(  # forcing never races an active run
            generation=world.generation, method="audio_similarity", actor=world.admin, force=True
        )
    other = services.attribution_run_second_opinion(
        generation=world.generation, method="activation_similarity", actor=world.admin
    )
    assert other.method == "activation_similarity"
    assert audit_runs(world).count() == 3


def test_a_second_opinion_needs_a_settlement_and_the_methods_artifacts(world):
    unsettled = factories.generation_create(model_version=world.generation.model_version)
    with pytest.raises(ApplicationError, match="Only a settled generation"):
        services.attribution_run_second_opinion(
            generation=unsettled, method="audio_similarity", actor=world.finance
        )
    # gradient similarity reads per-checkpoint gradients this model version has not computed
    with pytest.raises(ApplicationError, match="lacks what gradient_similarity reads") as exc:
        services.attribution_run_second_opinion(
            generation=world.generation, method="gradient_similarity", actor=world.finance
        )
    assert "compute_model_artifacts" in exc.value.message
    assert not audit_runs(world).exists()


def test_only_finance_and_catalog_admins_may_ask(world, client):
    url = f"/attribution/api/generations/{world.generation.pk}/second-opinion/"
    api = APIClient()
    api.force_authenticate(world.holder_user)
    assert api.post(url, {"method": "audio_similarity"}).status_code == 403
    assert (
        logged_in(client, world.holder_user)
        .post(
            f"/attribution/generations/{world.generation.pk}/second-opinion/",
            {"method": "audio_similarity"},
        )
        .status_code
        == 403
    )
    api.force_authenticate(world.admin)
    response = api.post(url, {"method": "representer_points", "reason": "check"})
    assert response.status_code == 201, response.content
    assert (response.json()["method"], response.json()["purpose"]) == (
        "representer_points",
        "audit",
    )
    # forcing repeats a finished run, never one still active
    AttributionRun.objects.filter(pk=response.json()["id"]).update(
        status=AttributionRun.Status.SUCCEEDED
    )
    page = logged_in(client, world.finance).post(
        f"/attribution/generations/{world.generation.pk}/second-opinion/",
        {"method": "representer_points", "force": "1"},
    )
    assert page.status_code == 302
    assert audit_runs(world).filter(method="representer_points").count() == 2


def test_a_failed_second_opinion_is_re_run_with_its_own_method(world):
    from attribution.selectors import run_may_rerun, runs_for_user

    failed = services.attribution_run_second_opinion(
        generation=world.generation, method="audio_similarity", actor=world.finance
    )
    services.attribution_run_fail(run_id=failed.pk, reason="the worker ran out of memory")
    services.attribution_run_second_opinion(
        generation=world.generation, method="representer_points", actor=world.finance
    )
    # a newer run of another method does not stand in for it
    listed = runs_for_user(world.admin).get(pk=failed.pk)
    assert run_may_rerun(listed) and run_may_rerun(AttributionRun.objects.get(pk=failed.pk))
    failed.refresh_from_db()
    rerun = services.attribution_run_rerun(run=failed, actor=world.admin)
    assert (rerun.method, rerun.purpose) == ("audio_similarity", "audit")
    assert not run_may_rerun(runs_for_user(world.admin).get(pk=failed.pk))
