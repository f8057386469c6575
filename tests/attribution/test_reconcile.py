"""The reconciler and the broker hand-off, in this process, against a real Redis broker: for
attribution runs and for model versions' artifact computations."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from attribution import services
from attribution.methods import artifact_kinds
from attribution.models import AttributionRun, AttributionShard, Generation, ModelArtifact
from attribution.services.artifacts import model_version_artifacts_heartbeat
from attribution.services.dispatch import (
    ARTIFACTS_STEP,
    FINISH_STEP,
    PREPARE_STEP,
    artifact_computations_waiting_in_broker,
    runs_waiting_in_broker,
)
from tests.attribution.test_apis import URL, payload
from tests.attribution.test_tasks import record_without_enqueue
from tests.flows.conftest import broker_app, project_celery_app  # noqa: F401

pytestmark = pytest.mark.worker


def make_overdue(run: AttributionRun, seconds: int = 3600, **fields) -> None:
    past = timezone.now() - timedelta(seconds=seconds)
    AttributionRun.objects.filter(pk=run.pk).update(
        created_at=past, dispatched_at=None, heartbeat_at=None, **fields
    )


@pytest.fixture
def queued_run(tiny_model_version, monkeypatch):
    return record_without_enqueue(tiny_model_version, "reconcile", monkeypatch)


def test_an_overdue_queued_run_is_sent_once_and_then_waits_its_turn(broker_app, queued_run):  # noqa: F811
    assert runs_waiting_in_broker(["gpu"]) == set()
    report = services.attribution_runs_reconcile()
    assert report.resent == []  # recorded just now: not overdue yet

    make_overdue(queued_run)
    report = services.attribution_runs_reconcile()
    assert report.resent == [(queued_run.pk, PREPARE_STEP)]
    queued_run.refresh_from_db()
    assert queued_run.redispatches == 1 and queued_run.dispatched_at is not None
    assert runs_waiting_in_broker(["gpu"]) == {queued_run.pk}

    # Its step waits in the queue behind others: however long, it is not sent again.
    report = services.attribution_runs_reconcile(after_seconds=0)
    assert report.resent == [] and report.waiting == 1


def test_a_run_with_every_shard_scored_gets_its_finish_step(broker_app, queued_run):  # noqa: F811
    make_overdue(queued_run, status=AttributionRun.Status.RUNNING, shard_count=2, shard_size=3)
    for index in range(2):
        AttributionShard.objects.create(
            run=queued_run, index=index, start=3 * index, stop=3 * index + 3, values=[0.0] * 3
        )
    report = services.attribution_runs_reconcile()
    assert report.resent == [(queued_run.pk, FINISH_STEP)]


def test_a_running_run_that_went_silent_is_prepared_again(broker_app, queued_run):  # noqa: F811
    make_overdue(queued_run, status=AttributionRun.Status.RUNNING, shard_count=3, shard_size=2)
    AttributionShard.objects.create(run=queued_run, index=0, start=0, stop=2, values=[0.0] * 2)
    report = services.attribution_runs_reconcile()
    assert report.resent == [(queued_run.pk, PREPARE_STEP)]
    # a worker that reports progress again is left alone
    AttributionRun.objects.filter(pk=queued_run.pk).update(heartbeat_at=timezone.now())
    assert services.attribution_runs_reconcile(after_seconds=60).resent == []


def test_a_run_sent_again_too_often_fails_with_the_reason(broker_app, queued_run, settings):  # noqa: F811
    settings.ATTRIBUTION_RECONCILE_MAX_REDISPATCHES = 3
    make_overdue(queued_run, redispatches=3, error="Retrying after: connection refused")
    report = services.attribution_runs_reconcile()
    assert report.failed == [queued_run.pk] and report.resent == []
    queued_run.refresh_from_db()
    assert queued_run.status == AttributionRun.Status.FAILED
    assert "sent again 3 times" in queued_run.error and "connection refused" in queued_run.error
    assert Generation.objects.get(pk=queued_run.generation_id).status == Generation.Status.FAILED


def test_the_command_sends_overdue_steps_and_reports(broker_app, queued_run, capsys):  # noqa: F811
    call_command("reconcile_runs", "--after", "0")
    out = capsys.readouterr().out
    assert f"run {queued_run.pk}: sent {PREPARE_STEP} again" in out
    assert "1 step(s) sent again" in out


@pytest.fixture
def dead_broker(settings):
    """The project's Celery app pointed at a port where no broker listens."""
    from tests.conftest import free_port

    with project_celery_app(settings, f"redis://127.0.0.1:{free_port()}/0") as app:
        yield app


def test_recording_while_the_broker_is_down_answers_the_recorded_generation(
    dead_broker, tiny_model_version, django_capture_on_commit_callbacks
):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("generator-down", password="x" * 12)
    user.user_permissions.add(Permission.objects.get(codename="add_generation"))
    client = APIClient()
    client.force_authenticate(user)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        response = client.post(URL, payload(tiny_model_version, key="down"), format="multipart")
    assert len(sent) == 1  # the hand-off to the broker was tried, after the commit
    assert response.status_code == 201, response.content
    run = AttributionRun.objects.get(generation_id=response.json()["id"])
    assert run.status == AttributionRun.Status.QUEUED
    assert run.dispatched_at is None  # nothing reached the broker: the reconciler sends it
    report = services.attribution_runs_reconcile(after_seconds=0)
    assert report.broker_unreachable and report.resent == []
    run.refresh_from_db()
    assert run.redispatches == 0  # a send the broker refused is not counted


# --- artifact computations ---------------------------------------------------------------


