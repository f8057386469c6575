"""A statement as files finance and rights holders can sum: a flat CSV and an XLSX workbook
with one line per generation and track (``ledger.selectors.statement_lines``).

The layout follows the DDEX DSR flat-file idea (a header record, summary records, then one
detail record per usage) without claiming conformance: docs/ledger.md maps each field to
its DSR counterpart. The CSV holds the detail records only, under one header row, so that
a pivot by ISRC or generation works directly; the workbook adds the header and summary as
sheets of their own.

Money: amounts are exact decimals in major units with every accrual digit (8 places for
USD), formatted from integers, never through a float; in the workbook they are numeric
cells holding that exact decimal, shown with two decimals. The lines' amounts sum exactly
to the statement's net earnings (earned plus reversals). Text cells are neutralised
against formula injection (``ledger.exports.cell_safe``).
"""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font

from ledger.exports import cell_safe, xlsx_exact_numbers
from ledger.models import Statement
from ledger.money import accrual_to_decimal
from ledger.selectors.statement_lines import (
    StatementUsageLine,
    statement_totals,
    statement_usage_lines,
)

LINE_COLUMNS = [
    "statement",
    "rights_holder",
    "period_start",
    "period_end",
    "currency",
    "kind",
    "entry",
    "date",
    "generation",
    "attribution_run",
    "isrc",
    "title",
    "ownership_share_percent",
    "share_of_pool_percent",
    "amount",
    "basis",  # "training influence" or "reference use"
]
AMOUNT_FORMAT = "#,##0.00"
PERCENT_FORMAT = "0.0000%"
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
HUNDRED = Decimal(100)


def _percent_text(fraction: Decimal) -> str:
    return format((fraction * HUNDRED).quantize(Decimal("1e-10")).normalize(), "f")


def _line_record(statement: Statement, line: StatementUsageLine) -> dict:
    content = statement.content
    return {
        "statement": statement.pk,
        "rights_holder": content["rights_holder"],
        "period_start": content["period_starts_at"],
        "period_end": content["period_ends_at"],
        "currency": content["currency"],
        "kind": line.kind,
        "basis": line.basis,
        "entry": line.entry,
        "date": line.date,
        "generation": line.generation,
        "attribution_run": line.attribution_run,
        "isrc": line.isrc,
        "title": cell_safe(line.title),
        "ownership_share_percent": format(line.ownership_percent, "f"),
        "share_of_pool_percent": _percent_text(line.share_of_pool),
        "amount": format(accrual_to_decimal(line.amount, content["currency"]), "f"),
    }


def statement_lines_csv(*, statement: Statement) -> bytes:
    """The statement's usage lines as CSV (UTF-8, one header row ``LINE_COLUMNS``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LINE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for line in statement_usage_lines(statement=statement):
        writer.writerow(_line_record(statement, line))
    return buffer.getvalue().encode("utf-8")


def _utc_naive(text: str) -> datetime:
    """A canonical UTC timestamp as the naive datetime a spreadsheet cell holds."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def statement_xlsx(*, statement: Statement) -> bytes:
    """The statement as a workbook: ``Lines`` (the usage lines, numeric amounts and
    shares), ``Summary`` (opening balance to closing balance) and ``Header`` (who, which
    period, which currency, the statement's content hash).

    Deterministic for a given statement: the workbook's creation time is the statement's.
    """
    content = statement.content
    currency = content["currency"]

    def money(amount: int) -> Decimal:
        return accrual_to_decimal(amount, currency)

    workbook = Workbook()
    workbook.properties.creator = "Royalty ledger"
    workbook.properties.created = statement.generated_at.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.modified = workbook.properties.created
    bold = Font(bold=True)

    lines = workbook.active
    lines.title = "Lines"
    lines.append(LINE_COLUMNS)
    for cell in lines[1]:
        cell.font = bold
    lines.freeze_panes = "A2"
    exact: dict[int, dict[str, Decimal]] = {1: {}, 2: {}}  # sheet -> cell -> amount
    for line in statement_usage_lines(statement=statement):
        record = _line_record(statement, line)
        record["period_start"] = _utc_naive(content["period_starts_at"])
        record["period_end"] = _utc_naive(content["period_ends_at"])
        record["date"] = _utc_naive(line.date)
        record["ownership_share_percent"] = line.ownership_percent / HUNDRED
        record["share_of_pool_percent"] = line.share_of_pool
        record["amount"] = money(line.amount)
        lines.append([record[column] for column in LINE_COLUMNS])
        row = lines.max_row
        for column, number_format in (
            ("period_start", DATE_FORMAT),
            ("period_end", DATE_FORMAT),
            ("date", DATE_FORMAT),
            ("ownership_share_percent", PERCENT_FORMAT),
            ("share_of_pool_percent", PERCENT_FORMAT),
            ("amount", AMOUNT_FORMAT),
        ):
            cell = lines.cell(row=row, column=LINE_COLUMNS.index(column) + 1)
            cell.number_format = number_format
            if isinstance(cell.value, Decimal):
                exact[1][cell.coordinate] = cell.value

    totals = statement_totals(content=content)
    summary = workbook.create_sheet("Summary")
    summary.append(["item", "amount"])
    for cell in summary[1]:
        cell.font = bold
    for label, amount in (
        ("Opening balance", totals.opening),
        ("Earned from generations", totals.earned),
        ("Reversals", totals.reversed),
        ("Net earnings (sum of Lines)", totals.net_earnings),
        ("Failed payouts returned", totals.failed_payouts_returned),
        ("Paid out", totals.paid_out),
        ("Closing balance (owed to you)", totals.closing),
    ):
        summary.append([label, money(amount)])
        cell = summary.cell(row=summary.max_row, column=2)
        cell.number_format = AMOUNT_FORMAT
        exact[2][cell.coordinate] = cell.value

    header = workbook.create_sheet("Header")
    for label, value in (
        ("Statement", statement.pk),
        ("Rights holder", cell_safe(content["rights_holder_name"])),
        ("Rights holder id", content["rights_holder"]),
        ("Period start (UTC, included)", _utc_naive(content["period_starts_at"])),
        ("Period end (UTC, excluded)", _utc_naive(content["period_ends_at"])),
        ("Currency", currency),
        ("Frozen at (UTC)", statement.generated_at.astimezone(UTC).replace(tzinfo=None)),
        ("Content SHA-256", statement.content_sha256),
    ):
        header.append([label, value])
        if isinstance(value, datetime):
            header.cell(row=header.max_row, column=2).number_format = DATE_FORMAT
    for sheet, widths in (
        (lines, {"L": 40}),
        (summary, {"A": 32, "B": 16}),
        (header, {"A": 30, "B": 66}),
    ):
        for column, width in widths.items():
            sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return xlsx_exact_numbers(buffer.getvalue(), exact)
