"""Payout batch exports for finance: CSV and XLSX (pandas), safe to open in a spreadsheet.

Formula injection: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return would be run as a formula by Excel/LibreOffice (OWASP "CSV injection");
such cells are prefixed with a single quote. Amounts are exact decimal strings in major
units plus the integer minor units; never floats.
"""

import io

import pandas as pd

from ledger.models import PayoutBatch
from ledger.money import minor_to_decimal

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = [
    "batch_id",
    "line_id",
    "rights_holder_id",
    "legal_name",
    "contact_email",
    "payout_details",
    "currency",
    "amount",
    "amount_minor",
    "status",
]


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
                "currency": batch.currency,
                "amount": str(minor_to_decimal(line.amount_minor, batch.currency)),
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
        buffer = io.BytesIO()
        with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
            frame.to_excel(writer, index=False, sheet_name=f"payout-batch-{batch.pk}")
        return buffer.getvalue()
    raise ValueError(f"unknown export format {fmt!r}")
