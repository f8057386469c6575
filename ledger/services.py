"""Writes to the ledger: settlements, reversals, periods and statements, payouts.

Invariants asserted here (and enforced again by the database, see ``ledger.models``):
every entry balances to zero per currency; entries are appended to the hash chain one at a
time (all ledger writes take one lock: a PostgreSQL transaction-level advisory lock; on
SQLite the IMMEDIATE transaction already serialises writers); one settlement per
(generation, attribution run); no money is created or lost by rounding (``money.allocate``).

Every service runs in ``transaction.atomic`` and writes an audit row in the same
transaction (``ledger_verification_run`` reads outside it and records the result after).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from attribution.models import AttributionRun, Generation
from catalog.models import RightsHolder, TrainingSetEntry
from core.exceptions import ApplicationError
from core.services import audit_record
from ledger import hashing
from ledger.models import (
    GENESIS_HASH,
    Account,
    JournalEntry,
    PayoutBatch,
    PayoutLine,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
    Statement,
    StatementPeriod,
)
from ledger.money import ACCRUAL_SCALE, accrual_to_minor_floor
from ledger.splits import (
    GenerationSplit,
    SplitPolicy,
    generation_split,
    policy_from_settings,
    track_weights,
)

if TYPE_CHECKING:
    from ledger.selectors import VerificationReport

PERCENT_QUANTUM = Decimal("0.0001")  # ownership percents have 4 decimal places

# Any constant works; it only has to be the same for every ledger writer.
LEDGER_ADVISORY_LOCK_KEY = 0x4C454447  # "LEDG"


def ledger_lock() -> None:
    """Serialise ledger writers until the end of the current transaction."""
    assert connection.in_atomic_block, "take the ledger lock inside transaction.atomic"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LEDGER_ADVISORY_LOCK_KEY])


def _int_array(values) -> str:
    """A PostgreSQL array literal of integers (one text parameter, cheap to send)."""
    return "{" + ",".join(map(str, values)) + "}"  # callers pass ints (ids, amounts)


def _rows_insert(model, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
    """Insert plain rows into ``model``'s table, bypassing model instances.

    PostgreSQL: one ``INSERT ... SELECT FROM ROWS FROM (unnest(...), ...)`` statement with
    each column sent as one array literal (every trigger still fires per row). Column
    kinds: ``bigint``/``integer``, ``jsonb`` (one JSON array) and ``const`` (the same
    value in every row). Elsewhere: ``bulk_create``. Settlements write hundreds of lines
    each; building Django objects and adapting parameters one by one was the largest cost.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        names = [name for name, _ in columns]
        model.objects.bulk_create(model(**dict(zip(names, row, strict=True))) for row in rows)
        return
    quote = connection.ops.quote_name
    select, sources, select_params, source_params = [], [], [], []
    for i, (_, kind) in enumerate(columns):
        values = [row[i] for row in rows]
        if kind == "const":
            assert len(set(values)) == 1, f"column {i} is not constant"
            select.append("%s")
            select_params.append(values[0])
            continue
        alias = f"c{len(sources)}"
        select.append(alias)
        if kind == "jsonb":
            sources.append(("jsonb_array_elements(%s::jsonb)", alias))
            source_params.append(json.dumps(values, separators=(",", ":")))
        else:
            assert kind in ("bigint", "integer"), kind
            sources.append((f"unnest(%s::{kind}[])", alias))
            source_params.append(_int_array(values))
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608 (identifiers from models)
        f"({', '.join(quote(name) for name, _ in columns)}) "
        f"SELECT {', '.join(select)} FROM ROWS FROM ({', '.join(src for src, _ in sources)}) "
        f"AS t({', '.join(alias for _, alias in sources)})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*select_params, *source_params])


# --- accounts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRef:
    """What posting needs of an account (lighter than a model instance; accounts are
    immutable, so nothing goes stale)."""

    pk: int
    key: str
    currency: str

    @classmethod
    def of(cls, account: Account) -> "AccountRef":
        return cls(account.pk, account.key, account.currency)