def artifacts_computing(model_version, seconds_ago: int = 3600, **fields) -> None:
    """Its artifacts marked computing (as a catalog admin's request does), last touched
    ``seconds_ago``, never sent and never heard from."""
    from attribution.services.model_versions import model_artifact_update

    for kind in artifact_kinds():
        model_artifact_update(
            model_version=model_version, kind=kind, status=ModelArtifact.Status.COMPUTING
        )
    ModelArtifact.objects.filter(model_version=model_version).update(
        updated_at=timezone.now() - timedelta(seconds=seconds_ago),
        dispatched_at=None,
        heartbeat_at=None,
        **fields,
    )


def artifact_rows(model_version) -> list[ModelArtifact]:
    rows = list(ModelArtifact.objects.filter(model_version=model_version))
    assert len(rows) == len(artifact_kinds())
    return rows


def catalog_admin():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("artifacts-admin", password="x" * 12)


def test_a_stopped_artifact_computation_is_sent_once_and_then_waits_its_turn(
    broker_app,  # noqa: F811
    tiny_model_version,
):
    artifacts_computing(tiny_model_version, seconds_ago=0)
    report = services.attribution_runs_reconcile()
    assert report.artifacts_checked == 1 and report.artifacts_resent == []  # not overdue yet

    artifacts_computing(tiny_model_version)
    report = services.attribution_runs_reconcile()
    assert report.artifacts_resent == [tiny_model_version.pk]
    assert all(a.redispatches == 1 and a.dispatched_at for a in artifact_rows(tiny_model_version))
    assert artifact_computations_waiting_in_broker(["gpu"]) == {tiny_model_version.pk}
    assert runs_waiting_in_broker(["gpu"]) == set()  # a model version's id is not a run's

    # Its computation waits in the queue behind other work: it is not sent again.
    report = services.attribution_runs_reconcile(after_seconds=0)
    assert report.artifacts_resent == [] and report.artifacts_waiting == 1


def test_an_artifact_computation_whose_worker_gives_signs_of_life_is_left_alone(
    broker_app,  # noqa: F811
    tiny_model_version,
):
    artifacts_computing(tiny_model_version)
    model_version_artifacts_heartbeat(model_version_id=tiny_model_version.pk)
    report = services.attribution_runs_reconcile(after_seconds=60)
    assert report.artifacts_checked == 1 and report.artifacts_resent == []
    assert artifact_computations_waiting_in_broker(["gpu"]) == set()


def test_an_artifact_computation_sent_again_too_often_fails_and_can_be_asked_for_again(
    broker_app,  # noqa: F811
    tiny_model_version,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.ATTRIBUTION_RECONCILE_MAX_REDISPATCHES = 2
    artifacts_computing(tiny_model_version, redispatches=2)
    report = services.attribution_runs_reconcile()
    assert report.artifacts_failed == [tiny_model_version.pk] and report.artifacts_resent == []
    for artifact in artifact_rows(tiny_model_version):
        assert artifact.status == ModelArtifact.Status.FAILED
        assert "sent again 2 times" in artifact.error
    assert artifact_computations_waiting_in_broker(["gpu"]) == set()

    # A catalog admin asks again (the model version's page offers it): a new computation,
    # sent to the broker, with its own count of re-sends.
    with django_capture_on_commit_callbacks(execute=True):
        services.model_version_artifacts_queue(
            model_version=tiny_model_version, actor=catalog_admin()
        )
    for artifact in artifact_rows(tiny_model_version):
        assert artifact.status == ModelArtifact.Status.COMPUTING
        assert artifact.redispatches == 0 and artifact.dispatched_at is not None
        assert artifact.error == ""
    assert artifact_computations_waiting_in_broker(["gpu"]) == {tiny_model_version.pk}


def test_the_command_reports_artifact_computations_sent_again(
    broker_app,  # noqa: F811
    tiny_model_version,
    capsys,
):
    artifacts_computing(tiny_model_version)
    call_command("reconcile_runs", "--after", "0")
    out = capsys.readouterr().out
    assert f"model version {tiny_model_version.pk}: sent {ARTIFACTS_STEP} again" in out
    assert "1 artifact computation(s) checked, 1 sent again" in out


def test_asking_for_artifacts_while_the_broker_is_down_leaves_them_to_the_reconciler(
    dead_broker, tiny_model_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as sent:
        services.model_version_artifacts_queue(
            model_version=tiny_model_version, actor=catalog_admin()
        )
    assert len(sent) == 1  # the hand-off was tried after the commit, and did not raise
    assert all(a.dispatched_at is None for a in artifact_rows(tiny_model_version))
    report = services.attribution_runs_reconcile(after_seconds=0)
    assert report.broker_unreachable and report.artifacts_resent == []
    assert all(a.redispatches == 0 for a in artifact_rows(tiny_model_version))
    assert all(
        a.status == ModelArtifact.Status.COMPUTING for a in artifact_rows(tiny_model_version)
    )


def test_the_compute_command_queues_through_the_broker_and_is_looked_after(
    broker_app,  # noqa: F811
    tiny_model_version,
    capsys,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("compute_model_artifacts", tiny_model_version.name, "--queue")
    assert "Queued artifact computation" in capsys.readouterr().out
    for artifact in artifact_rows(tiny_model_version):
        assert artifact.status == ModelArtifact.Status.COMPUTING and artifact.dispatched_at
    assert artifact_computations_waiting_in_broker(["gpu"]) == {tiny_model_version.pk}
    with pytest.raises(CommandError, match="already computing"):
        call_command("compute_model_artifacts", tiny_model_version.name, "--queue")
