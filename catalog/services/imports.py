"""The catalog import: rights holders, recordings and ownership shares from CSV or XLSX
files, applied all or nothing (``catalog.importing`` reads and checks the files)."""

from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.importing import (
    KINDS,
    OWNERSHIP_SHARES,
    RECORDINGS,
    RIGHTS_HOLDERS,
    FileSource,
    ImportFileError,
    ImportPlan,
    ImportReport,
    Progress,
    chunked,
    holder_rows,
    import_plan_build,
    new_recording_rows,
)
from catalog.models import ImportBatch, OwnershipShare, Recording, RightsHolder
from catalog.services.common import User, full_clean, is_folder, snapshot
from catalog.services.holders import HOLDER_FIELDS, rights_holder_update
from catalog.services.recordings import RECORDING_FIELDS, recording_build
from core.exceptions import ApplicationError
from core.services import audit_record, audit_record_many

REASON = "catalog import"  # the reason on every audit row an import writes


class ImportSuperseded(Exception):
    """The staged batch being applied is no longer this task run's to apply (another run
    applied it, or claimed it after this one went silent): the writes are rolled back."""


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


def _catalog_changed(detail: str) -> ApplicationError:
    return ApplicationError(
        "the catalog changed while importing (a record was registered at the same "
        f"time); nothing was changed, run the import again ({detail})"
    )


def _holders_apply(
    plan: ImportPlan, source: FileSource, *, actor: User | None, progress: Progress
) -> None:
    """Create the new rights holders in bulk; change the few that differ one by one."""
    done = 0
    for chunk in chunked(holder_rows(source)):
        existing = {
            holder.legal_name: holder
            for holder in RightsHolder.objects.filter(legal_name__in=[r.legal_name for r in chunk])
        }
        new = []
        for row in chunk:
            holder = existing.get(row.legal_name)
            if holder is None:
                new.append(RightsHolder(legal_name=row.legal_name, **row.values()))
            elif row.legal_name in plan.holders_update:
                rights_holder_update(holder=holder, data=row.values(), actor=actor, reason=REASON)
            elif any(getattr(holder, key) != value for key, value in row.values().items()):
                raise _catalog_changed(f"rights holder {row.legal_name!r}")
        for holder in new:
            full_clean(holder, validate_unique=False, validate_constraints=False)
        RightsHolder.objects.bulk_create(new)
        audit_record_many(
            actor=actor,
            action="rights_holder.create",
            changes=[(h, None, snapshot(h, HOLDER_FIELDS) | {"users": []}) for h in new],
            reason=REASON,
        )
        done += len(chunk)
        progress(
            f"import {RIGHTS_HOLDERS}", done, max(plan.row_totals.get(RIGHTS_HOLDERS, 0), done)
        )


def _holder_ids(plan: ImportPlan) -> dict[str, int]:
    names = {name for shares in plan.shares_set.values() for name, _ in shares}
    ids: dict[str, int] = {}
    for chunk in chunked(names):
        ids.update(
            RightsHolder.objects.filter(legal_name__in=chunk).values_list("legal_name", "pk")
        )
    return ids


def _shares_build(
    plan: ImportPlan, recording: Recording, holder_ids: dict[str, int]
) -> list[OwnershipShare]:
    return [
        OwnershipShare.of(recording, rights_holder_id=holder_ids[name], percent=percent)
        for name, percent in plan.shares_set[recording.isrc]
    ]


def _shares_snapshot(shares: list[OwnershipShare]) -> list[dict]:
    """As ``shares_snapshot`` records them: by rights holder id."""
    return [
        {"rights_holder": share.rights_holder_id, "percent": str(share.percent)}
        for share in sorted(shares, key=lambda share: share.rights_holder_id)
    ]


def _recordings_apply(
    plan: ImportPlan,
    source: FileSource,
    *,
    holder_ids: dict[str, int],
    actor: User | None,
    progress: Progress,
) -> None:
    """Register the new recordings with their shares, ``LOOKUP_CHUNK`` rows per insert.

    Each audio file must still be the one checked (same SHA-256); it is stored under its
    content hash as ``recording_create`` stores it.
    """
    done = 0
    rows = new_recording_rows(source, plan.base_dirs.get(RECORDINGS), plan.new_audio)
    for chunk in chunked(rows):
        recordings = []
        for row in chunk:
            recording = recording_build(
                title=row.title,
                isrc=row.isrc,
                iswc=row.iswc,
                audio_path=row.audio_path,
                info=row.audio,
            )
            full_clean(recording, validate_unique=False, validate_constraints=False)
            recordings.append(recording)
        Recording.objects.bulk_create(recordings)
        shares = {r.isrc: _shares_build(plan, r, holder_ids) for r in recordings}
        OwnershipShare.objects.bulk_create([share for rows in shares.values() for share in rows])
        audit_record_many(
            actor=actor,
            action="recording.create",
            changes=[
                (
                    r,
                    None,
                    snapshot(r, RECORDING_FIELDS)
                    | {"ownership_shares": _shares_snapshot(shares[r.isrc])},
                )
                for r in recordings
            ],
            reason=REASON,
        )
        done += len(chunk)
        progress(f"import {RECORDINGS}", done, len(plan.new_isrcs))


