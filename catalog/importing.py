"""Reading and checking catalog import files (CSV or XLSX, UTF-8, one kind per file).

This module only reads: it turns files into an ``ImportPlan`` (what would be created or
changed) plus the problems found, row by row. ``catalog.services.catalog_import_files``
applies a plan without problems in one transaction.

Row numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2.
A problem about the whole file has no row number.
"""

import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from catalog.audio import AudioError, AudioInfo, audio_inspect
from catalog.models import SHARES_TOTAL, OwnershipShare, Recording, RightsHolder
from catalog.validators import (
    currency_normalize,
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

FileSource = str | Path | IO[bytes]


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
    audio_path: Path
    audio: AudioInfo


@dataclass(frozen=True)
class ShareRow:
    row: int
    isrc: str
    rights_holder: str  # legal name
    percent: Decimal


@dataclass
class ImportPlan:
    """What applying the files would do; filled by ``import_plan_build``."""

    holders_create: list[HolderRow] = field(default_factory=list)
    holders_update: list[HolderRow] = field(default_factory=list)
    holders_unchanged: int = 0
    recordings_create: list[RecordingRow] = field(default_factory=list)
    recordings_unchanged: int = 0
    # isrc -> [(legal_name, percent)], only recordings whose shares change or are new
    shares_set: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)
    shares_unchanged: int = 0  # recordings whose shares in the file equal the registered ones
    rows: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    files_sha256: dict[str, str] = field(default_factory=dict)
    file_names: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict:
        return {
            "created": {
                RIGHTS_HOLDERS: len(self.holders_create),
                RECORDINGS: len(self.recordings_create),
                OWNERSHIP_SHARES: sum(1 for isrc in self.shares_set if isrc in self._new_isrcs()),
            },
            "updated": {
                RIGHTS_HOLDERS: len(self.holders_update),
                RECORDINGS: 0,
                OWNERSHIP_SHARES: sum(
                    1 for isrc in self.shares_set if isrc not in self._new_isrcs()
                ),
            },
            "unchanged": {
                RIGHTS_HOLDERS: self.holders_unchanged,
                RECORDINGS: self.recordings_unchanged,
                OWNERSHIP_SHARES: self.shares_unchanged,
            },
        }

    def _new_isrcs(self) -> set[str]:
        return {row.isrc for row in self.recordings_create}

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.holders_create or self.holders_update or self.recordings_create or self.shares_set
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


# --- reading files ------------------------------------------------------------------------


def _source_name(source: FileSource) -> str:
    if isinstance(source, str | Path):
        return Path(source).name
    return Path(getattr(source, "name", "") or "upload").name


def _read_bytes(source: FileSource) -> bytes:
    if isinstance(source, str | Path):
        return Path(source).read_bytes()
    if hasattr(source, "seek"):
        source.seek(0)
    data = source.read()
    return data.encode("utf-8") if isinstance(data, str) else data


def read_table(kind: str, source: FileSource) -> tuple[pd.DataFrame | None, list, bytes]:
    """Read one import file into a frame of strings; file-level problems otherwise."""
    name = _source_name(source)
    try:
        data = _read_bytes(source)
    except FileNotFoundError:
        return None, [ImportProblem(kind, None, "", f"file {name!r} does not exist")], b""
    if not data.strip():
        return None, [ImportProblem(kind, None, "", f"file {name!r} is empty")], data
    suffix = Path(name).suffix.lower()
    is_xlsx = suffix in {".xlsx", ".xlsm"} or (suffix != ".csv" and data[:2] == b"PK")
    try:
        if is_xlsx:
            frame = pd.read_excel(io.BytesIO(data), dtype=str, engine="openpyxl")
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                return (
                    None,
                    [
                        ImportProblem(
                            kind,
                            None,
                            "",
                            f"file {name!r} is not UTF-8 (byte 0x{data[exc.start]:02x} at "
                            f"offset {exc.start}); save it as 'CSV UTF-8'",
                        )
                    ],
                    data,
                )
            frame = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False
            )
    except pd.errors.EmptyDataError:
        return None, [ImportProblem(kind, None, "", f"file {name!r} is empty")], data
    except (pd.errors.ParserError, ValueError, OSError, KeyError) as exc:
        what = "XLSX workbook" if is_xlsx else "CSV file"
        return (
            None,
            [ImportProblem(kind, None, "", f"file {name!r} is not a readable {what} ({exc})")],
            data,
        )
    frame = frame.fillna("")
    frame.columns = [str(column).strip().lower() for column in frame.columns]
    missing = [
        column
        for column in COLUMNS[kind]
        if column not in frame.columns and column not in OPTIONAL_COLUMNS[kind]
    ]
    if missing:
        return (
            None,
            [
                ImportProblem(
                    kind,
                    1,
                    column,
                    f"missing column {column!r}; a {kind} file has the columns "
                    f"{', '.join(COLUMNS[kind])}",
                )
                for column in missing
            ],
            data,
        )
    for column in COLUMNS[kind]:
        if column not in frame.columns:
            frame[column] = ""
    frame = frame.map(lambda value: str(value).strip())
    frame.index = range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(frame))
    frame = frame[(frame[list(COLUMNS[kind])] != "").any(axis=1)]  # skip blank lines
    if frame.empty:
        return None, [ImportProblem(kind, None, "", f"file {name!r} has no data rows")], data
    return frame, [], data


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


