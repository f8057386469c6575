"""Statement periods (created, closed) and rights holders' statements (frozen at first
generation)."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from catalog.models import RightsHolder
from core.exceptions import ApplicationError
from core.services import audit_record
from ledger import hashing
from ledger.models import Statement, StatementPeriod
from ledger.selectors.statements import statement_compute
from ledger.services.db import ledger_lock


@transaction.atomic
def statement_period_create(
    *, starts_at: datetime, ends_at: datetime, actor: AbstractBaseUser | None = None
) -> StatementPeriod:
    """A new, open statement period [starts_at, ends_at); periods never overlap."""
    if ends_at <= starts_at:
        raise ApplicationError("A period must end after it starts.", field="ends_at")
    ledger_lock()  # two finance users creating periods at once cannot both pass the check
    overlapping = (
        StatementPeriod.objects.filter(starts_at__lt=ends_at, ends_at__gt=starts_at)
        .order_by("starts_at")
        .first()
    )
    if overlapping is not None:
        raise ApplicationError(
            f"The period overlaps the existing period {overlapping.starts_at:%Y-%m-%d %H:%M} "
            f"to {overlapping.ends_at:%Y-%m-%d %H:%M} UTC.",
            field="starts_at",
        )
    period = StatementPeriod(starts_at=starts_at, ends_at=ends_at)
    period.full_clean()
    period.save(force_insert=True)
    audit_record(
        actor=actor,
        action="ledger.period.create",
        obj=period,
        after={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
    )
    return period


@transaction.atomic
def statement_period_close(
    *, period: StatementPeriod, actor: AbstractBaseUser | None = None
) -> StatementPeriod:
    """Lock the period: from now on no entry can be dated in it (service and database).

    Refused, with the reason, for a period that is already closed or has not ended yet.
    """
    ledger_lock()
    period = StatementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.closed_at is not None:
        raise ApplicationError(
            f"The period {period} is already closed (since {period.closed_at:%Y-%m-%d %H:%M} UTC).",
            field="period",
        )
    now = timezone.now()
    if period.ends_at > now:
        raise ApplicationError(
            f"A period can only be closed after it has ended ({period.ends_at:%Y-%m-%d %H:%M} "
            "UTC).",
            field="period",
        )
    period.closed_at = now
    period.save(update_fields=["closed_at"])
    audit_record(
        actor=actor, action="ledger.period.close", obj=period, after={"closed_at": now.isoformat()}
    )
    return period


@transaction.atomic
def statement_generate(
    *,
    rights_holder: RightsHolder,
    period: StatementPeriod,
    currency: str,
    actor: AbstractBaseUser | None = None,
) -> Statement:
    """The holder's statement for a closed period, frozen at first generation.

    Generating again returns the stored statement after checking that the ledger still
    yields exactly the same content (the ledger is append-only and the period closed, so
    a difference means tampering and is refused).
    """
    period.refresh_from_db()
    if not period.is_closed:
        raise ApplicationError("Statements are generated for closed periods only.")
    data = statement_compute(rights_holder=rights_holder, period=period, currency=currency)
    content_sha256 = hashing.sha256_hex(hashing.canonical_json(data))
    stored = Statement.objects.filter(
        rights_holder=rights_holder, period=period, currency=currency
    ).first()
    if stored is not None:
        if stored.content_sha256 != content_sha256:
            raise ApplicationError(
                f"Statement {stored.pk} no longer matches the ledger; run verify_ledger."
            )
        return stored
    statement = Statement.objects.create(
        rights_holder=rights_holder,
        period=period,
        currency=currency,
        opening_balance=data["opening_balance"],
        closing_balance=data["closing_balance"],
        content=data,
        content_sha256=content_sha256,
    )
    audit_record(
        actor=actor,
        action="ledger.statement.generate",
        obj=statement,
        after={"content_sha256": content_sha256},
    )
    return statement
