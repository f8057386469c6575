"""Opt-out that takes effect: a derived model version without the opted-out recordings, its
lineage and training set, validation, promotion and what generations made with it pay."""

from datetime import date

import pytest
from django.contrib.auth import get_user_model

from attribution import services
from attribution.models import AttributionRun, ModelVersion, TrainingSetEntry, Unlearning
from catalog.models import Recording
from core.exceptions import ApplicationError
from core.models import AuditEvent
from tests.attribution.conftest import isrc_for, tone, wav_bytes

FAST = {"steps": 2, "timesteps": 2, "retain_batch": 2, "lr": 1.0, "checkpoint_seconds": 0}
QUICK_CHECKS = {
    "loss_timesteps": 4,
    "generations": 1,
    "generation_steps": 2,
    "self_influence_targets": 1,
}


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_user("catalog-admin", password="x" * 12)


def opt_out(isrc: str):
    from catalog.services import opt_out_create

    recording = Recording.objects.get(isrc=isrc)
    holder = recording.ownership_shares.first().rights_holder
    return opt_out_create(
        rights_holder=holder, recording=recording, effective_from=date(2026, 12, 1), actor=None
    )


def derive(model_version, admin, callbacks, **fields):
    """Request an unlearning and run its task (eagerly) when the request commits."""
    with callbacks(execute=True):
        unlearning = services.unlearning_request(
            parent=model_version, actor=admin, config=FAST, thresholds=QUICK_CHECKS, **fields
        )
    unlearning.refresh_from_db()
    return unlearning


def test_a_derived_version_is_registered_without_the_opted_out_recording(
    tiny_model_version, admin, django_capture_on_commit_callbacks
):
    from attribution.engine.checkpoint import load_engine_model

    opt_out(isrc_for(1))
    unlearning = derive(tiny_model_version, admin, django_capture_on_commit_callbacks)
    assert unlearning.status == Unlearning.Status.READY, unlearning.error
    derived = unlearning.derived
    assert [r.isrc for r in unlearning.forget_recordings.all()] == [isrc_for(1)]
    # lineage
    assert unlearning.parent == tiny_model_version
    assert unlearning.method == "fisher" and unlearning.config["steps"] == 2
    assert unlearning.checkpoint_sha256 == derived.checkpoint_sha256
    assert derived.checkpoint_sha256 != tiny_model_version.checkpoint_sha256
    # the training set is the parent's minus the forget set, in the parent's order
    parent_isrcs = list(
        tiny_model_version.training_set_entries.values_list("recording__isrc", flat=True)
    )
    derived_isrcs = list(derived.training_set_entries.values_list("recording__isrc", flat=True))
    assert derived_isrcs == [isrc for isrc in parent_isrcs if isrc != isrc_for(1)]
    # the checkpoint is in the parent's layout and loads
    model = load_engine_model(derived.checkpoint_path.rsplit("/", 1)[0])
    assert model.config == tiny_model_version.config
    # the metrics are stored: no held-out recording exists in this catalog, and it says so
    checks = unlearning.metrics["checks"]
    assert checks["forgetting"]["passed"] is None
    assert "no held-out" in checks["forgetting"]["note"]
    assert {"retain_loss", "generation_flatness", "self_influence"} <= set(checks)
    assert unlearning.validation_passed is False
    assert unlearning.progress_percent == 100


def test_the_task_is_idempotent_and_a_redelivery_resumes_to_the_same_checkpoint(
    tiny_model_version, admin, django_capture_on_commit_callbacks
):
    opt_out(isrc_for(2))
    unlearning = derive(tiny_model_version, admin, django_capture_on_commit_callbacks)
    versions = ModelVersion.objects.count()
    # a second delivery of a finished job does nothing
    assert services.unlearning_run(unlearning_id=unlearning.pk).derived == unlearning.derived
    assert ModelVersion.objects.count() == versions
    # a delivery that finds the job running (the worker died after the checkpoint was
    # written) resumes from the saved state and registers the very same checkpoint
    Unlearning.objects.filter(pk=unlearning.pk).update(
        status=Unlearning.Status.RUNNING, derived=None
    )
    again = services.unlearning_run(unlearning_id=unlearning.pk)
    assert again.derived_id == unlearning.derived_id
    assert again.checkpoint_sha256 == unlearning.checkpoint_sha256
    assert again.attempts == 2
    assert ModelVersion.objects.count() == versions


