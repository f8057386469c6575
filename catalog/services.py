"""Writes to the catalog. Every function runs in one transaction and records an audit row
for each change (``core.services.audit_record``).

Invariant asserted here and enforced by the database on PostgreSQL (migration 0002):
the ownership shares of every recording sum to exactly 100.0000 percent.
"""

import fcntl
import hashlib
import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.audio import AudioError, AudioInfo, audio_inspect, file_sha256
from catalog.importing import (
    KINDS,
    FileSource,
    ImportPlan,
    ImportReport,
    import_plan_build,
)
from catalog.models import (
    SHARES_TOTAL,
    ImportBatch,
    ModelArtifact,
    ModelVersion,
    OptOut,
    OwnershipShare,
    Recording,
    RightsHolder,
    TrainingSetEntry,
)
from catalog.selectors import opt_outs_covering
from catalog.staging import (
    APPLIED,
    StagedImport,
    safe_file_name,
    staged_import_load,
    staging_root,
)
from catalog.validators import (
    currency_normalize,
    ipi_normalize,
    isni_normalize,
    isrc_normalize,
    iswc_normalize,
)
from core.exceptions import ApplicationError
from core.services import audit_record

User = AbstractBaseUser

HOLDER_FIELDS = (
    "legal_name",
    "kind",
    "isni",
    "ipi",
    "payout_currency",
    "contact_email",
    "payout_details",
    "is_active",
)
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


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "storage"):  # FieldFile
        return value.name
    return value


def snapshot(obj, fields: Iterable[str]) -> dict:
    """JSON-safe field values of ``obj`` for the audit trail."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def _full_clean(obj, **kwargs) -> None:
    try:
        obj.full_clean(**kwargs)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ApplicationError(
            " ".join(messages), field=None if field == "__all__" else field
        ) from None


def _is_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder; a name the OS refuses (too long, a NUL byte) is not."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def _normalized(value: str, normalize, field: str) -> str:
    if not value:
        return ""
    try:
        return normalize(value)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field=field) from None


# --- ownership shares ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShareSpec:
    rights_holder: RightsHolder
    percent: Decimal


def shares_problems(percents: Sequence[Decimal]) -> list[str]:
    """Why these shares cannot be a recording's shares (empty list: they can)."""
    problems = []
    if not percents:
        return ["a recording needs at least one ownership share"]
    for percent in percents:
        if not isinstance(percent, Decimal):
            problems.append(f"share {percent!r} is not a decimal number")
        elif not percent.is_finite() or percent <= 0:
            problems.append(f"share {percent} must be greater than 0")
        elif percent > SHARES_TOTAL:
            problems.append(f"share {percent} is over 100")
        elif percent != percent.quantize(Decimal("0.0001")):
            problems.append(f"share {percent} has more than 4 decimal places")
    if not problems:
        total = sum(percents, Decimal(0))
        if total != SHARES_TOTAL:
            problems.append(f"shares sum to {total.normalize():f}, not 100")
    return problems


def _shares_check(shares: Sequence[ShareSpec]) -> None:
    holders = [share.rights_holder.pk for share in shares]
    if len(set(holders)) != len(holders):
        raise ApplicationError(
            "a rights holder appears twice in the shares", field="ownership_shares"
        )
    problems = shares_problems([share.percent for share in shares])
    if problems:
        raise ApplicationError("; ".join(problems), field="ownership_shares")


def _shares_snapshot(recording: Recording) -> list[dict]:
    return [
        {"rights_holder": share.rights_holder_id, "percent": str(share.percent)}
        for share in recording.ownership_shares.order_by("rights_holder_id")
    ]


def _shares_write(recording: Recording, shares: Sequence[ShareSpec]) -> None:
    recording.ownership_shares.all().delete()
    OwnershipShare.objects.bulk_create(
        [
            OwnershipShare(
                recording=recording,
                rights_holder=share.rights_holder,
                percent=share.percent.quantize(Decimal("0.0001")),
            )
            for share in shares
        ]
    )


@transaction.atomic
def recording_shares_set(
    *,
    recording: Recording,
    shares: Sequence[ShareSpec],
    actor: User | None,
    reason: str = "",
) -> list[OwnershipShare]:
    """Replace a recording's ownership shares; they must sum to exactly 100."""
    _shares_check(shares)
    before = _shares_snapshot(recording)
    _shares_write(recording, shares)
    after = _shares_snapshot(recording)
    if before != after:
        audit_record(
            actor=actor,
            action="recording.shares_set",
            obj=recording,
            before={"ownership_shares": before},
            after={"ownership_shares": after},
            reason=reason,
        )
    return list(recording.ownership_shares.all())


