"""Staged imports: uploaded files are kept on the server and checked, then the same files
are confirmed later (the import pages and the import API). The check and the import run
as Celery tasks (``catalog.tasks``) that report their progress on the batch's row, so an
import of 100,000 rows never runs inside a web request.

Each step of a staged ``ImportBatch`` is sent to the broker after its transaction commits.
A task run claims the batch (a locked read, then ``attempts`` + 1 and a heartbeat): a
redelivered task finds the batch already done and returns, or finds another run's fresh
heartbeat and tries again later (``ImportBusy``). The import's own transaction marks the
batch ``applied`` only if the claim is still this run's, so a batch is never imported
twice. A run that fails leaves the batch ``failed`` with the reason, and nothing imported.
A step whose message the broker lost after taking it is sent again by the reconciler
(``reconcile_imports``).
"""

import hashlib
import logging
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

from celery import current_app, signature
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.sql import UpdateQuery
from django.db.models.sql.constants import NO_RESULTS
from django.utils import timezone

from catalog.audio import file_sha256
from catalog.importing import (
    KINDS,
    OWNERSHIP_SHARES,
    RECORDINGS,
    ImportFileError,
    ImportReport,
    Progress,
    read_rows,
)
from catalog.models import ImportBatch
from catalog.services.common import User, is_folder
from catalog.services.imports import ImportSuperseded, catalog_import_files
from catalog.staging import safe_file_name, staging_root
from catalog.validators import isrc_normalize
from core.broker import BROKER_ERRORS
from core.exceptions import ApplicationError
from core.services import audit_record

logger = logging.getLogger(__name__)

Status = ImportBatch.Status
CHECK_STEP = "catalog.check_import"
APPLY_STEP = "catalog.apply_import"
STEPS = {Status.CHECKING: CHECK_STEP, Status.IMPORTING: APPLY_STEP}  # a batch's step, by status

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
    """Remove the files of staged imports older than ``STAGING_MAX_AGE_SECONDS`` (their
    batches stay, for the record), except those a task is working on."""
    root = staging_root()
    if not root.is_dir():
        return
    cutoff = time.time() - STAGING_MAX_AGE_SECONDS
    busy = set(
        ImportBatch.objects.filter(status__in=ImportBatch.IN_PROGRESS).values_list(
            "token", flat=True
        )
    )
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in busy and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def _staged_isrcs(batch: ImportBatch) -> list[str]:
    """ISRCs named by the recordings and ownership-shares files (valid ones only)."""
    isrcs: set[str] = set()
    for kind in (RECORDINGS, OWNERSHIP_SHARES):
        if kind not in batch.files:
            continue
        try:
            for _, record in read_rows(kind, batch.path(kind)):
                try:
                    isrcs.add(isrc_normalize(record["isrc"]))
                except ValidationError:
                    continue
        except ImportFileError:
            continue  # the check reports why the file cannot be read
    return sorted(isrcs)


def _batch_import(
    batch: ImportBatch, *, dry_run: bool, progress: Progress, claimed: ImportBatch | None = None
) -> ImportReport:
    folder = batch.audio_folder
    return catalog_import_files(
        files={kind: batch.path(kind) for kind in KINDS if kind in batch.files},
        actor=batch.actor,
        dry_run=dry_run,
        # Relative audio paths refer to the audio folder, never to the staging folder.
        base_dirs={kind: Path(folder) if folder else None for kind in batch.files},
        progress=progress,
        batch=claimed,
    )


# --- sending the steps ------------------------------------------------------------------------


def _step_refused(*, batch_id: int, step: str) -> None:
    """The broker did not take ``step``: say so on the batch instead of leaving it waiting."""
    now = timezone.now()
    waiting = ImportBatch.objects.filter(pk=batch_id, heartbeat_at__isnull=True)
    if step == CHECK_STEP:
        waiting.filter(status=Status.CHECKING).update(
            status=Status.FAILED,
            error="The task queue did not take the check (it is unavailable); nothing was "
            "imported. Upload the files again.",
            finished_at=now,
        )
    else:
        waiting.filter(status=Status.IMPORTING).update(
            status=Status.CHECKED,
            error="The task queue did not take the import (it is unavailable); nothing was "
            "imported. Confirm again.",
        )


