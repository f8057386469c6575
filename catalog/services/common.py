"""What the catalog's write services share: validation into ``ApplicationError``, JSON-safe
snapshots for the audit trail, identifier normalization and folder checks.

Attribution's model-version services use these too, so a model version is validated and
audited the same way as a recording.
"""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from core.exceptions import ApplicationError

User = AbstractBaseUser


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "storage"):  # FieldFile
        return value.name
    return value


def snapshot(obj, fields: Iterable[str]) -> dict:
    """JSON-safe field values of ``obj`` for the audit trail."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def full_clean(obj, **kwargs) -> None:
    """``obj.full_clean()``, its first failure raised as an ``ApplicationError``."""
    try:
        obj.full_clean(**kwargs)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ApplicationError(
            " ".join(messages), field=None if field == "__all__" else field
        ) from None


def is_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder; a name the OS refuses (too long, a NUL byte) is not."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def normalized(value: str, normalize, field: str) -> str:
    """``normalize(value)`` (empty stays empty), a refusal raised for ``field``."""
    if not value:
        return ""
    try:
        return normalize(value)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field=field) from None
