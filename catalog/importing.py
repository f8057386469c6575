"""Reading and checking catalog import files (CSV or XLSX, UTF-8, one kind per file).

This module only reads: it streams the files row by row into an ``ImportPlan`` (what
would be created or changed) plus the problems found, row by row.
``catalog.services.catalog_import_files`` applies a plan without problems in one
transaction, streaming the same files again.

Memory stays bounded at any catalog size: rows are read one at a time (``csv`` over the
file's lines, openpyxl's read-only mode for XLSX), registered records are looked up
``LOOKUP_CHUNK`` keys per query (which also keeps SQLite under its limit on bound
parameters), and what is kept across rows is only what an all-or-nothing check needs:
the keys seen (ISRCs, holder names, audio hashes) to find duplicates, and each
recording's shares to check that they sum to 100.

Every text cell is judged by the model fields' own validation (``field_problems``), the
same checks the services run for the pages, the API and the admin.

Row numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2.
A problem about the whole file has no row number.
"""

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import IO, Generic, TypeVar
from zipfile import BadZipFile

from django.conf import settings
from django.core.exceptions import ValidationError
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from catalog.audio import AudioError, AudioInfo, audio_inspect, audio_reinspect
from catalog.models import SHARES_TOTAL, OwnershipShare, Recording, RightsHolder
from catalog.validators import (
    currency_normalize,
    field_problems,
    ipi_normalize,
    isni_normalize,
    isrc_normalize,
    iswc_normalize,
)

RIGHTS_HOLDERS = "rights_holders"
RECORDINGS = "recordings"
OWNERSHIP_SHARES = "ownership_shares"
KINDS = (RIGHTS_HOLDERS, RECORDINGS, OWNERSHIP_SHARES)  # also the order they are applied in

COLUMNS = {
    RIGHTS_HOLDERS: (
        "legal_name",
        "kind",
        "isni",
        "ipi",
        "payout_currency",
        "contact_email",
        "payout_details",
    ),
    RECORDINGS: ("isrc", "title", "iswc", "audio_path"),
    OWNERSHIP_SHARES: ("isrc", "rights_holder", "percent"),
}
# Columns that may be left out of the header entirely (empty values are allowed too).
OPTIONAL_COLUMNS = {
    RIGHTS_HOLDERS: {"isni", "ipi", "payout_currency", "contact_email", "payout_details"},
    RECORDINGS: {"iswc"},
    OWNERSHIP_SHARES: set(),
}
FIRST_DATA_ROW = 2
PERCENT_QUANTUM = Decimal("0.0001")
# Keys per lookup query: far below SQLite's limit on bound parameters (999 in older
# builds, 32,766 since 3.32), and small enough that a chunk's rows are cheap to hold.
LOOKUP_CHUNK = 500

FileSource = str | Path | IO[bytes]
# progress(stage, rows done, rows in the file): called while checking and importing.
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class ImportProblem:
    kind: str
    row: int | None
    column: str
    problem: str

    def as_dict(self) -> dict:
        return {"file": self.kind, "row": self.row, "column": self.column, "problem": self.problem}


@dataclass(frozen=True)
class HolderRow:
    row: int
    legal_name: str
    kind: str
    isni: str
    ipi: str
    payout_currency: str
    contact_email: str
    payout_details: str = ""  # empty: keep what is stored (a file never erases bank details)

    def values(self) -> dict:
        values = {
            "kind": self.kind,
            "isni": self.isni,
            "ipi": self.ipi,
            "payout_currency": self.payout_currency,
            "contact_email": self.contact_email,
        }
        if self.payout_details:
            values["payout_details"] = self.payout_details
        return values


@dataclass(frozen=True)
class RecordingRow:
    row: int
    isrc: str
    title: str
    iswc: str
    audio_path: Path | None
    audio: AudioInfo | None