def test_a_failed_validation_blocks_promotion_without_a_written_reason(
    tiny_model_version, admin, django_capture_on_commit_callbacks
):
    opt_out(isrc_for(1))
    unlearning = derive(tiny_model_version, admin, django_capture_on_commit_callbacks)
    assert unlearning.validation_passed is False
    with pytest.raises(ApplicationError, match="did not pass"):
        services.unlearning_promote(unlearning=unlearning, actor=admin)
    unlearning.refresh_from_db()
    assert unlearning.promoted_at is None
    assert ModelVersion.objects.get(pk=tiny_model_version.pk).retired_at is None

    promoted = services.unlearning_promote(
        unlearning=unlearning, actor=admin, override_reason="held-out tracks arrive next month"
    )
    assert promoted.promoted_at is not None
    override = AuditEvent.objects.get(action="unlearning.validation_override")
    assert override.reason == "held-out tracks arrive next month"
    parent = ModelVersion.objects.get(pk=tiny_model_version.pk)
    derived = ModelVersion.objects.get(pk=unlearning.derived_id)
    assert parent.retired_at == derived.in_use_since == promoted.promoted_at
    with pytest.raises(ApplicationError, match="in use since"):
        services.unlearning_promote(unlearning=unlearning, actor=admin, override_reason="again")


@pytest.fixture
def model_version_with_held_out(db, attribution_settings, tmp_path):
    """A tiny model trained on the first 5 of 7 catalog recordings: the other two are held
    out (in the catalog, never trained on), so every validation check can be measured."""
    from attribution.services import model_version_register
    from catalog.services import catalog_import_folder
    from tests.attribution.conftest import build_tiny_checkpoint, write_catalog

    catalog, tracks = write_catalog(tmp_path, 7, lambda index: tone(index, 0.5))
    checkpoint = build_tiny_checkpoint(tmp_path / "checkpoint", tracks[:5])
    assert catalog_import_folder(folder=catalog, actor=None).ok
    return model_version_register(name="tiny-held-out", checkpoint_dir=checkpoint, actor=None)


# Bounds an admin may set for a model nothing was memorised by (random weights): each check
# is measured, and passes within them.
LENIENT = {
    **QUICK_CHECKS,
    "forget_level_tolerance": 0.5,
    "mia_margin": 0.5,
    "retain_tolerance": 0.5,
    "flatness_tolerance": 10.0,
    "self_rank_slack": 5.0,
}


def test_a_validation_measured_within_its_bounds_promotes_without_a_reason(
    model_version_with_held_out, admin, django_capture_on_commit_callbacks
):
    opt_out(isrc_for(1))
    with django_capture_on_commit_callbacks(execute=True):
        unlearning = services.unlearning_request(
            parent=model_version_with_held_out, actor=admin, config=FAST, thresholds=LENIENT
        )
    unlearning.refresh_from_db()
    assert unlearning.status == Unlearning.Status.READY, unlearning.error
    checks = unlearning.metrics["checks"]
    assert unlearning.metrics["counts"] == {"forget": 1, "retain": 4, "held_out": 2}
    assert set(checks) == {
        "forgetting", "membership", "retain_loss", "generation_flatness", "self_influence"
    }  # fmt: skip
    assert all(check["passed"] is True for check in checks.values()), checks
    assert checks["retain_loss"]["value"] != 0  # the weights did change
    assert unlearning.validation_passed is True
    services.unlearning_promote(unlearning=unlearning, actor=admin)
    assert not AuditEvent.objects.filter(action="unlearning.validation_override").exists()
    assert AuditEvent.objects.filter(action="unlearning.promote").count() == 1


def test_a_check_outside_its_bound_fails_the_validation(
    model_version_with_held_out, admin, django_capture_on_commit_callbacks
):
    opt_out(isrc_for(1))
    with django_capture_on_commit_callbacks(execute=True):
        unlearning = services.unlearning_request(
            parent=model_version_with_held_out,
            actor=admin,
            config=FAST,
            thresholds={**LENIENT, "retain_tolerance": 0.0},  # any change of the retain loss
        )
    unlearning.refresh_from_db()
    checks = unlearning.metrics["checks"]
    assert checks["retain_loss"]["passed"] is False
    assert all(c["passed"] is True for name, c in checks.items() if name != "retain_loss")
    assert unlearning.validation_passed is False
    with pytest.raises(ApplicationError, match="did not pass"):
        services.unlearning_promote(unlearning=unlearning, actor=admin)


