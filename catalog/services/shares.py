"""Ownership shares of a recording.

Invariant asserted here and enforced by the database on PostgreSQL (migration 0002):
the ownership shares of every recording sum to exactly 100.0000 percent.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from catalog.models import SHARES_TOTAL, OwnershipShare, Recording, RightsHolder
from catalog.services.common import User
from core.exceptions import ApplicationError
from core.services import audit_record


@dataclass(frozen=True)
class ShareSpec:
    rights_holder: RightsHolder
    percent: Decimal


def shares_problems(percents: Sequence[Decimal]) -> list[str]:
    """Why these shares cannot be a recording's shares (empty list: they can)."""
    problems = []
    if not percents:
        return ["a recording needs at least one ownership share"]
    for percent in percents:
        if not isinstance(percent, Decimal):
            problems.append(f"share {percent!r} is not a decimal number")
        elif not percent.is_finite() or percent <= 0:
            problems.append(f"share {percent} must be greater than 0")
        elif percent > SHARES_TOTAL:
            problems.append(f"share {percent} is over 100")
        elif percent != percent.quantize(Decimal("0.0001")):
            problems.append(f"share {percent} has more than 4 decimal places")
    if not problems:
        total = sum(percents, Decimal(0))
        if total != SHARES_TOTAL:
            problems.append(f"shares sum to {total.normalize():f}, not 100")
    return problems


def shares_check(shares: Sequence[ShareSpec]) -> None:
    """Refuse shares that cannot be a recording's (a holder twice, not summing to 100)."""
    holders = [share.rights_holder.pk for share in shares]
    if len(set(holders)) != len(holders):
        raise ApplicationError(
            "a rights holder appears twice in the shares", field="ownership_shares"
        )
    problems = shares_problems([share.percent for share in shares])
    if problems:
        raise ApplicationError("; ".join(problems), field="ownership_shares")


def shares_snapshot(recording: Recording) -> list[dict]:
    """A recording's shares for the audit trail, by rights holder id."""
    return [
        {"rights_holder": share.rights_holder_id, "percent": str(share.percent)}
        for share in recording.ownership_shares.order_by("rights_holder_id")
    ]


def shares_write(recording: Recording, shares: Sequence[ShareSpec]) -> None:
    """Replace the recording's share rows with ``shares`` (checked by ``shares_check``)."""
    recording.ownership_shares.all().delete()
    OwnershipShare.objects.bulk_create(
        [
            OwnershipShare.of(
                recording,
                rights_holder=share.rights_holder,
                percent=share.percent.quantize(Decimal("0.0001")),
            )
            for share in shares
        ]
    )


@transaction.atomic
def recording_shares_set(
    *,
    recording: Recording,
    shares: Sequence[ShareSpec],
    actor: User | None,
    reason: str = "",
) -> list[OwnershipShare]:
    """Replace a recording's ownership shares; they must sum to exactly 100."""
    shares_check(shares)
    before = shares_snapshot(recording)
    shares_write(recording, shares)
    after = shares_snapshot(recording)
    if before != after:
        audit_record(
            actor=actor,
            action="recording.shares_set",
            obj=recording,
            before={"ownership_shares": before},
            after={"ownership_shares": after},
            reason=reason,
        )
    return list(recording.ownership_shares.all())
