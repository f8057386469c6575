"""Rights holders: create, and change their fields, users and active state."""

from collections.abc import Sequence

from django.db import transaction

from catalog.models import RightsHolder
from catalog.services.common import User, full_clean, normalized, snapshot
from catalog.validators import currency_normalize, ipi_normalize, isni_normalize
from core.services import audit_record

HOLDER_FIELDS = (
    "legal_name",
    "kind",
    "isni",
    "ipi",
    "payout_currency",
    "contact_email",
    "payout_details",
    "is_active",
)


def _holder_values(data: dict) -> dict:
    values = dict(data)
    if "legal_name" in values:
        values["legal_name"] = " ".join(str(values["legal_name"]).split())
    if "isni" in values:
        values["isni"] = normalized(values["isni"] or "", isni_normalize, "isni")
    if "ipi" in values:
        values["ipi"] = normalized(values["ipi"] or "", ipi_normalize, "ipi")
    if "payout_currency" in values:
        values["payout_currency"] = normalized(
            values["payout_currency"], currency_normalize, "payout_currency"
        )
    unknown = set(values) - set(HOLDER_FIELDS)
    assert not unknown, f"not rights-holder fields: {unknown}"
    return values


@transaction.atomic
def rights_holder_create(
    *,
    legal_name: str,
    kind: str,
    actor: User | None,
    isni: str = "",
    ipi: str = "",
    payout_currency: str = "USD",
    contact_email: str = "",
    payout_details: str = "",
    users: Sequence[User] = (),
    reason: str = "",
) -> RightsHolder:
    values = _holder_values(
        {
            "legal_name": legal_name,
            "kind": kind,
            "isni": isni,
            "ipi": ipi,
            "payout_currency": payout_currency,
            "contact_email": contact_email,
            "payout_details": payout_details,
        }
    )
    holder = RightsHolder(**values)
    full_clean(holder)
    holder.save()
    if users:
        holder.users.set(users)
    audit_record(
        actor=actor,
        action="rights_holder.create",
        obj=holder,
        after=snapshot(holder, HOLDER_FIELDS) | {"users": sorted(u.pk for u in users)},
        reason=reason,
    )
    return holder


@transaction.atomic
def rights_holder_update(
    *,
    holder: RightsHolder,
    data: dict,
    actor: User | None,
    users: Sequence[User] | None = None,
    reason: str = "",
) -> RightsHolder:
    """Change some of a holder's fields (``data``: field -> value), and its users if given."""
    holder = RightsHolder.objects.select_for_update().get(pk=holder.pk)
    values = _holder_values(data)
    before = snapshot(holder, HOLDER_FIELDS) | {
        "users": sorted(holder.users.values_list("pk", flat=True))
    }
    changed = [name for name, value in values.items() if getattr(holder, name) != value]
    for name in changed:
        setattr(holder, name, values[name])
    if changed:
        full_clean(holder)
        holder.save(update_fields=[*changed, "updated_at"])
    if users is not None:
        holder.users.set(users)
    after = snapshot(holder, HOLDER_FIELDS) | {
        "users": sorted(holder.users.values_list("pk", flat=True))
    }
    if before != after:
        action = "rights_holder.update"
        if before["is_active"] != after["is_active"]:
            action = "rights_holder.activate" if after["is_active"] else "rights_holder.suspend"
        audit_record(
            actor=actor, action=action, obj=holder, before=before, after=after, reason=reason
        )
    return holder
