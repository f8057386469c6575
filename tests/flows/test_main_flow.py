"""The platform's main job end to end on PostgreSQL + Redis with real worker processes:
register a catalog -> register a model -> generate -> attribute -> book -> statement ->
payout export.

The services enqueue the tasks themselves (on commit, through the real broker) and
``CELERY_TASK_ROUTES`` picks the queues: the attribution work can only have run on the
``gpu`` worker, since it is the only process consuming that queue."""

import csv
import io
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from attribution.models import AttributionRun, Generation, ModelArtifact
from attribution.services import model_version_artifacts_queue, model_version_register
from catalog.models import RightsHolder
from catalog.services import catalog_import_folder
from core.services import user_create_or_update
from tests.attribution.conftest import tone, wav_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ATTRIBUTION_TASKS = {
    "attribution.compute_model_artifacts",
    "attribution.prepare_run",
    "attribution.score_shard",
    "attribution.finish_run",
}
_TASK_LOG = re.compile(rb"Task ([\w.]+)\[[0-9a-f-]+\] (received|succeeded)")


def wait_for(predicate, what, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def worker_tasks(worker, event: str) -> set[str]:
    """Names of the tasks a worker logged as ``received`` or ``succeeded`` (INFO log)."""
    return {
        name.decode()
        for name, logged in _TASK_LOG.findall(worker.log_path.read_bytes())
        if logged.decode() == event
    }


def test_catalog_to_payout_export(attribution_settings, tiny_world, broker_app, queue_worker):
    from core.tasks import health_check
    from ledger.exports import payout_batch_export
    from ledger.models import Settlement, Statement
    from ledger.money import minor_to_accrual
    from ledger.selectors import holder_balance, ledger_verify
    from ledger.services import (
        payout_batch_create,
        payout_batch_mark_paid,
        statement_generate,
        statement_period_close,
        statement_period_create,
    )

    def queue_of(task_name: str) -> str:
        return broker_app.amqp.router.route({}, task_name)["queue"].name

    assert {name: queue_of(name) for name in ATTRIBUTION_TASKS} == dict.fromkeys(
        ATTRIBUTION_TASKS, "gpu"
    )
    assert queue_of("core.health_check") == "default"

    period_start = timezone.now() - timedelta(minutes=1)
    catalog_admin = user_create_or_update(
        username="cat", password="x" * 12, role="catalog_admin", is_staff=True
    )
    finance = user_create_or_update(username="fin", password="x" * 12, role="finance")
    service = user_create_or_update(username="generator", password="x" * 12)
    service.user_permissions.add(Permission.objects.get(codename="add_generation"))

    # 1. Register the catalog and the model version trained on it.
    catalog_folder, checkpoint = tiny_world
    assert catalog_import_folder(folder=catalog_folder, actor=catalog_admin).ok
    model_version = model_version_register(
        name="tiny-flow", checkpoint_dir=checkpoint, actor=catalog_admin
    )

    # 2. One worker per queue. The catalog admin asks for the model's artifacts; the GPU
    # worker computes them, then attributes the generation the API records.
    gpu = queue_worker("gpu")
    general = queue_worker("default")
    model_version_artifacts_queue(model_version=model_version, actor=catalog_admin)
    wait_for(
        lambda: model_version.artifacts.filter(status=ModelArtifact.Status.READY).count() == 2,
        "the artifacts",
    )
    client = APIClient()
    client.force_authenticate(service)
    response = client.post(
        "/attribution/api/generations/",
        {
            "model_version": model_version.name,
            "prompt": "a bright tone",
            "audio": SimpleUploadedFile("gen.wav", wav_bytes(tone(11, 0.4)), "audio/wav"),
            "revenue_minor": 10_000,
            "currency": "EUR",
            "idempotency_key": "flow-1",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    generation_id = response.json()["id"]
    wait_for(
        lambda: Generation.objects.filter(
            pk=generation_id, status=Generation.Status.SETTLED
        ).exists(),
        "the generation to be attributed and settled",
    )
    wait_for(
        lambda: worker_tasks(gpu, "succeeded") >= ATTRIBUTION_TASKS,
        "the GPU worker to log every attribution task",
    )
    # The default queue's worker got none of them; it serves what is routed there.
    assert not {n for n in worker_tasks(general, "received") if n.startswith("attribution.")}
    echo = health_check.delay("flow").get(timeout=60)
    assert echo["token"] == "flow" and echo["pid"] in general.pool_pids()
    assert worker_tasks(general, "received") == {"core.health_check"}

    run = AttributionRun.objects.get(generation_id=generation_id)
    assert run.status == AttributionRun.Status.SUCCEEDED and len(run.scores) == 5
    settlement = Settlement.objects.get(generation_id=generation_id)
    assert settlement.attribution_run_id == run.pk
    assert settlement.checkpoint_sha256 == model_version.checkpoint_sha256

    # 3. Statements: close the period, each holder's statement shows the generation.
    # The period ends now, after the settlement was booked, so it can be closed at once.
    period = statement_period_create(starts_at=period_start, ends_at=timezone.now(), actor=finance)
    statement_period_close(period=period, actor=finance)
    holders = list(RightsHolder.objects.order_by("legal_name"))
    owed = {}
    for holder in holders:
        statement = statement_generate(
            rights_holder=holder, period=period, currency="EUR", actor=finance
        )
        owed[holder.legal_name] = statement.closing_balance
        assert statement.opening_balance == 0
        assert statement.closing_balance == holder_balance(rights_holder=holder, currency="EUR")
        assert len(statement.content["lines"]) == 1
        again = statement_generate(
            rights_holder=holder, period=period, currency="EUR", actor=finance
        )
        assert again.content_sha256 == statement.content_sha256
    assert Statement.objects.count() == 2
    # 60/40 ownership of every track: the label gets 60 % of the pool (each of the 5
    # tracks' split may round by one accrual unit), and the pool is paid in full.
    label, publisher = owed["Tiny Label Ltd"], owed["Tiny Publishing"]
    assert label + publisher + settlement.residue == settlement.pool
    assert abs(label - settlement.pool * 3 // 5) <= 5

    # 4. Payout: finance exports the batch and marks it paid; the ledger still verifies.
    batch = payout_batch_create(currency="EUR", threshold_minor=1, actor=finance)
    exported = payout_batch_export(batch=batch, fmt="csv").decode()
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 2
    payout_batch_mark_paid(batch=batch, actor=finance)
    one_cent = minor_to_accrual(1)
    for holder in holders:  # paid out; only the sub-cent remainder carries forward
        assert 0 <= holder_balance(rights_holder=holder, currency="EUR") < one_cent
    assert ledger_verify().ok