def accounts_ensure(*, specs: Sequence[tuple[str, str, int | None]]) -> dict[str, AccountRef]:
    """Get or create the accounts ``(kind, currency, rights_holder_id)``; returns them by key.

    Call under ``ledger_lock`` (creation is then race-free). Accounts are immutable.
    """
    keys = {Account.make_key(kind, cur, holder): (kind, cur, holder) for kind, cur, holder in specs}
    found = _accounts_load(list(keys.values()))
    missing = [
        Account(key=key, kind=kind, currency=cur, rights_holder_id=holder)
        for key, (kind, cur, holder) in keys.items()
        if key not in found
    ]
    if missing:
        Account.objects.bulk_create(missing)
        found.update(_accounts_load([(m.kind, m.currency, m.rights_holder_id) for m in missing]))
    return found


def _accounts_load(specs: Sequence[tuple[str, str, int | None]]) -> dict[str, AccountRef]:
    other_keys = [Account.make_key(k, c, h) for k, c, h in specs if h is None]
    holders_by_currency: dict[str, list[int]] = {}
    for _, currency, holder in specs:
        if holder is not None:
            holders_by_currency.setdefault(currency, []).append(holder)
    rows = list(Account.objects.filter(key__in=other_keys).values_list("pk", "key", "currency"))
    for currency, holder_ids in holders_by_currency.items():
        if connection.vendor == "postgresql":  # one array parameter instead of N
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id, key, currency FROM ledger_account WHERE kind = %s "
                    "AND currency = %s AND rights_holder_id = ANY(%s::bigint[])",
                    [Account.Kind.HOLDER_PAYABLE, currency, _int_array(holder_ids)],
                )
                rows += cursor.fetchall()
        else:
            rows += Account.objects.filter(
                kind=Account.Kind.HOLDER_PAYABLE, currency=currency, rights_holder_id__in=holder_ids
            ).values_list("pk", "key", "currency")
    return {key: AccountRef(pk, key, currency) for pk, key, currency in rows}


# --- journal entries -------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    account: AccountRef
    amount: int  # accrual units; positive = debit, negative = credit


def _entry_post(
    *,
    kind: str,
    currency: str,
    lines: Sequence[Line],
    memo: str = "",
    generation: Generation | None = None,
    attribution_run: AttributionRun | None = None,
    checkpoint_sha256: str = "",
    reverses: JournalEntry | None = None,
    payout_batch: PayoutBatch | None = None,
    payout_line: PayoutLine | None = None,
    provenance_sha256: str = "",
) -> JournalEntry:
    """Append one balanced entry to the chain. The caller holds ``ledger_lock``.

    Postings are inserted before the entry row, so the SQLite trigger on the entry can
    check the balance and no posting can ever be added to an entry already in the ledger.
    """
    assert connection.in_atomic_block
    assert all(isinstance(line.amount, int) for line in lines)
    assert all(line.account.currency == currency for line in lines), "one currency per entry"
    assert sum(line.amount for line in lines) == 0, "journal entry does not balance"
    last = JournalEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    prev_seq, prev_hash = last if last else (0, GENESIS_HASH)
    seq = prev_seq + 1
    effective_at = timezone.now()
    postings = [
        (i, line.account, line.amount)
        for i, line in enumerate(line for line in lines if line.amount != 0)
    ]
    entry = JournalEntry(
        seq=seq,
        kind=kind,
        currency=currency,
        effective_at=effective_at,
        memo=memo[:255],
        generation=generation,
        attribution_run=attribution_run,
        checkpoint_sha256=checkpoint_sha256,
        reverses=reverses,
        payout_batch=payout_batch,
        payout_line=payout_line,
        provenance_sha256=provenance_sha256,
        prev_hash=prev_hash,
    )
    content = _entry_content(entry, [(i, a.key, currency, amount) for i, a, amount in postings])
    entry.hash = hashing.entry_hash(prev_hash, content)
    _rows_insert(
        Posting,
        [
            ("entry_id", "bigint"),
            ("index", "integer"),
            ("account_id", "bigint"),
            ("currency", "const"),
            ("amount", "bigint"),
        ],
        [(seq, i, a.pk, currency, amount) for i, a, amount in postings],
    )
    entry.save(force_insert=True)
    return entry


def entry_content(entry: JournalEntry, postings: Sequence[Posting]) -> dict:
    """The canonical content of ``entry`` (``postings`` with ``account`` loaded)."""
    return _entry_content(entry, [(p.index, p.account.key, p.currency, p.amount) for p in postings])


