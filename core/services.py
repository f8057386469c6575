"""Writes shared by every app: the audit trail and role set-up."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from core.models import AuditEvent
from core.roles import ALL_ROLES


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: object,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one audit row for ``obj``. Call it inside the transaction making the change."""
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor_id=actor_id,
        action=action,
        object_type=type(obj).__name__,
        object_id=str(getattr(obj, "pk", "")),
        object_repr=str(obj)[:255],
        before=before,
        after=after,
        reason=reason,
    )


def audit_record_many(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    changes: list[tuple[object, dict | None, dict | None]],
    reason: str = "",
) -> None:
    """Append one audit row per ``(obj, before, after)``, the same rows ``audit_record``
    writes, in one statement (a bulk write such as a catalog import)."""
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                actor_id=actor_id,
                action=action,
                object_type=type(obj).__name__,
                object_id=str(getattr(obj, "pk", "")),
                object_repr=str(obj)[:255],
                before=before,
                after=after,
                reason=reason,
            )
            for obj, before, after in changes
        ]
    )


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
