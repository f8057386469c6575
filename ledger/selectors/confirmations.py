"""What an irreversible finance action will do, read before it is confirmed.

Each preview carries a ``token`` naming exactly what was shown (the object and the numbers
that matter); the confirmation form posts it back and the action runs only when the token
still matches, so a batch or period that changed between the confirmation page and the
click is shown again instead of acted on.
"""

from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from ledger.models import Account, JournalEntry, PayoutBatch, PayoutLine, Posting, StatementPeriod


@dataclass(frozen=True)
class PeriodClosePreview:
    period: StatementPeriod
    entries: int  # journal entries dated in the period
    holders: int  # rights holders with a payable movement in the period
    earned: dict[str, int]  # currency -> accrual units credited to holders by settlements
    open_periods_before: int  # earlier periods still open

    @property
    def token(self) -> str:
        return f"close-period-{self.period.pk}-{self.entries}"


def statement_period_close_preview(*, period: StatementPeriod) -> PeriodClosePreview:
    in_period = Q(entry__effective_at__gte=period.starts_at, entry__effective_at__lt=period.ends_at)
    holder_postings = Posting.objects.filter(in_period, account__kind=Account.Kind.HOLDER_PAYABLE)
    earned = {
        row["currency"]: -row["total"]
        for row in holder_postings.filter(
            entry__kind__in=[JournalEntry.Kind.SETTLEMENT, JournalEntry.Kind.REVERSAL]
        )
        .values("currency")
        .annotate(total=Sum("amount"))
        .order_by("currency")
    }
    return PeriodClosePreview(
        period=period,
        entries=JournalEntry.objects.filter(
            effective_at__gte=period.starts_at, effective_at__lt=period.ends_at
        ).count(),
        holders=holder_postings.order_by().values("account__rights_holder").distinct().count(),
        earned=earned,
        open_periods_before=StatementPeriod.objects.filter(
            closed_at__isnull=True, ends_at__lte=period.starts_at
        ).count(),
    )


@dataclass(frozen=True)
class MarkPaidPreview:
    batch: PayoutBatch
    lines: int  # pending lines that will be paid
    total_minor: int
    excluded: int  # failed (left out) lines
    without_details: int  # pending lines whose holder has no payout details

    @property
    def token(self) -> str:
        return f"mark-paid-{self.batch.pk}-{self.lines}-{self.total_minor}"


def payout_batch_mark_paid_preview(*, batch: PayoutBatch) -> MarkPaidPreview:
    counts = batch.lines.aggregate(
        lines=Count("pk", filter=Q(status=PayoutLine.Status.PENDING)),
        total=Sum("amount_minor", filter=Q(status=PayoutLine.Status.PENDING)),
        excluded=Count("pk", filter=Q(status=PayoutLine.Status.FAILED)),
        without_details=Count(
            "pk",
            filter=Q(status=PayoutLine.Status.PENDING, rights_holder__payout_details=""),
        ),
    )
    return MarkPaidPreview(
        batch=batch,
        lines=counts["lines"],
        total_minor=counts["total"] or 0,
        excluded=counts["excluded"],
        without_details=counts["without_details"],
    )


@dataclass(frozen=True)
class LineFailPreview:
    line: PayoutLine
    reason: str

    @property
    def books_reversal(self) -> bool:
        """A paid line is reversed in the ledger; a pending one is only left out."""
        return self.line.status == PayoutLine.Status.PAID

    @property
    def token(self) -> str:
        return f"fail-line-{self.line.pk}-{self.line.status}"


def payout_line_fail_preview(*, line: PayoutLine, reason: str) -> LineFailPreview:
    return LineFailPreview(line=line, reason=reason)
