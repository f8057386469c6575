"""Payout batches and what their drafts reserve."""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import BigIntegerField, Count, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from ledger.models import JournalEntry, PayoutBatch, PayoutLine


def payout_minimum_minor(currency: str) -> int:
    """The smallest payout in ``currency`` (minor units; ``LEDGER_PAYOUT_MINIMUM_MINOR``)."""
    return settings.LEDGER_PAYOUT_MINIMUM_MINOR.get(
        currency, settings.LEDGER_PAYOUT_MINIMUM_DEFAULT_MINOR
    )


def payout_reserved_minor(*, currency: str) -> dict[int, int]:
    """Minor units per holder already in pending lines of draft payout batches."""
    return dict(
        PayoutLine.objects.filter(
            batch__status=PayoutBatch.Status.DRAFT,
            batch__currency=currency,
            status=PayoutLine.Status.PENDING,
        )
        .values("rights_holder_id")
        .annotate(total=Sum("amount_minor"))
        .values_list("rights_holder_id", "total")
    )


def payout_batches() -> QuerySet[PayoutBatch]:
    """Payout batches, newest first, with their line count and totals (minor units)."""
    return (
        PayoutBatch.objects.select_related("created_by", "period")
        .order_by("-created_at", "-id")
        .annotate(
            line_count=Count("lines"),
            total_minor=Coalesce(
                Sum("lines__amount_minor"), Value(0), output_field=BigIntegerField()
            ),
            failed_minor=Coalesce(
                Sum("lines__amount_minor", filter=Q(lines__status=PayoutLine.Status.FAILED)),
                Value(0),
                output_field=BigIntegerField(),
            ),
        )
    )


@dataclass(frozen=True)
class PayoutBatchDetail:
    batch: PayoutBatch
    lines: list[PayoutLine]
    totals_minor: dict[str, int]  # per line status, plus "all"
    entries: list[JournalEntry]  # the payout entry and any failed-line reversals


def payout_batch_detail(*, batch: PayoutBatch) -> PayoutBatchDetail:
    lines = list(batch.lines.select_related("rights_holder").order_by("rights_holder__legal_name"))
    totals = {status: 0 for status in PayoutLine.Status.values}
    for line in lines:
        totals[line.status] += line.amount_minor
    totals["all"] = sum(line.amount_minor for line in lines)
    return PayoutBatchDetail(
        batch=batch,
        lines=lines,
        totals_minor=totals,
        entries=list(batch.entries.order_by("seq")),
    )