def _shares_replace(
    plan: ImportPlan, *, holder_ids: dict[str, int], actor: User | None, progress: Progress
) -> None:
    """Replace the shares of registered recordings whose shares in the file differ."""
    changed = [isrc for isrc in plan.shares_set if isrc not in plan.new_isrcs]
    done = 0
    for isrcs in chunked(changed):
        recordings = list(Recording.objects.filter(isrc__in=isrcs))
        before: dict[int, list[OwnershipShare]] = {r.pk: [] for r in recordings}
        registered = OwnershipShare.objects.filter(recording__in=recordings)
        for share in registered:
            before[share.recording_id].append(share)
        registered.delete()
        shares = {r.pk: _shares_build(plan, r, holder_ids) for r in recordings}
        OwnershipShare.objects.bulk_create([share for rows in shares.values() for share in rows])
        audit_record_many(
            actor=actor,
            action="recording.shares_set",
            changes=[
                (
                    r,
                    {"ownership_shares": _shares_snapshot(before[r.pk])},
                    {"ownership_shares": _shares_snapshot(shares[r.pk])},
                )
                for r in recordings
            ],
            reason=REASON,
        )
        done += len(isrcs)
        progress(f"import {OWNERSHIP_SHARES}", done, len(changed))


def _plan_apply(
    plan: ImportPlan, files: dict[str, FileSource], *, actor: User | None, progress: Progress
) -> None:
    """Write a checked plan, streaming the files again: records are validated by the same
    field checks and audited with the same rows as those the pages, the API and the admin
    create one by one, but written in bulk."""
    if RIGHTS_HOLDERS in files:
        _holders_apply(plan, files[RIGHTS_HOLDERS], actor=actor, progress=progress)
    holder_ids = _holder_ids(plan)
    if plan.new_isrcs:
        _recordings_apply(
            plan, files[RECORDINGS], holder_ids=holder_ids, actor=actor, progress=progress
        )
    _shares_replace(plan, holder_ids=holder_ids, actor=actor, progress=progress)


def catalog_import_files(
    *,
    files: dict[str, FileSource],
    actor: User | None,
    dry_run: bool = False,
    base_dirs: dict[str, Path | None] | None = None,
    progress: Progress | None = None,
    batch: ImportBatch | None = None,
) -> ImportReport:
    """Import rights holders, recordings and ownership shares together, all or nothing.

    ``files`` maps a kind (``rights_holders``, ``recordings``, ``ownership_shares``) to a
    path or an open binary file. Relative audio paths in a recordings file are resolved
    against ``base_dirs[kind]`` (default: the folder of the file when given as a path).
    If any row has a problem nothing changes and the report lists every problem. Rows that
    match what is registered change nothing, so importing the same files again is a no-op.
    ``progress(stage, rows done, rows)`` is called while checking and while writing.

    ``batch``: the staged batch a task run claimed (status ``importing``, ``attempts`` as
    claimed); the import's transaction marks it ``applied``, or rolls everything back with
    ``ImportSuperseded`` when it is no longer that run's. Without it a new batch records
    the import.
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
    progress = progress or (lambda stage, done, total: None)
    plan = import_plan_build(files, base_dirs=resolved, progress=progress)
    report = _report(plan, kinds=kinds, dry_run=dry_run)
    if not report.ok or dry_run or not plan.changes_anything:
        return report
    try:
        with transaction.atomic():
            _plan_apply(plan, files, actor=actor, progress=progress)
            counts = plan.counts()
            record = {
                "kinds": kinds,
                "files_sha256": plan.files_sha256,
                "file_names": plan.file_names,
                "rows": plan.rows,
                "created": counts["created"],
                "updated": counts["updated"],
                "unchanged": counts["unchanged"],
            }
            if batch is None:
                batch = ImportBatch.objects.create(
                    actor=actor if getattr(actor, "is_authenticated", False) else None,
                    finished_at=timezone.now(),
                    **record,
                )
            else:
                report.applied, report.batch_id = True, batch.pk
                now = timezone.now()
                claimed = ImportBatch.objects.filter(
                    pk=batch.pk, status=ImportBatch.Status.IMPORTING, attempts=batch.attempts
                ).update(
                    **record,
                    status=ImportBatch.Status.APPLIED,
                    report=report.as_dict(),
                    summary=report.summary(),
                    error="",
                    phase="",
                    finished_at=now,
                    heartbeat_at=now,
                )
                if not claimed:
                    raise ImportSuperseded(f"import batch {batch.pk}")
            audit_record(
                actor=actor,
                action="catalog_import.apply",
                obj=batch,
                after={"files": plan.file_names, "sha256": plan.files_sha256, **counts},
            )
    except IntegrityError as exc:
        raise _catalog_changed(str(exc).splitlines()[0]) from None
    except ImportFileError as exc:
        row, _, problem = exc.problems[0]
        where = f"row {row} of the {RECORDINGS} file: " if row else ""
        raise ApplicationError(
            f"{where}{problem}; nothing was changed, run the import again"
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
    progress: Progress | None = None,
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
        progress=progress,
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
    *,
    folder: str | Path,
    actor: User | None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``rights_holders``, ``recordings`` and ``ownership_shares`` (CSV or XLSX)
    from one folder in one transaction; audio paths are relative to the folder."""
    folder = Path(folder)
    if not is_folder(folder):
        raise ApplicationError(f"{str(folder)!r} is not a folder", field="folder")
    files = import_folder_files(folder)
    if not files:
        raise ApplicationError(
            f"folder {str(folder)!r} has none of {', '.join(k + '.csv' for k in KINDS)}",
            field="folder",
        )
    return catalog_import_files(files=files, actor=actor, dry_run=dry_run, progress=progress)
