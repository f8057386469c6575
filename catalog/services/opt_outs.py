"""Opt-outs: a rights holder's request that a recording, or its whole catalog, not be
trained on; and their withdrawal."""

from datetime import date

from django.db import transaction
from django.utils import timezone

from catalog.models import OptOut, Recording, RightsHolder
from catalog.services.common import User, full_clean
from core.exceptions import ApplicationError
from core.services import audit_record


@transaction.atomic
def opt_out_create(
    *,
    rights_holder: RightsHolder,
    effective_from: date,
    actor: User | None,
    recording: Recording | None = None,
    reason: str = "",
) -> OptOut:
    """Record a holder's request that one recording, or its whole catalog (``recording``
    None), not be trained on from ``effective_from``."""
    if (
        recording is not None
        and not recording.ownership_shares.filter(rights_holder=rights_holder).exists()
    ):
        raise ApplicationError(
            f"{rights_holder} holds no share of {recording.isrc}", field="recording"
        )
    duplicate = OptOut.objects.filter(
        rights_holder=rights_holder,
        recording=recording,
        withdrawn_at__isnull=True,
        effective_from__lte=effective_from,
    ).first()
    if duplicate is not None:
        return duplicate  # already opted out from an earlier date: nothing to add
    opt_out = OptOut(
        rights_holder=rights_holder,
        recording=recording,
        effective_from=effective_from,
        reason=reason,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    full_clean(opt_out)
    opt_out.save()
    audit_record(
        actor=actor,
        action="opt_out.create",
        obj=opt_out,
        after={
            "rights_holder": rights_holder.pk,
            "recording": recording.isrc if recording else None,
            "effective_from": effective_from.isoformat(),
        },
        reason=reason,
    )
    return opt_out


@transaction.atomic
def opt_out_withdraw(*, opt_out: OptOut, actor: User | None, reason: str = "") -> OptOut:
    opt_out = OptOut.objects.select_for_update().get(pk=opt_out.pk)
    if opt_out.withdrawn_at is not None:
        return opt_out
    opt_out.withdrawn_at = timezone.now()
    opt_out.save(update_fields=["withdrawn_at"])
    audit_record(
        actor=actor,
        action="opt_out.withdraw",
        obj=opt_out,
        before={"withdrawn_at": None},
        after={"withdrawn_at": opt_out.withdrawn_at.isoformat()},
        reason=reason,
    )
    return opt_out
