"""The imports' reconciler, against a real Redis broker: a staged import whose check or
import message was lost is sent again, once, bounded, and imports nothing twice."""

from datetime import timedelta

import pytest
import redis
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog import services, tasks
from catalog.models import ImportBatch, Recording, RightsHolder
from catalog.services.staged_imports import APPLY_STEP, CHECK_STEP, STEPS, _claim
from core.broker import ids_waiting_in_broker
from core.models import AuditEvent
from tests.catalog.test_import_tasks import admin, confirmed, data_dir, stage  # noqa: F401
from tests.conftest import REDIS_URL
from tests.flows.conftest import broker_app, project_celery_app  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def waiting() -> set[int] | None:
    steps = tuple(STEPS.values())
    return ids_waiting_in_broker(["default"], steps)


def lose_the_broker_messages() -> None:
    """What a Redis restart without persistence does to the queued tasks."""
    redis.Redis.from_url(REDIS_URL).flushdb()


def make_overdue(batch: ImportBatch, seconds: int = 3600, **fields):
    """Created, sent and last heard from (unless ``fields`` say otherwise) ``seconds`` ago."""
    past = timezone.now() - timedelta(seconds=seconds)
    fields = {"heartbeat_at": None, **fields}
    ImportBatch.objects.filter(pk=batch.pk).update(created_at=past, dispatched_at=past, **fields)
    return past


@pytest.mark.parametrize(("status", "step"), [("checking", CHECK_STEP), ("importing", APPLY_STEP)])
def test_an_overdue_batch_whose_message_was_lost_gets_its_step_again(
    admin,  # noqa: F811
    catalog_folder,
    broker_app,  # noqa: F811
    status,
    step,
):
    batch = stage(catalog_folder.write(), admin)  # its check waits in the broker
    assert batch.status == "checking" and batch.dispatched_at is not None
    assert waiting() == {batch.pk}
    make_overdue(batch, status=status)
    report = services.catalog_imports_reconcile()
    assert report.resent == [] and report.waiting == 1  # still queued: left alone

    lose_the_broker_messages()
    report = services.catalog_imports_reconcile()
    assert report.resent == [(batch.pk, step)] and report.checked == 1
    batch.refresh_from_db()
    assert batch.status == status and batch.redispatches == 1
    assert batch.dispatched_at > timezone.now() - timedelta(minutes=1)
    assert waiting() == {batch.pk}
    # Sent just now: the next pass leaves it alone, however short the lease.
    assert services.catalog_imports_reconcile(after_seconds=60).resent == []


def test_a_batch_whose_worker_reports_progress_is_left_alone(admin, broker_app):  # noqa: F811
    batch = ImportBatch.objects.create(token="b" * 32, status="importing", actor=admin)
    make_overdue(batch)
    ImportBatch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now())
    report = services.catalog_imports_reconcile(after_seconds=60)
    assert report.resent == [] and report.checked == 1 and waiting() == set()
    # ... until its worker goes silent for longer than the lease.
    ImportBatch.objects.filter(pk=batch.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=120)
    )
    assert services.catalog_imports_reconcile(after_seconds=60).resent == [(batch.pk, APPLY_STEP)]


def test_a_batch_sent_again_too_often_fails_with_the_reason_and_imports_nothing(
    admin,  # noqa: F811
    catalog_folder,
    broker_app,  # noqa: F811
    settings,
):
    settings.CATALOG_IMPORT_MAX_REDISPATCHES = 3
    batch = stage(catalog_folder.write(), admin)
    lose_the_broker_messages()
    make_overdue(batch, status="importing", redispatches=3)
    report = services.catalog_imports_reconcile()
    assert report.failed == [batch.pk] and report.resent == []
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.finished_at is not None
    assert "sent again 3 times" in batch.error and "nothing was imported" in batch.error
    assert not Recording.objects.exists() and not RightsHolder.objects.exists()
    assert waiting() == set()
    # A failed batch is done: nothing more is sent.
    assert services.catalog_imports_reconcile(after_seconds=0).checked == 0


def test_the_command_sends_overdue_steps_and_reports(admin, catalog_folder, broker_app, capsys):  # noqa: F811
    batch = stage(catalog_folder.write(), admin)
    lose_the_broker_messages()
    make_overdue(batch)
    call_command("reconcile_imports", "--after", "600")
    out = capsys.readouterr().out
    assert f"import batch {batch.pk}: sent {CHECK_STEP} again" in out
    assert "1 import(s) in progress checked, 1 step(s) sent again." in out
    with pytest.raises(CommandError, match="0 or more"):
        call_command("reconcile_imports", "--after", "-1")


@pytest.fixture
def dead_broker(settings):
    """The project's Celery app pointed at a port where no broker listens."""
    from tests.conftest import free_port

    with project_celery_app(settings, f"redis://127.0.0.1:{free_port()}/0") as app:
        yield app


def test_a_send_the_broker_refuses_is_not_counted(admin, dead_broker):  # noqa: F811
    batch = ImportBatch.objects.create(token="c" * 32, status="checking", actor=admin)
    past = make_overdue(batch)
    report = services.catalog_imports_reconcile()
    assert report.broker_unreachable and report.resent == []
    batch.refresh_from_db()  # as it was: the next pass tries again
    assert batch.status == "checking" and batch.error == ""
    assert batch.redispatches == 0 and batch.dispatched_at == past


def test_an_import_sent_again_after_its_worker_died_is_applied_exactly_once(
    admin,  # noqa: F811
    catalog_folder,
):
    checked = stage(catalog_folder.write(), admin)  # no broker: the check runs on commit
    assert checked.status == "checked" and checked.can_confirm
    batch = confirmed(checked)
    # A worker took the import, claimed the batch and died: its transaction rolled back,
    # and its message comes back only after the broker's visibility timeout.
    dead = _claim(batch_id=batch.pk, status="importing")
    make_overdue(batch, heartbeat_at=dead.heartbeat_at - timedelta(hours=1))
    report = services.catalog_imports_reconcile()  # eager: the re-sent import runs here
    assert report.resent == [(batch.pk, APPLY_STEP)]
    batch.refresh_from_db()
    assert batch.status == "applied" and batch.attempts == dead.attempts + 1
    assert Recording.objects.count() == 3
    # The original message, delivered at last, and the next passes import nothing more.
    assert tasks.apply_import.apply(args=[batch.pk]).get() is None
    assert services.catalog_imports_reconcile(after_seconds=0).resent == []
    assert Recording.objects.count() == 3
    assert AuditEvent.objects.filter(action="catalog_import.apply").count() == 1
