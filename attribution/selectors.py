"""Reads of generations and attribution runs, scoped to what a user may see.

Who sees which generation:

* catalog admins and finance: every generation;
* a rights holder's users: the generations whose (not reversed) settlement paid one of
  the rights holders they act for; another holder's generation does not exist for them;
* anyone: the generations they recorded themselves (the generating service's account).

Amounts come from the ledger's ``Settlement`` rows (accrual units, integers) and are
turned into ``Decimal`` only for display; scores come from the ``AttributionRun``
(``scores[i]`` belongs to training-set position ``i``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Sum

from attribution.models import AttributionRun, Generation, TrainingSetEntry
from catalog.models import OwnershipShare, RightsHolder
from catalog.selectors import holders_for_user
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER, user_has_role
from ledger.models import JournalEntry, Settlement, SettlementHolderLine, SettlementTrackLine
from ledger.money import accrual_to_decimal

AnyUser = AbstractBaseUser | AnonymousUser
PERCENT = Decimal("0.01")
ACTIVE_STATUSES = (
    AttributionRun.Status.QUEUED,
    AttributionRun.Status.RUNNING,
    AttributionRun.Status.RETRYING,
)


def user_sees_all_generations(user: AnyUser) -> bool:
    return user_has_role(user, CATALOG_ADMIN) or user_has_role(user, FINANCE)


def user_may_read_generation_pages(user: AnyUser) -> bool:
    """Catalog admins, finance, and rights holders' users (role or linked holder)."""
    if not user.is_authenticated:
        return False
    return (
        user_sees_all_generations(user)
        or user_has_role(user, RIGHTS_HOLDER)
        or holders_for_user(user).exists()
    )


def live_settlements() -> QuerySet[Settlement]:
    """Settlements whose journal entry has not been reversed: what actually pays."""
    reversed_entries = JournalEntry.objects.filter(
        reverses=OuterRef("journal_entry"), kind=JournalEntry.Kind.REVERSAL
    )
    return Settlement.objects.exclude(Exists(reversed_entries))


def _paid_lines(holders: QuerySet[RightsHolder]) -> QuerySet[SettlementHolderLine]:
    return SettlementHolderLine.objects.filter(
        rights_holder__in=holders, settlement__in=live_settlements()
    )


def generations_for_user(user: AnyUser) -> QuerySet[Generation]:
    """The generations ``user`` may see (see the module docstring)."""
    generations = Generation.objects.select_related("model_version", "requested_by")
    if not user.is_authenticated:
        return generations.none()
    if user_sees_all_generations(user):
        return generations.all()
    paid = _paid_lines(holders_for_user(user)).filter(settlement__generation=OuterRef("pk"))
    return generations.annotate(paid_user_holder=Exists(paid)).filter(
        Q(requested_by=user) | Q(paid_user_holder=True)
    )


def generations_paying_user(user: AnyUser) -> QuerySet[Generation]:
    """Generations that paid a rights holder ``user`` acts for, with ``holder_amount``
    (accrual units, summed over those holders), newest first."""
    lines = _paid_lines(holders_for_user(user)).filter(settlement__generation=OuterRef("pk"))
    amount = (
        lines.order_by()
        .values("settlement__generation")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        Generation.objects.select_related("model_version")
        .annotate(holder_amount=Subquery(amount))
        .filter(holder_amount__isnull=False)
        .order_by("-created_at", "-id")
    )


def latest_run(generation: Generation) -> AttributionRun | None:
    return generation.attribution_runs.order_by("-created_at", "-id").first()


def scored_run(generation: Generation) -> AttributionRun | None:
    """The run whose scores count: the one the live settlement used, else the latest
    succeeded run."""
    settlement = live_settlements().filter(generation=generation).first()
    if settlement is not None:
        return settlement.attribution_run
    return (
        generation.attribution_runs.filter(status=AttributionRun.Status.SUCCEEDED)
        .order_by("-created_at", "-id")
        .first()
    )