@dataclass
class ImportPlan:
    """What applying the files would do; filled by ``import_plan_build``.

    It holds counts and keys, never the rows themselves: applying it streams the files
    again (``holder_rows``, ``recording_rows``) and writes the rows named here.
    """

    holders_created: int = 0
    holders_update: set[str] = field(default_factory=set)  # legal names to change
    holders_unchanged: int = 0
    new_isrcs: set[str] = field(default_factory=set)  # recordings to register
    recordings_unchanged: int = 0
    # row -> SHA-256 of the audio of each new recording, so that writing it can tell the
    # file is still the one that was checked
    new_audio: dict[int, str] = field(default_factory=dict)
    # isrc -> [(legal_name, percent)], only recordings whose shares change or are new
    shares_set: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)
    shares_unchanged: int = 0  # recordings whose shares in the file equal the registered ones
    rows: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    files_sha256: dict[str, str] = field(default_factory=dict)
    file_names: dict[str, str] = field(default_factory=dict)
    base_dirs: dict[str, Path | None] = field(default_factory=dict)
    row_totals: dict[str, int] = field(default_factory=dict)  # data rows per file

    def counts(self) -> dict:
        new_shares = sum(1 for isrc in self.shares_set if isrc in self.new_isrcs)
        return {
            "created": {
                RIGHTS_HOLDERS: self.holders_created,
                RECORDINGS: len(self.new_isrcs),
                OWNERSHIP_SHARES: new_shares,
            },
            "updated": {
                RIGHTS_HOLDERS: len(self.holders_update),
                RECORDINGS: 0,
                OWNERSHIP_SHARES: len(self.shares_set) - new_shares,
            },
            "unchanged": {
                RIGHTS_HOLDERS: self.holders_unchanged,
                RECORDINGS: self.recordings_unchanged,
                OWNERSHIP_SHARES: self.shares_unchanged,
            },
        }

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.holders_created or self.holders_update or self.new_isrcs or self.shares_set
        )


@dataclass
class ImportReport:
    """The outcome of an import: problems by row, or what was (or would be) changed.

    ``ok`` is false when any problem was found; then nothing was changed.
    """

    kinds: list[str]
    dry_run: bool
    rows: int
    problems: list[ImportProblem]
    created: dict
    updated: dict
    unchanged: dict
    applied: bool = False
    batch_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def no_op(self) -> bool:
        return self.ok and not any(self.created.values()) and not any(self.updated.values())

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "kinds": self.kinds,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "batch_id": self.batch_id,
            "problems": [problem.as_dict() for problem in self.problems],
        }

    def summary(self) -> str:
        if not self.ok:
            return f"{len(self.problems)} problem(s) found; nothing was changed."
        verb = "would create" if self.dry_run else "created"
        parts = [
            f"{verb} {sum(self.created.values())}",
            f"{'would update' if self.dry_run else 'updated'} {sum(self.updated.values())}",
            f"unchanged {sum(self.unchanged.values())}",
        ]
        return ", ".join(parts) + " (records across files)."


def chunked(items: Iterable, size: int | None = None) -> Iterator[list]:
    """``items`` in lists of ``size`` (default ``LOOKUP_CHUNK``)."""
    size = size or LOOKUP_CHUNK
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


_Row = TypeVar("_Row")


class _ChunkedJudge(Generic[_Row]):
    """The loop every check shares: rows that passed the per-row checks are collected and
    judged ``LOOKUP_CHUNK`` at a time (one lookup query per chunk, not one per row), and
    progress is reported every ``LOOKUP_CHUNK`` rows read.

    Call ``row(item)`` once per row read (``item`` None when the row is not to be judged),
    then ``finish()`` once the file is read.
    """

    def __init__(
        self, judge: Callable[[list[_Row]], None], *, stage: str, total: int, progress: Progress
    ):
        self.judge, self.stage, self.total, self.progress = judge, stage, total, progress
        self.chunk: list[_Row] = []
        self.done = 0

    def row(self, item: _Row | None) -> None:
        if item is not None:
            self.chunk.append(item)
        if len(self.chunk) >= LOOKUP_CHUNK:
            self.judge(self.chunk)
            self.chunk = []
        self.done += 1
        if self.done % LOOKUP_CHUNK == 0:
            self.progress(self.stage, self.done, max(self.total, self.done))

    def finish(self) -> None:
        if self.chunk:
            self.judge(self.chunk)
            self.chunk = []
        self.progress(self.stage, self.done, self.done)


# --- reading files ------------------------------------------------------------------------


class ImportFileError(Exception):
    """The file cannot be read on: ``problems`` are ``(row, column, problem)``, the row
    None for the file as a whole."""

    def __init__(self, problem: str, *, row: int | None = None, column: str = ""):
        super().__init__(problem)
        self.problems: list[tuple[int | None, str, str]] = [(row, column, problem)]


