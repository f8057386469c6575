"""Reads of the catalog used by views, APIs, attribution and the ledger."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.models import ImportBatch, OptOut, OwnershipShare, Recording, RightsHolder
from catalog.staging import STAGING_KEY
from core.roles import CATALOG_ADMIN, FINANCE, user_has_role

AnyUser = AbstractBaseUser | AnonymousUser


def user_sees_whole_catalog(user: AnyUser) -> bool:
    """Catalog admins and finance read every record; rights holders only their own."""
    return user_has_role(user, CATALOG_ADMIN) or user_has_role(user, FINANCE)


def holders_for_user(user: AnyUser) -> QuerySet[RightsHolder]:
    """The rights holders ``user`` may act for."""
    if not user.is_authenticated:
        return RightsHolder.objects.none()
    return RightsHolder.objects.filter(users=user)


def rights_holders_visible_to(user: AnyUser) -> QuerySet[RightsHolder]:
    if user_sees_whole_catalog(user):
        return RightsHolder.objects.all()
    return holders_for_user(user)


def recordings_visible_to(user: AnyUser) -> QuerySet[Recording]:
    if user_sees_whole_catalog(user):
        return Recording.objects.all()
    # A semi-join, not a join with DISTINCT: a holder of 100,000 recordings gets its page
    # by walking the ISRC index instead of de-duplicating and sorting every share first.
    shares = OwnershipShare.objects.filter(rights_holder__in=holders_for_user(user))
    return Recording.objects.filter(pk__in=shares.values("recording_id"))


def opt_outs_visible_to(user: AnyUser) -> QuerySet[OptOut]:
    queryset = OptOut.objects.select_related("rights_holder", "recording")
    if user_sees_whole_catalog(user):
        return queryset
    return queryset.filter(rights_holder__in=holders_for_user(user))


def ownership_shares_of_holders(holders: QuerySet[RightsHolder]) -> QuerySet[OwnershipShare]:
    """The holders' shares with their recordings, by holder then ISRC (My catalog)."""
    return (
        OwnershipShare.objects.filter(rights_holder__in=holders)
        .select_related("recording", "rights_holder")
        .order_by("rights_holder__legal_name", "rights_holder_id", "recording__isrc", "pk")
    )


def ownership_shares_search(
    shares: QuerySet[OwnershipShare], query: str
) -> QuerySet[OwnershipShare]:
    """``shares`` whose recording's title contains ``query`` or whose ISRC starts with it
    (ignoring case, spaces and dashes in the ISRC as people type it)."""
    query = query.strip()
    if not query:
        return shares
    isrc = query.replace("-", "").replace(" ", "").upper()
    return shares.filter(Q(recording__title__icontains=query) | Q(recording__isrc__startswith=isrc))


def ownership_shares_for_recordings(
    recording_ids: Iterable[int],
) -> dict[int, list[tuple[int, Decimal]]]:
    """``{recording_id: [(rights_holder_id, percent), ...]}``; percents sum to 100."""
    shares: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    rows = (
        OwnershipShare.objects.filter(recording_id__in=list(recording_ids))
        .order_by("recording_id", "rights_holder_id")
        .values_list("recording_id", "rights_holder_id", "percent")
    )
    for recording_id, holder_id, percent in rows:
        shares[recording_id].append((holder_id, percent))
    return dict(shares)


def opt_outs_covering(*, recording_ids: Iterable[int], at: datetime) -> list[tuple[str, int]]:
    """Active opt-outs in force at ``at`` that cover any of the recordings.

    Returns ``[(isrc, opt_out_id), ...]``, one pair per covered recording and opt-out. An
    opt-out covers its recording, or (whole-catalog) every recording its holder has a
    share of. In force: not withdrawn and ``effective_from`` on or before ``at``'s date.
    """
    recording_ids = list(recording_ids)
    in_force = OptOut.objects.filter(withdrawn_at__isnull=True, effective_from__lte=at.date())
    covered: set[tuple[str, int]] = set()
    for opt_out_id, isrc in in_force.filter(recording_id__in=recording_ids).values_list(
        "id", "recording__isrc"
    ):
        covered.add((isrc, opt_out_id))
    whole = in_force.filter(recording__isnull=True)
    for opt_out_id, isrc in OwnershipShare.objects.filter(
        recording_id__in=recording_ids,
        rights_holder__opt_outs__in=whole,
    ).values_list("rights_holder__opt_outs__id", "recording__isrc"):
        covered.add((isrc, opt_out_id))
    return sorted(covered)


def recordings_opted_out(*, at: datetime | None = None) -> QuerySet[Recording]:
    """Recordings not to be trained on at ``at`` (default now)."""
    at = at or timezone.now()
    in_force = Q(opt_outs__withdrawn_at__isnull=True, opt_outs__effective_from__lte=at.date())
    holder_in_force = Q(
        ownership_shares__rights_holder__opt_outs__withdrawn_at__isnull=True,
        ownership_shares__rights_holder__opt_outs__recording__isnull=True,
        ownership_shares__rights_holder__opt_outs__effective_from__lte=at.date(),
    )
    return Recording.objects.filter(in_force | holder_in_force).distinct()


def import_batch_get(*, token: str, user: AnyUser) -> ImportBatch | None:
    """The staged import batch ``token`` names, if ``user`` sent it."""
    if not user.is_authenticated or not STAGING_KEY.match(str(token)):
        return None
    return ImportBatch.objects.filter(token=token, actor=user).select_related("replaces").first()


def recordings_with_isrcs(isrcs: Iterable[str]) -> QuerySet[Recording]:
    """Registered recordings among ``isrcs``, with their shares' holders, by ISRC."""
    return (
        Recording.objects.filter(isrc__in=list(isrcs))
        .prefetch_related("ownership_shares__rights_holder")
        .order_by("isrc")
    )
