"""Reads of generations and attribution runs, scoped to what a user may see.

Who sees which generation:

* catalog admins and finance: every generation;
* a rights holder's users: the generations whose (not reversed) settlement paid one of
  the rights holders they act for; another holder's generation does not exist for them;
* anyone: the generations they recorded themselves (the generating service's account).

What paid whom is the ledger's to say, a layer above this one: it registers that rule
(``holder_generations_register``) when the apps load, and owns the pages that show the
money (``ledger.selectors.generations``). Scores come from the ``AttributionRun``
(``scores[i]`` belongs to training-set position ``i``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet

from attribution.models import AttributionRun, Generation, TrainingSetEntry
from catalog.models import OwnershipShare, RightsHolder
from catalog.selectors import holders_for_user
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER, user_has_role

AnyUser = AbstractBaseUser | AnonymousUser
ACTIVE_STATUSES = (
    AttributionRun.Status.QUEUED,
    AttributionRun.Status.RUNNING,
    AttributionRun.Status.RETRYING,
)


def user_sees_all_generations(user: AnyUser) -> bool:
    return user_has_role(user, CATALOG_ADMIN) or user_has_role(user, FINANCE)


def user_may_audit(user: AnyUser) -> bool:
    """Finance and catalog admins may re-attribute a settled generation with the exact method."""
    return user_has_role(user, FINANCE) or user_has_role(user, CATALOG_ADMIN)


def user_may_read_generation_pages(user: AnyUser) -> bool:
    """Catalog admins, finance, and rights holders' users (role or linked holder)."""
    if not user.is_authenticated:
        return False
    return (
        user_sees_all_generations(user)
        or user_has_role(user, RIGHTS_HOLDER)
        or holders_for_user(user).exists()
    )


HolderGenerations = Callable[[QuerySet[RightsHolder]], QuerySet]
"""``rule(holders)``: the ids of the generations the users of ``holders`` may see (a query)."""

_holder_generations: HolderGenerations | None = None


def holder_generations_register(rule: HolderGenerations) -> None:
    """Set the rule for which generations a rights holder's users see besides their own
    (``ledger.apps.LedgerConfig.ready``: the generations that paid the holder). Without
    one, they see only what they recorded."""
    global _holder_generations
    _holder_generations = rule


def generations_for_user(user: AnyUser) -> QuerySet[Generation]:
    """The generations ``user`` may see (see the module docstring)."""
    generations = Generation.objects.select_related("model_version", "requested_by")
    if not user.is_authenticated:
        return generations.none()
    if user_sees_all_generations(user):
        return generations.all()
    visible = Q(requested_by=user)
    if _holder_generations is not None:
        visible |= Q(pk__in=_holder_generations(holders_for_user(user)))
    return generations.filter(visible)


def latest_run(
    generation: Generation,
    purpose: str = AttributionRun.Purpose.SETTLEMENT,
    method: str | None = None,
) -> AttributionRun | None:
    """The generation's newest run of a purpose (by default the runs that pay it), and of a
    method where one is named."""
    runs = generation.attribution_runs.filter(purpose=purpose)
    if method is not None:
        runs = runs.filter(method=method)
    return runs.order_by("-created_at", "-id").first()


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
    with ``has_newer`` (a newer run of the same purpose exists for its generation; for an
    audit run, of the same method: each method's second opinion is re-run on its own)."""
    newer = (
        AttributionRun.objects.filter(
            generation=OuterRef("generation"), purpose=OuterRef("purpose")
        )
        .filter(Q(purpose=AttributionRun.Purpose.SETTLEMENT) | Q(method=OuterRef("method")))
        .filter(
            Q(created_at__gt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
        )
    )
    return (
        AttributionRun.objects.filter(generation__in=generations_for_user(user).values("pk"))
        .select_related("generation", "model_version", "requested_by")
        .annotate(has_newer=Exists(newer))
        .order_by("-created_at", "-id")
    )


def run_may_rerun(run: AttributionRun) -> bool:
    """A failed run is re-run (once) unless a newer run of its purpose (an audit run: and of
    its method) for its generation exists."""
    has_newer = getattr(run, "has_newer", None)
    if has_newer is None:
        method = None if run.purpose == AttributionRun.Purpose.SETTLEMENT else run.method
        has_newer = latest_run(run.generation, run.purpose, method).pk != run.pk
    return run.status == AttributionRun.Status.FAILED and not has_newer


def run_statuses(*, user: AnyUser, ids: Iterable[int]) -> list[dict]:
    """``run_status`` of each of ``ids`` that ``user`` may see."""
    runs = runs_for_user(user).filter(pk__in=list(ids))
    return [run_status(run) for run in runs]


def run_methods(run_ids: Iterable[int]) -> dict[int, str]:
    """The attribution method each of the runs recorded (``unlearning``, ``first_order``)."""
    return dict(AttributionRun.objects.filter(pk__in=list(run_ids)).values_list("pk", "method"))
