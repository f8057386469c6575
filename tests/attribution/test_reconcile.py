"""The reconciler and the broker hand-off, in this process, against a real Redis broker."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from attribution import services
from attribution.models import AttributionRun, AttributionShard, Generation
from attribution.services.dispatch import FINISH_STEP, PREPARE_STEP, runs_waiting_in_broker
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