def import_step_publish(*, batch_id: int, step: str) -> bool:
    """Hand ``step`` of batch ``batch_id`` to the broker; ``False`` when it refused it (the
    batch is left as it is). Without a broker (the embedded default) the step runs here and
    now, as every task does in eager mode."""
    task = signature(step, args=(batch_id,), options={"ignore_result": True})
    if current_app.conf.task_always_eager:
        task.apply_async()
        return True
    try:
        # No publish retries: a request must not hang on a dead broker.
        task.apply_async(retry=False)
    except BROKER_ERRORS as exc:
        logger.warning("import batch %s: the broker did not take %s (%s)", batch_id, step, exc)
        return False
    return True


def import_step_send(*, batch_id: int, step: str) -> bool:
    """Send ``step`` (``CHECK_STEP`` or ``APPLY_STEP``) of batch ``batch_id`` and record
    when (``dispatched_at``); ``False`` when the broker refused it (the batch then says so).
    """
    sent_at = timezone.now()
    if not import_step_publish(batch_id=batch_id, step=step):
        _step_refused(batch_id=batch_id, step=step)
        return False
    ImportBatch.objects.filter(pk=batch_id, status__in=ImportBatch.IN_PROGRESS).update(
        dispatched_at=sent_at
    )
    return True


def _step_send_on_commit(*, batch_id: int, step: str) -> None:
    transaction.on_commit(lambda: import_step_send(batch_id=batch_id, step=step))


# --- progress -------------------------------------------------------------------------------


class BatchProgress:
    """``progress(stage, done, total)`` for a task run: writes the phase, rows done, rows
    in the phase and a heartbeat on the batch's row, when the phase changes, when it ends,
    and at least every ``every_rows`` rows (``CATALOG_IMPORT_PROGRESS_ROWS``).

    The import writes in one transaction, whose changes nobody sees before it commits;
    its progress is written through a second database connection, so the pages see it
    while the import runs. SQLite lets one connection write at a time, so there the
    progress of that transaction is not written (SQLite runs the tasks in-process,
    where nobody waits on a page meanwhile).
    """

    def __init__(self, batch: ImportBatch, *, every_rows: int | None = None):
        self.batch_id, self.attempt = batch.pk, batch.attempts
        self.every_rows = every_rows or settings.CATALOG_IMPORT_PROGRESS_ROWS
        self.phase: str | None = None
        self.written = 0
        self._side = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == self.phase and done - self.written < self.every_rows and done < total:
            return
        self.phase, self.written = stage, done
        self.write(phase=stage[:64], processed=done, total=total, heartbeat_at=timezone.now())

    def write(self, **values) -> None:
        rows = ImportBatch.objects.filter(
            pk=self.batch_id, attempts=self.attempt, status__in=ImportBatch.IN_PROGRESS
        )
        if not connection.in_atomic_block:
            rows.update(**values)
            return
        if connection.vendor == "sqlite":
            return
        if self._side is None:
            self._side = connections.create_connection(DEFAULT_DB_ALIAS)
        query = rows.query.chain(UpdateQuery)
        query.add_update_values(values)
        query.get_compiler(connection=self._side).execute_sql(NO_RESULTS)

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None


# --- the steps --------------------------------------------------------------------------------


class ImportBusy(Exception):
    """Another run of the batch's task reported progress lately: try again later."""


def _claim(*, batch_id: int, status: str) -> ImportBatch | None:
    """Claim the batch for this task run, or None when it is not (or no longer) ``status``.

    Raises ``ImportBusy`` while another run's heartbeat is fresher than
    ``CATALOG_IMPORT_STALE_SECONDS``: a run whose worker died (its transaction rolled
    back) is taken over once its heartbeat is stale.
    """
    now = timezone.now()
    with transaction.atomic():
        batch = (
            ImportBatch.objects.select_for_update(of=("self",))
            .select_related("actor")
            .filter(pk=batch_id)
            .first()
        )
        if batch is None or batch.status != status:
            return None
        stale = now - timedelta(seconds=settings.CATALOG_IMPORT_STALE_SECONDS)
        if batch.heartbeat_at is not None and batch.heartbeat_at > stale:
            raise ImportBusy(
                f"import batch {batch_id} is being worked on (attempt {batch.attempts})"
            )
        batch.attempts += 1
        batch.started_at = batch.heartbeat_at = now
        batch.phase, batch.processed, batch.total = "started", 0, None
        batch.save(
            update_fields=["attempts", "started_at", "heartbeat_at", "phase", "processed", "total"]
        )
    return batch