def source_name(source: FileSource) -> str:
    if isinstance(source, str | Path):
        return Path(source).name
    return Path(getattr(source, "name", "") or "upload").name


@contextmanager
def _open_binary(source: FileSource):
    if isinstance(source, str | Path):
        with Path(source).open("rb") as handle:
            yield handle
        return
    if hasattr(source, "seek"):
        source.seek(0)
    if isinstance(source, io.TextIOBase):
        yield io.BytesIO(source.read().encode("utf-8"))
        return
    yield source


def file_digest(source: FileSource) -> tuple[str, int]:
    """SHA-256 and size of the file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with _open_binary(source) as handle:
        while chunk := handle.read(1024 * 1024):
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _is_xlsx(source: FileSource) -> bool:
    suffix = Path(source_name(source)).suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        return True
    if suffix == ".csv":
        return False
    with _open_binary(source) as handle:
        return handle.read(2) == b"PK"


def _csv_lines(handle, name: str) -> Iterator[str]:
    """The file's lines decoded as UTF-8 (a leading byte-order mark dropped)."""
    offset = 0
    for raw in handle:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"file {name!r} is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                f"{offset + exc.start}); save it as 'CSV UTF-8'"
            ) from None
        if offset == 0:
            line = line.removeprefix("\ufeff")
        offset += len(raw)
        yield line


def _csv_records(source: FileSource, name: str) -> Iterator[list[str]]:
    with _open_binary(source) as handle:
        try:
            yield from csv.reader(_csv_lines(handle, name))
        except csv.Error as exc:
            raise ImportFileError(f"file {name!r} is not a readable CSV file ({exc})") from None


def _cell_text(value) -> str:
    """A spreadsheet cell as the text a person sees in it."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _xlsx_records(source: FileSource, name: str) -> Iterator[list[str]]:
    with _open_binary(source) as handle:
        try:
            workbook = load_workbook(handle, read_only=True, data_only=True)
        except (BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise ImportFileError(
                f"file {name!r} is not a readable XLSX workbook ({exc})"
            ) from None
        try:
            sheet = workbook.worksheets[0]
            for values in sheet.iter_rows(values_only=True):
                yield [_cell_text(value) for value in values]
        except (BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ImportFileError(
                f"file {name!r} is not a readable XLSX workbook ({exc})"
            ) from None
        finally:
            workbook.close()


def _header_columns(kind: str, header: list[str]) -> dict[str, int]:
    """Where each column is; a header lacking columns is one problem per column."""
    names = [str(cell).strip().lower() for cell in header]
    missing = [
        column
        for column in COLUMNS[kind]
        if column not in names and column not in OPTIONAL_COLUMNS[kind]
    ]
    if missing:
        error = ImportFileError("missing columns")
        error.problems = [
            (
                1,
                column,
                f"missing column {column!r}; a {kind} file has the columns "
                f"{', '.join(COLUMNS[kind])}",
            )
            for column in missing
        ]
        raise error
    return {column: names.index(column) for column in COLUMNS[kind] if column in names}


def read_rows(kind: str, source: FileSource) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream the data rows of one import file: ``(row number, {column: stripped text})``.

    Blank rows are skipped (their numbers too). Raises ``ImportFileError`` when the file
    cannot be read, lacks a column or has no data rows; this can happen part-way through
    (a byte that is not UTF-8 on row 80,000).
    """
    name = source_name(source)
    records = _xlsx_records(source, name) if _is_xlsx(source) else _csv_records(source, name)
    header = next(records, None)
    if header is None or not any(str(cell).strip() for cell in header):
        raise ImportFileError(f"file {name!r} is empty")
    positions = _header_columns(kind, header)
    yielded = 0
    for index, record in enumerate(records):
        values = {
            column: (record[position].strip() if position < len(record) else "")
            for column, position in positions.items()
        }
        if not any(values.values()):
            continue
        for column in COLUMNS[kind]:
            values.setdefault(column, "")
        yielded += 1
        yield FIRST_DATA_ROW + index, values
    if not yielded:
        raise ImportFileError(f"file {name!r} has no data rows")


