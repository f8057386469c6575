"""Settlements: a generation's revenue split by an attribution run's scores and booked,
once per (generation, attribution run), with the split's provenance.

A generation conditioned on catalog recordings (``attribution.models.GenerationReference``)
pays each reference its licence's share of the pool first, over the recording's ownership
shares as they are at settlement; the rest of the pool is split by the scores. Each
reference's licence is checked again here: if it was withdrawn (or the recording opted
out) after the generation was recorded, the reference is not paid and its share stays in
the training part (docs/decisions/0019-reference-shares.md).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from attribution.models import AttributionRun, Generation, GenerationReference, TrainingSetEntry
from catalog.models import OwnershipShare, ReferenceLicence
from catalog.selectors import reference_licence_check
from core.exceptions import ApplicationError
from core.services import audit_record
from ledger import hashing
from ledger.models import (
    Account,
    JournalEntry,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
)
from ledger.services.accounts import AccountRef, accounts_ensure
from ledger.services.db import int_array, ledger_lock, rows_insert
from ledger.services.journal import Line, entry_post
from ledger.splits import (
    GenerationSplit,
    ReferenceTerms,
    SplitPolicy,
    generation_split,
    policy_from_settings,
    track_weights,
)

PERCENT_QUANTUM = Decimal("0.0001")  # ownership percents have 4 decimal places


def _settlement_existing(run: AttributionRun) -> JournalEntry | None:
    settlement = (
        Settlement.objects.filter(generation_id=run.generation_id, attribution_run=run)
        .select_related("journal_entry")
        .first()
    )
    return settlement.journal_entry if settlement else None


def _reference_status(reference: GenerationReference, generation: Generation) -> tuple[bool, str]:
    """Whether a reference is still licensed when its generation is settled, and if not why."""
    licence_ids = [entry[0] for entry in reference.licences] or [reference.licence_id]
    withdrawn = (
        ReferenceLicence.objects.filter(pk__in=licence_ids, withdrawn_at__isnull=False)
        .order_by("pk")
        .first()
    )
    if withdrawn is not None:
        return False, (
            f"licence {withdrawn.pk} was withdrawn after the generation was recorded; "
            "its share was split by training attribution"
        )
    day = timezone.localdate(generation.created_at)
    check = reference_licence_check(recording=reference.recording, day=day)
    if not check.permitted:
        return False, f"{check.reason} Its share was split by training attribution."
    return True, ""


def _references_prepare(generation: Generation) -> tuple[list[ReferenceTerms], list[dict]]:
    """The generation's references as the split takes them, and their provenance rows
    (amounts are filled in from the split)."""
    references = list(
        GenerationReference.objects.filter(generation=generation)
        .select_related("recording")
        .order_by("index")
    )
    if not references:
        return [], []
    shares_of: dict[int, list[tuple[int, Decimal]]] = {}
    for recording_id, holder_id, percent in OwnershipShare.objects.filter(
        recording_id__in=[r.recording_id for r in references]
    ).values_list("recording_id", "rights_holder_id", "percent"):
        shares_of.setdefault(recording_id, []).append(
            (holder_id, Decimal(percent).quantize(PERCENT_QUANTUM))
        )
    terms, rows = [], []
    for reference in references:
        paid, reason = _reference_status(reference, generation)
        shares = tuple(sorted(shares_of.get(reference.recording_id, ())))
        share = Decimal(reference.pool_share_percent).quantize(PERCENT_QUANTUM)
        terms.append(
            ReferenceTerms(
                index=reference.index,
                recording_id=reference.recording_id,
                share_percent=share,
                paid=paid,
                shares=shares,
            )
        )
        rows.append(
            {
                "index": reference.index,
                "reference": reference.pk,
                "recording": reference.recording_id,
                "isrc": reference.recording.isrc,
                "audio_sha256": reference.audio_sha256,
                "noise_level": reference.noise_level,
                "licence": reference.licence_id,
                "share_percent": str(share),
                "paid": paid,
                "reason": reason,
                "ownership": [[holder, str(percent)] for holder, percent in shares],
            }
        )
    return terms, rows


@dataclass(frozen=True)
class _PreparedSettlement:
    run: AttributionRun
    generation: Generation
    policy: SplitPolicy
    split: GenerationSplit
    track_rows: list
    holder_rows: list
    # The Settlement row, unsaved, with its provenance_sha256: hashed from the row's own
    # fields (``hashing.SETTLEMENT_FIELDS``), so the row and its hash cannot drift apart.
    # Booking sets its journal entry and inserts it.
    settlement: Settlement


def _settlement_prepare(*, run: AttributionRun, policy: SplitPolicy | None) -> _PreparedSettlement:
    """Everything a settlement computes before it books (reads only; no lock needed)."""
    generation = run.generation
    model_version = run.model_version
    if run.status != AttributionRun.Status.SUCCEEDED or run.scores is None:
        raise ApplicationError(f"Attribution run {run.pk} has not succeeded; nothing to settle.")
    if run.purpose != AttributionRun.Purpose.SETTLEMENT:
        raise ApplicationError(f"Attribution run {run.pk} is an audit run; it pays nothing.")
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
        position_filter, position_params = "t.position = ANY(%s::bigint[])", [int_array(positions)]
    else:
        position_filter = f"t.position IN ({', '.join(['%s'] * len(positions))})"
        position_params = positions
    recording_of: dict[int, int] = {}
    shares_of: dict[int, list[tuple[int, Decimal]]] = {}
    with connection.cursor() as cursor:
        # Table names come from the models' own metadata; every value is a placeholder.
        entries, shares = TrainingSetEntry._meta.db_table, OwnershipShare._meta.db_table
        sql = (
            "SELECT t.position, t.recording_id, s.rights_holder_id, CAST(s.percent AS TEXT) "  # noqa: S608
            f"FROM {entries} t LEFT JOIN {shares} s ON s.recording_id = t.recording_id "
            "WHERE t.model_version_id = %s AND " + position_filter
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
    reference_terms, reference_lines = _references_prepare(generation)
    try:
        split = generation_split(
            revenue_minor=generation.revenue_minor,
            weights=weights,
            pool_fraction=policy.pool_fraction,
            ownership=ownership,
            references=reference_terms,
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
    holder_references: dict[int, list[list[int]]] = {}
    for line, reference in zip(reference_lines, split.references, strict=True):
        line["amount"] = reference.amount
        line["holders"] = [[holder, part] for holder, part in reference.holder_amounts]
        for holder_id, part in reference.holder_amounts:
            holder_references.setdefault(holder_id, []).append([reference.index, part])
    holder_rows = [
        (h, amount, holder_tracks.get(h, []), holder_references.get(h, []))
        for h, amount in split.holders
    ]
    settlement = Settlement(
        generation=generation,
        attribution_run=run,
        currency=generation.currency,
        revenue_minor=generation.revenue_minor,
        revenue=split.revenue,
        pool=split.pool,
        platform=split.platform,
        residue=split.residue,
        policy=policy.as_dict(),
        scores_sha256=hashing.scores_sha256(scores),
        run_scores_sha256=run.scores_sha256,
        score_count=len(scores),
        checkpoint_sha256=run.checkpoint_sha256,
        manifest_sha256=run.manifest_sha256,
        ownership_snapshot=ownership_snapshot,
        reference_lines=reference_lines,
    )
    settlement.provenance_sha256 = hashing.settlement_sha256(settlement, track_rows, holder_rows)
    return _PreparedSettlement(
        run=run,
        generation=generation,
        policy=policy,
        split=split,
        track_rows=track_rows,
        holder_rows=holder_rows,
        settlement=settlement,
    )


def _settlement_book(
    *, prepared: _PreparedSettlement, actor: AbstractBaseUser | None
) -> JournalEntry:
    """Book a prepared settlement. The caller holds ``ledger_lock`` and has checked that
    the (generation, run) is not settled yet."""
    run, generation, split = prepared.run, prepared.generation, prepared.split
    track_rows, holder_rows = prepared.track_rows, prepared.holder_rows
    currency = generation.currency
    settlement = prepared.settlement
    provenance_sha256 = settlement.provenance_sha256
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
    entry = entry_post(
        kind=JournalEntry.Kind.SETTLEMENT,
        currency=currency,
        lines=lines,
        memo=f"Generation {generation.pk}, attribution run {run.pk}",
        generation=generation,
        attribution_run=run,
        checkpoint_sha256=run.checkpoint_sha256,
        provenance_sha256=provenance_sha256,
    )
    settlement.journal_entry = entry
    settlement.save(force_insert=True)
    rows_insert(
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
    rows_insert(
        SettlementHolderLine,
        [
            ("settlement_id", "bigint"),
            ("rights_holder_id", "bigint"),
            ("amount", "bigint"),
            ("tracks", "jsonb"),
            ("reference_parts", "jsonb"),
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
            "references": sum(r.amount for r in split.references),
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
