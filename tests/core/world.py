"""A small, complete world for the cross-cutting tests (permission matrix, API fuzzing,
audit trail): one user per role, two rights holders A and B with a user each, their own
recordings, a model version trained on them, a settled generation paying only A (and one
paying only B), an opt-out, a closed period with A's statement, and a payout batch.

``SECRET_A`` appears in A's legal name and contact address only: a response to holder B
that contains it leaks A's data.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework.authtoken.models import Token

from attribution.models import AttributionRun, Generation, ModelVersion, Unlearning
from catalog.models import OptOut, Recording, ReferenceLicence, RightsHolder
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from core.services import roles_ensure
from ledger.models import JournalEntry, PayoutBatch, Statement, StatementPeriod
from ledger.services import (
    generation_settle,
    payout_batch_create,
    statement_generate,
    statement_period_close,
    statement_period_create,
)
from ledger.splits import SplitPolicy
from tests.catalog.factories import UserFactory, tone_wav_bytes
from tests.ledger import factories as ledger_factories

SECRET_A = "Zyxwv-Secret-A"

# The five callers of the permission matrix, in the order the tests report them.
ANONYMOUS = "anonymous"
HOLDER_B = "holder_b"  # a rights holder's user, not the owner of A's objects
HOLDER_A = "holder_a"  # the owner
CALLERS = (ANONYMOUS, HOLDER_B, HOLDER_A, CATALOG_ADMIN, FINANCE)


@dataclass
class World:
    users: dict[str, AbstractBaseUser]
    tokens: dict[str, str]
    holder_a: RightsHolder
    holder_b: RightsHolder
    recording_a: Recording
    recording_b: Recording
    model_version: ModelVersion
    generation_a: Generation
    generation_b: Generation
    run_a: AttributionRun
    entry_a: JournalEntry
    opt_out_a: OptOut
    licence_a: ReferenceLicence
    unlearning: Unlearning
    period: StatementPeriod
    statement_a: Statement
    payout_batch: PayoutBatch
    extra: dict = field(default_factory=dict)

    @property
    def payout_line_a(self):
        return self.payout_batch.lines.get(rights_holder=self.holder_a)


def _settle_only(
    generation: Generation, scores: list[float]
) -> tuple[AttributionRun, JournalEntry]:
    run = ledger_factories.run_create(generation=generation, scores=scores)
    # top_k=1: only the best-scoring track (and so only its owner) is paid.
    entry = generation_settle(attribution_run=run, policy=SplitPolicy(top_k=1))
    return run, entry


def world_build() -> World:
    roles_ensure()
    users = {
        HOLDER_A: UserFactory(username="holder-a", role=RIGHTS_HOLDER),
        HOLDER_B: UserFactory(username="holder-b", role=RIGHTS_HOLDER),
        CATALOG_ADMIN: UserFactory(username="catalog-admin", role=CATALOG_ADMIN, is_staff=True),
        FINANCE: UserFactory(username="finance", role=FINANCE),
    }
    holder_a = ledger_factories.RightsHolderFactory(
        legal_name=f"{SECRET_A} Records", contact_email="a-owner@example.com"
    )
    holder_b = ledger_factories.RightsHolderFactory(legal_name="Bee Publishing")
    holder_a.users.add(users[HOLDER_A])
    holder_b.users.add(users[HOLDER_B])
    recording_a = ledger_factories.recording_create(shares=[(holder_a, "100")])
    recording_b = ledger_factories.recording_create(shares=[(holder_b, "100")])
    extra_a = ledger_factories.recording_create(shares=[(holder_a, "100")])
    model_version = ledger_factories.model_version_create(
        recordings=[recording_a, recording_b, extra_a]
    )

    # A closed period that has ended, with A's (empty) statement, before any settlement.
    now = timezone.now()
    period = statement_period_create(
        starts_at=now - timedelta(days=30), ends_at=now - timedelta(days=1)
    )
    statement_period_close(period=period)
    statement_a = statement_generate(rights_holder=holder_a, period=period, currency="USD")

    generation_a = ledger_factories.generation_create(
        model_version=model_version, revenue_minor=10_000
    )
    run_a, entry_a = _settle_only(generation_a, [3.0, -1.0, 0.5])
    generation_b = ledger_factories.generation_create(
        model_version=model_version, revenue_minor=10_000
    )
    _settle_only(generation_b, [-1.0, 3.0, 0.5])
    for generation in (generation_a, generation_b):  # the audio the pages play
        audio = Path(settings.MEDIA_ROOT) / generation.audio.name
        audio.parent.mkdir(parents=True, exist_ok=True)
        audio.write_bytes(tone_wav_bytes())

    opt_out_a = OptOut.objects.create(
        rights_holder=holder_a,
        recording=recording_a,
        effective_from=now.date() + timedelta(days=30),
        reason="not for training",
    )
    licence_a = ReferenceLicence.objects.create(
        rights_holder=holder_a,
        recording=recording_a,
        pool_share_percent=Decimal("10"),
        valid_from=now.date(),
    )
    unlearning = Unlearning.objects.create(parent=model_version, method="gradient_ascent")
    payout_batch = payout_batch_create(currency="USD", threshold_minor=1)
    assert payout_batch.lines.filter(rights_holder=holder_a).exists()

    tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    return World(
        users=users,
        tokens=tokens,
        holder_a=holder_a,
        holder_b=holder_b,
        recording_a=recording_a,
        recording_b=recording_b,
        model_version=model_version,
        generation_a=generation_a,
        generation_b=generation_b,
        run_a=run_a,
        entry_a=entry_a,
        opt_out_a=opt_out_a,
        licence_a=licence_a,
        unlearning=unlearning,
        period=period,
        statement_a=statement_a,
        payout_batch=payout_batch,
    )