def estimated_rows(source: FileSource) -> int:
    """Data rows in the file, for progress: lines of a CSV file, the sheet's dimension of
    an XLSX workbook (0 when unknown)."""
    try:
        if _is_xlsx(source):
            with _open_binary(source) as handle:
                workbook = load_workbook(handle, read_only=True)
                try:
                    return max((workbook.worksheets[0].max_row or 1) - 1, 0)
                finally:
                    workbook.close()
        lines = 0
        with _open_binary(source) as handle:
            while chunk := handle.read(1024 * 1024):
                lines += chunk.count(b"\n")
        return max(lines - 1, 0)
    except (BadZipFile, InvalidFileException, KeyError, OSError, ValueError, IndexError):
        return 0


# --- checking rows ------------------------------------------------------------------------


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


def _cell_normalized(
    problems: list[ImportProblem], kind: str, row: int, column: str, raw: str, normalize
) -> str:
    """``normalize(raw)``; if it refuses the value, the problem is recorded for this cell
    and "" is returned."""
    try:
        return normalize(raw)
    except ValidationError as exc:
        problems.append(ImportProblem(kind, row, column, _message(exc)))
        return ""


def _fields_checked(
    problems: list[ImportProblem], kind: str, row: int, model, values: dict[str, str]
) -> None:
    """Record, per cell, what the model's field validation refuses (cells that already
    have a problem are not judged twice)."""
    reported = {p.column for p in problems if p.row == row and p.kind == kind}
    for column, message in field_problems(model, values).items():
        if column not in reported:
            problems.append(ImportProblem(kind, row, column, message))


def one_line(text: str) -> str:
    """Runs of whitespace as one space, as the services store names and titles."""
    return " ".join(text.split())


def holder_row_parse(
    row: int, record: dict[str, str], problems: list[ImportProblem]
) -> HolderRow | None:
    """One rights-holder row, normalized; None (and problems) when a cell is refused."""
    kind = RIGHTS_HOLDERS
    before = len(problems)
    name = one_line(record["legal_name"])
    if not name:
        problems.append(ImportProblem(kind, row, "legal_name", "legal name is empty"))
    holder_kind = record["kind"].lower()
    valid_kinds = RightsHolder.Kind.values
    if holder_kind not in valid_kinds:
        problems.append(
            ImportProblem(
                kind,
                row,
                "kind",
                f"kind {record['kind']!r} is not one of {', '.join(sorted(valid_kinds))}",
            )
        )
    values = {}
    for column, normalize in (("isni", isni_normalize), ("ipi", ipi_normalize)):
        values[column] = ""
        if record[column]:
            values[column] = _cell_normalized(
                problems, kind, row, column, record[column], normalize
            )
    currency = _cell_normalized(
        problems,
        kind,
        row,
        "payout_currency",
        record["payout_currency"] or "USD",
        currency_normalize,
    )
    holder = HolderRow(
        row=row,
        legal_name=name,
        kind=holder_kind,
        isni=values["isni"],
        ipi=values["ipi"],
        payout_currency=currency,
        contact_email=record["contact_email"],
        payout_details=record["payout_details"],
    )
    _fields_checked(problems, kind, row, RightsHolder, {"legal_name": name, **holder.values()})
    return holder if len(problems) == before else None


def holder_rows(source: FileSource) -> Iterator[HolderRow]:
    """The rights-holder rows of a file that was checked without problems."""
    problems: list[ImportProblem] = []
    for row, record in read_rows(RIGHTS_HOLDERS, source):
        holder = holder_row_parse(row, record, problems)
        assert holder is not None, problems  # the file changed since it was checked
        yield holder


