"""Recordings (the training tracks): register one with its audio and shares, change its
title or ISWC. The audio is checked, hashed and stored under its content hash."""

from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from catalog.audio import AudioError, AudioInfo, audio_inspect
from catalog.models import Recording
from catalog.services.common import User, full_clean, normalized, snapshot
from catalog.services.shares import ShareSpec, shares_check, shares_snapshot, shares_write
from catalog.validators import isrc_normalize, iswc_normalize
from core.exceptions import ApplicationError
from core.services import audit_record

RECORDING_FIELDS = (
    "title",
    "isrc",
    "iswc",
    "duration_seconds",
    "sample_rate",
    "channels",
    "audio",
    "audio_sha256",
    "audio_bytes",
)


def _audio_store(source: Path, info: AudioInfo) -> str:
    """Copy the audio into media storage under its content hash; return the storage name.

    Content-addressed, so a copy left by a rolled-back transaction is simply reused.
    """
    suffix = source.suffix.lower() or ".audio"
    name = f"recordings/{info.sha256[:2]}/{info.sha256}{suffix}"
    if not default_storage.exists(name):
        with source.open("rb") as handle:
            saved = default_storage.save(name, handle)
        assert saved == name, (saved, name)
    return name


def _audio_check(path: Path) -> AudioInfo:
    try:
        return audio_inspect(
            path,
            max_bytes=settings.CATALOG_MAX_AUDIO_BYTES,
            max_seconds=settings.CATALOG_MAX_AUDIO_SECONDS,
        )
    except AudioError as exc:
        raise ApplicationError(exc.message, field="audio", extra={"code": exc.code}) from None


def recording_build(*, title: str, isrc: str, iswc: str, audio_path: Path, info: AudioInfo):
    return Recording(
        title=" ".join(title.split()),
        isrc=isrc,
        iswc=iswc,
        duration_seconds=info.duration_seconds,
        sample_rate=info.sample_rate,
        channels=info.channels,
        audio=_audio_store(audio_path, info),
        audio_sha256=info.sha256,
        audio_bytes=info.size_bytes,
    )


@transaction.atomic
def recording_create(
    *,
    title: str,
    isrc: str,
    audio_path: Path,
    shares: Sequence[ShareSpec],
    actor: User | None,
    iswc: str = "",
    reason: str = "",
    audio: AudioInfo | None = None,
) -> Recording:
    """Register one training track with its ownership shares (which must sum to 100).

    The audio is inspected here (format, size and duration limits, SHA-256) unless
    ``audio`` is given: what ``audio_inspect`` found for this file with the same limits a
    moment ago (the catalog import inspects every file while checking its rows).
    """
    isrc = normalized(isrc, isrc_normalize, "isrc")
    if not isrc:
        raise ApplicationError("ISRC is required", field="isrc")
    iswc = normalized(iswc, iswc_normalize, "iswc")
    shares_check(shares)
    if Recording.objects.filter(isrc=isrc).exists():
        raise ApplicationError(f"ISRC {isrc} is already registered", field="isrc")
    info = audio if audio is not None else _audio_check(Path(audio_path))
    duplicate = Recording.objects.filter(audio_sha256=info.sha256).first()
    if duplicate is not None:
        raise ApplicationError(
            f"this audio is already registered as ISRC {duplicate.isrc}", field="audio"
        )
    recording = recording_build(
        title=title, isrc=isrc, iswc=iswc, audio_path=Path(audio_path), info=info
    )
    full_clean(recording)
    try:
        with transaction.atomic():
            recording.save()
    except IntegrityError:
        raise ApplicationError(f"ISRC {isrc} is already registered", field="isrc") from None
    shares_write(recording, shares)
    audit_record(
        actor=actor,
        action="recording.create",
        obj=recording,
        after=snapshot(recording, RECORDING_FIELDS)
        | {"ownership_shares": shares_snapshot(recording)},
        reason=reason,
    )
    return recording


@transaction.atomic
def recording_update(
    *, recording: Recording, data: dict, actor: User | None, reason: str = ""
) -> Recording:
    """Change a recording's title or ISWC (its ISRC and audio identify it and stay)."""
    unknown = set(data) - {"title", "iswc"}
    if unknown:
        raise ApplicationError(
            f"only the title and ISWC of a recording can be changed, not {', '.join(unknown)}"
        )
    recording = Recording.objects.select_for_update().get(pk=recording.pk)
    values = dict(data)
    if "iswc" in values:
        values["iswc"] = normalized(values["iswc"] or "", iswc_normalize, "iswc")
    if "title" in values:
        values["title"] = " ".join(str(values["title"]).split())
    before = snapshot(recording, RECORDING_FIELDS)
    changed = [name for name, value in values.items() if getattr(recording, name) != value]
    if not changed:
        return recording
    for name in changed:
        setattr(recording, name, values[name])
    full_clean(recording)
    recording.save(update_fields=[*changed, "updated_at"])
    if "title" in changed:  # the shares' copy, for the holders' catalogs (OwnershipShare)
        recording.ownership_shares.update(recording_title=recording.title)
    audit_record(
        actor=actor,
        action="recording.update",
        obj=recording,
        before=before,
        after=snapshot(recording, RECORDING_FIELDS),
        reason=reason,
    )
    return recording