def _check_holders(frame: pd.DataFrame, plan: ImportPlan) -> dict[str, HolderRow]:
    kind = RIGHTS_HOLDERS
    problems = plan.problems
    in_file: dict[str, HolderRow] = {}
    seen_isni: dict[str, int] = {}
    seen_ipi: dict[str, int] = {}
    first_row_of_name: dict[str, int] = {}
    valid_kinds = set(RightsHolder.Kind.values)
    for row, record in frame.iterrows():
        before = len(problems)
        name = " ".join(record["legal_name"].split())
        if not name:
            problems.append(ImportProblem(kind, row, "legal_name", "legal name is empty"))
        elif name.casefold() in first_row_of_name:
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "legal_name",
                    f"duplicate of row {first_row_of_name[name.casefold()]} in this file",
                )
            )
        else:
            first_row_of_name[name.casefold()] = row
        holder_kind = record["kind"].lower()
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
        for column, normalize, seen in (
            ("isni", isni_normalize, seen_isni),
            ("ipi", ipi_normalize, seen_ipi),
        ):
            values[column] = ""
            if record[column]:
                values[column] = _cell_normalized(
                    problems, kind, row, column, record[column], normalize
                )
            if not values[column]:
                continue
            if values[column] in seen:
                problems.append(
                    ImportProblem(
                        kind,
                        row,
                        column,
                        f"{column.upper()} {values[column]} is also on row "
                        f"{seen[values[column]]} in this file",
                    )
                )
            seen[values[column]] = row
        currency = _cell_normalized(
            problems,
            kind,
            row,
            "payout_currency",
            record["payout_currency"] or "USD",
            currency_normalize,
        )
        email = record["contact_email"]
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append(
                    ImportProblem(kind, row, "contact_email", f"{email!r} is not an email address")
                )
        if len(problems) == before:
            in_file[name] = HolderRow(
                row=row,
                legal_name=name,
                kind=holder_kind,
                isni=values["isni"],
                ipi=values["ipi"],
                payout_currency=currency,
                contact_email=email,
                payout_details=record["payout_details"],
            )
    if not in_file:
        return in_file
    existing = {
        holder.legal_name: holder
        for holder in RightsHolder.objects.filter(legal_name__in=list(in_file))
    }
    for column in ("isni", "ipi"):
        wanted = {getattr(r, column): r for r in in_file.values() if getattr(r, column)}
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
    for name, holder_row in in_file.items():
        holder = existing.get(name)
        if holder is None:
            plan.holders_create.append(holder_row)
        elif all(getattr(holder, key) == value for key, value in holder_row.values().items()):
            plan.holders_unchanged += 1
        else:
            plan.holders_update.append(holder_row)
    return in_file


def _resolve_audio_path(raw: str, base_dir: Path | None) -> Path | None:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    if base_dir is None:
        return None
    return base_dir / path