def _check_holders(source: FileSource, plan: ImportPlan, progress: Progress) -> set[str]:
    """Check the rights-holder rows; returns every legal name in the file (good or not)."""
    kind = RIGHTS_HOLDERS
    problems = plan.problems
    names_in_file: set[str] = set()
    seen_isni: dict[str, int] = {}
    seen_ipi: dict[str, int] = {}
    first_row_of_name: dict[str, int] = {}

    def judge(chunk: list[HolderRow]) -> None:
        existing = {
            holder.legal_name: holder
            for holder in RightsHolder.objects.filter(legal_name__in=[h.legal_name for h in chunk])
        }
        for column in ("isni", "ipi"):
            wanted = {getattr(h, column): h for h in chunk if getattr(h, column)}
            for other in RightsHolder.objects.filter(**{f"{column}__in": list(wanted)}):
                holder_row = wanted[getattr(other, column)]
                if other.legal_name != holder_row.legal_name:
                    problems.append(
                        ImportProblem(
                            kind,
                            holder_row.row,
                            column,
                            f"{column.upper()} {getattr(other, column)} is already registered "
                            f"for {other.legal_name!r}",
                        )
                    )
        for holder_row in chunk:
            holder = existing.get(holder_row.legal_name)
            if holder is None:
                plan.holders_created += 1
            elif all(getattr(holder, key) == value for key, value in holder_row.values().items()):
                plan.holders_unchanged += 1
            else:
                plan.holders_update.add(holder_row.legal_name)

    judged = _ChunkedJudge(
        judge, stage=f"check {kind}", total=plan.row_totals.get(kind, 0), progress=progress
    )
    for row, record in read_rows(kind, source):
        plan.rows += 1
        before = len(problems)
        holder = holder_row_parse(row, record, problems)
        name = one_line(record["legal_name"])
        names_in_file.add(name)
        if name and name.casefold() in first_row_of_name:
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "legal_name",
                    f"duplicate of row {first_row_of_name[name.casefold()]} in this file",
                )
            )
        elif name:
            first_row_of_name[name.casefold()] = row
        if holder is not None:
            for column, seen in (("isni", seen_isni), ("ipi", seen_ipi)):
                value = getattr(holder, column)
                if not value:
                    continue
                if value in seen:
                    problems.append(
                        ImportProblem(
                            kind,
                            row,
                            column,
                            f"{column.upper()} {value} is also on row {seen[value]} in this file",
                        )
                    )
                seen[value] = row
        judged.row(holder if holder is not None and len(problems) == before else None)
    judged.finish()
    return names_in_file


def _resolve_audio_path(raw: str, base_dir: Path | None) -> Path | None:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    if base_dir is None:
        return None
    return base_dir / path


def _audio_check(path: Path) -> AudioInfo:
    return audio_inspect(
        path,
        max_bytes=settings.CATALOG_MAX_AUDIO_BYTES,
        max_seconds=settings.CATALOG_MAX_AUDIO_SECONDS,
    )


def recording_row_parse(
    row: int,
    record: dict[str, str],
    problems: list[ImportProblem],
    base_dir: Path | None,
    inspect: Callable[[Path], AudioInfo] = _audio_check,
) -> RecordingRow | None:
    """One recording row, normalized, its audio inspected; None (and problems) when a
    cell is refused."""
    kind = RECORDINGS
    before = len(problems)
    isrc = _cell_normalized(problems, kind, row, "isrc", record["isrc"], isrc_normalize)
    title = one_line(record["title"])
    if not title:
        problems.append(ImportProblem(kind, row, "title", "title is empty"))
    iswc = ""
    if record["iswc"]:
        iswc = _cell_normalized(problems, kind, row, "iswc", record["iswc"], iswc_normalize)
    _fields_checked(problems, kind, row, Recording, {"isrc": isrc, "title": title, "iswc": iswc})
    audio = None
    path = None
    if not record["audio_path"]:
        problems.append(ImportProblem(kind, row, "audio_path", "audio path is empty"))
    else:
        path = _resolve_audio_path(record["audio_path"], base_dir)
        if path is None:
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "audio_path",
                    "a relative audio path needs the import file's folder; "
                    "use an absolute path or import from a folder",
                )
            )
        else:
            try:
                audio = inspect(path)
            except AudioError as exc:
                problems.append(ImportProblem(kind, row, "audio_path", exc.message))
    if len(problems) != before:
        return None
    return RecordingRow(row=row, isrc=isrc, title=title, iswc=iswc, audio_path=path, audio=audio)