def _entry_content(entry: JournalEntry, postings: Sequence[tuple[int, str, str, int]]) -> dict:
    return hashing.entry_content(
        seq=entry.seq,
        kind=entry.kind,
        currency=entry.currency,
        effective_at=entry.effective_at,
        memo=entry.memo,
        generation_id=entry.generation_id,
        attribution_run_id=entry.attribution_run_id,
        checkpoint_sha256=entry.checkpoint_sha256,
        reverses_id=entry.reverses_id,
        payout_batch_id=entry.payout_batch_id,
        payout_line_id=entry.payout_line_id,
        provenance_sha256=entry.provenance_sha256,
        postings=postings,
    )


@transaction.atomic
def journal_entry_reverse(
    *, entry: JournalEntry, reason: str, actor: AbstractBaseUser | None = None
) -> JournalEntry:
    """Book the exact opposite of ``entry`` as a new entry that references it."""
    if not reason.strip():
        raise ApplicationError("A reversal needs a reason.", field="reason")
    ledger_lock()
    if entry.kind == JournalEntry.Kind.REVERSAL:
        raise ApplicationError("A reversal cannot itself be reversed; book a new entry.")
    if entry.kind in (JournalEntry.Kind.PAYOUT, JournalEntry.Kind.PAYOUT_FAILURE):
        raise ApplicationError("Payouts are corrected line by line with payout_line_fail.")
    if JournalEntry.objects.filter(reverses=entry, kind=JournalEntry.Kind.REVERSAL).exists():
        raise ApplicationError(f"Entry #{entry.seq} is already reversed.")
    postings = list(entry.postings.select_related("account").order_by("index"))
    reversal = _entry_post(
        kind=JournalEntry.Kind.REVERSAL,
        currency=entry.currency,
        lines=[Line(AccountRef.of(p.account), -p.amount) for p in postings],
        memo=f"Reversal of #{entry.seq}: {reason}",
        generation=entry.generation,
        attribution_run=entry.attribution_run,
        checkpoint_sha256=entry.checkpoint_sha256,
        reverses=entry,
    )
    audit_record(
        actor=actor,
        action="ledger.entry.reverse",
        obj=reversal,
        after={"reverses": entry.seq},
        reason=reason,
    )
    return reversal


# --- settlement ------------------------------------------------------------------------------


def _settlement_existing(run: AttributionRun) -> JournalEntry | None:
    settlement = (
        Settlement.objects.filter(generation_id=run.generation_id, attribution_run=run)
        .select_related("journal_entry")
        .first()
    )
    return settlement.journal_entry if settlement else None


@dataclass(frozen=True)
class _PreparedSettlement:
    run: AttributionRun
    generation: Generation
    policy: SplitPolicy
    split: GenerationSplit
    track_rows: list
    holder_rows: list
    # The Settlement row's provenance fields; the same values are hashed into
    # provenance_sha256, so the row and its hash cannot drift apart.
    settlement_fields: dict
    provenance_sha256: str


