"""From an attribution run's scores to integer royalty splits (pure functions, no Django).

The split of one generation's revenue
-------------------------------------
1. **Pool.** ``pool_fraction`` of the revenue (in accrual units, see ``ledger.money``)
   forms the training-data royalty pool; ``1 - pool_fraction`` is platform revenue. Both
   are rounded down; the at most one accrual unit left over is *rounding residue* and is
   booked to its own account, so neither side profits from rounding.
2. **Track weights.** Raw attribution scores have an arbitrary scale (it depends on the
   unlearning learning rate and the training-set size N), so a temperature on raw scores
   would mean something different for every model. The temperature is therefore applied
   to *standardised* scores::

       z_i = (s_i - mean(s)) / std(s)          (population std; all z_i = 0 if std = 0)
       p_i = exp(z_i / T) / sum_j exp(z_j / T)  (softmax, as in Fig. 1 of Choi et al.)

   ``T`` is scale-free: multiplying every score by a constant or adding a constant changes
   nothing. With ``T = 1`` a track one standard deviation above another gets e (~2.7)
   times its weight; larger ``T`` flattens towards uniform, smaller ``T`` concentrates on
   the top tracks. Floats are used only here; ``p_i`` is converted to an integer weight
   ``round(p_i * WEIGHT_SCALE)`` before anything touches money.
3. **Cut-off.** Keep the ``top_k`` heaviest tracks (ties: lower training-set position
   first) and drop tracks whose share of the full distribution is below ``min_share``.
   The heaviest track is always kept. The cut mass is redistributed proportionally to the
   kept weights, simply by allocating the whole pool over the kept weights.
4. **Tracks -> holders.** Each track's amount is allocated over its recording's ownership
   shares (percent with 4 decimals -> integer weights in 1/10,000 percent) and summed
   per rights holder.

References (inference-time attribution)
---------------------------------------
A generation conditioned on catalog recordings (its references) pays them first: the pool
is allocated once over ``[share_1, ..., share_k, 100 % - sum(share)]`` (each reference's
licence share, in 1/10,000 percent), so the reference parts and the training part sum to
the pool exactly. Each reference part is allocated over its recording's ownership shares
as in step 4; the training part is the pool that steps 2-4 split by the scores. A
reference no longer licensed at settlement is unpaid: its share stays in the training
part (docs/decisions/0019-reference-shares.md).

Invariant: for any scores, policy, ownership shares and revenue,
``pool + platform + residue == revenue`` and the holder amounts sum to ``pool`` exactly
(every division goes through ``ledger.money.allocate``).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal

from ledger.money import allocate, minor_to_accrual

WEIGHT_SCALE = 10**12
"""Integer weight of a track = round(softmax probability * WEIGHT_SCALE)."""

FRACTION_DIGITS = 9
"""``pool_fraction`` and ``min_share`` are exact decimals with at most this many places."""

PERCENT_SCALE = 10_000
"""Ownership percent (Decimal with 4 places) -> integer weight: percent * PERCENT_SCALE."""


@dataclass(frozen=True)
class SplitPolicy:
    """Every knob that decides a split; stored with each settlement.

    temperature    softmax temperature on standardised scores (> 0). Default 1.
    top_k          keep at most this many tracks (None: no limit). Default 100.
    min_share      drop tracks whose softmax share is below this fraction (0 <= x < 1).
                   Default 0.001 (0.1 %).
    pool_fraction  fraction of a generation's revenue paid to rights holders (0..1).
                   Default 0.5.
    """

    temperature: Decimal = Decimal("1")
    top_k: int | None = 100
    min_share: Decimal = Decimal("0.001")
    pool_fraction: Decimal = Decimal("0.5")

    def __post_init__(self) -> None:
        for name in ("temperature", "min_share", "pool_fraction"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
            if value != value.quantize(Decimal(1).scaleb(-FRACTION_DIGITS)):
                raise ValueError(f"{name} has more than {FRACTION_DIGITS} decimal places")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError("top_k must be a positive integer or None")
        if not (0 <= self.min_share < 1):
            raise ValueError("min_share must be in [0, 1)")
        if not (0 <= self.pool_fraction <= 1):
            raise ValueError("pool_fraction must be in [0, 1]")

    def as_dict(self) -> dict:
        """JSON-ready, exact (Decimals as strings)."""
        data = asdict(self)
        for key in ("temperature", "min_share", "pool_fraction"):
            data[key] = str(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "SplitPolicy":
        return cls(
            temperature=Decimal(str(data["temperature"])),
            top_k=data["top_k"],
            min_share=Decimal(str(data["min_share"])),
            pool_fraction=Decimal(str(data["pool_fraction"])),
        )


def policy_from_settings() -> SplitPolicy:
    """The default policy from the ``LEDGER_*`` settings."""
    from django.conf import settings

    return SplitPolicy(
        temperature=Decimal(str(settings.LEDGER_SOFTMAX_TEMPERATURE)),
        top_k=settings.LEDGER_TOP_K or None,  # 0 means no top-K limit
        min_share=Decimal(str(settings.LEDGER_MIN_SHARE)),
        pool_fraction=Decimal(str(settings.LEDGER_POOL_FRACTION)),
    )


@dataclass(frozen=True)
class TrackWeight:
    position: int  # training-set position (index into the scores)
    weight: int  # integer weight after the cut-off, > 0


def softmax_standardised(scores: Sequence[float], temperature: Decimal) -> list[float]:
    """Softmax of standardised scores at ``temperature`` (see the module docstring)."""
    if len(scores) == 0:
        raise ValueError("no scores")
    values = [float(s) for s in scores]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("scores must be finite numbers")
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / n
    std = math.sqrt(var)
    if std == 0 or not math.isfinite(std) or std < abs(mean) * 1e-15:
        # All scores equal (up to float noise): a uniform split.
        return [1.0 / n] * n
    t = float(temperature)
    logits = [(v - mean) / std / t for v in values]
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = math.fsum(exps)
    return [e / total for e in exps]


def track_weights(scores: Sequence[float], policy: SplitPolicy) -> list[TrackWeight]:
    """Integer weights of the tracks that share the pool, ordered by position.

    Softmax over standardised scores, converted to integers at ``WEIGHT_SCALE``, then the
    top-K / minimum-share cut-off. The heaviest track is always kept, so the result is
    never empty and the pool is always paid in full.
    """
    probs = softmax_standardised(scores, policy.temperature)
    weights = [round(p * WEIGHT_SCALE) for p in probs]
    total = sum(weights)
    order = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    if policy.top_k is not None:
        order = order[: policy.top_k]
    # share_i >= min_share  <=>  weight_i * 10^d >= min_share * 10^d * total  (exact ints)
    min_num = int(policy.min_share.scaleb(FRACTION_DIGITS))
    scale = 10**FRACTION_DIGITS
    kept = [
        i
        for rank, i in enumerate(order)
        if weights[i] > 0 and (rank == 0 or weights[i] * scale >= min_num * total)
    ]
    assert kept, "the heaviest track always has a positive weight"
    return [TrackWeight(position=i, weight=weights[i]) for i in sorted(kept)]


@dataclass(frozen=True)
class TrackSplit:
    position: int
    weight: int
    amount: int  # accrual units of the pool for this track
    holder_amounts: tuple[tuple[int, int], ...]  # (rights_holder_id, accrual units)


@dataclass(frozen=True)
class ReferenceTerms:
    """A generation's reference as a settlement pays it."""

    index: int  # the reference's order in the generation
    recording_id: int
    share_percent: Decimal  # the licence's share of the pool, percent with 4 places
    paid: bool  # still licensed at settlement; an unpaid share stays with training
    shares: tuple[tuple[int, Decimal], ...]  # the recording's (rights_holder_id, percent)