def catalog_import_fail(*, batch_id: int, reason: str, attempt: int | None = None) -> bool:
    """Mark a batch being checked or imported ``failed`` with ``reason``; ``False`` when
    it was not in progress (or, with ``attempt``, no longer that run's)."""
    rows = ImportBatch.objects.filter(pk=batch_id, status__in=ImportBatch.IN_PROGRESS)
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    return bool(
        rows.update(status=Status.FAILED, error=reason[:2000], phase="", finished_at=timezone.now())
    )


def _importing(batch: ImportBatch, *, actor: User | None) -> None:
    """Move a checked batch to ``importing`` and send its import (inside a transaction)."""
    batch.status = Status.IMPORTING
    batch.error, batch.phase, batch.processed, batch.total = "", "queued", 0, None
    batch.heartbeat_at = batch.started_at = batch.finished_at = None
    # Handed to the broker when this commits: the reconciler counts from now, and gives the
    # import the re-sends the check may have used.
    batch.dispatched_at, batch.redispatches = timezone.now(), 0
    batch.save(
        update_fields=[
            "status", "error", "phase", "processed", "total", "heartbeat_at", "started_at",
            "finished_at", "dispatched_at", "redispatches",
        ]
    )  # fmt: skip
    audit_record(
        actor=actor,
        action="catalog_import.confirm",
        obj=batch,
        after={"sha256": {kind: info["sha256"] for kind, info in batch.files.items()}},
    )
    _step_send_on_commit(batch_id=batch.pk, step=APPLY_STEP)


def catalog_import_check_run(*, batch_id: int) -> ImportBatch | None:
    """The check task's work: read and check the staged files (nothing is imported) and
    store the per-row report. Returns the batch, or None when there was nothing to do."""
    batch = _claim(batch_id=batch_id, status=Status.CHECKING)
    if batch is None:
        return None
    progress = BatchProgress(batch)
    try:
        report = _batch_import(batch, dry_run=True, progress=progress)
        progress(f"list {RECORDINGS}", 0, 0)
        isrcs = _staged_isrcs(batch)
    finally:
        progress.close()
    now = timezone.now()
    with transaction.atomic():
        done = ImportBatch.objects.filter(
            pk=batch.pk, status=Status.CHECKING, attempts=batch.attempts
        ).update(
            status=Status.CHECKED,
            report=report.as_dict(),
            summary=report.summary(),
            isrcs=isrcs,
            phase="",
            finished_at=now,
            heartbeat_at=now,
        )
        if not done:
            return None
        batch.refresh_from_db()
        audit_record(
            actor=batch.actor,
            action="catalog_import.check",
            obj=batch,
            after={
                "files": {kind: info["name"] for kind, info in batch.files.items()},
                "sha256": {kind: info["sha256"] for kind, info in batch.files.items()},
                "problems": len(report.problems),
                "replaces": batch.replaces_id,
            },
        )
        if batch.confirm_when_checked and batch.can_confirm:
            _importing(batch, actor=batch.actor)
    return batch


def _files_unchanged(batch: ImportBatch) -> None:
    for kind, info in batch.files.items():
        try:
            digest = file_sha256(batch.path(kind))
        except FileNotFoundError:
            raise ApplicationError(
                f"The stored {kind} file no longer exists; upload the files again."
            ) from None
        if digest != info["sha256"]:
            raise ApplicationError(
                f"The stored {kind} file changed after it was checked; upload it again."
            )


def catalog_import_apply_run(*, batch_id: int) -> ImportBatch | None:
    """The import task's work: import the checked files, all or nothing.

    The files must still have the SHA-256 recorded when they were checked, and are checked
    again against the catalog as it is now: if a row now has a problem (the catalog
    changed since the check) nothing is imported and the batch is ``checked`` again with
    the new report. Returns the batch, or None when there was nothing to do.
    """
    batch = _claim(batch_id=batch_id, status=Status.IMPORTING)
    if batch is None:
        return None
    progress = BatchProgress(batch)
    try:
        _files_unchanged(batch)
        report = _batch_import(batch, dry_run=False, progress=progress, claimed=batch)
    except ApplicationError as exc:
        catalog_import_fail(batch_id=batch.pk, reason=exc.message, attempt=batch.attempts)
        return ImportBatch.objects.get(pk=batch.pk)
    except ImportSuperseded:
        return None
    finally:
        progress.close()
    if not report.applied:
        # Nothing was written: a row has a problem now, or nothing is left to change.
        ImportBatch.objects.filter(
            pk=batch.pk, status=Status.IMPORTING, attempts=batch.attempts
        ).update(
            status=Status.CHECKED,
            report=report.as_dict(),
            summary=report.summary(),
            error=(
                "The catalog changed since the check; nothing was imported."
                if not report.ok
                else "The catalog already holds these records; nothing was imported."
            ),
            phase="",
            finished_at=timezone.now(),
        )
    return ImportBatch.objects.get(pk=batch.pk)


