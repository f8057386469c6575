"""Unlearning jobs through the real Redis broker and real worker processes, and the reconciler
that sends a job whose message was lost again."""

import os
import signal
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from attribution import services
from attribution.models import ModelVersion, Unlearning
from attribution.services import reconcile
from attribution.services import unlearning as unlearning_services
from attribution.services.dispatch import UNLEARNING_STEP, unlearnings_waiting_in_broker
from core.models import AuditEvent
from tests.attribution.conftest import TEST_ENGINE, isrc_for
from tests.attribution.test_tasks import wait_for
from tests.attribution.test_unlearning import FAST, QUICK_CHECKS, opt_out
from tests.flows.conftest import broker_app, project_celery_app  # noqa: F401

pytestmark = pytest.mark.worker

TASK = "attribution.unlearn_model_version"


def catalog_admin():
    user, _ = get_user_model().objects.get_or_create(username="unlearning-admin")
    return user


def request_without_send(model_version, monkeypatch, config=None):
    """Request an unlearning of the first recording (opted out) without handing the job to a
    broker; the test sends the task itself (the test process runs tasks eagerly)."""
    monkeypatch.setattr(unlearning_services, "unlearning_send", lambda **kwargs: True)
    opt_out(isrc_for(1))
    return services.unlearning_request(
        parent=model_version,
        actor=catalog_admin(),
        config=config or FAST,
        thresholds=QUICK_CHECKS,
    )


def derived_versions(parent) -> int:
    return ModelVersion.objects.exclude(pk=parent.pk).count()


# --- delivered through the broker to worker processes -------------------------------------


@pytest.fixture
def gpu_worker(queue_worker, attribution_settings):
    def start():
        return queue_worker("gpu,default", engine=TEST_ENGINE)

    return start


@pytest.mark.django_db(transaction=True)
def test_a_worker_derives_a_delivered_job_and_a_second_delivery_registers_nothing(
    tiny_model_version, gpu_worker, celery_client, monkeypatch
):
    gpu_worker()
    job = request_without_send(tiny_model_version, monkeypatch)
    assert job.status == Unlearning.Status.QUEUED and job.dispatched_at is None
    delivery = celery_client.send_task(TASK, args=[job.pk], queue="gpu")
    assert delivery.get(timeout=300) == job.pk
    job.refresh_from_db()
    assert job.status == Unlearning.Status.READY, job.error
    assert job.attempts == 1 and job.heartbeat_at is not None
    derived = job.derived
    assert derived is not None and derived.checkpoint_sha256 == job.checkpoint_sha256
    assert derived_versions(tiny_model_version) == 1
    parent_isrcs = list(
        tiny_model_version.training_set_entries.values_list("recording__isrc", flat=True)
    )
    derived_isrcs = list(derived.training_set_entries.values_list("recording__isrc", flat=True))
    assert derived_isrcs == [isrc for isrc in parent_isrcs if isrc != isrc_for(1)]

    # Delivered a second time (a duplicate, or a re-send that crossed the first): done already.
    again = celery_client.send_task(TASK, args=[job.pk], queue="gpu")
    assert again.get(timeout=300) == job.pk
    job.refresh_from_db()
    assert job.status == Unlearning.Status.READY and job.attempts == 1
    assert job.derived_id == derived.pk and derived_versions(tiny_model_version) == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_is_redelivered_and_resumes_to_one_derived_version(
    tiny_model_version, gpu_worker, celery_client, monkeypatch, settings
):
    import torch

    worker = gpu_worker()
    # Enough forget steps to be killed in the middle of them; the state is saved every step.
    long_job = {**FAST, "steps": 400, "checkpoint_seconds": 0}
    job = request_without_send(tiny_model_version, monkeypatch, config=long_job)
    celery_client.send_task(TASK, args=[job.pk], queue="gpu")
    wait_for(
        lambda: Unlearning.objects.filter(
            pk=job.pk, progress_stage="unlearn", progress_percent__gte=2
        ).exists(),
        what="the job to be unlearning",
        interval=0.01,
    )
    state_path = settings.ARTIFACTS_DIR / "unlearning" / str(job.pk) / "state.pt"
    for pid in worker.pool_pids():
        os.kill(pid, signal.SIGKILL)  # the process running the job dies
    saved_step = torch.load(state_path, map_location="cpu", weights_only=True)["step"]
    assert 0 < saved_step < long_job["steps"]
    done = wait_for(
        lambda: Unlearning.objects.filter(
            pk=job.pk, status__in=[Unlearning.Status.READY, Unlearning.Status.FAILED]
        ).first(),
        what="the redelivered job to finish",
        timeout=600,
    )
    assert done.status == Unlearning.Status.READY, done.error
    assert done.attempts >= 2, worker.log_path.read_text()[-3000:]  # redelivered and resumed
    assert done.derived is not None and derived_versions(tiny_model_version) == 1
    assert done.redispatches == 0  # the broker redelivered it; the reconciler had no part


