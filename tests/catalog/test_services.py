"""Single-record services: recordings, rights holders and opt-outs."""

from datetime import date
from decimal import Decimal

import pytest

from catalog.models import Recording
from catalog.services import (
    ShareSpec,
    opt_out_create,
    recording_create,
    recording_update,
    rights_holder_create,
    rights_holder_update,
)
from core.exceptions import ApplicationError
from core.models import AuditEvent
from tests.catalog.factories import (
    RecordingFactory,
    RightsHolderFactory,
    UserFactory,
    tone_wav_bytes,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "song.flac"
    path.write_bytes(tone_wav_bytes(seconds=1.0, sample_rate=48000, fmt="FLAC"))
    return path


def test_recording_create_measures_and_audits(wav):
    holder = RightsHolderFactory()
    recording = recording_create(
        title="  A   Song ",
        isrc="us-rc1-76-07839",
        iswc="T-034.524.680-1",
        audio_path=wav,
        shares=[ShareSpec(holder, Decimal("100"))],
        actor=None,
    )
    assert (recording.title, recording.isrc, recording.iswc) == (
        "A Song",
        "USRC17607839",
        "T0345246801",
    )
    assert (recording.sample_rate, recording.duration_seconds) == (48000, Decimal("1.000"))
    assert recording.audio.name.endswith(".flac")
    event = AuditEvent.objects.get(action="recording.create")
    assert event.after["ownership_shares"] == [{"rights_holder": holder.pk, "percent": "100.0000"}]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"isrc": "nope"}, "isrc"),
        ({"iswc": "T-034.524.680-2"}, "iswc"),
        ({"shares": []}, "ownership_shares"),
        ({"percent": Decimal("99")}, "ownership_shares"),
    ],
)
def test_recording_create_refuses_bad_input(wav, kwargs, field):
    holder = RightsHolderFactory()
    args = {
        "title": "T",
        "isrc": "USRC17607839",
        "audio_path": wav,
        "shares": [ShareSpec(holder, kwargs.pop("percent", Decimal(100)))],
        "actor": None,
    } | kwargs
    with pytest.raises(ApplicationError) as excinfo:
        recording_create(**args)
    assert excinfo.value.field == field
    assert not Recording.objects.exists()


def test_recording_create_refuses_duplicates_and_silence(wav, tmp_path):
    holder = RightsHolderFactory()
    shares = [ShareSpec(holder, Decimal(100))]
    recording_create(title="A", isrc="USRC17607839", audio_path=wav, shares=shares, actor=None)
    with pytest.raises(ApplicationError, match="already registered"):
        recording_create(title="B", isrc="USRC17607839", audio_path=wav, shares=shares, actor=None)
    with pytest.raises(ApplicationError, match="already registered as ISRC USRC17607839"):
        recording_create(title="B", isrc="USRC17607840", audio_path=wav, shares=shares, actor=None)
    silent = tmp_path / "silent.wav"
    silent.write_bytes(tone_wav_bytes(amplitude=0))
    with pytest.raises(ApplicationError, match="silent") as excinfo:
        recording_create(
            title="C", isrc="USRC17607841", audio_path=silent, shares=shares, actor=None
        )
    assert excinfo.value.extra == {"code": "silent"}


def test_recording_update_only_title_and_iswc(wav):
    holder = RightsHolderFactory()
    recording = recording_create(
        title="A",
        isrc="USRC17607839",
        audio_path=wav,
        shares=[ShareSpec(holder, Decimal(100))],
        actor=None,
    )
    recording_update(recording=recording, data={"iswc": "T0345246801"}, actor=None)
    assert Recording.objects.get().iswc == "T0345246801"
    with pytest.raises(ApplicationError, match="only the title and ISWC"):
        recording_update(recording=recording, data={"isrc": "USRC17607840"}, actor=None)
    event = AuditEvent.objects.get(action="recording.update")
    assert (event.before["iswc"], event.after["iswc"]) == ("", "T0345246801")


def test_rights_holder_create_and_users_change_are_audited():
    user = UserFactory()
    holder = rights_holder_create(
        legal_name="Solo", kind="artist", ipi="000 522 100 40", payout_currency="gbp", actor=None
    )
    assert (holder.ipi, holder.payout_currency) == ("00052210040", "GBP")
    rights_holder_update(holder=holder, data={}, users=[user], actor=None)
    event = AuditEvent.objects.get(action="rights_holder.update")
    assert (event.before["users"], event.after["users"]) == ([], [user.pk])
    with pytest.raises(ApplicationError) as excinfo:
        rights_holder_create(legal_name="Solo", kind="artist", actor=None)
    assert excinfo.value.field == "legal_name"
    with pytest.raises(ApplicationError) as excinfo:
        rights_holder_create(legal_name="Other", kind="artist", ipi="00052210040", actor=None)
    assert excinfo.value.message == (
        "This IPI name number is already registered for another rights holder."
    )


def test_cannot_opt_out_a_recording_without_a_share():
    with pytest.raises(ApplicationError, match="holds no share"):
        opt_out_create(
            rights_holder=RightsHolderFactory(),
            recording=RecordingFactory(),
            effective_from=date(2026, 1, 1),
            actor=None,
        )
