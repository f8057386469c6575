"""The statement as flat files: one line per generation and track, exact amounts that sum
to the statement, numeric workbook cells."""

import csv
import io
import zipfile
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from ledger import services
from ledger.models import SettlementHolderLine, Statement
from ledger.money import accrual_to_decimal
from ledger.selectors.statement_lines import statement_totals
from ledger.splits import SplitPolicy
from ledger.statement_exports import (
    AMOUNT_FORMAT,
    LINE_COLUMNS,
    statement_lines_csv,
    statement_xlsx,
)
from tests.ledger import factories

pytestmark = pytest.mark.django_db

SPREAD = SplitPolicy(temperature=Decimal("0.7"), top_k=None, min_share=Decimal(0))


@pytest.fixture
def busy_statement(small_catalog):
    """Holder 0's statement over six generations that pay many co-owned tracks each (odd
    revenues, so amounts carry sub-cent digits), one of them reversed, and a payout."""
    model_version, holders = small_catalog
    starts = timezone.now() - timedelta(seconds=1)
    entries = []
    for seed, revenue in enumerate((1999, 2001, 777, 12345, 5, 999), start=1):
        generation = factories.generation_create(model_version=model_version, revenue_minor=revenue)
        run = factories.run_create(generation=generation, scores=factories.scores_for(12, seed))
        entries.append(services.generation_settle(attribution_run=run, policy=SPREAD))
    services.journal_entry_reverse(entry=entries[1], reason="refunded generation")
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    services.payout_batch_mark_paid(batch=batch)
    period = services.statement_period_create(starts_at=starts, ends_at=timezone.now())
    services.statement_period_close(period=period)
    statement = services.statement_generate(rights_holder=holders[0], period=period, currency="USD")
    return statement, holders[0]


def test_csv_lines_sum_exactly_to_the_statement(busy_statement):
    statement, holder = busy_statement
    rows = list(csv.DictReader(io.StringIO(statement_lines_csv(statement=statement).decode())))
    assert list(rows[0]) == LINE_COLUMNS
    totals = statement_totals(content=statement.content)
    assert totals.paid_out < 0 and totals.reversed < 0  # the statement has both
    net = sum(Decimal(row["amount"]) for row in rows)
    assert net == accrual_to_decimal(totals.net_earnings, "USD")
    assert net + accrual_to_decimal(
        totals.opening + totals.paid_out + totals.failed_payouts_returned, "USD"
    ) == accrual_to_decimal(statement.closing_balance, "USD")
    # One line per (generation, track) the holder was paid for, and as many reversed.
    paid = SettlementHolderLine.objects.filter(rights_holder=holder)
    earned_lines = sum(len(line.tracks) for line in paid)
    assert sum(row["kind"] == "earning" for row in rows) == earned_lines
    assert sum(row["kind"] == "reversal" for row in rows) > 0
    # A pivot by ISRC: each line names one recording; the per-ISRC sums add up.
    by_isrc = defaultdict(Decimal)
    for row in rows:
        assert len(row["isrc"]) == 12
        by_isrc[row["isrc"]] += Decimal(row["amount"])
    assert sum(by_isrc.values()) == net
    co_owned = [row for row in rows if row["ownership_share_percent"] != "100.0000"]
    assert co_owned and {row["ownership_share_percent"] for row in co_owned} <= {
        "50.0000",
        "25.0000",
    }


def _sheet_xml_values(data: bytes, sheet: int) -> list[list[ElementTree.Element]]:
    namespace = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = ElementTree.fromstring(archive.read(f"xl/worksheets/sheet{sheet}.xml"))
    return [row.findall("m:c", namespace) for row in root.iter(f"{{{namespace['m']}}}row")]


def test_xlsx_amounts_are_numeric_exact_and_two_decimal(busy_statement):
    statement, _ = busy_statement
    data = statement_xlsx(statement=statement)
    workbook = load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["Lines", "Summary", "Header"]
    lines = workbook["Lines"]
    header = [cell.value for cell in lines[1]]
    assert header == LINE_COLUMNS
    amount_column = header.index("amount")
    amount_cells = [row[amount_column] for row in lines.iter_rows(min_row=2)]
    assert amount_cells
    for cell in amount_cells:
        assert cell.data_type == "n" and cell.number_format == AMOUNT_FORMAT
    share = lines.cell(row=2, column=header.index("share_of_pool_percent") + 1)
    assert share.data_type == "n" and share.number_format.endswith("%")
    # The file holds the exact decimals (not float approximations): their sum is exact.
    xml_rows = _sheet_xml_values(data, 1)[1:]
    exact = [Decimal(row[amount_column].findtext("{*}v")) for row in xml_rows]
    totals = statement_totals(content=statement.content)
    assert sum(exact) == accrual_to_decimal(totals.net_earnings, "USD")
    assert any(value != value.quantize(Decimal("0.01")) for value in exact)  # sub-cent kept
    summary = {row[0].value: row[1] for row in workbook["Summary"].iter_rows(min_row=2)}
    closing = summary["Closing balance (owed to you)"]
    assert closing.data_type == "n" and closing.number_format == AMOUNT_FORMAT
    header_sheet = {row[0].value: row[1].value for row in workbook["Header"].iter_rows()}
    assert header_sheet["Content SHA-256"] == statement.content_sha256


def test_the_same_statement_gives_the_same_files(busy_statement):
    statement, _ = busy_statement
    again = Statement.objects.get(pk=statement.pk)
    assert statement_lines_csv(statement=statement) == statement_lines_csv(statement=again)
    first = load_workbook(io.BytesIO(statement_xlsx(statement=statement)))["Lines"]
    second = load_workbook(io.BytesIO(statement_xlsx(statement=again)))["Lines"]
    assert [[c.value for c in r] for r in first.iter_rows()] == [
        [c.value for c in r] for r in second.iter_rows()
    ]
