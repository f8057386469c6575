"""Canonical content and hashes shared by every hash chain, and the audit trail's (pure).

Canonical form: JSON with sorted keys, no whitespace, ASCII only; datetimes as UTC ISO 8601
with microseconds. A chain links each row to the one before it::

    hash_n = sha256(prev_hash_n + "\\n" + canonical(row_n))
    prev_hash_n = hash_{n-1}, prev_hash_1 = GENESIS_HASH (64 zeros)

so changing, removing or inserting anything in an earlier row changes every later hash.
The ledger's journal (``ledger.hashing``) and the audit trail (below) both chain this way.
"""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

GENESIS_HASH = "0" * 64


def canonical_json(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def timestamp_canonical(value: datetime) -> str:
    assert value.tzinfo is not None, "chained timestamps are timezone-aware"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(prev_hash: str, content: dict) -> str:
    return sha256_hex(prev_hash.encode() + b"\n" + canonical_json(content))


def json_document(value: object) -> object:
    """``value`` as a JSON column gives it back: string keys, lists for tuples."""
    return json.loads(json.dumps(value))


def json_canonical(value: object) -> object:
    """A JSON document in the form it hashes in, whichever database stored it.

    PostgreSQL's ``jsonb`` keeps a number as the decimal text it was sent, so a float with
    an integral value comes back as an integer when it was written in exponent form
    (``1e+20``) and as a float otherwise (``1.0``). Integral floats therefore hash as the
    integer their text denotes; every other number hashes as it is.
    """
    if isinstance(value, dict):
        return {key: json_canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    return value


AUDIT_FIELDS = (
    # (key in the hashed content, attribute of the audit event)
    ("seq", "seq"),
    ("occurred_at", "occurred_at"),
    ("actor", "actor_id"),
    ("action", "action"),
    ("object_type", "object_type"),
    ("object_id", "object_id"),
    ("object_repr", "object_repr"),
    ("before", "before"),
    ("after", "after"),
    ("reason", "reason"),
)
"""What of an audit event its hash covers: the one list that the writer
(``core.services.audit_record``) and the verifier (``core.selectors``) both hash."""


def audit_event_content(event: object) -> dict:
    """The canonical content of ``event`` (an ``AuditEvent``, saved or not)."""
    content = {}
    for key, attr in AUDIT_FIELDS:
        value = getattr(event, attr)
        if isinstance(value, datetime):
            value = timestamp_canonical(value)
        elif key in ("before", "after"):
            value = json_canonical(value)
        content[key] = value
    return content


def audit_event_hash(prev_hash: str, event: object) -> str:
    return chain_hash(prev_hash, audit_event_content(event))