def _settlement_prepare(*, run: AttributionRun, policy: SplitPolicy | None) -> _PreparedSettlement:
    """Everything a settlement computes before it books (reads only; no lock needed)."""
    generation = run.generation
    model_version = run.model_version
    if run.status != AttributionRun.Status.SUCCEEDED or run.scores is None:
        raise ApplicationError(f"Attribution run {run.pk} has not succeeded; nothing to settle.")
    if run.model_version_id != generation.model_version_id:
        raise ApplicationError("The attribution run scored a different model version.")
    if run.checkpoint_sha256 != model_version.checkpoint_sha256:
        raise ApplicationError("The run's checkpoint hash does not match the model version.")
    policy = policy or policy_from_settings()
    scores = run.scores
    try:
        weights = track_weights(scores, policy)
    except ValueError as exc:
        raise ApplicationError(f"Attribution run {run.pk}: {exc}") from exc
    training_set = TrainingSetEntry.objects.filter(model_version_id=model_version.pk)
    shape = training_set.aggregate(n=Count("id"), lo=Min("position"), hi=Max("position"))
    # Positions are unique per model version, so n entries spanning 0..n-1 are exactly 0..n-1.
    if (shape["n"], shape["lo"], shape["hi"]) != (len(scores), 0, len(scores) - 1):
        raise ApplicationError(
            f"Attribution run {run.pk} has {len(scores)} scores but the training set has "
            f"{shape['n']} entries (positions {shape['lo']}..{shape['hi']})."
        )
    positions = [w.position for w in weights]
    if connection.vendor == "postgresql":
        position_filter, position_params = "t.position = ANY(%s::bigint[])", [_int_array(positions)]
    else:
        position_filter = f"t.position IN ({', '.join(['%s'] * len(positions))})"
        position_params = positions
    recording_of: dict[int, int] = {}
    shares_of: dict[int, list[tuple[int, Decimal]]] = {}
    with connection.cursor() as cursor:
        sql = (
            "SELECT t.position, t.recording_id, s.rights_holder_id, CAST(s.percent AS TEXT) "
            "FROM catalog_trainingsetentry t LEFT JOIN catalog_ownershipshare s "
            "ON s.recording_id = t.recording_id "
            "WHERE t.model_version_id = %s AND " + position_filter  # placeholders only
        )
        cursor.execute(
            sql,
            [model_version.pk, *position_params],
        )
        for position, recording_id, holder_id, percent in cursor.fetchall():
            recording_of[position] = recording_id
            shares = shares_of.setdefault(position, [])
            if holder_id is not None:
                shares.append((holder_id, Decimal(percent).quantize(PERCENT_QUANTUM)))
    ownership = {pos: sorted(shares) for pos, shares in shares_of.items()}
    try:
        split = generation_split(
            revenue_minor=generation.revenue_minor,
            weights=weights,
            pool_fraction=policy.pool_fraction,
            ownership=ownership,
        )
    except ValueError as exc:
        raise ApplicationError(f"Generation {generation.pk} cannot be split: {exc}") from exc
    ownership_snapshot = {
        str(pos): [[holder, str(percent)] for holder, percent in shares]
        for pos, shares in sorted(ownership.items())
    }
    track_rows = [(t.position, recording_of[t.position], t.weight, t.amount) for t in split.tracks]
    holder_tracks: dict[int, list[list[int]]] = {}
    for t in split.tracks:
        for holder_id, part in t.holder_amounts:
            holder_tracks.setdefault(holder_id, []).append([t.position, part])
    holder_rows = [(h, amount, holder_tracks[h]) for h, amount in split.holders]
    settlement_fields = {
        "currency": generation.currency,
        "revenue_minor": generation.revenue_minor,
        "revenue": split.revenue,
        "pool": split.pool,
        "platform": split.platform,
        "residue": split.residue,
        "policy": policy.as_dict(),
        "scores_sha256": hashing.scores_sha256(scores),
        "run_scores_sha256": run.scores_sha256,
        "score_count": len(scores),
        "checkpoint_sha256": run.checkpoint_sha256,
        "manifest_sha256": run.manifest_sha256,
        "ownership_snapshot": ownership_snapshot,
    }
    provenance = hashing.settlement_content(
        generation_id=generation.pk,
        attribution_run_id=run.pk,
        **settlement_fields,
        tracks=track_rows,
        holders=holder_rows,
    )
    provenance_sha256 = hashing.sha256_hex(hashing.canonical_json(provenance))
    return _PreparedSettlement(
        run=run,
        generation=generation,
        policy=policy,
        split=split,
        track_rows=track_rows,
        holder_rows=holder_rows,
        settlement_fields=settlement_fields,
        provenance_sha256=provenance_sha256,
    )


