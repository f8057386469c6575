"""Staged imports: uploaded files are checked and kept on the server, then the same files
are confirmed later (the import pages and the import API)."""

import fcntl
import hashlib
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.audio import file_sha256
from catalog.importing import (
    KINDS,
    OWNERSHIP_SHARES,
    RECORDINGS,
    ImportFileError,
    ImportReport,
    read_rows,
)
from catalog.services.common import User, is_folder
from catalog.services.imports import catalog_import_files
from catalog.staging import (
    APPLIED,
    StagedImport,
    safe_file_name,
    staged_import_load,
    staging_root,
)
from catalog.validators import isrc_normalize
from core.exceptions import ApplicationError
from core.services import audit_record

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
    isrcs: set[str] = set()
    for kind in (RECORDINGS, OWNERSHIP_SHARES):
        if kind not in staged.files:
            continue
        try:
            for _, record in read_rows(kind, staged.path(kind)):
                try:
                    isrcs.add(isrc_normalize(record["isrc"]))
                except ValidationError:
                    continue
        except ImportFileError:
            continue  # the check reports why the file cannot be read
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
    if audio_folder and not is_folder(audio_folder):
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
