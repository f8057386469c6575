"""The PDF statement's layout: a generation paid by many tracks flows across pages, one row
per track, instead of one row taller than a page (``ledger.exports.statement_pdf``)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import services
from ledger.exports import statement_pdf, statement_pdf_document
from ledger.splits import SplitPolicy
from tests.ledger import factories

TRACKS = 90
EVERY_TRACK = SplitPolicy(top_k=None, min_share=Decimal(0), temperature=Decimal(5))


@pytest.fixture
def many_track_statement(db):
    model_version, (holder,) = factories.catalog_create(tracks=TRACKS, holders=1)
    starts = timezone.now() - timedelta(seconds=1)
    generation = factories.generation_create(model_version=model_version, revenue_minor=100_000)
    run = factories.run_create(generation=generation, scores=factories.scores_for(TRACKS, 3))
    services.generation_settle(attribution_run=run, policy=EVERY_TRACK)
    period = services.statement_period_create(starts_at=starts, ends_at=timezone.now())
    services.statement_period_close(period=period)
    return services.statement_generate(rights_holder=holder, period=period, currency="USD")


def text_runs(document, page: int) -> int:
    return bytes(document.pages[page].contents).count(b" Tj")


def test_a_generation_with_many_tracks_flows_across_pages(many_track_statement):
    statement = many_track_statement
    assert len(statement.content["lines"][0]["tracks"]) == TRACKS
    document = statement_pdf_document(statement=statement)
    pages = len(document.pages)
    assert pages >= 2
    # Page 1 carries the header, the summary and the first tracks, not just the header:
    # every page is mostly filled with rows.
    runs = [text_runs(document, page) for page in range(1, pages + 1)]
    assert runs[0] >= 60, runs
    assert all(count >= 60 for count in runs[:-1]), runs
    assert statement_pdf(statement=statement).startswith(b"%PDF-")
