"""Reads of the catalog used by views, APIs, attribution and the ledger."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import (
    ImportBatch,
    OptOut,
    OwnershipShare,
    Recording,
    ReferenceLicence,
    RightsHolder,
)
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
    # A semi-join (EXISTS), not a join with DISTINCT: a holder of 100,000 recordings gets
    # its page by walking the ordering's index and probing its shares, instead of
    # de-duplicating and sorting every share first (SQLite plans ``IN (subquery)`` as a
    # list of all of them, sorted). The holders are named by id, not by a subquery, so
    # that PostgreSQL knows how many shares they hold: guessing a few hundred, it gathered
    # all 100,000 shares of a label before its first page.
    holder_ids = list(holders_for_user(user).values_list("pk", flat=True))
    shares = OwnershipShare.objects.filter(
        recording=OuterRef("pk"), rights_holder_id__in=holder_ids
    )
    return Recording.objects.filter(Exists(shares))


def opt_outs_visible_to(user: AnyUser) -> QuerySet[OptOut]:
    queryset = OptOut.objects.select_related("rights_holder", "recording")
    if user_sees_whole_catalog(user):
        return queryset
    return queryset.filter(rights_holder__in=holders_for_user(user))


def rights_holders_with_recording_counts(
    holders: QuerySet[RightsHolder],
) -> QuerySet[RightsHolder]:
    """``holders``, each with ``recordings``: how many recordings it holds a share of. One
    count per holder along its share index, not a join of every share grouped by holder
    (SQLite sorts 100,000 rows of a label for that)."""
    counts = (
        OwnershipShare.objects.filter(rights_holder=OuterRef("pk"))
        .order_by()
        .values("rights_holder")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return holders.annotate(recordings=Coalesce(Subquery(counts), 0))


def ownership_shares_of_holders(holder_ids: Iterable[int]) -> QuerySet[OwnershipShare]:
    """The holders' shares, by holder then ISRC (My catalog). The holders are named by
    id, so that the database sees which holder (and how many shares it has) and can read
    one holder's shares in order off its index (``OwnershipShare.Meta.indexes``)."""
    return OwnershipShare.objects.filter(rights_holder_id__in=list(holder_ids)).order_by(
        "rights_holder__legal_name", "rights_holder_id", "recording_isrc", "pk"
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
    return shares.filter(Q(recording_title__icontains=query) | Q(recording_isrc__startswith=isrc))


def ownership_shares_page(
    shares: QuerySet[OwnershipShare],
    number: str | int | None,
    per_page: int,
    *,
    count: int | None = None,
) -> Page:
    """Page ``number`` of ``shares``, in their order, with each share's recording and
    rights holder.

    The page's ids are picked from the share rows alone (for one holder, a walk along one
    of its indexes), and only those rows are then read with their recordings and holders,
    so a late page does not join the rows before it. A page in the second half is counted
    from the end, walking the index backwards: no page skips more than half the rows.
    ``count``: how many ``shares`` there are, where the caller knows it already.
    """
    ids = shares.values_list("pk", flat=True)
    paginator = Paginator(ids, per_page)
    if count is not None:
        paginator.count = count  # a cached property: set, it is not counted again
    page = paginator.get_page(number)
    count = page.paginator.count
    bottom = (page.number - 1) * per_page
    top = min(bottom + per_page, count)
    if bottom > count - top:
        on_page = list(ids.reverse()[count - top : count - bottom])[::-1]
    else:
        on_page = list(ids[bottom:top])
    rows = OwnershipShare.objects.select_related("recording", "rights_holder").in_bulk(on_page)
    page.object_list = [rows[pk] for pk in on_page]
    return page


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


def reference_licences_visible_to(user: AnyUser) -> QuerySet[ReferenceLicence]:
    queryset = ReferenceLicence.objects.select_related("rights_holder", "recording")
    if user_sees_whole_catalog(user):
        return queryset
    return queryset.filter(rights_holder__in=holders_for_user(user))


@dataclass(frozen=True)
class ReferenceLicenceCheck:
    """Whether a recording may be used as a generation's reference on a day, and on what
    terms. ``licences``: ``(licence id, rights holder id, pool share percent)`` of every
    owner's licence in force, by holder id; ``licence_id``/``pool_share_percent``: the
    licence whose share applies (the smallest; ties: the lowest licence id)."""

    recording_id: int
    permitted: bool
    reason: str = ""
    licence_id: int | None = None
    pool_share_percent: Decimal = Decimal(0)
    licences: tuple[tuple[int, int, Decimal], ...] = field(default=())


def _licence_of(holder_id: int, recording_id: int, day: date) -> ReferenceLicence | None:
    """The licence of ``holder_id`` that governs ``recording_id`` on ``day``: the newest
    unwithdrawn licence for that recording valid on the day, else the newest unwithdrawn
    whole-catalog one (a licence for the recording, permitting or denying, overrides the
    catalog-wide terms)."""
    valid = ReferenceLicence.objects.filter(
        rights_holder_id=holder_id, withdrawn_at__isnull=True, valid_from__lte=day
    ).filter(Q(valid_until__isnull=True) | Q(valid_until__gte=day))
    newest = ("-created_at", "-id")
    return (
        valid.filter(recording_id=recording_id).order_by(*newest).first()
        or valid.filter(recording__isnull=True).order_by(*newest).first()
    )


def reference_licence_check(*, recording: Recording, day: date) -> ReferenceLicenceCheck:
    """May ``recording`` condition a generation made on ``day``?

    Every rights holder with an ownership share in the recording must hold a licence in
    force that day (for the recording, or for its whole catalog) that permits reference
    use, and none of them may have an opt-out in force that covers the recording (an
    opt-out withdraws reference use too). The reference's share of the pool is the
    smallest share the co-owners' licences state: each of them accepted reference use at
    that share or more, and the share is then split by their ownership shares like any
    other payment. A refusal says which owner and why.
    """
    holders = list(
        OwnershipShare.objects.filter(recording=recording)
        .order_by("rights_holder_id")
        .values_list("rights_holder_id", "rights_holder__legal_name")
    )
    if not holders:
        return ReferenceLicenceCheck(
            recording.pk, False, f"{recording.isrc} has no ownership shares to pay."
        )
    at = datetime.combine(day, datetime.min.time())
    opted = opt_outs_covering(recording_ids=[recording.pk], at=at)
    if opted:
        opt_out = OptOut.objects.select_related("rights_holder").get(pk=opted[0][1])
        return ReferenceLicenceCheck(
            recording.pk,
            False,
            f"{opt_out.rights_holder} opted {recording.isrc} out (opt-out {opt_out.pk}), "
            "which withdraws reference use.",
        )
    licences: list[tuple[int, int, Decimal]] = []
    for holder_id, name in holders:
        licence = _licence_of(holder_id, recording.pk, day)
        if licence is None:
            return ReferenceLicenceCheck(
                recording.pk,
                False,
                f"{name} has no reference licence in force for {recording.isrc} "
                f"on {day.isoformat()}.",
            )
        if not licence.permits_reference_use:
            return ReferenceLicenceCheck(
                recording.pk,
                False,
                f"{name} refuses reference use of {recording.isrc} (licence {licence.pk}).",
            )
        licences.append((licence.pk, holder_id, licence.pool_share_percent))
    licence_id, _, share = min(licences, key=lambda item: (item[2], item[0]))
    return ReferenceLicenceCheck(
        recording_id=recording.pk,
        permitted=True,
        licence_id=licence_id,
        pool_share_percent=share,
        licences=tuple(licences),
    )


def reference_share_default() -> Decimal:
    """The share of the pool a new reference licence proposes
    (``CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT``; docs/ledger.md, "Reference use")."""
    value = Decimal(str(settings.CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT))
    if not (0 <= value <= 100) or value != value.quantize(Decimal("0.0001")):
        raise ValueError(
            "CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT must be a percent from 0 to 100 with at "
            f"most 4 decimals, got {settings.CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT!r}"
        )
    return value
