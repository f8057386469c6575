"""Files for people: payout batch exports for finance (CSV and XLSX) and rights holders'
statements (PDF, fpdf2; the flat CSV and XLSX are ``ledger.statement_exports``), safe to
open in a spreadsheet.

Formula injection: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return would be run as a formula by Excel/LibreOffice (OWASP "CSV injection");
such cells are prefixed with a single quote. Amounts are exact decimals in major units
(plus the integer minor units in payout files), never floats: text in CSV, numeric cells
shown with two decimals in XLSX. Statement amounts are
written as they are even when negative: a number we format from a ``Decimal`` (``-1.25``)
is read as a number, never as a formula; every text cell (prompts, titles, memos) is
neutralised.
"""

import io
import re
import zipfile
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import matplotlib
import pandas as pd
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from openpyxl import Workbook

from ledger.models import PayoutBatch, Statement
from ledger.money import accrual_to_text, minor_to_decimal

# The media type of each file this module writes, for the pages and the API alike.
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = [
    "batch_id",
    "line_id",
    "rights_holder_id",
    "legal_name",
    "contact_email",
    "payout_details",
    "payout_reference",
    "currency",
    "amount",
    "amount_minor",
    "status",
]


_NUMBER_CELL = re.compile(rb'<c r="([A-Z]+[0-9]+)"([^>]*)><v>[^<]*</v>')


def xlsx_exact_numbers(data: bytes, exact: Mapping[int, Mapping[str, Decimal]]) -> bytes:
    """The workbook ``data`` with the numeric cells in ``exact`` (worksheet number from 1
    -> cell coordinate -> value) holding their exact decimal text.

    openpyxl writes every number through ``"%.16g"``, a float conversion, so a Decimal
    such as 0.0215743 would be stored as 0.02157429999999999: a spreadsheet reads it as
    the same double, but the file would no longer say the exact amount the ledger booked.
    """
    if not exact:
        return data
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            sheet = re.fullmatch(r"xl/worksheets/sheet([0-9]+)\.xml", info.filename)
            values = exact.get(int(sheet.group(1))) if sheet else None
            if values:

                def exact_value(match: re.Match, values=values) -> bytes:
                    value = values.get(match.group(1).decode())
                    if value is None:
                        return match.group(0)
                    text = format(value, "f").encode()
                    return (
                        b'<c r="'
                        + match.group(1)
                        + b'"'
                        + match.group(2)
                        + b"><v>"
                        + text
                        + b"</v>"
                    )

                content = _NUMBER_CELL.sub(exact_value, content)
            target.writestr(info, content)
    return buffer.getvalue()


def cell_safe(value: object) -> object:
    """Neutralise a text cell a spreadsheet would evaluate as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def payout_batch_frame(*, batch: PayoutBatch) -> pd.DataFrame:
    rows = []
    for line in batch.lines.select_related("rights_holder").order_by("rights_holder_id"):
        holder = line.rights_holder
        rows.append(
            {
                "batch_id": batch.pk,
                "line_id": line.pk,
                "rights_holder_id": holder.pk,
                "legal_name": holder.legal_name,
                "contact_email": holder.contact_email,
                "payout_details": holder.payout_details,
                "payout_reference": line.reference,
                "currency": batch.currency,
                "amount": minor_to_decimal(line.amount_minor, batch.currency),
                "amount_minor": line.amount_minor,
                "status": line.status,
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in frame.columns:  # every column: pandas 3 text columns are not dtype object
        frame[column] = frame[column].map(cell_safe)
    return frame


def payout_batch_export(*, batch: PayoutBatch, fmt: str) -> bytes:
    """The batch as ``csv`` (UTF-8) or ``xlsx`` bytes."""
    frame = payout_batch_frame(batch=batch)
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    if fmt == "xlsx":
        # Written cell by cell: pandas would store the Decimal amounts as text.
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = f"payout-batch-{batch.pk}"
        sheet.append(COLUMNS)
        amount_column = COLUMNS.index("amount") + 1
        exact = {}
        for record in frame.itertuples(index=False):
            sheet.append(list(record))
            cell = sheet.cell(row=sheet.max_row, column=amount_column)
            cell.number_format = "#,##0.00"
            exact[cell.coordinate] = cell.value
        buffer = io.BytesIO()
        workbook.save(buffer)
        return xlsx_exact_numbers(buffer.getvalue(), {1: exact})
    raise ValueError(f"unknown export format {fmt!r}")


# --- statements ------------------------------------------------------------------------------

STATEMENT_COLUMNS = [
    "kind",
    "entry",
    "date",
    "generation",
    "attribution_run",
    "description",
    "tracks",
    "share_of_pool",
    "amount",
    "currency",
]


def statement_rows(*, content: dict) -> list[dict]:
    """A statement's content as rows: the opening balance, every movement in ledger order
    (``generation``, ``reversal``, ``payout_failure``, ``payout``), the closing balance.
    The movements' amounts sum to closing minus opening. Amounts in major units, exact."""
    currency = content["currency"]

    def money(amount: int) -> str:
        return accrual_to_text(amount, currency)

    movements = []
    for line in content["lines"]:
        movements.append(
            {
                "kind": "generation",
                "entry": line["entry"],
                "date": line["date"],
                "generation": line["generation"],
                "attribution_run": line["attribution_run"],
                "description": line["prompt"],
                "tracks": "; ".join(
                    [
                        f"reference use {r['isrc']} {money(r['amount'])}"
                        for r in line.get("references", ())
                    ]
                    + [f"{t['isrc']} {money(t['amount'])}" for t in line["tracks"]]
                ),
                "share_of_pool": line["share_of_pool"],
                "amount": line["amount_display"],
            }
        )
    for item in content["adjustments"]:
        movements.append(
            {
                "kind": item["kind"],
                "entry": item["entry"],
                "date": item["booked_at"],
                "description": item["memo"],
                "amount": item["amount_display"],
            }
        )
    for item in content["payouts"]:
        movements.append(
            {
                "kind": "payout",
                "entry": item["entry"],
                "date": item["booked_at"],
                "description": f"Payout batch {item['payout_batch']}",
                "amount": item["amount_display"],
            }
        )
    movements.sort(key=lambda row: row["entry"])
    rows = [
        {
            "kind": "opening_balance",
            "date": content["period_starts_at"],
            "amount": content["opening_balance_display"],
        },
        *movements,
        {
            "kind": "closing_balance",
            "date": content["period_ends_at"],
            "amount": content["closing_balance_display"],
        },
    ]
    return [
        {column: row.get(column, "") for column in STATEMENT_COLUMNS} | {"currency": currency}
        for row in rows
    ]