def new_recording_rows(
    source: FileSource, base_dir: Path | None, new_audio: dict[int, str]
) -> Iterator[RecordingRow]:
    """The rows of new recordings (``ImportPlan.new_audio``) of a file that was checked.
    Their audio must still be the audio checked; a row that is now refused raises
    ``ImportFileError`` (its file changed meanwhile)."""
    for row, record in read_rows(RECORDINGS, source):
        if row not in new_audio:
            continue
        problems: list[ImportProblem] = []
        recording = recording_row_parse(
            row,
            record,
            problems,
            base_dir,
            inspect=lambda path, sha256=new_audio[row]: audio_reinspect(path, sha256=sha256),
        )
        if recording is None:
            first = problems[0]
            raise ImportFileError(first.problem, row=row, column=first.column)
        yield recording


@dataclass
class _RecordingsSeen:
    """What the shares check needs to know of the recordings file."""

    isrcs_in_file: set[str] = field(default_factory=set)  # every ISRC named, good or not
    good_rows: dict[str, int] = field(default_factory=dict)  # isrc -> row, rows without problems


def _check_recordings(
    source: FileSource, plan: ImportPlan, base_dir: Path | None, progress: Progress
) -> _RecordingsSeen:
    kind = RECORDINGS
    problems = plan.problems
    seen = _RecordingsSeen()
    first_row_of_isrc: dict[str, int] = {}
    first_row_of_audio: dict[str, int] = {}

    def judge(chunk: list[RecordingRow]) -> None:
        existing = {
            r.isrc: r for r in Recording.objects.filter(isrc__in=[row.isrc for row in chunk])
        }
        same_audio = {
            r.audio_sha256: r
            for r in Recording.objects.filter(
                audio_sha256__in=[row.audio.sha256 for row in chunk]
            ).only("isrc", "audio_sha256")
        }
        for recording_row in chunk:
            registered = existing.get(recording_row.isrc)
            if registered is None:
                other = same_audio.get(recording_row.audio.sha256)
                if other is not None:
                    problems.append(
                        ImportProblem(
                            kind,
                            recording_row.row,
                            "audio_path",
                            f"this audio is already registered as ISRC {other.isrc}",
                        )
                    )
                else:
                    plan.new_isrcs.add(recording_row.isrc)
                    plan.new_audio[recording_row.row] = recording_row.audio.sha256
                continue
            differences = [
                label
                for label, same in (
                    ("title", registered.title == recording_row.title),
                    ("ISWC", registered.iswc == recording_row.iswc),
                    ("audio", registered.audio_sha256 == recording_row.audio.sha256),
                )
                if not same
            ]
            if differences:
                problems.append(
                    ImportProblem(
                        kind,
                        recording_row.row,
                        "isrc",
                        f"ISRC {recording_row.isrc} is already registered (as "
                        f"{registered.title!r}) with a different {', '.join(differences)}",
                    )
                )
            else:
                plan.recordings_unchanged += 1

    judged = _ChunkedJudge(
        judge, stage=f"check {kind}", total=plan.row_totals.get(kind, 0), progress=progress
    )
    for row, record in read_rows(kind, source):
        plan.rows += 1
        before = len(problems)
        recording = recording_row_parse(row, record, problems, base_dir)
        isrc = recording.isrc if recording is not None else safe_isrc(record["isrc"])
        seen.isrcs_in_file.add(isrc)
        if recording is not None and isrc in first_row_of_isrc:
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "isrc",
                    f"duplicate ISRC {isrc}: also on row {first_row_of_isrc[isrc]} in this file",
                )
            )
        elif recording is not None:
            first_row_of_isrc[isrc] = row
        if recording is not None:
            sha = recording.audio.sha256
            if sha in first_row_of_audio:
                problems.append(
                    ImportProblem(
                        kind,
                        row,
                        "audio_path",
                        f"same audio as row {first_row_of_audio[sha]} in this file",
                    )
                )
            else:
                first_row_of_audio[sha] = row
        good = recording is not None and len(problems) == before
        if good:
            seen.good_rows[isrc] = row
        judged.row(recording if good else None)
    judged.finish()
    return seen


def _parse_percent(raw: str) -> tuple[Decimal | None, str]:
    text = raw.replace(",", ".").removesuffix("%").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, f"share {raw!r} is not a number"
    if not value.is_finite():
        return None, f"share {raw!r} is not a number"
    if value <= 0:
        return None, f"share {raw!r} must be greater than 0"
    if value > SHARES_TOTAL:
        return None, f"share {raw!r} is over 100"
    if value != value.quantize(PERCENT_QUANTUM):
        return None, f"share {raw!r} has more than 4 decimal places"
    return value.quantize(PERCENT_QUANTUM), ""