def _settlement_book(
    *, prepared: _PreparedSettlement, actor: AbstractBaseUser | None
) -> JournalEntry:
    """Book a prepared settlement. The caller holds ``ledger_lock`` and has checked that
    the (generation, run) is not settled yet."""
    run, generation, split = prepared.run, prepared.generation, prepared.split
    track_rows, holder_rows = prepared.track_rows, prepared.holder_rows
    currency = generation.currency
    provenance_sha256 = prepared.provenance_sha256
    live = Settlement.objects.filter(generation_id=generation.pk).exclude(
        journal_entry__reversed_by__kind=JournalEntry.Kind.REVERSAL
    )
    if live.exists():
        raise ApplicationError(
            f"Generation {generation.pk} is already settled by another attribution run; "
            "reverse that settlement first."
        )
    K = Account.Kind
    accounts = accounts_ensure(
        specs=[
            (K.REVENUE_RECEIVABLE, currency, None),
            (K.PLATFORM_REVENUE, currency, None),
            (K.ROUNDING_RESIDUE, currency, None),
            *[(K.HOLDER_PAYABLE, currency, h) for h, _ in split.holders],
        ]
    )

    def acc(kind: str, holder: int | None = None) -> AccountRef:
        return accounts[Account.make_key(kind, currency, holder)]

    lines = [
        Line(acc(K.REVENUE_RECEIVABLE), split.revenue),
        Line(acc(K.PLATFORM_REVENUE), -split.platform),
        Line(acc(K.ROUNDING_RESIDUE), -split.residue),
        *[Line(acc(K.HOLDER_PAYABLE, h), -amount) for h, amount in split.holders],
    ]
    entry = _entry_post(
        kind=JournalEntry.Kind.SETTLEMENT,
        currency=currency,
        lines=lines,
        memo=f"Generation {generation.pk}, attribution run {run.pk}",
        generation=generation,
        attribution_run=run,
        checkpoint_sha256=run.checkpoint_sha256,
        provenance_sha256=provenance_sha256,
    )
    settlement = Settlement.objects.create(
        generation=generation,
        attribution_run=run,
        journal_entry=entry,
        **prepared.settlement_fields,
        provenance_sha256=provenance_sha256,
    )
    _rows_insert(
        SettlementTrackLine,
        [
            ("settlement_id", "bigint"),
            ("position", "integer"),
            ("recording_id", "bigint"),
            ("weight", "bigint"),
            ("amount", "bigint"),
        ],
        [(settlement.pk, *row) for row in track_rows],
    )
    _rows_insert(
        SettlementHolderLine,
        [
            ("settlement_id", "bigint"),
            ("rights_holder_id", "bigint"),
            ("amount", "bigint"),
            ("tracks", "jsonb"),
        ],
        [(settlement.pk, *row) for row in holder_rows],
    )
    Generation.objects.filter(pk=generation.pk).update(status=Generation.Status.SETTLED)
    audit_record(
        actor=actor,
        action="ledger.generation.settle",
        obj=settlement,
        after={
            "entry": entry.seq,
            "pool": split.pool,
            "platform": split.platform,
            "residue": split.residue,
            "holders": len(split.holders),
            "provenance_sha256": provenance_sha256,
        },
    )
    return entry


def generation_settle(
    *,
    attribution_run: AttributionRun,
    actor: AbstractBaseUser | None = None,
    policy: SplitPolicy | None = None,
) -> JournalEntry:
    """Split the generation's revenue by the run's scores and book it (idempotent).

    Books: Dr revenue receivable (revenue); Cr platform revenue, Cr each rights holder's
    payable, Cr rounding residue. Stores the split's provenance as a ``Settlement``.
    A second call for the same (generation, run) books nothing and returns the entry.
    """
    existing = _settlement_existing(attribution_run)
    if existing is not None:
        return existing
    prepared = _settlement_prepare(run=attribution_run, policy=policy)
    with transaction.atomic():
        ledger_lock()
        existing = _settlement_existing(attribution_run)
        if existing is not None:
            return existing
        return _settlement_book(prepared=prepared, actor=actor)


def generation_settle_many(
    *,
    attribution_runs: Sequence[AttributionRun],
    actor: AbstractBaseUser | None = None,
    policy: SplitPolicy | None = None,
) -> list[JournalEntry | ApplicationError]:
    """Settle several runs in one transaction (one lock, one commit): for batch jobs.

    Each settlement is booked in its own savepoint, exactly as ``generation_settle`` books
    it; a run that cannot be settled yields its ``ApplicationError`` in the result list
    and books nothing, the others commit. Idempotent like ``generation_settle``.
    """
    results: list[JournalEntry | ApplicationError] = []
    with transaction.atomic():
        ledger_lock()
        for run in attribution_runs:
            try:
                existing = _settlement_existing(run)
                if existing is not None:
                    results.append(existing)
                    continue
                prepared = _settlement_prepare(run=run, policy=policy)
                with transaction.atomic():
                    results.append(_settlement_book(prepared=prepared, actor=actor))
            except ApplicationError as exc:
                results.append(exc)
    return results


# --- periods and statements ------------------------------------------------------------------


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
    from ledger.selectors import statement_compute

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


# --- payouts ---------------------------------------------------------------------------------


