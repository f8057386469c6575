"""Canonical content and hashes of journal entries, settlements and statements (pure).

Canonical form: JSON with sorted keys, no whitespace, ASCII only; datetimes as UTC ISO 8601
with microseconds; integers as integers, Decimals as strings. The entry hash chains::

    hash_n = sha256(prev_hash_n + "\\n" + canonical(entry_n with its postings))
    prev_hash_n = hash_{n-1}, prev_hash_1 = 64 zeros

so changing, removing or inserting anything in an earlier entry changes every later hash.
The primitives are ``core.hashing``'s, shared with the audit trail's chain.
"""

import struct
from collections.abc import Iterable, Sequence
from datetime import datetime

from core.hashing import canonical_json, chain_hash, sha256_hex, timestamp_canonical

__all__ = [
    "ENTRY_FIELDS",
    "SETTLEMENT_FIELDS",
    "canonical_json",
    "entry_content",
    "entry_hash",
    "scores_sha256",
    "settlement_content",
    "settlement_sha256",
    "sha256_hex",
    "timestamp_canonical",
]


def scores_sha256(scores: Sequence[float]) -> str:
    """The scores SHA-256: of the scores as little-endian IEEE 754 doubles in training-set
    order, the digest the engine records for a run (``Scores.tau_sha256``). The ledger
    hashes the scores it read with it, so a settlement and its run show one scores hash,
    and a difference can only mean the ledger read other scores than the engine wrote.
    (Settlements booked before this digest was shared keep the canonical-JSON digest they
    were booked with; their provenance hash covers it.)"""
    values = [float(s) for s in scores]
    return sha256_hex(struct.pack(f"<{len(values)}d", *values))


ENTRY_FIELDS = (
    # (key in the hashed content, attribute of the journal entry)
    ("seq", "seq"),
    ("kind", "kind"),
    ("currency", "currency"),
    ("effective_at", "effective_at"),
    ("memo", "memo"),
    ("generation", "generation_id"),
    ("attribution_run", "attribution_run_id"),
    ("checkpoint_sha256", "checkpoint_sha256"),
    ("reverses", "reverses_id"),
    ("payout_batch", "payout_batch_id"),
    ("payout_line", "payout_line_id"),
    ("provenance_sha256", "provenance_sha256"),
)
"""What of a journal entry its hash covers, besides its postings: the one list that the
writer (``ledger.services``) and the verifier (``ledger.selectors``) both hash."""


def _canonical_value(value: object) -> object:
    return timestamp_canonical(value) if isinstance(value, datetime) else value


def entry_content(entry: object, postings: Iterable[tuple[int, str, str, int]]) -> dict:
    """The canonical content of ``entry`` (a ``JournalEntry``, saved or not): its
    ``ENTRY_FIELDS`` and ``postings``, (index, account key, currency, amount) in index
    order."""
    content = {key: _canonical_value(getattr(entry, attr)) for key, attr in ENTRY_FIELDS}
    content["postings"] = [list(p) for p in postings]
    return content


def entry_hash(prev_hash: str, content: dict) -> str:
    return chain_hash(prev_hash, content)


SETTLEMENT_FIELDS = (
    # (key in the hashed provenance, attribute of the settlement)
    ("generation", "generation_id"),
    ("attribution_run", "attribution_run_id"),
    ("currency", "currency"),
    ("revenue_minor", "revenue_minor"),
    ("revenue", "revenue"),
    ("pool", "pool"),
    ("platform", "platform"),
    ("residue", "residue"),
    ("policy", "policy"),
    ("scores_sha256", "scores_sha256"),
    ("run_scores_sha256", "run_scores_sha256"),
    ("score_count", "score_count"),
    ("checkpoint_sha256", "checkpoint_sha256"),
    ("manifest_sha256", "manifest_sha256"),
    ("ownership_snapshot", "ownership_snapshot"),
)
"""What of a settlement its ``provenance_sha256`` covers, besides its track and holder
lines: the one list that the writer and the verifier both hash."""


def settlement_content(
    settlement: object,
    tracks: Iterable[tuple[int, int, int, int]],
    holders: Iterable[tuple[int, int, list]],
) -> dict:
    """The canonical provenance of ``settlement`` (a ``Settlement``, saved or not): its
    ``SETTLEMENT_FIELDS``; ``tracks``: (position, recording id, weight, amount) by
    position; ``holders``: (rights holder id, amount, [[position, amount], ...] and
    optionally [[reference index, amount], ...]) by holder id; and its ``reference_lines``
    where it has any."""
    content = {key: getattr(settlement, attr) for key, attr in SETTLEMENT_FIELDS}
    content["tracks"] = [list(t) for t in tracks]
    content["holders"] = [_holder_content(*holder) for holder in holders]
    # Settlements without references hash as they did before references existed.
    if getattr(settlement, "reference_lines", None):
        content["references"] = settlement.reference_lines
    return content


def _holder_content(holder: int, amount: int, tracks: list, references: list = ()) -> list:
    row = [holder, amount, [list(x) for x in tracks]]
    if references:
        row.append([list(x) for x in references])
    return row


def settlement_sha256(
    settlement: object,
    tracks: Iterable[tuple[int, int, int, int]],
    holders: Iterable[tuple[int, int, list]],
) -> str:
    """``provenance_sha256`` of ``settlement`` (arguments as ``settlement_content``)."""
    return sha256_hex(canonical_json(settlement_content(settlement, tracks, holders)))
