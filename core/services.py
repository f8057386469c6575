"""Writes shared by every app: the audit trail and role set-up."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from core import hashing
from core.db import chain_lock
from core.models import AuditEvent
from core.roles import ALL_ROLES


def _audit_event(
    actor: AbstractBaseUser | None, action: str, obj: object, before, after, reason: str
) -> AuditEvent:
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent(
        actor_id=actor_id,
        action=action,
        object_type=type(obj).__name__,
        object_id=str(getattr(obj, "pk", "")),
        object_repr=str(obj)[:255],
        # Stored and hashed as the JSON column gives them back, so the verifier, reading
        # them from the database, hashes the same content.
        before=hashing.json_document(before),
        after=hashing.json_document(after),
        reason=reason,
    )


def _audit_append(events: list[AuditEvent]) -> list[AuditEvent]:
    """Chain ``events`` after the audit trail's tip and insert them, in one statement.

    Inside the caller's transaction (no savepoint: an import records thousands), or in a
    transaction of its own, so the chain lock is held until the rows are committed."""
    with transaction.atomic(savepoint=False):
        chain_lock()
        tip = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = tip if tip else (0, hashing.GENESIS_HASH)
        for event in events:
            seq += 1
            event.seq, event.prev_hash = seq, prev_hash
            event.hash = prev_hash = hashing.audit_event_hash(event.prev_hash, event)
        if len(events) == 1:
            events[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(events)
    return events


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: object,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one audit row for ``obj`` to the audit chain. Call it inside the transaction
    making the change, as late in it as the change allows: from here to that transaction's
    end every other writer of a chain (the audit trail or the journal) waits."""
    return _audit_append([_audit_event(actor, action, obj, before, after, reason)])[0]


def audit_record_many(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    changes: list[tuple[object, dict | None, dict | None]],
    reason: str = "",
) -> None:
    """Append one audit row per ``(obj, before, after)``, the same chained rows
    ``audit_record`` writes, in one statement (a bulk write such as a catalog import)."""
    if changes:
        events = [_audit_event(actor, action, obj, *change, reason) for obj, *change in changes]
        _audit_append(events)


def roles_ensure() -> list[Group]:
    """Create the role groups if missing (idempotent)."""
    return [Group.objects.get_or_create(name=role)[0] for role in ALL_ROLES]


@transaction.atomic
def user_create_or_update(
    *,
    username: str,
    password: str,
    role: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
) -> AbstractBaseUser:
    """Create a user or reset an existing one's password and role (idempotent)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = is_staff or is_superuser
    user.is_superuser = is_superuser
    user.save()
    if role is not None:
        roles_ensure()
        user.groups.set([Group.objects.get(name=role)])
    audit_record(
        actor=None,
        action="user.create" if created else "user.update",
        obj=user,
        after={
            "username": username,
            "role": role,
            "is_staff": user.is_staff,
            "is_superuser": is_superuser,
        },
    )
    return user
