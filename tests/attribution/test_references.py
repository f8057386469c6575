"""Generations conditioned on catalog recordings: the reference's audio hash and licence
are checked, and the terms are recorded with the generation."""

from datetime import date

import pytest
from django.contrib.auth import get_user_model

from attribution import services
from attribution.models import AttributionRun, Generation, GenerationReference
from catalog.models import Recording, RightsHolder
from catalog.services import reference_licence_grant, reference_licence_withdraw
from core.exceptions import ApplicationError
from core.models import AuditEvent
from tests.attribution.conftest import isrc_for, tone, wav_bytes


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("generator-service", password="x" * 12)


def license_catalog(share: str = "20", recording: Recording | None = None) -> list:
    """Both tiny holders license reference use (of ``recording``, or their whole catalog)."""
    return [
        reference_licence_grant(
            rights_holder=holder,
            recording=recording,
            pool_share_percent=share,
            valid_from=date(2020, 1, 1),
            actor=None,
        )
        for holder in RightsHolder.objects.order_by("pk")
    ]


def reference(index: int, noise_level: float | None = 1.5, isrc: str = ""):
    recording = Recording.objects.get(isrc=isrc_for(index))
    return services.ReferenceDeclaration(
        audio_sha256=recording.audio_sha256, noise_level=noise_level, isrc=isrc
    )


def record(model_version, user, key="ref-1", **overrides):
    fields = dict(
        model_version=model_version,
        prompt="a variation",
        audio=wav_bytes(tone(11, 0.4)),
        revenue_minor=1000,
        currency="EUR",
        requested_by=user,
        idempotency_key=key,
    )
    fields.update(overrides)
    return services.generation_record(**fields)


def test_a_declared_reference_is_recorded_with_its_recording_level_and_licence(
    tiny_model_version, user
):
    licences = license_catalog("20")
    generation = record(tiny_model_version, user, references=[reference(2, isrc=isrc_for(2))])
    (row,) = generation.references.all()
    assert row.recording.isrc == isrc_for(2) and row.noise_level == 1.5
    assert row.audio_sha256 == row.recording.audio_sha256
    assert (row.licence_id, str(row.pool_share_percent)) == (licences[0].pk, "20.0000")
    assert [entry[0] for entry in row.licences] == [licence.pk for licence in licences]
    audit = AuditEvent.objects.get(action="generation.record")
    assert audit.after["reference_licences"] == str(licences[0].pk)


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (services.ReferenceDeclaration(audio_sha256="f" * 64), "no catalog recording has audio"),
        (services.ReferenceDeclaration(audio_sha256="not-a-hash"), "64 hexadecimal"),
        (None, "not GBTST2600003"),
        (services.ReferenceDeclaration(audio_sha256="a" * 64, noise_level=-1.0), "positive"),
    ],
)
def test_a_declared_reference_must_match_a_catalog_recordings_audio(
    tiny_model_version, user, declaration, message
):
    license_catalog("20")
    declaration = declaration or reference(2, isrc=isrc_for(3))
    with pytest.raises(ApplicationError, match=message) as caught:
        record(tiny_model_version, user, references=[declaration])
    assert caught.value.field == "references"
    assert not Generation.objects.exists() and not AttributionRun.objects.exists()


def test_an_unlicensed_reference_is_refused_and_nothing_is_recorded(tiny_model_version, user):
    label = RightsHolder.objects.get(legal_name="Tiny Label Ltd")
    reference_licence_grant(
        rights_holder=label, pool_share_percent="20", valid_from=date(2020, 1, 1), actor=None
    )
    with pytest.raises(ApplicationError) as caught:
        record(tiny_model_version, user, references=[reference(1)])
    assert caught.value.message.startswith(
        f"Reference 1: reference use of {isrc_for(1)} is not licensed: Tiny Publishing has no "
        "reference licence in force"
    )
    assert not Generation.objects.exists() and not GenerationReference.objects.exists()


def test_references_may_take_at_most_the_whole_pool(tiny_model_version, user):
    license_catalog("60")
    with pytest.raises(ApplicationError, match=r"take 120\.0000 % of the royalty pool"):
        record(tiny_model_version, user, references=[reference(1), reference(2)])
    with pytest.raises(ApplicationError, match="declared twice"):
        record(tiny_model_version, user, references=[reference(1), reference(1)])
    assert not Generation.objects.exists()
    two = record(tiny_model_version, user, references=[reference(1)], key="ref-2")
    assert two.references.count() == 1


def test_a_repeated_request_records_once_even_after_the_licence_is_withdrawn(
    tiny_model_version, user, django_capture_on_commit_callbacks
):
    licences = license_catalog("20")
    with django_capture_on_commit_callbacks() as callbacks:
        first = record(tiny_model_version, user, references=[reference(1)])
        for licence in licences:
            reference_licence_withdraw(licence=licence, actor=None)
        again = record(tiny_model_version, user, references=[reference(1)])
    assert again.pk == first.pk and len(callbacks) == 1
    assert GenerationReference.objects.count() == 1
    with pytest.raises(ApplicationError, match="already used for a different generation"):
        record(tiny_model_version, user, references=[reference(1, noise_level=3.0)])
    with pytest.raises(ApplicationError, match="already used for a different generation"):
        record(tiny_model_version, user)


def test_the_platform_conditions_on_the_reference_it_read_and_checked(
    tiny_model_version, user, django_capture_on_commit_callbacks
):
    license_catalog("25", recording=Recording.objects.get(isrc=isrc_for(1)))
    recording = Recording.objects.get(isrc=isrc_for(1))
    request = dict(
        model_version=tiny_model_version,
        prompt="a variation of tone 1",
        seconds_total=0.4,
        seed=7,
        revenue_minor=100,
        currency="EUR",
        requested_by=user,
        steps=4,
    )
    with django_capture_on_commit_callbacks():
        plain = services.generation_generate(**request, idempotency_key="plain")
        varied = services.generation_generate(
            **request, idempotency_key="varied", reference=recording, reference_noise_level=1.0
        )
    assert varied.audio_sha256 != plain.audio_sha256  # the reference changed the audio
    (row,) = varied.references.all()
    assert (row.recording_id, row.noise_level, row.audio_sha256) == (
        recording.pk,
        1.0,
        recording.audio_sha256,
    )
    # the stored file no longer has the registered hash: refused before sampling
    other = Recording.objects.get(isrc=isrc_for(2))
    license_catalog("25", recording=other)
    with other.audio.open("wb") as handle:
        handle.write(wav_bytes(tone(99, 0.5)))
    with pytest.raises(ApplicationError, match="does not match its registered SHA-256"):
        services.generation_generate(
            **request, idempotency_key="tampered", reference=other, reference_noise_level=1.0
        )
    unlicensed = Recording.objects.get(isrc=isrc_for(3))
    with pytest.raises(ApplicationError, match="is not licensed"):
        services.generation_generate(
            **request, idempotency_key="unlicensed", reference=unlicensed, reference_noise_level=1.0
        )
    assert not Generation.objects.filter(idempotency_key__in=["tampered", "unlicensed"]).exists()