# --- rights holders -----------------------------------------------------------------------


def _holder_values(data: dict) -> dict:
    values = dict(data)
    if "legal_name" in values:
        values["legal_name"] = " ".join(str(values["legal_name"]).split())
    if "isni" in values:
        values["isni"] = _normalized(values["isni"] or "", isni_normalize, "isni")
    if "ipi" in values:
        values["ipi"] = _normalized(values["ipi"] or "", ipi_normalize, "ipi")
    if "payout_currency" in values:
        values["payout_currency"] = _normalized(
            values["payout_currency"], currency_normalize, "payout_currency"
        )
    unknown = set(values) - set(HOLDER_FIELDS)
    assert not unknown, f"not rights-holder fields: {unknown}"
    return values


@transaction.atomic
def rights_holder_create(
    *,
    legal_name: str,
    kind: str,
    actor: User | None,
    isni: str = "",
    ipi: str = "",
    payout_currency: str = "USD",
    contact_email: str = "",
    payout_details: str = "",
    users: Sequence[User] = (),
) -> RightsHolder:
    values = _holder_values(
        {
            "legal_name": legal_name,
            "kind": kind,
            "isni": isni,
            "ipi": ipi,
            "payout_currency": payout_currency,
            "contact_email": contact_email,
            "payout_details": payout_details,
        }
    )
    holder = RightsHolder(**values)
    _full_clean(holder)
    holder.save()
    if users:
        holder.users.set(users)
    audit_record(
        actor=actor,
        action="rights_holder.create",
        obj=holder,
        after=snapshot(holder, HOLDER_FIELDS) | {"users": sorted(u.pk for u in users)},
    )
    return holder


@transaction.atomic
def rights_holder_update(
    *,
    holder: RightsHolder,
    data: dict,
    actor: User | None,
    users: Sequence[User] | None = None,
    reason: str = "",
) -> RightsHolder:
    """Change some of a holder's fields (``data``: field -> value), and its users if given."""
    holder = RightsHolder.objects.select_for_update().get(pk=holder.pk)
    values = _holder_values(data)
    before = snapshot(holder, HOLDER_FIELDS) | {
        "users": sorted(holder.users.values_list("pk", flat=True))
    }
    changed = [name for name, value in values.items() if getattr(holder, name) != value]
    for name in changed:
        setattr(holder, name, values[name])
    if changed:
        _full_clean(holder)
        holder.save(update_fields=[*changed, "updated_at"])
    if users is not None:
        holder.users.set(users)
    after = snapshot(holder, HOLDER_FIELDS) | {
        "users": sorted(holder.users.values_list("pk", flat=True))
    }
    if before != after:
        action = "rights_holder.update"
        if before["is_active"] != after["is_active"]:
            action = "rights_holder.activate" if after["is_active"] else "rights_holder.suspend"
        audit_record(
            actor=actor, action=action, obj=holder, before=before, after=after, reason=reason
        )
    return holder


# --- recordings ---------------------------------------------------------------------------


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