def _check_recordings(
    frame: pd.DataFrame, plan: ImportPlan, base_dir: Path | None
) -> dict[str, RecordingRow]:
    kind = RECORDINGS
    problems = plan.problems
    in_file: dict[str, RecordingRow] = {}
    first_row_of_isrc: dict[str, int] = {}
    first_row_of_hash: dict[str, int] = {}
    max_bytes = settings.CATALOG_MAX_AUDIO_BYTES
    max_seconds = settings.CATALOG_MAX_AUDIO_SECONDS
    for row, record in frame.iterrows():
        before = len(problems)
        isrc = _cell_normalized(problems, kind, row, "isrc", record["isrc"], isrc_normalize)
        if isrc in first_row_of_isrc:
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "isrc",
                    f"duplicate ISRC {isrc}: also on row {first_row_of_isrc[isrc]} in this file",
                )
            )
        elif isrc:
            first_row_of_isrc[isrc] = row
        title = " ".join(record["title"].split())
        if not title:
            problems.append(ImportProblem(kind, row, "title", "title is empty"))
        elif len(title) > 255:
            problems.append(ImportProblem(kind, row, "title", "title is over 255 characters"))
        iswc = ""
        if record["iswc"]:
            iswc = _cell_normalized(problems, kind, row, "iswc", record["iswc"], iswc_normalize)
        audio = None
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
                    audio = audio_inspect(path, max_bytes=max_bytes, max_seconds=max_seconds)
                except AudioError as exc:
                    problems.append(ImportProblem(kind, row, "audio_path", exc.message))
        if audio is not None:
            if audio.sha256 in first_row_of_hash:
                problems.append(
                    ImportProblem(
                        kind,
                        row,
                        "audio_path",
                        f"same audio as row {first_row_of_hash[audio.sha256]} in this file",
                    )
                )
            else:
                first_row_of_hash[audio.sha256] = row
        if len(problems) == before:
            in_file[isrc] = RecordingRow(
                row=row, isrc=isrc, title=title, iswc=iswc, audio_path=path, audio=audio
            )
    if not in_file:
        return in_file
    existing = {r.isrc: r for r in Recording.objects.filter(isrc__in=list(in_file))}
    same_audio = {
        r.audio_sha256: r
        for r in Recording.objects.filter(
            audio_sha256__in=[row.audio.sha256 for row in in_file.values()]
        )
    }
    for isrc, recording_row in in_file.items():
        registered = existing.get(isrc)
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
                plan.recordings_create.append(recording_row)
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
                    f"ISRC {isrc} is already registered (as {registered.title!r}) with a "
                    f"different {', '.join(differences)}",
                )
            )
        else:
            plan.recordings_unchanged += 1
    return in_file


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
    frame: pd.DataFrame,
    plan: ImportPlan,
    holder_names_in_file: set[str],
    recordings_in_file: dict[str, RecordingRow],
    isrcs_in_recordings_file: set[str],
) -> None:
    """Check share rows. A holder or recording whose own row in another file has a problem
    counts as known here: that problem is reported once, on its own row."""
    kind = OWNERSHIP_SHARES
    problems = plan.problems
    rows: list[ShareRow] = []
    names = {" ".join(name.split()) for name in frame["rights_holder"]}
    known_holders = holder_names_in_file | set(
        RightsHolder.objects.filter(legal_name__in=names).values_list("legal_name", flat=True)
    )
    for row, record in frame.iterrows():
        before = len(problems)
        isrc = _cell_normalized(problems, kind, row, "isrc", record["isrc"], isrc_normalize)
        holder = " ".join(record["rights_holder"].split())
        if not holder:
            problems.append(ImportProblem(kind, row, "rights_holder", "rights holder is empty"))
        elif holder not in known_holders:
            problems.append(
                ImportProblem(
                    kind,
                    row,
                    "rights_holder",
                    f"unknown rights holder {holder!r}: not registered and not in the "
                    "rights_holders file",
                )
            )
        percent, error = _parse_percent(record["percent"])
        if error:
            problems.append(ImportProblem(kind, row, "percent", error))
        if len(problems) == before:
            rows.append(ShareRow(row=row, isrc=isrc, rights_holder=holder, percent=percent))
    by_isrc: dict[str, list[ShareRow]] = defaultdict(list)
    for share in rows:
        by_isrc[share.isrc].append(share)
    # Rows dropped above still belong to their recording: do not judge its sum without them.
    good_rows = {share.row for share in rows}
    isrcs_with_bad_rows = {
        _safe_isrc(record["isrc"]) for row, record in frame.iterrows() if row not in good_rows
    }
    registered = {
        r.isrc: r for r in Recording.objects.filter(isrc__in=list(by_isrc)).only("id", "isrc")
    }
    registered_shares: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for share in (
        OwnershipShare.objects.filter(recording__isrc__in=list(registered))
        .select_related("recording", "rights_holder")
        .order_by("recording__isrc", "rights_holder__legal_name")
    ):
        registered_shares[share.recording.isrc].append(
            (share.rights_holder.legal_name, share.percent)
        )
    for isrc, shares in by_isrc.items():
        first = shares[0].row
        if isrc in isrcs_in_recordings_file and isrc not in recordings_in_file:
            continue  # its recording row has a problem, reported there
        if isrc not in registered and isrc not in recordings_in_file:
            for share in shares:
                problems.append(
                    ImportProblem(
                        kind,
                        share.row,
                        "isrc",
                        f"unknown recording {isrc}: not registered and not in the recordings file",
                    )
                )
            continue
        seen: dict[str, int] = {}
        duplicate = False
        for share in shares:
            if share.rights_holder in seen:
                duplicate = True
                problems.append(
                    ImportProblem(
                        kind,
                        share.row,
                        "rights_holder",
                        f"{share.rights_holder!r} already has a share of {isrc} on row "
                        f"{seen[share.rights_holder]}",
                    )
                )
            seen[share.rights_holder] = share.row
        if duplicate or isrc in isrcs_with_bad_rows:
            continue
        total = sum((share.percent for share in shares), Decimal(0))
        if total != SHARES_TOTAL:
            row_list = ", ".join(str(share.row) for share in shares)
            problems.append(
                ImportProblem(
                    kind,
                    first,
                    "percent",
                    f"shares of {isrc} (rows {row_list}) sum to {total.normalize():f}, not 100",
                )
            )
            continue
        wanted = sorted((share.rights_holder, share.percent) for share in shares)
        if wanted == sorted(registered_shares.get(isrc, [])):
            plan.shares_unchanged += 1
        else:
            plan.shares_set[isrc] = wanted
    # A new recording is only valid with its shares.
    new_isrcs = {r.isrc for r in plan.recordings_create}
    for isrc, recording_row in recordings_in_file.items():
        if isrc in new_isrcs and isrc not in by_isrc and isrc not in isrcs_with_bad_rows:
            problems.append(
                ImportProblem(
                    RECORDINGS,
                    recording_row.row,
                    "isrc",
                    f"recording {isrc} has no ownership shares in the ownership_shares "
                    "file; a new recording needs shares summing to 100",
                )
            )


