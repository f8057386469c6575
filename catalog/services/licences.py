"""Reference licences: a rights holder's terms for using its recordings as the reference
audio that conditions a generation; and their withdrawal."""

from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from catalog.models import Recording, ReferenceLicence, RightsHolder
from catalog.services.common import User, full_clean
from core.exceptions import ApplicationError
from core.services import audit_record


def _percent(value: Decimal | str) -> Decimal:
    try:
        percent = Decimal(str(value))
    except InvalidOperation:
        raise ApplicationError(
            f"The pool share {value!r} is not a number.", field="pool_share_percent"
        ) from None
    if not percent.is_finite() or not Decimal(0) <= percent <= Decimal(100):
        raise ApplicationError(
            "The pool share must be between 0 and 100 percent.", field="pool_share_percent"
        )
    if percent != percent.quantize(Decimal("0.0001")):
        raise ApplicationError(
            "The pool share has at most 4 decimal places.", field="pool_share_percent"
        )
    return percent


@transaction.atomic
def reference_licence_grant(
    *,
    rights_holder: RightsHolder,
    pool_share_percent: Decimal | str,
    valid_from: date,
    actor: User | None,
    recording: Recording | None = None,
    valid_until: date | None = None,
    permits_reference_use: bool = True,
) -> ReferenceLicence:
    """Record ``rights_holder``'s terms for reference use of one recording, or of its whole
    catalog (``recording`` None): permitted or not, the share of a generation's pool paid
    to the reference's owners, and the days it is valid."""
    if (
        recording is not None
        and not recording.ownership_shares.filter(rights_holder=rights_holder).exists()
    ):
        raise ApplicationError(
            f"{rights_holder} holds no share of {recording.isrc}", field="recording"
        )
    if valid_until is not None and valid_until < valid_from:
        raise ApplicationError("A licence cannot end before it starts.", field="valid_until")
    licence = ReferenceLicence(
        rights_holder=rights_holder,
        recording=recording,
        permits_reference_use=permits_reference_use,
        pool_share_percent=_percent(pool_share_percent),
        valid_from=valid_from,
        valid_until=valid_until,
        granted_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    full_clean(licence)
    licence.save()
    audit_record(
        actor=actor,
        action="reference_licence.grant",
        obj=licence,
        after={
            "rights_holder": rights_holder.pk,
            "recording": recording.isrc if recording else None,
            "permits_reference_use": permits_reference_use,
            "pool_share_percent": str(licence.pool_share_percent),
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
        },
    )
    return licence


@transaction.atomic
def reference_licence_withdraw(
    *, licence: ReferenceLicence, actor: User | None, reason: str = ""
) -> ReferenceLicence:
    """Withdraw a licence from now on. Generations recorded with it and not yet settled
    pay its share by training-time attribution instead (``ledger.services.settlements``)."""
    licence = ReferenceLicence.objects.select_for_update().get(pk=licence.pk)
    if licence.withdrawn_at is not None:
        return licence
    licence.withdrawn_at = timezone.now()
    licence.save(update_fields=["withdrawn_at"])
    audit_record(
        actor=actor,
        action="reference_licence.withdraw",
        obj=licence,
        before={"withdrawn_at": None},
        after={"withdrawn_at": licence.withdrawn_at.isoformat()},
        reason=reason,
    )
    return licence