@dataclass(frozen=True)
class ReferenceSplit:
    index: int
    recording_id: int
    share_percent: Decimal
    paid: bool
    amount: int  # accrual units of the pool for this reference (0 when unpaid)
    holder_amounts: tuple[tuple[int, int], ...]  # (rights_holder_id, accrual units)


@dataclass(frozen=True)
class GenerationSplit:
    revenue: int  # accrual units
    pool: int
    platform: int
    residue: int
    tracks: tuple[TrackSplit, ...]
    holders: tuple[tuple[int, int], ...]  # (rights_holder_id, accrual units), by holder id
    references: tuple[ReferenceSplit, ...] = ()

    @property
    def training_pool(self) -> int:
        """The part of the pool split by training-time attribution."""
        return self.pool - sum(r.amount for r in self.references)


def reference_split(
    *, pool: int, references: Sequence[ReferenceTerms]
) -> tuple[tuple[ReferenceSplit, ...], int]:
    """The references' parts of ``pool`` and what is left for training attribution
    (module docstring); the parts and the rest sum to ``pool`` exactly."""
    paid = [r for r in references if r.paid]
    weights = [int(r.share_percent * PERCENT_SCALE) for r in paid]
    if any(
        Decimal(w) != r.share_percent * PERCENT_SCALE for w, r in zip(weights, paid, strict=True)
    ):
        raise ValueError("a reference share has more than 4 decimal places")
    full = 100 * PERCENT_SCALE
    if any(w < 0 for w in weights) or sum(weights) > full:
        raise ValueError("the references' shares must be non-negative and at most 100% together")
    parts = allocate(pool, [*weights, full - sum(weights)])
    amount_of = {r.index: part for r, part in zip(paid, parts, strict=False)}
    splits = []
    for r in references:
        amount = amount_of.get(r.index, 0)
        holder_amounts: tuple[tuple[int, int], ...] = ()
        if r.paid:
            shares = sorted(r.shares)
            if not shares:
                raise ValueError(f"reference {r.index} has no ownership shares")
            holder_amounts = ownership_split(amount=amount, shares=shares, position=r.recording_id)
        splits.append(
            ReferenceSplit(r.index, r.recording_id, r.share_percent, r.paid, amount, holder_amounts)
        )
    return tuple(splits), parts[-1]


