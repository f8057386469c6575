"""The catalog import: rights holders, recordings and ownership shares from CSV or XLSX
files, applied all or nothing (``catalog.importing`` reads and checks the files)."""

from pathlib import Path

from django.db import IntegrityError, transaction

from catalog.importing import KINDS, FileSource, ImportPlan, ImportReport, import_plan_build
from catalog.models import ImportBatch, Recording, RightsHolder
from catalog.services.common import User, is_folder
from catalog.services.holders import rights_holder_create, rights_holder_update
from catalog.services.recordings import recording_create
from catalog.services.shares import ShareSpec, recording_shares_set
from core.exceptions import ApplicationError
from core.services import audit_record

REASON = "catalog import"  # the reason on every audit row an import writes


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
    """Write a checked plan through the same services as the pages, the API and the admin,
    so an imported record is validated, stored and audited as if entered by hand."""
    for row in plan.holders_create:
        rights_holder_create(legal_name=row.legal_name, **row.values(), actor=actor, reason=REASON)
    for row in plan.holders_update:
        rights_holder_update(
            holder=RightsHolder.objects.get(legal_name=row.legal_name),
            data=row.values(),
            actor=actor,
            reason=REASON,
        )
    names = {name for shares in plan.shares_set.values() for name, _ in shares}
    holders = {h.legal_name: h for h in RightsHolder.objects.filter(legal_name__in=names)}

    def specs(isrc: str) -> list[ShareSpec]:
        return [ShareSpec(holders[name], percent) for name, percent in plan.shares_set[isrc]]

    new_isrcs = {row.isrc for row in plan.recordings_create}
    for row in plan.recordings_create:
        # The plan holds no new recording without its shares (import_plan_build refuses it).
        recording_create(
            title=row.title,
            isrc=row.isrc,
            iswc=row.iswc,
            audio_path=row.audio_path,
            audio=row.audio,
            shares=specs(row.isrc),
            actor=actor,
            reason=REASON,
        )
    changed = [isrc for isrc in plan.shares_set if isrc not in new_isrcs]
    recordings = {r.isrc: r for r in Recording.objects.filter(isrc__in=changed)}
    for isrc in changed:
        recording_shares_set(
            recording=recordings[isrc], shares=specs(isrc), actor=actor, reason=REASON
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
    if not is_folder(folder):
        raise ApplicationError(f"{str(folder)!r} is not a folder", field="folder")
    files = import_folder_files(folder)
    if not files:
        raise ApplicationError(
            f"folder {str(folder)!r} has none of {', '.join(k + '.csv' for k in KINDS)}",
            field="folder",
        )
    return catalog_import_files(files=files, actor=actor, dry_run=dry_run)