_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu ships with matplotlib
_KIND_LABELS = {
    "opening_balance": "Opening balance",
    "generation": "Generation",
    "reversal": "Reversal",
    "payout_failure": "Failed payout returned",
    "payout": "Payout",
    "closing_balance": "Closing balance",
}


def statement_pdf(*, statement: Statement) -> bytes:
    """The statement as an A4 PDF: header, summary, then every movement with its tracks.

    Deterministic: the same statement gives the same bytes (the creation date is the
    statement's generation time, fonts are embedded from matplotlib's DejaVu).
    """
    return bytes(statement_pdf_document(statement=statement).output())


def statement_pdf_document(*, statement: Statement) -> FPDF:
    """The laid-out PDF of ``statement`` (``statement_pdf`` writes it). A generation's
    tracks are rows of their own under it, so a generation paid by many tracks flows
    across pages instead of being one row taller than a page."""
    content = statement.content
    currency = content["currency"]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(statement.generated_at)
    pdf.set_title(f"Royalty statement {statement.pk}")
    pdf.set_author("Royalty ledger")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("DejaVu", "", str(_FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.add_page()

    def para(text: str, size: float = 9, style: str = "") -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    para("Royalty statement", 16, "B")
    pdf.ln(1)
    para(content["rights_holder_name"], 12, "B")
    para(
        f"Period {content['period_starts_at'][:16].replace('T', ' ')} to "
        f"{content['period_ends_at'][:16].replace('T', ' ')} UTC · amounts in {currency}"
    )
    para(
        f"Statement {statement.pk}, frozen {statement.generated_at:%Y-%m-%d %H:%M} UTC · "
        f"content SHA-256 {statement.content_sha256}",
        7,
    )
    pdf.ln(3)
    rows = statement_rows(content=content)
    tracks_of = {line["entry"]: line["tracks"] for line in content["lines"]}
    references_of = {line["entry"]: line.get("references", []) for line in content["lines"]}
    adjustments = content["adjustments"]
    summary = [
        ("Opening balance", content["opening_balance"]),
        ("Earned from generations", sum(line["amount"] for line in content["lines"])),
        ("Reversals", sum(a["amount"] for a in adjustments if a["kind"] == "reversal")),
        (
            "Failed payouts returned",
            sum(a["amount"] for a in adjustments if a["kind"] != "reversal"),
        ),
        ("Paid out", sum(payout["amount"] for payout in content["payouts"])),
        ("Closing balance (owed to you)", content["closing_balance"]),
    ]
    pdf.set_font("DejaVu", "", 9)
    with pdf.table(
        col_widths=(70, 40),
        width=110,
        align="LEFT",
        text_align=("LEFT", "RIGHT"),
        first_row_as_headings=False,
    ) as table:
        for label, amount in summary:
            row = table.row()
            row.cell(label)
            row.cell(accrual_to_text(amount, currency))
    pdf.ln(4)
    para("Movements", 11, "B")
    pdf.ln(1)
    pdf.set_font("DejaVu", "", 8)
    with pdf.table(
        col_widths=(30, 12, 88, 18, 32),
        text_align=("LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT"),
        line_height=4,
    ) as table:
        heading = table.row()
        for title in ("Date (UTC)", "Entry", "Description", "Share of pool", "Amount"):
            heading.cell(title)
        for item in rows:
            row = table.row()
            row.cell(item["date"][:16].replace("T", " "))
            row.cell(str(item["entry"]))
            description = _KIND_LABELS.get(item["kind"], item["kind"])
            if item["description"]:
                description += f": {item['description']}"
            row.cell(description)
            row.cell(item["share_of_pool"])
            row.cell(item["amount"])
            references = references_of.get(item["entry"], ())
            for reference in references:
                reference_row = table.row()
                reference_row.cell("")
                reference_row.cell("")
                reference_row.cell(
                    f"    Reference use: {reference['isrc']}  {reference['title']} "
                    f"({reference['share_percent']} % of the pool)"
                )
                reference_row.cell("")
                reference_row.cell(accrual_to_text(reference["amount"], currency))
            for track in tracks_of.get(item["entry"], ()):
                track_row = table.row()
                track_row.cell("")
                track_row.cell("")
                label = "Training influence: " if references else ""
                track_row.cell(f"    {label}{track['isrc']}  {track['title']}")
                track_row.cell("")
                track_row.cell(accrual_to_text(track["amount"], currency))
    return pdf