def revenue_split(*, revenue: int, pool_fraction: Decimal) -> tuple[int, int, int]:
    """(pool, platform, residue) of ``revenue`` accrual units; they sum to ``revenue``."""
    assert isinstance(revenue, int) and revenue >= 0, revenue
    scale = 10**FRACTION_DIGITS
    numerator = int(pool_fraction.scaleb(FRACTION_DIGITS))
    assert 0 <= numerator <= scale
    pool = revenue * numerator // scale
    platform = revenue * (scale - numerator) // scale
    residue = revenue - pool - platform
    assert 0 <= residue <= 1
    return pool, platform, residue


def ownership_split(
    *, amount: int, shares: Sequence[tuple[int, Decimal]], position: int
) -> tuple[tuple[int, int], ...]:
    """A track's ``amount`` over its recording's ownership ``shares`` ((rights_holder_id,
    percent), in rights-holder-id order: the order breaks allocation ties), as
    (rights_holder_id, accrual units) that sum to ``amount``."""
    share_weights = [int(Decimal(percent) * PERCENT_SCALE) for _, percent in shares]
    if sum(share_weights) != 100 * PERCENT_SCALE:
        raise ValueError(f"ownership shares of position {position} do not sum to 100%")
    parts = allocate(amount, share_weights)
    return tuple((holder_id, part) for (holder_id, _), part in zip(shares, parts, strict=True))


def generation_split(
    *,
    revenue_minor: int,
    weights: Sequence[TrackWeight],
    pool_fraction: Decimal,
    ownership: Mapping[int, Sequence[tuple[int, Decimal]]],
    references: Sequence[ReferenceTerms] = (),
) -> GenerationSplit:
    """Split one generation's revenue down to rights holders (see the module docstring).

    ``weights`` come from ``track_weights(scores, policy)``; ``ownership[position]`` lists
    ``(rights_holder_id, percent)`` of the recording at that training-set position; the
    percents of one recording must sum to exactly 100. ``references`` are paid from the
    pool first; the rest is split by the weights.
    """
    revenue = minor_to_accrual(revenue_minor)
    pool, platform, residue = revenue_split(revenue=revenue, pool_fraction=pool_fraction)
    reference_splits, training_pool = reference_split(pool=pool, references=references)
    amounts = allocate(training_pool, [tw.weight for tw in weights])
    per_holder: dict[int, int] = {}
    for reference in reference_splits:
        for holder_id, part in reference.holder_amounts:
            per_holder[holder_id] = per_holder.get(holder_id, 0) + part
    tracks: list[TrackSplit] = []
    for tw, amount in zip(weights, amounts, strict=True):
        shares = sorted(ownership.get(tw.position, ()))
        if not shares:
            raise ValueError(f"training-set position {tw.position} has no ownership shares")
        holder_amounts = ownership_split(amount=amount, shares=shares, position=tw.position)
        for holder_id, part in holder_amounts:
            per_holder[holder_id] = per_holder.get(holder_id, 0) + part
        tracks.append(TrackSplit(tw.position, tw.weight, amount, holder_amounts))
    holders = tuple(sorted(per_holder.items()))
    assert sum(a for _, a in holders) == pool
    assert pool + platform + residue == revenue
    return GenerationSplit(
        revenue, pool, platform, residue, tuple(tracks), holders, reference_splits
    )