def test_generations_after_the_switch_are_attributed_without_the_forgotten_recording(
    tiny_model_version, admin, django_capture_on_commit_callbacks
):
    opt_out(isrc_for(1))
    unlearning = derive(tiny_model_version, admin, django_capture_on_commit_callbacks)
    services.unlearning_promote(unlearning=unlearning, actor=admin, override_reason="test world")
    derived = unlearning.derived
    services.model_version_artifacts_compute(model_version=derived)

    def record(model_version, key):
        return services.generation_record(
            model_version=model_version, prompt="a bright tone", audio=wav_bytes(tone(11, 0.4)),
            revenue_minor=250, currency="EUR", requested_by=admin, idempotency_key=key,
        )  # fmt: skip

    with pytest.raises(ApplicationError, match="retired"):
        record(tiny_model_version, "after-the-switch")
    with django_capture_on_commit_callbacks(execute=True):
        generation = record(derived, "with-the-derived")
    run = AttributionRun.objects.get(generation=generation)
    assert run.status == AttributionRun.Status.SUCCEEDED, run.error
    assert len(run.scores) == 4  # one per recording still trained on
    forgotten = Recording.objects.get(isrc=isrc_for(1))
    assert not TrainingSetEntry.objects.filter(model_version=derived, recording=forgotten).exists()
    from ledger.models import SettlementTrackLine

    lines = SettlementTrackLine.objects.filter(settlement__generation=generation)
    assert lines.count() == 4
    assert not lines.filter(recording=forgotten).exists()


def test_bad_requests_are_refused(tiny_model_version, admin):
    with pytest.raises(ApplicationError, match="no opted-out"):
        services.unlearning_request(parent=tiny_model_version, actor=admin)
    recording = Recording.objects.get(isrc=isrc_for(1))
    with pytest.raises(ApplicationError, match="method"):
        services.unlearning_request(
            parent=tiny_model_version, actor=admin, recordings=[recording], method="retrain"
        )
    with pytest.raises(ApplicationError, match="Nothing would be left"):
        services.unlearning_request(
            parent=tiny_model_version, actor=admin, recordings=list(Recording.objects.all())
        )


def test_admins_start_watch_and_promote_through_the_api_and_the_holder_sees_when(
    tiny_model_version, client, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    from attribution.selectors import holder_recordings_stopped_earning
    from core.services import user_create_or_update

    opted = opt_out(isrc_for(3))
    holder = opted.rights_holder
    admin = user_create_or_update(username="cat", password="x" * 12, role="catalog_admin")
    member = user_create_or_update(username="label", password="x" * 12, role=None)
    holder.users.add(member)
    api = APIClient()
    api.force_authenticate(member)
    url = f"/attribution/api/model-versions/{tiny_model_version.pk}/unlearn/"
    assert api.post(url, {"method": "fisher"}, format="json").status_code == 403
    api.force_authenticate(admin)
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(
            url,
            {"method": "gradient_ascent", "config": FAST, "thresholds": QUICK_CHECKS},
            format="json",
        )
    assert answer.status_code == 202, answer.content
    job = api.get(f"/attribution/api/unlearnings/{answer.json()['id']}/").json()
    assert job["status"] == "ready" and job["forget_isrcs"] == [isrc_for(3)]
    assert job["validation_passed"] is False and "forgetting" in job["metrics"]["checks"]
    listed = api.get(f"/attribution/api/model-versions/{tiny_model_version.pk}/unlearnings/")
    assert [u["id"] for u in listed.json()] == [job["id"]]

    # the holder's page says where the opt-out stands
    client.force_login(member)
    page = client.get("/catalog/").content.decode()
    assert 'data-unlearning-state="unlearned"' in page and job["derived"] in page

    promote = f"/attribution/api/unlearnings/{job['id']}/promote/"
    refused = api.post(promote, {}, format="json")
    assert refused.status_code == 400 and "did not pass" in refused.content.decode()
    done = api.post(promote, {"override_reason": "reviewed by hand"}, format="json")
    assert done.status_code == 200 and done.json()["promoted_at"]

    page = client.get("/catalog/").content.decode()
    assert 'data-unlearning-state="in_use"' in page and "in use since" in page
    stopped = holder_recordings_stopped_earning(holder.pk)
    assert [row["isrc"] for row in stopped] == [isrc_for(3)]
    assert stopped[0]["model_version"] == job["derived"]

    # the admin's pages show the job, its checks and the lineage
    client.force_login(admin)
    detail = client.get(f"/attribution/unlearnings/{job['id']}/").content.decode()
    assert "forgetting" in detail and "reviewed by hand" in detail
    derived = ModelVersion.objects.get(name=job["derived"])
    version_page = client.get(f"/attribution/model-versions/{derived.pk}/").content.decode()
    assert "Unlearned from" in version_page and "In use since" in version_page