def score_ranks(scores: Sequence[float]) -> list[int]:
    """``ranks[position]``: 1 for the highest score; ties go to the lower position."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    ranks = [0] * len(scores)
    for rank, position in enumerate(order, start=1):
        ranks[position] = rank
    return ranks


def top_attributed_tracks(run: AttributionRun, limit: int = 5) -> list[dict]:
    """The training tracks with the highest scores (Eq. 2), best first."""
    if not run.scores:
        return []
    entries = list(
        run.model_version.training_set_entries.select_related("recording").order_by("position")
    )
    ranked = sorted(range(len(run.scores)), key=lambda i: (-run.scores[i], i))[:limit]
    return [
        {
            "rank": rank,
            "position": position,
            "isrc": entries[position].recording.isrc,
            "title": entries[position].recording.title,
            "score": run.scores[position],
        }
        for rank, position in enumerate(ranked, start=1)
    ]


# --- one generation, as a page shows it -------------------------------------------------------


@dataclass(frozen=True)
class TrackRow:
    """One paid training track (for a holder: the holder's part of it)."""

    rank: int
    position: int
    isrc: str
    title: str
    score: float
    pool_share_percent: Decimal  # the track's share of the royalty pool
    amount: Decimal  # major units, exact (accrual precision)
    amount_accrual: int  # the same amount in the ledger's accrual units
    rights_holder: str = ""
    ownership_percent: Decimal | None = None


@dataclass(frozen=True)
class GenerationDetail:
    generation: Generation
    run: AttributionRun | None  # the run whose scores are shown
    settlement: Settlement | None
    rows: list[TrackRow]
    total: Decimal | None  # what ``rows`` add up to (major units)
    highlight_positions: frozenset[int]  # training-set positions drawn in the chart's colour
    highlight_label: str
    for_holder: bool

    @property
    def currency(self) -> str:
        return self.generation.currency


def _percent_of(part: int, whole: int) -> Decimal:
    if whole <= 0:
        return Decimal(0).quantize(PERCENT)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(PERCENT)


def holder_positions(model_version_id: int, holder_ids: Iterable[int]) -> set[int]:
    """Training-set positions of recordings the holders own a share of."""
    owned = OwnershipShare.objects.filter(rights_holder_id__in=list(holder_ids)).values(
        "recording_id"
    )
    return set(
        TrainingSetEntry.objects.filter(
            model_version_id=model_version_id, recording_id__in=owned
        ).values_list("position", flat=True)
    )


def generation_detail(*, generation: Generation, user: AnyUser) -> GenerationDetail:
    """What a generation page shows ``user``.

    A rights holder's user gets the tracks that paid the holders they act for (score,
    ownership share, amount, from the settlement) and the chart highlights every track
    those holders own; admins and finance get every paid track and the chart highlights
    the paid tracks. The caller has already checked that ``user`` may see ``generation``.
    """
    run = scored_run(generation)
    settlement = (
        live_settlements()
        .filter(generation=generation, attribution_run=run)
        .select_related("journal_entry")
        .first()
        if run is not None
        else None
    )
    scores = list(run.scores or []) if run is not None else []
    ranks = score_ranks(scores)
    for_holder = not user_sees_all_generations(user)
    holders = {h.pk: h for h in holders_for_user(user)} if for_holder else {}
    rows: list[TrackRow] = []
    if settlement is not None:
        track_amounts = dict(
            SettlementTrackLine.objects.filter(settlement=settlement).values_list(
                "position", "amount"
            )
        )
        if for_holder:
            parts = [
                (line.rights_holder_id, position, amount)
                for line in SettlementHolderLine.objects.filter(
                    settlement=settlement, rights_holder_id__in=list(holders)
                )
                for position, amount in line.tracks
            ]
        else:
            parts = [(None, position, amount) for position, amount in track_amounts.items()]
        entries = {
            e.position: e.recording
            for e in TrainingSetEntry.objects.filter(
                model_version_id=generation.model_version_id,
                position__in={position for _, position, _ in parts},
            ).select_related("recording")
        }
        snapshot = settlement.ownership_snapshot
        for holder_id, position, amount in parts:
            recording = entries[position]
            percent = None
            if holder_id is not None:
                percent = next(
                    (Decimal(p) for h, p in snapshot.get(str(position), []) if h == holder_id),
                    None,
                )
            rows.append(
                TrackRow(
                    rank=ranks[position] if position < len(ranks) else 0,
                    position=position,
                    isrc=recording.isrc,
                    title=recording.title,
                    score=scores[position] if position < len(scores) else 0.0,
                    pool_share_percent=_percent_of(track_amounts[position], settlement.pool),
                    amount=accrual_to_decimal(int(amount), settlement.currency),
                    amount_accrual=int(amount),
                    rights_holder=holders[holder_id].legal_name if holder_id else "",
                    ownership_percent=percent,
                )
            )
        rows.sort(key=lambda row: (row.rank, row.rights_holder))
    total = None
    if settlement is not None:
        if for_holder:
            accrual = SettlementHolderLine.objects.filter(
                settlement=settlement, rights_holder_id__in=list(holders)
            ).aggregate(total=Sum("amount"))["total"]
        else:
            accrual = settlement.pool
        total = accrual_to_decimal(int(accrual or 0), settlement.currency)
    if for_holder:
        highlight = holder_positions(generation.model_version_id, holders) | {
            row.position for row in rows
        }
        label = "your tracks"
    else:
        highlight = {row.position for row in rows}
        label = "paid tracks"
    return GenerationDetail(
        generation=generation,
        run=run,
        settlement=settlement,
        rows=rows,
        total=total,
        highlight_positions=frozenset(p for p in highlight if p < len(scores)),
        highlight_label=label,
        for_holder=for_holder,
    )


@dataclass(frozen=True)
class GenerationRow:
    """One line of the generations page."""

    generation: Generation
    amount: Decimal | None  # a holder's page: what the generation paid them (major units)
    run: AttributionRun | None  # an admin's page: the latest run
    status: dict | None  # ``run_status(run)``


def generation_rows(generations: Iterable[Generation], *, for_holder: bool) -> list[GenerationRow]:
    """Rows for a page of ``generations_paying_user`` (``for_holder``) or of
    ``generations_for_user`` (admins: with each generation's latest run)."""
    generations = list(generations)
    if for_holder:
        return [
            GenerationRow(
                generation=g,
                amount=accrual_to_decimal(int(g.holder_amount), g.currency),
                run=None,
                status=None,
            )
            for g in generations
        ]
    latest: dict[int, AttributionRun] = {}
    runs = AttributionRun.objects.filter(generation__in=generations).order_by("created_at", "id")
    for run in runs:
        latest[run.generation_id] = run  # the last one wins
    return [
        GenerationRow(
            generation=g,
            amount=None,
            run=latest.get(g.pk),
            status=run_status(latest[g.pk]) if g.pk in latest else None,
        )
        for g in generations
    ]


# --- run status, as the pages and the status endpoint show it ---------------------------------


def duration_text(seconds: int | None) -> str:
    """``125`` -> ``"2 min 5 s"``; ``None`` -> ``""``."""
    if seconds is None:
        return ""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def run_status(run: AttributionRun) -> dict:
    """A run's state in words and numbers (the jobs page and its JSON status endpoint)."""
    status = AttributionRun.Status(run.status)
    percent = int(run.progress_percent)
    if status == AttributionRun.Status.RUNNING:
        label = f"Running: {percent} %"
        if run.progress_stage:
            label += f" ({run.progress_stage})"
        if run.eta_seconds:
            label += f", about {duration_text(run.eta_seconds)} left"
    elif status == AttributionRun.Status.RETRYING:
        label = "Retrying after a transient error"
    elif status == AttributionRun.Status.SUCCEEDED:
        label, percent = "Succeeded", 100
    elif status == AttributionRun.Status.FAILED:
        label = "Failed"
    else:
        label = "Queued"
    return {
        "key": f"run-{run.pk}",
        "id": run.pk,
        "status": status.value,
        "percent": percent,
        "label": label,
        "detail": run.error,
        "eta_seconds": run.eta_seconds,
        "done": status in (AttributionRun.Status.SUCCEEDED, AttributionRun.Status.FAILED),
    }


def runs_for_user(user: AnyUser) -> QuerySet[AttributionRun]:
    """Attribution runs of the generations ``user`` may see, newest first, each annotated
    with ``has_newer`` (a newer run exists for its generation)."""
    newer = AttributionRun.objects.filter(generation=OuterRef("generation")).filter(
        Q(created_at__gt=OuterRef("created_at"))
        | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
    )
    return (
        AttributionRun.objects.filter(generation__in=generations_for_user(user).values("pk"))
        .select_related("generation", "model_version", "requested_by")
        .annotate(has_newer=Exists(newer))
        .order_by("-created_at", "-id")
    )


def run_may_rerun(run: AttributionRun) -> bool:
    """A failed run is re-run (once) unless a newer run for its generation exists."""
    has_newer = getattr(run, "has_newer", None)
    if has_newer is None:
        has_newer = latest_run(run.generation).pk != run.pk
    return run.status == AttributionRun.Status.FAILED and not has_newer


def run_statuses(*, user: AnyUser, ids: Iterable[int]) -> list[dict]:
    """``run_status`` of each of ``ids`` that ``user`` may see."""
    runs = runs_for_user(user).filter(pk__in=list(ids))
    return [run_status(run) for run in runs]
