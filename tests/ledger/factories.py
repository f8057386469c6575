"""Factories for the ledger tests: catalog, model version, generation, attribution run.

Recordings are created together with their ownership shares in one transaction (the
catalog's database trigger refuses a recording whose shares do not sum to 100 at commit).
"""

import hashlib
import itertools
from collections.abc import Sequence
from decimal import Decimal

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from attribution.models import AttributionRun, Generation, ModelVersion, TrainingSetEntry
from catalog.models import OwnershipShare, Recording, RightsHolder

_counter = itertools.count(1)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"ledger-user-{n}")


class RightsHolderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RightsHolder

    legal_name = factory.Sequence(lambda n: f"Ledger Holder {n:05d}")
    kind = RightsHolder.Kind.ARTIST
    payout_currency = "USD"


def recording_create(*, shares: Sequence[tuple[RightsHolder, Decimal | str]]) -> Recording:
    """A recording with the given ownership shares (percents summing to 100)."""
    n = next(_counter)
    with transaction.atomic():
        recording = Recording.objects.create(
            title=f"Track {n}",
            isrc=f"USL{n // 10000 % 100:02d}{26}{n % 100000:05d}"[:12],
            duration_seconds=Decimal("30.000"),
            sample_rate=44100,
            audio=f"recordings/track-{n}.wav",
            audio_sha256=_sha(f"audio-{n}"),
        )
        OwnershipShare.objects.bulk_create(
            OwnershipShare.of(recording, rights_holder=holder, percent=Decimal(percent))
            for holder, percent in shares
        )
    return recording


def model_version_create(*, recordings: Sequence[Recording]) -> ModelVersion:
    n = next(_counter)
    with transaction.atomic():
        model_version = ModelVersion.objects.create(
            name=f"ledger-model-{n}",
            checkpoint_sha256=_sha(f"checkpoint-{n}"),
            checkpoint_path=f"/models/{n}.ckpt",
            config={},
            manifest_sha256=_sha(f"manifest-{n}"),
            trained_at=timezone.now(),
        )
        TrainingSetEntry.objects.bulk_create(
            TrainingSetEntry(model_version=model_version, position=i, recording=r)
            for i, r in enumerate(recordings)
        )
    return model_version


def catalog_create(
    *, tracks: int, holders: int = 3, co_owned_every: int = 3
) -> tuple[ModelVersion, list[RightsHolder]]:
    """A model version trained on ``tracks`` recordings owned by ``holders`` holders.

    Every ``co_owned_every``-th recording is split 50/25/25 between three holders (to
    exercise the ownership split); the others belong to one holder.
    """
    holder_list = [RightsHolderFactory() for _ in range(holders)]
    recordings = []
    for i in range(tracks):
        first = holder_list[i % holders]
        if co_owned_every and i % co_owned_every == 0 and holders >= 3:
            second = holder_list[(i + 1) % holders]
            third = holder_list[(i + 2) % holders]
            shares = [(first, "50.0000"), (second, "25.0000"), (third, "25.0000")]
        else:
            shares = [(first, "100.0000")]
        recordings.append(recording_create(shares=shares))
    return model_version_create(recordings=recordings), holder_list


def generation_create(
    *, model_version: ModelVersion, revenue_minor: int = 1000, currency: str = "USD"
) -> Generation:
    n = next(_counter)
    return Generation.objects.create(
        model_version=model_version,
        prompt=f"ambient piano, take {n}",
        duration_seconds=Decimal("10.000"),
        audio=f"generations/{n}.wav",
        audio_sha256=_sha(f"generation-{n}"),
        revenue_minor=revenue_minor,
        currency=currency,
        requested_by=UserFactory(),
        idempotency_key=f"ledger-test-{n}-{timezone.now().timestamp()}",
    )


def run_create(
    *,
    generation: Generation,
    scores: Sequence[float],
    method: str = "unlearning",
    purpose: str = AttributionRun.Purpose.SETTLEMENT,
) -> AttributionRun:
    model_version = generation.model_version
    scores = [float(s) for s in scores]
    return AttributionRun.objects.create(
        generation=generation,
        model_version=model_version,
        method=method,
        purpose=purpose,
        status=AttributionRun.Status.SUCCEEDED,
        checkpoint_sha256=model_version.checkpoint_sha256,
        manifest_sha256=model_version.manifest_sha256,
        engine_config={"method": "unlearning"},
        seed=0,
        scores=scores,
        # the engine's digest (engine.artifacts.array_sha256 of the float64 scores)
        scores_sha256=hashlib.sha256(np.asarray(scores, dtype=np.float64).tobytes()).hexdigest(),
    )


def scores_for(n: int, seed: int = 0) -> list[float]:
    """Deterministic pseudo-random scores (a simple LCG; no global random state)."""
    x = seed * 2654435761 + 12345
    out = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append((x >> 11) / 2**53 * 0.02 - 0.01)
    return out