def _check_shares(
    source: FileSource,
    plan: ImportPlan,
    holder_names_in_file: set[str],
    recordings: _RecordingsSeen,
    progress: Progress,
) -> set[str]:
    """Check share rows. A holder or recording whose own row in another file has a problem
    counts as known here: that problem is reported once, on its own row. Returns every
    ISRC the file names (rows with problems included)."""
    kind = OWNERSHIP_SHARES
    problems = plan.problems
    # isrc -> [(row, legal name, percent)]: a recording's shares may be anywhere in the
    # file, and all of them are needed to judge their sum.
    by_isrc: dict[str, list[tuple[int, str, Decimal]]] = defaultdict(list)
    isrcs_with_bad_rows: set[str] = set()
    registered_names: set[str] = set()
    names: dict[str, str] = {}  # one string object per holder name, however many rows

    def judge_holders(chunk: list[tuple[int, str, str, Decimal | None, int]]) -> None:
        unknown = {name for _, _, name, _, _ in chunk} - holder_names_in_file - registered_names
        unknown.discard("")
        if unknown:
            registered_names.update(
                RightsHolder.objects.filter(legal_name__in=unknown).values_list(
                    "legal_name", flat=True
                )
            )
        for row, isrc, holder, percent, before in chunk:
            good = before == 0
            if holder and holder not in holder_names_in_file and holder not in registered_names:
                good = False
                problems.append(
                    ImportProblem(
                        kind,
                        row,
                        "rights_holder",
                        f"unknown rights holder {holder!r}: not registered and not in the "
                        "rights_holders file",
                    )
                )
            if good:
                by_isrc[isrc].append((row, names.setdefault(holder, holder), percent))
            else:
                isrcs_with_bad_rows.add(isrc)

    judged = _ChunkedJudge(
        judge_holders,
        stage=f"check {kind}",
        total=plan.row_totals.get(kind, 0),
        progress=progress,
    )
    for row, record in read_rows(kind, source):
        plan.rows += 1
        before = len(problems)
        isrc = _cell_normalized(problems, kind, row, "isrc", record["isrc"], isrc_normalize)
        holder = one_line(record["rights_holder"])
        if not holder:
            problems.append(ImportProblem(kind, row, "rights_holder", "rights holder is empty"))
        percent, error = _parse_percent(record["percent"])
        if error:
            problems.append(ImportProblem(kind, row, "percent", error))
        judged.row(
            (row, isrc or safe_isrc(record["isrc"]), holder, percent, len(problems) - before)
        )
    judged.finish()

    for isrcs in chunked(list(by_isrc)):
        registered = set(Recording.objects.filter(isrc__in=isrcs).values_list("isrc", flat=True))
        registered_shares: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        for isrc, name, percent in OwnershipShare.objects.filter(
            recording__isrc__in=registered
        ).values_list("recording__isrc", "rights_holder__legal_name", "percent"):
            registered_shares[isrc].append((name, percent))
        for isrc in isrcs:
            _judge_recording_shares(
                plan, isrc, by_isrc[isrc], registered, registered_shares, recordings,
                isrcs_with_bad_rows,
            )  # fmt: skip
    return set(by_isrc) | isrcs_with_bad_rows


def _judge_recording_shares(
    plan: ImportPlan,
    isrc: str,
    shares: list[tuple[int, str, Decimal]],
    registered: set[str],
    registered_shares: dict[str, list[tuple[str, Decimal]]],
    recordings: _RecordingsSeen,
    isrcs_with_bad_rows: set[str],
) -> None:
    kind = OWNERSHIP_SHARES
    problems = plan.problems
    if isrc in recordings.isrcs_in_file and isrc not in recordings.good_rows:
        return  # its recording row has a problem, reported there
    if isrc not in registered and isrc not in recordings.good_rows:
        for row, _, _ in shares:
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "isrc",
                    f"unknown recording {isrc}: not registered and not in the recordings file",
                )
            )
        return
    seen: dict[str, int] = {}
    duplicate = False
    for row, holder, _ in shares:
        if holder in seen:
            duplicate = True
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "rights_holder",
                    f"{holder!r} already has a share of {isrc} on row {seen[holder]}",
                )
            )
        seen[holder] = row
    # Rows dropped for a problem still belong to their recording: no sum without them.
    if duplicate or isrc in isrcs_with_bad_rows:
        return
    total = sum((percent for _, _, percent in shares), Decimal(0))
    if total != SHARES_TOTAL:
        row_list = ", ".join(str(row) for row, _, _ in shares)
        problems.append(
            ImportProblem(
                kind,
                shares[0][0],
                "percent",
                f"shares of {isrc} (rows {row_list}) sum to {total.normalize():f}, not 100",
            )
        )
        return
    wanted = sorted((holder, percent) for _, holder, percent in shares)
    if wanted == sorted(registered_shares.get(isrc, [])):
        plan.shares_unchanged += 1
    else:
        plan.shares_set[isrc] = wanted