def _safe_isrc(raw: str) -> str:
    try:
        return isrc_normalize(raw)
    except ValidationError:
        return raw


def import_plan_build(
    files: dict[str, FileSource], *, base_dirs: dict[str, Path | None] | None = None
) -> ImportPlan:
    """Read and check the files (any of the three kinds) as one import."""
    unknown = set(files) - set(KINDS)
    assert not unknown, f"unknown import kinds {unknown}"
    base_dirs = base_dirs or {}
    plan = ImportPlan()
    frames: dict[str, pd.DataFrame] = {}
    for kind in KINDS:
        if kind not in files:
            continue
        frame, problems, data = read_table(kind, files[kind])
        plan.problems.extend(problems)
        plan.file_names[kind] = _source_name(files[kind])
        if data:
            plan.files_sha256[kind] = hashlib.sha256(data).hexdigest()
        if frame is not None:
            frames[kind] = frame
            plan.rows += len(frame)
    holders = _check_holders(frames[RIGHTS_HOLDERS], plan) if RIGHTS_HOLDERS in frames else {}
    recordings = (
        _check_recordings(frames[RECORDINGS], plan, base_dirs.get(RECORDINGS))
        if RECORDINGS in frames
        else {}
    )
    if OWNERSHIP_SHARES in frames:
        isrcs_in_recordings_file = (
            {_safe_isrc(raw) for raw in frames[RECORDINGS]["isrc"]}
            if RECORDINGS in frames
            else set()
        )
        holder_names_in_file = set(holders) | (
            {" ".join(name.split()) for name in frames[RIGHTS_HOLDERS]["legal_name"]}
            if RIGHTS_HOLDERS in frames
            else set()
        )
        _check_shares(
            frames[OWNERSHIP_SHARES],
            plan,
            holder_names_in_file,
            recordings,
            isrcs_in_recordings_file,
        )
    elif plan.recordings_create:
        for recording_row in plan.recordings_create:
            plan.problems.append(
                ImportProblem(
                    RECORDINGS,
                    recording_row.row,
                    "isrc",
                    f"recording {recording_row.isrc} is new but no ownership_shares file was "
                    "given; import recordings together with their shares",
                )
            )
    plan.problems.sort(key=lambda p: (KINDS.index(p.kind), p.row or 0, p.column))
    return plan