# --- the reconciler ----------------------------------------------------------------------


def make_overdue(job: Unlearning, seconds: int = 3600, **fields) -> None:
    past = timezone.now() - timedelta(seconds=seconds)
    Unlearning.objects.filter(pk=job.pk).update(
        created_at=past, dispatched_at=None, heartbeat_at=None, **fields
    )


def requested(model_version, callbacks) -> Unlearning:
    """A job requested through the service, handed to the broker when the request commits."""
    opt_out(isrc_for(1))
    with callbacks(execute=True):
        job = services.unlearning_request(
            parent=model_version, actor=catalog_admin(), config=FAST, thresholds=QUICK_CHECKS
        )
    job.refresh_from_db()
    return job


def broker_forgets(redis_broker_url) -> None:
    """What a broker restarted without persistence does to the messages it held."""
    import redis

    redis.Redis.from_url(redis_broker_url).flushdb()


def test_an_unlearning_whose_message_was_lost_is_sent_again_once_then_waits_its_turn(
    broker_app,  # noqa: F811
    redis_broker_url,
    tiny_model_version,
    django_capture_on_commit_callbacks,
):
    job = requested(tiny_model_version, django_capture_on_commit_callbacks)
    assert job.status == Unlearning.Status.QUEUED and job.dispatched_at is not None
    assert unlearnings_waiting_in_broker(["gpu"]) == {job.pk}
    report = services.attribution_runs_reconcile(after_seconds=0)
    assert report.unlearnings_checked == 1 and report.unlearnings_waiting == 1
    assert report.unlearnings_resent == []  # it waits in the queue: not sent twice

    broker_forgets(redis_broker_url)
    report = services.attribution_runs_reconcile()
    assert report.unlearnings_resent == []  # sent just now: not overdue yet
    make_overdue(job)
    report = services.attribution_runs_reconcile()
    assert report.unlearnings_resent == [job.pk] and report.unlearnings_failed == []
    assert "1 unlearning job(s) checked, 1 sent again" in report.summary()
    job.refresh_from_db()
    assert job.redispatches == 1 and job.dispatched_at is not None
    assert job.status == Unlearning.Status.QUEUED
    assert unlearnings_waiting_in_broker(["gpu"]) == {job.pk}
    assert services.attribution_runs_reconcile(after_seconds=0).unlearnings_resent == []


def test_a_running_job_that_went_silent_is_sent_again(
    broker_app,  # noqa: F811
    redis_broker_url,
    tiny_model_version,
    django_capture_on_commit_callbacks,
):
    job = requested(tiny_model_version, django_capture_on_commit_callbacks)
    broker_forgets(redis_broker_url)  # a worker took it, then died for good
    make_overdue(job, status=Unlearning.Status.RUNNING, attempts=1)
    Unlearning.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    report = services.attribution_runs_reconcile(after_seconds=60)
    assert report.unlearnings_resent == []  # its worker spoke a moment ago
    Unlearning.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=120)
    )
    report = services.attribution_runs_reconcile(after_seconds=60)
    assert report.unlearnings_resent == [job.pk]
    assert unlearnings_waiting_in_broker(["gpu"]) == {job.pk}