def safe_isrc(raw: str) -> str:
    try:
        return isrc_normalize(raw)
    except ValidationError:
        return raw


def _read_checked(kind: str, plan: ImportPlan, check: Callable[[], object], default) -> object:
    """Run one file's check; a file that cannot be read is one problem without a row."""
    try:
        return check()
    except ImportFileError as exc:
        for row, column, problem in exc.problems:
            plan.problems.append(ImportProblem(kind, row, column, problem))
        return default


def import_plan_build(
    files: dict[str, FileSource],
    *,
    base_dirs: dict[str, Path | None] | None = None,
    progress: Progress | None = None,
) -> ImportPlan:
    """Read and check the files (any of the three kinds) as one import."""
    unknown = set(files) - set(KINDS)
    assert not unknown, f"unknown import kinds {unknown}"
    progress = progress or _no_progress
    plan = ImportPlan(base_dirs=dict(base_dirs or {}))
    readable: dict[str, FileSource] = {}
    for kind in KINDS:
        if kind not in files:
            continue
        source = files[kind]
        name = source_name(source)
        plan.file_names[kind] = name
        try:
            sha256, size = file_digest(source)
        except FileNotFoundError:
            plan.problems.append(ImportProblem(kind, None, "", f"file {name!r} does not exist"))
            continue
        plan.files_sha256[kind] = sha256
        if size == 0:
            plan.problems.append(ImportProblem(kind, None, "", f"file {name!r} is empty"))
            continue
        plan.row_totals[kind] = estimated_rows(source)
        readable[kind] = source
    holders: set[str] = set()
    if RIGHTS_HOLDERS in readable:
        holders = _read_checked(
            RIGHTS_HOLDERS,
            plan,
            lambda: _check_holders(readable[RIGHTS_HOLDERS], plan, progress),
            set(),
        )
    recordings = _RecordingsSeen()
    if RECORDINGS in readable:
        recordings = _read_checked(
            RECORDINGS,
            plan,
            lambda: _check_recordings(
                readable[RECORDINGS], plan, plan.base_dirs.get(RECORDINGS), progress
            ),
            _RecordingsSeen(),
        )
    isrcs_with_shares: set[str] | None = None  # None: no shares file, or an unreadable one
    if OWNERSHIP_SHARES in readable:
        isrcs_with_shares = _read_checked(
            OWNERSHIP_SHARES,
            plan,
            lambda: _check_shares(readable[OWNERSHIP_SHARES], plan, holders, recordings, progress),
            None,
        )
    if isrcs_with_shares is not None:
        # A new recording is only valid with its shares.
        for isrc in sorted(plan.new_isrcs):
            if isrc not in isrcs_with_shares:
                plan.problems.append(
                    ImportProblem(
                        RECORDINGS,
                        recordings.good_rows[isrc],
                        "isrc",
                        f"recording {isrc} has no ownership shares in the ownership_shares "
                        "file; a new recording needs shares summing to 100",
                    )
                )
    elif OWNERSHIP_SHARES not in files:
        for isrc in sorted(plan.new_isrcs):
            plan.problems.append(
                ImportProblem(
                    RECORDINGS,
                    recordings.good_rows[isrc],
                    "isrc",
                    f"recording {isrc} is new but no ownership_shares file was "
                    "given; import recordings together with their shares",
                )
            )
    plan.problems.sort(key=lambda p: (KINDS.index(p.kind), p.row or 0, p.column))
    return plan