def _recording_build(*, title: str, isrc: str, iswc: str, audio_path: Path, info: AudioInfo):
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
) -> Recording:
    """Register one training track with its ownership shares (which must sum to 100)."""
    isrc = _normalized(isrc, isrc_normalize, "isrc")
    if not isrc:
        raise ApplicationError("ISRC is required", field="isrc")
    iswc = _normalized(iswc, iswc_normalize, "iswc")
    _shares_check(shares)
    if Recording.objects.filter(isrc=isrc).exists():
        raise ApplicationError(f"ISRC {isrc} is already registered", field="isrc")
    info = _audio_check(Path(audio_path))
    duplicate = Recording.objects.filter(audio_sha256=info.sha256).first()
    if duplicate is not None:
        raise ApplicationError(
            f"this audio is already registered as ISRC {duplicate.isrc}", field="audio"
        )
    recording = _recording_build(
        title=title, isrc=isrc, iswc=iswc, audio_path=Path(audio_path), info=info
    )
    _full_clean(recording)
    try:
        with transaction.atomic():
            recording.save()
    except IntegrityError:
        raise ApplicationError(f"ISRC {isrc} is already registered", field="isrc") from None
    _shares_write(recording, shares)
    audit_record(
        actor=actor,
        action="recording.create",
        obj=recording,
        after=snapshot(recording, RECORDING_FIELDS)
        | {"ownership_shares": _shares_snapshot(recording)},
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
        values["iswc"] = _normalized(values["iswc"] or "", iswc_normalize, "iswc")
    if "title" in values:
        values["title"] = " ".join(str(values["title"]).split())
    before = snapshot(recording, RECORDING_FIELDS)
    changed = [name for name, value in values.items() if getattr(recording, name) != value]
    if not changed:
        return recording
    for name in changed:
        setattr(recording, name, values[name])
    _full_clean(recording)
    recording.save(update_fields=[*changed, "updated_at"])
    audit_record(
        actor=actor,
        action="recording.update",
        obj=recording,
        before=before,
        after=snapshot(recording, RECORDING_FIELDS),
        reason=reason,
    )
    return recording


# --- imports ------------------------------------------------------------------------------


def _report(plan: ImportPlan, *, kinds: list[str], dry_run: bool) -> ImportReport:
    counts = plan.counts()
    return ImportReport(
        kinds=kinds,
        dry_run=dry_run,
        rows=plan.rows,
        problems=list(plan.problems),
        created=counts["created"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
    )


def _plan_apply(plan: ImportPlan, *, actor: User | None) -> None:
    holders: dict[str, RightsHolder] = {}
    for row in plan.holders_create:
        holder = RightsHolder(legal_name=row.legal_name, **row.values())
        _full_clean(holder)
        holder.save()
        holders[row.legal_name] = holder
        audit_record(
            actor=actor,
            action="rights_holder.create",
            obj=holder,
            after=snapshot(holder, HOLDER_FIELDS),
            reason="catalog import",
        )
    for row in plan.holders_update:
        rights_holder_update(
            holder=RightsHolder.objects.get(legal_name=row.legal_name),
            data=row.values(),
            actor=actor,
            reason="catalog import",
        )
    for row in plan.recordings_create:
        recording = _recording_build(
            title=row.title, isrc=row.isrc, iswc=row.iswc, audio_path=row.audio_path, info=row.audio
        )
        _full_clean(recording)
        recording.save()
        audit_record(
            actor=actor,
            action="recording.create",
            obj=recording,
            after=snapshot(recording, RECORDING_FIELDS),
            reason="catalog import",
        )
    if plan.shares_set:
        names = {name for shares in plan.shares_set.values() for name, _ in shares}
        holders = {h.legal_name: h for h in RightsHolder.objects.filter(legal_name__in=names)}
        recordings = {r.isrc: r for r in Recording.objects.filter(isrc__in=list(plan.shares_set))}
        for isrc, shares in plan.shares_set.items():
            recording_shares_set(
                recording=recordings[isrc],
                shares=[ShareSpec(holders[name], percent) for name, percent in shares],
                actor=actor,
                reason="catalog import",
            )


def catalog_import_files(
    *,
    files: dict[str, FileSource],
    actor: User | None,
    dry_run: bool = False,
    base_dirs: dict[str, Path | None] | None = None,
) -> ImportReport:
    """Import rights holders, recordings and ownership shares together, all or nothing.

    ``files`` maps a kind (``rights_holders``, ``recordings``, ``ownership_shares``) to a
    path or an open binary file. Relative audio paths in a recordings file are resolved
    against ``base_dirs[kind]`` (default: the folder of the file when given as a path).
    If any row has a problem nothing changes and the report lists every problem. Rows that
    match what is registered change nothing, so importing the same files again is a no-op.
    """
    if not files:
        raise ApplicationError("no import file given")
    unknown = set(files) - set(KINDS)
    if unknown:
        raise ApplicationError(
            f"unknown import kind {', '.join(sorted(unknown))}; use one of {', '.join(KINDS)}",
            field="kind",
        )
    resolved = dict(base_dirs or {})
    for kind, source in files.items():
        if kind not in resolved and isinstance(source, str | Path):
            resolved[kind] = Path(source).resolve().parent
    kinds = [kind for kind in KINDS if kind in files]
    # Reading the files and decoding the audio holds no transaction; the writes below run
    # in one, and a record registered meanwhile by someone else aborts them all.
    plan = import_plan_build(files, base_dirs=resolved)
    report = _report(plan, kinds=kinds, dry_run=dry_run)
    if not report.ok or dry_run or not plan.changes_anything:
        return report
    try:
        with transaction.atomic():
            _plan_apply(plan, actor=actor)
            counts = plan.counts()
            batch = ImportBatch.objects.create(
                kinds=kinds,
                files_sha256=plan.files_sha256,
                file_names=plan.file_names,
                actor=actor if getattr(actor, "is_authenticated", False) else None,
                rows=plan.rows,
                created=counts["created"],
                updated=counts["updated"],
                unchanged=counts["unchanged"],
            )
            audit_record(
                actor=actor,
                action="catalog_import.apply",
                obj=batch,
                after={"files": plan.file_names, "sha256": plan.files_sha256, **counts},
            )
    except IntegrityError as exc:
        raise ApplicationError(
            "the catalog changed while importing (a record was registered at the same "
            f"time); nothing was changed, run the import again ({str(exc).splitlines()[0]})"
        ) from None
    report.applied = True
    report.batch_id = batch.pk
    return report


def catalog_import(
    *,
    kind: str,
    path_or_file: FileSource,
    actor: User | None,
    dry_run: bool = False,
    base_dir: Path | None = None,
) -> ImportReport:
    """Import one file of one kind (see ``catalog_import_files``).

    New recordings need their shares: import them with ``catalog_import_files`` or
    ``catalog_import_folder``; a recordings file alone only re-confirms registered ones.
    """
    return catalog_import_files(
        files={kind: path_or_file},
        actor=actor,
        dry_run=dry_run,
        base_dirs={kind: Path(base_dir)} if base_dir is not None else None,
    )


def import_folder_files(folder: Path) -> dict[str, Path]:
    """The import files in ``folder``: ``<kind>.csv`` or ``<kind>.xlsx`` for each kind."""
    files = {}
    for kind in KINDS:
        found = [folder / f"{kind}{suffix}" for suffix in (".csv", ".xlsx")]
        found = [path for path in found if path.is_file()]
        if len(found) > 1:
            raise ApplicationError(f"folder has both {found[0].name} and {found[1].name}")
        if found:
            files[kind] = found[0]
    return files


def catalog_import_folder(
    *, folder: str | Path, actor: User | None, dry_run: bool = False
) -> ImportReport:
    """Import ``rights_holders``, ``recordings`` and ``ownership_shares`` (CSV or XLSX)
    from one folder in one transaction; audio paths are relative to the folder."""
    folder = Path(folder)
    if not _is_folder(folder):
        raise ApplicationError(f"{str(folder)!r} is not a folder", field="folder")
    files = import_folder_files(folder)
    if not files:
        raise ApplicationError(
            f"folder {str(folder)!r} has none of {', '.join(k + '.csv' for k in KINDS)}",
            field="folder",
        )
    return catalog_import_files(files=files, actor=actor, dry_run=dry_run)


# --- opt-outs -----------------------------------------------------------------------------


@transaction.atomic
def opt_out_create(
    *,
    rights_holder: RightsHolder,
    effective_from: date,
    actor: User | None,
    recording: Recording | None = None,
    reason: str = "",
) -> OptOut:
    """Record a holder's request that one recording, or its whole catalog (``recording``
    None), not be trained on from ``effective_from``."""
    if (
        recording is not None
        and not recording.ownership_shares.filter(rights_holder=rights_holder).exists()
    ):
        raise ApplicationError(
            f"{rights_holder} holds no share of {recording.isrc}", field="recording"
        )
    duplicate = OptOut.objects.filter(
        rights_holder=rights_holder,
        recording=recording,
        withdrawn_at__isnull=True,
        effective_from__lte=effective_from,
    ).first()
    if duplicate is not None:
        return duplicate  # already opted out from an earlier date: nothing to add
    opt_out = OptOut(
        rights_holder=rights_holder,
        recording=recording,
        effective_from=effective_from,
        reason=reason,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _full_clean(opt_out)
    opt_out.save()
    audit_record(
        actor=actor,
        action="opt_out.create",
        obj=opt_out,
        after={
            "rights_holder": rights_holder.pk,
            "recording": recording.isrc if recording else None,
            "effective_from": effective_from.isoformat(),
        },
        reason=reason,
    )
    return opt_out


@transaction.atomic
def opt_out_withdraw(*, opt_out: OptOut, actor: User | None, reason: str = "") -> OptOut:
    opt_out = OptOut.objects.select_for_update().get(pk=opt_out.pk)
    if opt_out.withdrawn_at is not None:
        return opt_out
    opt_out.withdrawn_at = timezone.now()
    opt_out.save(update_fields=["withdrawn_at"])
    audit_record(
        actor=actor,
        action="opt_out.withdraw",
        obj=opt_out,
        before={"withdrawn_at": None},
        after={"withdrawn_at": opt_out.withdrawn_at.isoformat()},
        reason=reason,
    )
    return opt_out


# --- model versions -----------------------------------------------------------------------

CONFIG_FILE = "model_config.json"
CHECKPOINT_FILE = "model.safetensors"
MANIFEST_FILE = "training_manifest.json"


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApplicationError(f"{what} {path.name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ApplicationError(f"{what} {path.name} must contain a JSON object")
    return data


def _manifest_tracks(manifest: dict) -> list[dict]:
    tracks = manifest.get("tracks")
    if not isinstance(tracks, list) or not tracks:
        raise ApplicationError("training manifest has no 'tracks' list", field="manifest")
    for index, track in enumerate(tracks):
        if not isinstance(track, dict) or not track.get("isrc") or not track.get("sha256"):
            raise ApplicationError(
                f"training manifest track {index} needs an 'isrc' and a 'sha256'",
                field="manifest",
            )
    return tracks


def _manifest_trained_at(manifest: dict) -> datetime:
    raw = manifest.get("created_at")
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise ApplicationError(
            f"training manifest 'created_at' {raw!r} is not an ISO datetime", field="manifest"
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.UTC)
    return parsed


def model_version_register(
    *,
    name: str,
    checkpoint_dir: str | Path,
    actor: User | None,
    override_reason: str | None = None,
) -> ModelVersion:
    """Register a stable-audio-tools checkpoint and its ordered training set.

    Reads ``model_config.json``, ``model.safetensors`` (SHA-256 of its bytes) and
    ``training_manifest.json`` from ``checkpoint_dir``. Every manifest track must be a
    registered recording (by ISRC) with the same audio hash. A model trained on or after
    an opt-out's date whose training set contains an opted-out recording is refused unless
    ``override_reason`` is given; the override is recorded in the audit trail.
    Registering the same checkpoint under the same name again returns the existing one.
    """
    name = " ".join(str(name).split())
    if not name:
        raise ApplicationError("a model version needs a name", field="name")
    try:
        folder = Path(checkpoint_dir).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        folder = Path(str(checkpoint_dir))
    if not _is_folder(folder):
        raise ApplicationError(f"{str(folder)!r} is not a folder", field="checkpoint_dir")
    required = (CONFIG_FILE, CHECKPOINT_FILE, MANIFEST_FILE)
    missing = [file for file in required if not (folder / file).is_file()]
    if missing:
        raise ApplicationError(
            f"checkpoint folder lacks {', '.join(missing)}",
            field="checkpoint_dir",
            extra={"missing_files": missing},
        )
    config = _read_json(folder / CONFIG_FILE, "model config")
    manifest_path = folder / MANIFEST_FILE
    manifest = _read_json(manifest_path, "training manifest")
    tracks = _manifest_tracks(manifest)
    trained_at = _manifest_trained_at(manifest)
    try:
        seed = int(manifest.get("seed", 0))
    except (TypeError, ValueError):
        raise ApplicationError("training manifest 'seed' is not an integer") from None
    checkpoint_sha256 = file_sha256(folder / CHECKPOINT_FILE)
    manifest_sha256 = file_sha256(manifest_path)

    # Hashing a checkpoint of gigabytes holds no transaction; the checks and writes below
    # run in one.
    with transaction.atomic():
        return _model_version_save(
            name=name,
            folder=folder,
            config=config,
            tracks=tracks,
            trained_at=trained_at,
            seed=seed,
            checkpoint_sha256=checkpoint_sha256,
            manifest_sha256=manifest_sha256,
            actor=actor,
            override_reason=override_reason,
        )


def _model_version_save(
    *,
    name: str,
    folder: Path,
    config: dict,
    tracks: list[dict],
    trained_at: datetime,
    seed: int,
    checkpoint_sha256: str,
    manifest_sha256: str,
    actor: User | None,
    override_reason: str | None,
) -> ModelVersion:
    existing = ModelVersion.objects.filter(checkpoint_sha256=checkpoint_sha256).first()
    if existing is not None:
        if existing.name == name and existing.manifest_sha256 == manifest_sha256:
            return existing
        raise ApplicationError(
            f"this checkpoint is already registered as {existing.name!r}",
            field="checkpoint_dir",
        )
    if ModelVersion.objects.filter(name=name).exists():
        raise ApplicationError(f"a model version named {name!r} already exists", field="name")

    isrcs = []
    for track in tracks:
        try:
            isrcs.append(isrc_normalize(track["isrc"]))
        except ValidationError:
            isrcs.append(str(track["isrc"]))  # malformed: reported as unknown below
    recordings = {r.isrc: r for r in Recording.objects.filter(isrc__in=isrcs)}
    unknown = [isrc for isrc in isrcs if isrc not in recordings]
    if unknown:
        raise ApplicationError(
            f"the training manifest names {len(unknown)} unknown recording(s): "
            f"{', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}",
            field="manifest",
            extra={"unknown_isrcs": unknown},
        )
    duplicates = sorted(isrc for isrc, count in Counter(isrcs).items() if count > 1)
    if duplicates:
        raise ApplicationError(
            f"the training manifest lists {', '.join(duplicates)} more than once",
            field="manifest",
            extra={"duplicate_isrcs": duplicates},
        )
    mismatched = [
        isrc
        for isrc, track in zip(isrcs, tracks, strict=True)
        if str(track["sha256"]).lower() != recordings[isrc].audio_sha256
    ]
    if mismatched:
        raise ApplicationError(
            "the audio trained on differs from the registered audio for "
            f"{', '.join(mismatched[:20])}",
            field="manifest",
            extra={"hash_mismatch_isrcs": mismatched},
        )

    opted_out = opt_outs_covering(
        recording_ids=[recordings[isrc].pk for isrc in isrcs], at=trained_at
    )
    override_reason = (override_reason or "").strip()
    if opted_out and not override_reason:
        listed = sorted({recordings_isrc for recordings_isrc, _ in opted_out})
        raise ApplicationError(
            f"{len(listed)} recording(s) in the training set were opted out before this "
            f"model was trained ({trained_at:%Y-%m-%d}): {', '.join(listed[:20])}. Retrain "
            "without them, or a catalog admin may override with a reason.",
            field="manifest",
            extra={"opted_out_isrcs": listed},
        )

    model_version = ModelVersion(
        name=name,
        checkpoint_sha256=checkpoint_sha256,
        checkpoint_path=str(folder / CHECKPOINT_FILE),
        config=config,
        manifest_sha256=manifest_sha256,
        manifest_seed=seed,
        trained_at=trained_at,
        registered_by=actor if getattr(actor, "is_authenticated", False) else None,
        opt_out_override_reason=override_reason if opted_out else "",
    )
    _full_clean(model_version)
    try:
        with transaction.atomic():
            model_version.save()
    except IntegrityError:
        raise ApplicationError(
            f"model version {name!r} or its checkpoint was registered at the same time"
        ) from None
    TrainingSetEntry.objects.bulk_create(
        [
            TrainingSetEntry(
                model_version=model_version,
                position=position,
                recording=recordings[isrc],
                track_id=str(track.get("track_id", ""))[:255],
                manifest_entry=track,
            )
            for position, (isrc, track) in enumerate(zip(isrcs, tracks, strict=True))
        ]
    )
    ModelArtifact.objects.bulk_create(
        [ModelArtifact(model_version=model_version, kind=kind) for kind in ModelArtifact.Kind]
    )
    audit_record(
        actor=actor,
        action="model_version.register",
        obj=model_version,
        after={
            "checkpoint_sha256": checkpoint_sha256,
            "manifest_sha256": manifest_sha256,
            "checkpoint_path": model_version.checkpoint_path,
            "trained_at": trained_at.isoformat(),
            "training_set_size": len(isrcs),
        },
    )
    if opted_out:
        audit_record(
            actor=actor,
            action="model_version.opt_out_override",
            obj=model_version,
            after={
                "opted_out": [
                    {"isrc": isrc, "opt_out": opt_out_id} for isrc, opt_out_id in opted_out
                ]
            },
            reason=override_reason,
        )
    return model_version


_COMPUTING = ModelArtifact.Status.COMPUTING
_READY = ModelArtifact.Status.READY
_FAILED = ModelArtifact.Status.FAILED
# Computing may start from any state (a recompute); ready needs the file, which may also
# be registered directly (computed elsewhere); a ready artifact cannot become failed.
ARTIFACT_TRANSITIONS = {
    ModelArtifact.Status.MISSING: {_COMPUTING, _READY},
    _COMPUTING: {_COMPUTING, _READY, _FAILED},
    _READY: {_COMPUTING, _READY},
    _FAILED: {_COMPUTING, _READY},
}


@transaction.atomic
def model_artifact_update(
    *,
    model_version: ModelVersion,
    kind: str,
    status: str,
    actor: User | None = None,
    progress_percent: int | None = None,
    path: str | None = None,
    sha256: str | None = None,
    error: str = "",
) -> ModelArtifact:
    """Move an artifact through missing -> computing -> ready | failed (and recompute).

    ``ready`` needs the file's ``path``; its SHA-256 is computed here unless given.
    Progress updates (computing -> computing) are not audited, status changes are.
    """
    artifact, _ = ModelArtifact.objects.select_for_update().get_or_create(
        model_version=model_version, kind=kind
    )
    status = ModelArtifact.Status(status)
    if status not in ARTIFACT_TRANSITIONS[ModelArtifact.Status(artifact.status)]:
        raise ApplicationError(
            f"artifact {kind} of {model_version} cannot go from {artifact.status} to {status}",
            field="status",
        )
    before = snapshot(artifact, ("status", "path", "sha256", "progress_percent", "error"))
    if status == ModelArtifact.Status.READY:
        if not path or not Path(path).is_file():
            raise ApplicationError(f"artifact file {path!r} does not exist", field="path")
        artifact.path = str(path)
        artifact.sha256 = sha256 or file_sha256(Path(path))
        artifact.progress_percent = 100
        artifact.error = ""
    elif status == ModelArtifact.Status.COMPUTING:
        if artifact.status != ModelArtifact.Status.COMPUTING:
            artifact.progress_percent = 0
            artifact.error = ""
        if progress_percent is not None:
            if not 0 <= int(progress_percent) <= 100:
                raise ApplicationError("progress must be between 0 and 100", field="progress")
            artifact.progress_percent = int(progress_percent)
    elif status == ModelArtifact.Status.FAILED:
        artifact.error = error or "failed without a message"
    status_changed = artifact.status != status
    artifact.status = status
    _full_clean(artifact)
    artifact.save()
    if status_changed:
        audit_record(
            actor=actor,
            action=f"model_artifact.{status}",
            obj=artifact,
            before=before,
            after=snapshot(artifact, ("status", "path", "sha256", "progress_percent", "error")),
        )
    return artifact


# --- staged imports: check first, confirm the same files later (pages and API) ------------

IMPORT_SUFFIXES = {".csv": "CSV", ".xlsx": "XLSX"}
STAGING_MAX_AGE_SECONDS = 2 * 24 * 3600  # unconfirmed checks are removed after two days
_SNIFF_BYTES = 8192
_ZIP_MAGIC = b"PK\x03\x04"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def import_upload_check(*, kind: str, upload) -> None:
    """Refuse an uploaded import file that is not a CSV or XLSX file, or too large.

    ``upload`` is an uploaded file (``name``, ``size``, ``read``/``seek``). The type is
    judged by the name's suffix and confirmed by the content: an XLSX file is a ZIP
    archive, a CSV file is text (no NUL bytes, not a ZIP archive). The size limit is
    ``CATALOG_MAX_IMPORT_BYTES``.
    """
    if kind not in KINDS:
        raise ApplicationError(
            f"unknown import kind {kind!r}; use one of {', '.join(KINDS)}", field="kind"
        )
    name = str(getattr(upload, "name", "") or "upload")
    suffix = Path(name).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise ApplicationError(
            f"{Path(name).name!r} is not a CSV or XLSX file: the {kind} file must end in "
            ".csv or .xlsx",
            field=kind,
        )
    limit = int(settings.CATALOG_MAX_IMPORT_BYTES)
    if upload.size > limit:
        raise ApplicationError(
            f"{Path(name).name!r} is {_megabytes(upload.size)}; an import file may be at "
            f"most {_megabytes(limit)}",
            field=kind,
        )
    upload.seek(0)
    head = upload.read(_SNIFF_BYTES)
    upload.seek(0)
    if isinstance(head, str):
        head = head.encode("utf-8")
    is_zip = head.startswith(_ZIP_MAGIC)
    if suffix == ".xlsx" and not is_zip:
        raise ApplicationError(
            f"{Path(name).name!r} is not an XLSX workbook (its content is not a ZIP "
            "archive); save it from the spreadsheet as .xlsx or as CSV UTF-8",
            field=kind,
        )
    if suffix == ".csv" and (is_zip or b"\x00" in head):
        raise ApplicationError(
            f"{Path(name).name!r} is not a CSV text file (it holds binary data); save it as "
            "CSV UTF-8",
            field=kind,
        )


def _staging_prune() -> None:
    """Remove staged imports older than ``STAGING_MAX_AGE_SECONDS``."""
    root = staging_root()
    if not root.is_dir():
        return
    cutoff = time.time() - STAGING_MAX_AGE_SECONDS
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def _staged_isrcs(staged: StagedImport) -> list[str]:
    """ISRCs named by the recordings and ownership-shares files (valid ones only)."""
    from catalog.importing import OWNERSHIP_SHARES, RECORDINGS, read_table

    isrcs: set[str] = set()
    for kind in (RECORDINGS, OWNERSHIP_SHARES):
        if kind not in staged.files:
            continue
        frame, _, _ = read_table(kind, staged.path(kind))
        if frame is None:
            continue
        for raw in frame["isrc"]:
            try:
                isrcs.add(isrc_normalize(raw))
            except ValidationError:
                continue
    return sorted(isrcs)


def _staged_check(staged: StagedImport, *, actor: User | None, dry_run: bool) -> ImportReport:
    folder = staged.audio_folder
    return catalog_import_files(
        files={kind: staged.path(kind) for kind in KINDS if kind in staged.files},
        actor=actor,
        dry_run=dry_run,
        # Relative audio paths refer to the audio folder, never to the staging folder.
        base_dirs={kind: Path(folder) if folder else None for kind in staged.files},
    )


def catalog_import_stage(
    *,
    files: dict,
    actor: User,
    audio_folder: str = "",
    replacing: StagedImport | None = None,
) -> StagedImport:
    """Keep uploaded import files on the server and check them; nothing is imported.

    ``files`` maps a kind to an uploaded file; each is checked by ``import_upload_check``.
    With ``replacing`` (an earlier check by the same admin), kinds not uploaded again are
    carried over from it, so a corrected file can be uploaded alone. Returns the staged
    import with its per-row report; ``catalog_import_confirm`` imports these same files.
    """
    if not files and replacing is None:
        raise ApplicationError("Choose at least one file.", field="files")
    for kind, upload in files.items():
        import_upload_check(kind=kind, upload=upload)
    audio_folder = str(audio_folder or "").strip()
    if replacing is not None and not audio_folder:
        audio_folder = replacing.audio_folder
    if audio_folder and not _is_folder(audio_folder):
        raise ApplicationError(
            f"{audio_folder!r} is not a folder on the server", field="audio_folder"
        )
    _staging_prune()
    staged = StagedImport(
        token=uuid.uuid4().hex,
        actor_id=actor.pk if getattr(actor, "is_authenticated", False) else None,
        created_at=timezone.now().isoformat(),
        audio_folder=audio_folder,
        replaces=replacing.token if replacing is not None else "",
    )
    for kind in KINDS:
        if kind in files:
            upload = files[kind]
            relative = f"{kind}/{safe_file_name(upload.name)}"
            target = staged.folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            upload.seek(0)
            with target.open("wb") as handle:
                for chunk in upload.chunks():
                    digest.update(chunk)
                    handle.write(chunk)
            staged.files[kind] = {
                "name": Path(str(upload.name)).name,
                "path": relative,
                "sha256": digest.hexdigest(),
                "bytes": target.stat().st_size,
            }
        elif replacing is not None and kind in replacing.files:
            info = dict(replacing.files[kind])
            target = staged.folder / info["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(replacing.path(kind), target)
            staged.files[kind] = info
    report = _staged_check(staged, actor=actor, dry_run=True)
    staged.report = report.as_dict()
    staged.summary = report.summary()
    staged.isrcs = _staged_isrcs(staged)
    staged.save()
    audit_record(
        actor=actor,
        action="catalog_import.check",
        obj=staged,
        after={
            "files": {kind: info["name"] for kind, info in staged.files.items()},
            "sha256": {kind: info["sha256"] for kind, info in staged.files.items()},
            "problems": len(report.problems),
            "replaces": staged.replaces,
        },
    )
    return staged


def catalog_import_confirm(*, staged: StagedImport, actor: User) -> StagedImport:
    """Import the files of a staged check, all or nothing (idempotent).

    The files are re-checked against the catalog as it is now; if a row has a problem
    (the catalog changed since the check) nothing is imported and the new report is
    stored. A staged import already applied is returned as it is. The files must still
    have the SHA-256 recorded when they were checked.
    """
    if not staged.folder.is_dir():
        raise ApplicationError("This checked import no longer exists; upload the files again.")
    with (staged.folder / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ApplicationError("This import is being confirmed right now.") from None
        current = staged_import_load(staged.token)
        if current is None:
            raise ApplicationError("This checked import no longer exists; upload the files again.")
        if current.applied:
            return current
        for kind, info in current.files.items():
            if file_sha256(current.path(kind)) != info["sha256"]:
                raise ApplicationError(
                    f"The stored {kind} file changed after it was checked; upload it again."
                )
        report = _staged_check(current, actor=actor, dry_run=False)
        current.report = report.as_dict()
        current.summary = report.summary()
        if report.ok:
            current.state = APPLIED
            current.batch_id = report.batch_id
        current.save()
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="catalog_import.confirm",
                obj=current,
                after={
                    "applied": report.applied,
                    "batch": report.batch_id,
                    "problems": len(report.problems),
                    "sha256": {kind: info["sha256"] for kind, info in current.files.items()},
                },
            )
    return current
