"""Reads of generations and attribution runs, scoped to what a user may see."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from attribution.models import AttributionRun, Generation
from core.roles import CATALOG_ADMIN, FINANCE, user_has_role


def user_sees_all_generations(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user_has_role(user, CATALOG_ADMIN) or user_has_role(user, FINANCE)


def generations_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Generation]:
    """Admins and finance see every generation; anyone else the ones they recorded."""
    generations = Generation.objects.select_related("model_version", "requested_by")
    if not user.is_authenticated:
        return generations.none()
    if user_sees_all_generations(user):
        return generations.all()
    return generations.filter(requested_by=user)


def latest_run(generation: Generation) -> AttributionRun | None:
    return generation.attribution_runs.order_by("-created_at", "-id").first()


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
