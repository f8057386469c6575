"""A settled generation, for the pages and API of generations and runs.

Built from rows, not from the engine: a model version trained on 12 recordings owned by
three holders, one generation with real WAV audio, a succeeded run with scores, settled on
the real ledger (``generation_settle``).
"""

from dataclasses import dataclass

from django.core.files.base import ContentFile

from attribution.models import AttributionRun, Generation
from catalog.models import RightsHolder
from core.services import user_create_or_update
from ledger.models import Settlement
from ledger.services import generation_settle
from tests.attribution.conftest import tone, wav_bytes
from tests.ledger import factories

PASSWORD = "a-long-test-password"


@dataclass
class World:
    holders: list[RightsHolder]
    generation: Generation
    run: AttributionRun
    settlement: Settlement
    holder_user: object  # acts for holders[0]
    outsider: object  # a rights holder's user whose holder nothing paid
    admin: object
    finance: object
    audio: bytes


def user(username: str, role: str | None, holder: RightsHolder | None = None):
    account = user_create_or_update(username=username, password=PASSWORD, role=role)
    if holder is not None:
        holder.users.add(account)
    return account


def generation_with_audio(model_version, audio: bytes, **fields) -> Generation:
    generation = factories.generation_create(model_version=model_version, **fields)
    generation.audio.save(f"gen-{generation.pk}.wav", ContentFile(audio), save=True)
    return generation


def settled_world(*, tracks: int = 12, seed: int = 1) -> World:
    """One generation attributed to ``tracks`` recordings of three holders and settled."""
    model_version, holders = factories.catalog_create(tracks=tracks, holders=3)
    audio = wav_bytes(tone(3, 0.4))
    generation = generation_with_audio(model_version, audio, revenue_minor=1999)
    run = factories.run_create(generation=generation, scores=factories.scores_for(tracks, seed))
    entry = generation_settle(attribution_run=run)
    outsider_holder = factories.RightsHolderFactory()
    return World(
        holders=holders,
        generation=generation,
        run=run,
        settlement=Settlement.objects.get(journal_entry=entry),
        holder_user=user("holder-a", "rights_holder", holders[0]),
        outsider=user("holder-z", "rights_holder", outsider_holder),
        admin=user("catalog-a", "catalog_admin"),
        finance=user("finance-a", "finance"),
        audio=audio,
    )


def logged_in(client, account):
    client.force_login(account)
    return client