def payout_minimum_minor(currency: str) -> int:
    return settings.LEDGER_PAYOUT_MINIMUM_MINOR.get(
        currency, settings.LEDGER_PAYOUT_MINIMUM_DEFAULT_MINOR
    )


@transaction.atomic
def payout_batch_create(
    *,
    currency: str,
    threshold_minor: int | None = None,
    period: StatementPeriod | None = None,
    actor: AbstractBaseUser | None = None,
) -> PayoutBatch:
    """A draft batch paying every holder whose payable balance reaches the threshold.

    A line pays the whole minor units of the balance not already in another draft batch;
    holders below the threshold, and the sub-minor remainder, carry forward. With a closed
    ``period``, a line pays only what was earned by the period's end
    (``holder_payable_due``); earnings booked later wait for a later batch.
    """
    from ledger.selectors import holder_payable_balances, holder_payable_due, payout_reserved_minor

    threshold = payout_minimum_minor(currency) if threshold_minor is None else threshold_minor
    if threshold < 1:
        raise ApplicationError(
            "The payout threshold must be at least one minor unit.", field="threshold_minor"
        )
    if period is not None:
        period.refresh_from_db()
        if not period.is_closed:
            raise ApplicationError("Only a closed period can be paid out.", field="period")
    ledger_lock()
    reserved = payout_reserved_minor(currency=currency)
    if period is None:
        balances = holder_payable_balances(currency=currency)
    else:
        balances = holder_payable_due(currency=currency, through=period.ends_at)
    lines = []
    for holder_id, balance in balances.items():
        if balance <= 0:
            continue
        whole_minor, _ = accrual_to_minor_floor(balance)
        available = whole_minor - reserved.get(holder_id, 0)
        if available >= threshold:
            lines.append((holder_id, available))
    if not lines:
        raise ApplicationError(f"No rights holder has at least {threshold} {currency} minor units.")
    batch = PayoutBatch.objects.create(
        currency=currency,
        threshold_minor=threshold,
        period=period,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    PayoutLine.objects.bulk_create(
        PayoutLine(batch=batch, rights_holder_id=h, amount_minor=a) for h, a in lines
    )
    audit_record(
        actor=actor,
        action="ledger.payout_batch.create",
        obj=batch,
        after={
            "lines": len(lines),
            "total_minor": sum(a for _, a in lines),
            "period": period.pk if period is not None else None,
        },
    )
    return batch


@transaction.atomic
def payout_batch_file_export(
    *, batch: PayoutBatch, fmt: str, actor: AbstractBaseUser | None = None
) -> bytes:
    """The batch's payment file (``ledger.exports.payout_batch_export``: ``csv`` or
    ``xlsx``). Every export is audited: the file carries the payees' payout details."""
    from ledger.exports import payout_batch_export

    if fmt not in ("csv", "xlsx"):
        raise ApplicationError(f"Unknown export format {fmt!r}: csv or xlsx.", field="fmt")
    data = payout_batch_export(batch=batch, fmt=fmt)
    audit_record(
        actor=actor,
        action="ledger.payout_batch.export",
        obj=batch,
        after={"format": fmt, "status": batch.status, "sha256": hashing.sha256_hex(data)},
    )
    return data


@transaction.atomic
def payout_batch_mark_paid(
    *, batch: PayoutBatch, actor: AbstractBaseUser | None = None
) -> JournalEntry:
    """Book the batch: Dr each holder's payable, Cr payouts clearing (one entry)."""
    from ledger.selectors import holder_payable_balances

    ledger_lock()
    batch = PayoutBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != PayoutBatch.Status.DRAFT:
        raise ApplicationError(f"Payout batch {batch.pk} is already {batch.status}.")
    lines = list(batch.lines.filter(status=PayoutLine.Status.PENDING).order_by("rights_holder_id"))
    if not lines:
        raise ApplicationError(f"Payout batch {batch.pk} has no pending lines.")
    balances = holder_payable_balances(currency=batch.currency)
    for line in lines:
        if balances.get(line.rights_holder_id, 0) < line.amount_minor * ACCRUAL_SCALE:
            raise ApplicationError(
                f"Rights holder {line.rights_holder_id} no longer has {line.amount_minor} "
                "minor units payable; fail that line first."
            )
    K = Account.Kind
    accounts = accounts_ensure(
        specs=[
            (K.PAYOUTS_CLEARING, batch.currency, None),
            *[(K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id) for line in lines],
        ]
    )
    total = sum(line.amount_minor for line in lines) * ACCRUAL_SCALE
    entry = _entry_post(
        kind=JournalEntry.Kind.PAYOUT,
        currency=batch.currency,
        lines=[
            *[
                Line(
                    accounts[
                        Account.make_key(K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id)
                    ],
                    line.amount_minor * ACCRUAL_SCALE,
                )
                for line in lines
            ],
            Line(accounts[Account.make_key(K.PAYOUTS_CLEARING, batch.currency)], -total),
        ],
        memo=f"Payout batch {batch.pk}",
        payout_batch=batch,
    )
    PayoutLine.objects.filter(pk__in=[line.pk for line in lines]).update(
        status=PayoutLine.Status.PAID
    )
    batch.status = PayoutBatch.Status.PAID
    batch.paid_at = timezone.now()
    batch.save(update_fields=["status", "paid_at"])
    audit_record(
        actor=actor,
        action="ledger.payout_batch.mark_paid",
        obj=batch,
        before={"status": PayoutBatch.Status.DRAFT},
        after={"status": PayoutBatch.Status.PAID, "entry": entry.seq},
    )
    return entry


@transaction.atomic
def payout_line_fail(
    *, line: PayoutLine, reason: str, actor: AbstractBaseUser | None = None
) -> JournalEntry | None:
    """A payout line that did not reach the holder.

    Paid line: book the reversal of its part of the payout (Dr payouts clearing, Cr the
    holder's payable) referencing the payout entry, so the amount carries forward to the
    next batch. Line of a draft batch: nothing was booked; it is only excluded.
    """
    if not reason.strip():
        raise ApplicationError("A failed payout needs a reason.", field="reason")
    ledger_lock()
    line = PayoutLine.objects.select_for_update().select_related("batch").get(pk=line.pk)
    before = {"status": line.status}
    if line.status == PayoutLine.Status.FAILED:
        raise ApplicationError(f"Payout line {line.pk} has already failed.")
    entry = None
    if line.status == PayoutLine.Status.PAID:
        batch = line.batch
        paid_entry = JournalEntry.objects.get(payout_batch=batch, kind=JournalEntry.Kind.PAYOUT)
        K = Account.Kind
        accounts = accounts_ensure(
            specs=[
                (K.PAYOUTS_CLEARING, batch.currency, None),
                (K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id),
            ]
        )
        amount = line.amount_minor * ACCRUAL_SCALE
        entry = _entry_post(
            kind=JournalEntry.Kind.PAYOUT_FAILURE,
            currency=batch.currency,
            lines=[
                Line(accounts[Account.make_key(K.PAYOUTS_CLEARING, batch.currency)], amount),
                Line(
                    accounts[
                        Account.make_key(K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id)
                    ],
                    -amount,
                ),
            ],
            memo=f"Payout line {line.pk} failed: {reason}",
            reverses=paid_entry,
            payout_batch=batch,
            payout_line=line,
        )
    line.status = PayoutLine.Status.FAILED
    line.failure_reason = reason
    line.save(update_fields=["status", "failure_reason"])
    audit_record(
        actor=actor,
        action="ledger.payout_line.fail",
        obj=line,
        before=before,
        after={"status": line.status, "entry": entry.seq if entry else None},
        reason=reason,
    )
    return entry


# --- verification ----------------------------------------------------------------------------


def ledger_verification_run(
    *, actor: AbstractBaseUser | None = None, anchors: dict[int, str] | None = None
) -> "VerificationReport":
    """Run ``ledger_verify`` (a read) and record who ran it and its result in the audit
    trail, with the head ``seq:hash``: an anchor for a later ``verify_ledger --expect``."""
    from ledger.selectors import ledger_verify

    report = ledger_verify(anchors=anchors)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="ledger.verify",
            obj=report,
            after={
                "ok": report.ok,
                "entries_checked": report.entries_checked,
                "postings_checked": report.postings_checked,
                "settlements_checked": report.settlements_checked,
                "first_break": report.first_break,
                "head": f"{report.head_seq}:{report.head_hash}",
                "anchors": {str(seq): digest for seq, digest in sorted((anchors or {}).items())},
            },
        )
    return report
