"""Reference use end to end on PostgreSQL + Redis with a real worker process: licences
granted through the catalog API, a generation uploaded through the API declaring the
catalog recording it was conditioned on, attributed by the GPU worker and settled with the
reference's licence share first; a repeated upload books nothing more."""

import json
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from attribution.models import Generation, GenerationReference, ModelArtifact
from attribution.services import model_version_artifacts_queue, model_version_register
from catalog.models import Recording, RightsHolder
from catalog.services import catalog_import_folder
from core.services import user_create_or_update
from tests.attribution.conftest import isrc_for, tone, wav_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, what, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def upload(client, model_version, key: str, references: list[dict]):
    return client.post(
        "/attribution/api/generations/",
        {
            "model_version": model_version.name,
            "prompt": "a variation of tone 1",
            "audio": SimpleUploadedFile("gen.wav", wav_bytes(tone(11, 0.4)), "audio/wav"),
            "revenue_minor": 10_000,
            "currency": "EUR",
            "idempotency_key": key,
            "references": json.dumps(references),
        },
        format="multipart",
    )


def test_a_licensed_reference_is_paid_first_through_the_api(
    attribution_settings, tiny_world, broker_app, queue_worker
):
    from ledger.models import JournalEntry, Settlement
    from ledger.money import allocate
    from ledger.selectors import ledger_verify
    from ledger.services import statement_generate, statement_period_close, statement_period_create

    period_start = timezone.now() - timedelta(minutes=1)
    catalog_admin = user_create_or_update(
        username="cat", password="x" * 12, role="catalog_admin", is_staff=True
    )
    finance = user_create_or_update(username="fin", password="x" * 12, role="finance")
    service = user_create_or_update(username="generator", password="x" * 12)
    service.user_permissions.add(Permission.objects.get(codename="add_generation"))
    catalog_folder, checkpoint = tiny_world
    assert catalog_import_folder(folder=catalog_folder, actor=catalog_admin).ok
    model_version = model_version_register(
        name="tiny-refs", checkpoint_dir=checkpoint, actor=catalog_admin
    )
    queue_worker("gpu")
    model_version_artifacts_queue(model_version=model_version, actor=catalog_admin)
    wait_for(
        lambda: model_version.artifacts.filter(status=ModelArtifact.Status.READY).count() == 2,
        "the artifacts",
    )

    # Both owners of track 1 license it for reference use at 25 % of the pool.
    reference = Recording.objects.get(isrc=isrc_for(1))
    admin = APIClient()
    admin.force_authenticate(catalog_admin)
    for holder in RightsHolder.objects.order_by("pk"):
        granted = admin.post(
            "/catalog/api/reference-licences/",
            {"rights_holder": holder.pk, "recording": reference.pk, "pool_share_percent": "25"},
            format="json",
        )
        assert granted.status_code == 201, granted.content

    client = APIClient()
    client.force_authenticate(service)
    unlicensed = Recording.objects.get(isrc=isrc_for(2))
    refused = upload(client, model_version, "refs-0", [{"audio_sha256": unlicensed.audio_sha256}])
    assert refused.status_code == 400
    assert f"reference use of {unlicensed.isrc} is not licensed" in refused.content.decode()
    unknown = upload(client, model_version, "refs-0", [{"audio_sha256": "0" * 64}])
    assert unknown.status_code == 400 and "no catalog recording" in unknown.content.decode()
    assert not Generation.objects.exists()

    declared = [{"audio_sha256": reference.audio_sha256, "noise_level": 2.0}]
    response = upload(client, model_version, "refs-1", declared)
    assert response.status_code == 201, response.content
    generation_id = response.json()["id"]
    wait_for(
        lambda: Generation.objects.filter(
            pk=generation_id, status=Generation.Status.SETTLED
        ).exists(),
        "the generation to be attributed and settled",
    )
    again = upload(client, model_version, "refs-1", declared)
    assert again.status_code == 200 and again.json()["id"] == generation_id
    assert GenerationReference.objects.filter(generation_id=generation_id).count() == 1

    settlement = Settlement.objects.get(generation_id=generation_id)
    (line,) = settlement.reference_lines
    part, rest = allocate(settlement.pool, [25, 75])
    assert line["paid"] and line["amount"] == part
    assert sum(settlement.tracks.values_list("amount", flat=True)) == rest
    assert sum(settlement.holders.values_list("amount", flat=True)) == settlement.pool
    assert JournalEntry.objects.filter(generation_id=generation_id).count() == 1

    finance_client = APIClient()
    finance_client.force_authenticate(finance)
    detail = finance_client.get(f"/attribution/api/generations/{generation_id}/").json()
    (shown,) = detail["references"]
    assert (shown["isrc"], shown["paid"], shown["amount_accrual"]) == (reference.isrc, True, part)

    period = statement_period_create(starts_at=period_start, ends_at=timezone.now(), actor=finance)
    statement_period_close(period=period, actor=finance)
    label = RightsHolder.objects.get(legal_name="Tiny Label Ltd")
    statement = statement_generate(rights_holder=label, period=period, currency="EUR")
    (item,) = statement.content["lines"][0]["references"]
    assert item["basis"] == "reference use" and item["amount"] == allocate(part, [60, 40])[0]
    assert ledger_verify().ok