# --- the requests -----------------------------------------------------------------------------


def _store(upload, target: Path) -> tuple[str, int]:
    """Write an uploaded file (or copy a server file) to ``target`` in chunks; its SHA-256
    and size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    if isinstance(upload, Path):
        source = upload.open("rb")
        chunks = iter(lambda: source.read(1024 * 1024), b"")
    else:
        source = None
        upload.seek(0)
        chunks = upload.chunks()
    try:
        with target.open("wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
    finally:
        if source is not None:
            source.close()
    return digest.hexdigest(), target.stat().st_size


def catalog_import_stage(
    *,
    files: dict,
    actor: User,
    audio_folder: str = "",
    replacing: ImportBatch | None = None,
    confirm_when_checked: bool = False,
) -> ImportBatch:
    """Keep import files on the server and send them to be checked; nothing is imported.

    ``files`` maps a kind to an uploaded file (checked by ``import_upload_check``) or to
    the path of a file on the server (copied). With ``replacing`` (an earlier batch of the
    same admin), kinds not uploaded again are carried over from it, so a corrected file
    can be uploaded alone. Returns the batch, ``checking``; the check task stores the
    per-row report, and ``catalog_import_confirm`` imports these same files. With
    ``confirm_when_checked`` the import follows the check when it finds no problem.
    """
    if not files and replacing is None:
        raise ApplicationError("Choose at least one file.", field="files")
    for kind, upload in files.items():
        if not isinstance(upload, Path):
            import_upload_check(kind=kind, upload=upload)
    audio_folder = str(audio_folder or "").strip()
    if replacing is not None and not audio_folder:
        audio_folder = replacing.audio_folder
    if audio_folder and not is_folder(audio_folder):
        raise ApplicationError(
            f"{audio_folder!r} is not a folder on the server", field="audio_folder"
        )
    if replacing is not None and replacing.in_progress:
        raise ApplicationError("That import is still running; wait for it to finish.")
    _staging_prune()
    batch = ImportBatch(
        token=uuid.uuid4().hex,
        status=Status.CHECKING,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        audio_folder=audio_folder,
        replaces=replacing,
        confirm_when_checked=confirm_when_checked,
        phase="queued",
    )
    for kind in KINDS:
        if kind in files:
            upload = files[kind]
            relative = f"{kind}/{safe_file_name(upload.name)}"
            sha256, size = _store(upload, batch.folder / relative)
            batch.files[kind] = {
                "name": Path(str(upload.name)).name,
                "path": relative,
                "sha256": sha256,
                "bytes": size,
            }
        elif replacing is not None and kind in replacing.files:
            if not replacing.path(kind).is_file():
                raise ApplicationError(
                    f"The {kind} file of that import no longer exists; upload it again."
                )
            info = dict(replacing.files[kind])
            target = batch.folder / info["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(replacing.path(kind), target)
            batch.files[kind] = info
    batch.kinds = [kind for kind in KINDS if kind in batch.files]
    batch.file_names = {kind: info["name"] for kind, info in batch.files.items()}
    batch.files_sha256 = {kind: info["sha256"] for kind, info in batch.files.items()}
    with transaction.atomic():
        batch.save()
        _step_send_on_commit(batch_id=batch.pk, step=CHECK_STEP)
    return batch


def catalog_import_confirm(*, batch: ImportBatch, actor: User) -> ImportBatch:
    """Send a checked batch to be imported, all or nothing (idempotent: a batch already
    importing or imported is returned as it is). Returns the batch."""
    with transaction.atomic():
        current = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if current.status in (Status.IMPORTING, Status.APPLIED):
            return current
        if current.status == Status.CHECKING:
            raise ApplicationError(
                "The files are still being checked; confirm once the check is done."
            )
        if current.status == Status.FAILED:
            raise ApplicationError(f"This import failed ({current.error}); upload the files again.")
        if not current.folder.is_dir():
            raise ApplicationError("This checked import no longer exists; upload the files again.")
        _files_unchanged(current)  # the task checks again before it imports
        if not current.ok:
            raise ApplicationError(
                "The check found problems; nothing was imported. Upload corrected files."
            )
        if not current.can_confirm:
            raise ApplicationError("These files change nothing in the catalog; nothing to import.")
        _importing(current, actor=actor)
    return current