def test_a_job_that_reports_progress_while_it_runs_is_left_alone(
    tiny_model_version, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(reconcile, "unlearning_send", lambda **kwargs: sent.append(kwargs) or True)
    monkeypatch.setattr(unlearning_services, "unlearning_send", lambda **kwargs: True)
    job = requested(tiny_model_version, django_capture_on_commit_callbacks)
    make_overdue(job)  # requested an hour ago, never sent
    passes = []

    def mid_run(stage: str, done: int, total: int) -> None:
        if stage == "unlearn" and done == 1:  # the reconciler passes while the job works
            passes.append(services.attribution_runs_reconcile(after_seconds=60))

    done = services.unlearning_run(unlearning_id=job.pk, progress=mid_run)
    assert done.status == Unlearning.Status.READY, done.error
    [mid] = passes
    assert mid.unlearnings_checked == 1 and mid.unlearnings_resent == [] and sent == []
    assert done.heartbeat_at is not None and done.redispatches == 0


def test_a_job_sent_again_too_often_fails_with_the_reason_and_can_be_asked_for_again(
    tiny_model_version, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.ATTRIBUTION_RECONCILE_MAX_REDISPATCHES = 2
    sent = []
    monkeypatch.setattr(reconcile, "unlearning_send", lambda **kwargs: sent.append(kwargs) or True)
    monkeypatch.setattr(unlearning_services, "unlearning_send", lambda **kwargs: True)
    job = requested(tiny_model_version, django_capture_on_commit_callbacks)
    make_overdue(job, redispatches=2)
    report = services.attribution_runs_reconcile()
    assert report.unlearnings_failed == [job.pk] and report.unlearnings_resent == []
    assert "1 unlearning job(s) failed after repeated re-sends" in report.summary()
    assert sent == []
    job.refresh_from_db()
    assert job.status == Unlearning.Status.FAILED
    assert "sent again 2 times" in job.error and job.finished_at is not None
    failed = AuditEvent.objects.get(action="unlearning.failed")
    assert "sent again 2 times" in failed.after["error"]
    # The parent is free again: a catalog admin asks for a new job.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.unlearning_request(
            parent=tiny_model_version, actor=catalog_admin(), config=FAST
        )
    assert again.status == Unlearning.Status.QUEUED and again.pk != job.pk


def test_a_job_requested_while_the_broker_is_down_is_kept_and_sent_once_it_is_back(
    settings, redis_broker_url, tiny_model_version, django_capture_on_commit_callbacks, capsys
):
    from tests.conftest import free_port

    with project_celery_app(settings, f"redis://127.0.0.1:{free_port()}/0"):
        job = requested(tiny_model_version, django_capture_on_commit_callbacks)
        assert job.status == Unlearning.Status.QUEUED and job.dispatched_at is None
        report = services.attribution_runs_reconcile(after_seconds=0)
        assert report.broker_unreachable and report.unlearnings_resent == []
        job.refresh_from_db()
        assert job.redispatches == 0 and job.dispatched_at is None  # a refused send: uncounted
    with project_celery_app(settings, redis_broker_url):
        call_command("reconcile_runs", "--after", "0")
        out = capsys.readouterr().out
        assert f"unlearning {job.pk}: sent {UNLEARNING_STEP} again" in out
        assert "1 unlearning job(s) checked, 1 sent again" in out
        assert unlearnings_waiting_in_broker(["gpu"]) == {job.pk}
    job.refresh_from_db()
    assert job.status == Unlearning.Status.QUEUED and job.redispatches == 1
