"""The platform's main job on the demo world, end to end (``manage.py demo``).

1. demo users, one per role;
2. the demo world: real scores rendered to audio and a small stable-audio-tools model
   trained on them (built once, then reused when content hashes match);
3. the catalog registered through the catalog import, the model version registered with
   its training set, its Fisher and theta0 losses computed;
4. a few generations sampled from the model with different prompts, each attributed to
   the training tracks (unlearning, Eq. 2 and 6 of Choi et al.) and settled on the ledger;
5. a report: top tracks and per-holder amounts per generation, then statement totals.

Without a broker the attribution runs in this process; with ``CELERY_BROKER_URL`` set it
runs on separate ``celery worker -Q gpu`` processes and this waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count

from attribution import selectors as attribution_selectors
from attribution import services as attribution_services
from attribution.hash_labels import hashes_text
from attribution.models import AttributionRun, Generation, ModelArtifact, ModelVersion
from attribution.tasks import compute_model_artifacts
from catalog.audio import file_sha256
from catalog.models import RightsHolder
from catalog.services import catalog_import_folder, rights_holder_update
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from core.services import user_create_or_update
from ledger.models import Account, Settlement
from ledger.money import accrual_to_text, minor_to_decimal
from ledger.selectors import account_balances, holder_payable_balances

DEMO_USERS = (
    # username, password, role, is_staff, is_superuser
    ("admin", "demo-admin-pass", None, True, True),
    ("catalog", "demo-catalog-pass", CATALOG_ADMIN, True, False),
    ("finance", "demo-finance-pass", FINANCE, False, False),
    ("holder", "demo-holder-pass", RIGHTS_HOLDER, False, False),
)

DEMO_PROMPTS = (
    # prompt (in the style of the training captions, but naming no title), seconds, seed
    (
        "chorale by Johann Sebastian Bach (Bach chorales), church organ, G major, 4/4, "
        "moderate tempo, 84 BPM",
        4.0,
        1,
    ),
    (
        "Irish folk tune by Traditional (O'Neill's Music of Ireland), tin whistle, D major, "
        "6/8, fast tempo, 150 BPM",
        4.0,
        2,
    ),
    (
        "Renaissance mass by Giovanni Pierluigi da Palestrina (Palestrina masses), choir, "
        "D minor, 4/2, lively tempo, 110 BPM",
        5.0,
        3,
    ),
)
# The demo runs the paper's method (the engine's defaults: lr 1e-6 times Eq. 6's 1/N, damping
# 1e-3 x mean F) with fewer random timesteps, so that it finishes quickly on a 2-core CPU
# (docs/decisions/0011-demo-engine-profile.md; timings in BENCHMARKS.md). Used when
# ATTRIBUTION_ENGINE is not set; workers of a broker-backed demo need the same value.
DEMO_ENGINE_PROFILE = {
    "unlearn_timesteps": 256,
    "score_timesteps": 4,
    "fisher_timesteps": 4,
    "batch_size": 16,
}
DEMO_REVENUE_MINOR = 250  # each generation earned 2.50
DEMO_CURRENCY = "USD"

Say = Callable[[str], None]


@dataclass
class DemoResult:
    model_version: ModelVersion
    generations: list[Generation]


def demo_users_ensure() -> dict[str, object]:
    users = {}
    for username, password, role, is_staff, is_superuser in DEMO_USERS:
        users[username] = user_create_or_update(
            username=username,
            password=password,
            role=role,
            is_staff=is_staff,
            is_superuser=is_superuser,
        )
    return users


def demo_world_root() -> Path:
    return Path(settings.DATA_DIR) / "demo"


def _holder_user_link(user, actor) -> RightsHolder | None:
    """The demo holder user acts for the rights holder with the most recordings."""
    holder = (
        RightsHolder.objects.annotate(n=Count("ownership_shares"))
        .order_by("-n", "legal_name")
        .first()
    )
    if holder is not None and not holder.users.filter(pk=user.pk).exists():
        rights_holder_update(
            holder=holder,
            data={},
            actor=actor,
            users=[*holder.users.all(), user],
            reason="demo holder user",
        )
    return holder


def _wait_for_artifacts(model_version: ModelVersion, say: Say) -> None:
    compute_model_artifacts.delay(model_version.pk)
    while True:
        artifacts = list(model_version.artifacts.all())
        if artifacts and all(a.status == ModelArtifact.Status.READY for a in artifacts):
            return
        failed = [a for a in artifacts if a.status == ModelArtifact.Status.FAILED]
        if failed:
            raise ApplicationError(f"Computing artifacts failed: {failed[0].error}")
        say(", ".join(f"{a.kind} {a.status} {a.progress_percent}%" for a in artifacts) or "...")
        time.sleep(5)


def _wait_for_run(generation: Generation, say: Say) -> AttributionRun:
    last = None
    while True:
        run = attribution_selectors.latest_run(generation)
        if run is not None and run.status in (
            AttributionRun.Status.SUCCEEDED,
            AttributionRun.Status.FAILED,
        ):
            return run
        line = f"  run {run.pk}: {run.status} {run.progress_percent}%" if run else "  queued"
        if line != last:
            say(line)
            last = line
        time.sleep(2)


def demo_main_job(
    *, say: Say, progress, build_options: dict | None = None, eager: bool
) -> DemoResult:
    """Run the whole flow on the demo world; idempotent (a second run reuses everything)."""
    if not settings.ATTRIBUTION_ENGINE:
        settings.ATTRIBUTION_ENGINE = DEMO_ENGINE_PROFILE
        say(f"Engine profile for the CPU demo (ATTRIBUTION_ENGINE unset): {DEMO_ENGINE_PROFILE}")
    users = demo_users_ensure()
    admin = users["admin"]
    root = demo_world_root()
    call_command("build_demo_world", out=root, **(build_options or {}))

    say("Registering the demo catalog through the catalog import ...")
    report = catalog_import_folder(folder=root / "catalog", actor=admin)
    if not report.ok:
        problems = "; ".join(str(problem) for problem in report.problems[:5])
        raise ApplicationError(f"The demo catalog did not import: {problems}")
    holder = _holder_user_link(users["holder"], admin)

    checkpoint = root / "model" / "model.safetensors"
    name = f"demo-{file_sha256(checkpoint)[:12]}"
    model_version = attribution_services.model_version_register(
        name=name, checkpoint_dir=root / "model", actor=admin
    )
    say(
        f"Model version {model_version.name}: {model_version.training_set_entries.count()} "
        "training tracks."
    )
    say("Fisher information and training-set losses (computed once per checkpoint) ...")
    if eager:
        attribution_services.model_version_artifacts_compute(
            model_version=model_version, actor=admin, progress=progress
        )
    else:
        _wait_for_artifacts(model_version, say)

    generator = get_user_model().objects.get(username="admin")
    generations = []
    for index, (prompt, seconds, seed) in enumerate(DEMO_PROMPTS):
        say(f"Generation {index + 1}: {prompt!r} ({seconds:g} s) ...")
        generation = attribution_services.generation_generate(
            model_version=model_version,
            prompt=prompt,
            seconds_total=seconds,
            seed=seed,
            revenue_minor=DEMO_REVENUE_MINOR,
            currency=DEMO_CURRENCY,
            requested_by=generator,
            idempotency_key=f"demo:{model_version.checkpoint_sha256[:16]}:{index}",
        )
        run = attribution_selectors.latest_run(generation)
        if run is not None and run.status == AttributionRun.Status.FAILED:
            run = attribution_services.attribution_run_rerun(
                run=run, actor=admin, reason="demo re-run"
            )
        generations.append(generation)
    for generation in generations:
        run = _wait_for_run(generation, say)
        if run.status == AttributionRun.Status.FAILED:
            raise ApplicationError(f"Attribution of generation {generation.pk} failed: {run.error}")
    if holder is not None:
        say(f"The demo 'holder' user acts for {holder.legal_name}.")
    return DemoResult(model_version=model_version, generations=generations)


def demo_report_lines(result: DemoResult, top: int = 5) -> list[str]:
    """What the demo prints: per generation its top tracks and per-holder amounts, then the
    statement totals (what the platform owes each holder), from the ledger itself."""
    lines: list[str] = []
    for generation in result.generations:
        run = attribution_selectors.latest_run(generation)
        settlement = (
            Settlement.objects.filter(generation=generation, attribution_run=run)
            .prefetch_related("tracks__recording", "holders__rights_holder")
            .first()
        )
        currency = generation.currency
        lines.append("")
        lines.append(f"Generation {generation.pk}: {generation.prompt!r}")
        lines.append(
            f"  revenue {minor_to_decimal(generation.revenue_minor, currency)} {currency}; "
            + hashes_text(checkpoint=run.checkpoint_sha256, scores=run.scores_sha256)
        )
        paid = {line.position: line for line in settlement.tracks.all()} if settlement else {}
        pool = settlement.pool if settlement else 0
        lines.append("  top attributed training tracks (score = loss increase after unlearning):")
        for track in attribution_selectors.top_attributed_tracks(run, limit=top):
            line = paid.get(track["position"])
            share = f"{100 * line.amount / pool:5.1f}% of pool" if line and pool else "   not paid"
            lines.append(
                f"    #{track['rank']} {track['title'][:48]:<48} {track['isrc']} "
                f"score {track['score']:+.4g}  {share}"
            )
        if settlement is not None:
            lines.append(
                f"  pool {accrual_to_text(settlement.pool, currency)} {currency} "
                f"to {settlement.holders.count()} rights holders; "
                f"platform {accrual_to_text(settlement.platform, currency)} {currency}"
            )
            holders = sorted(
                settlement.holders.all(), key=lambda h: (-h.amount, h.rights_holder_id)
            )
            for holder_line in holders[:top]:
                lines.append(
                    f"    {holder_line.rights_holder.legal_name[:48]:<48} "
                    f"{accrual_to_text(holder_line.amount, currency)} {currency}"
                )
    currency = DEMO_CURRENCY
    balances = holder_payable_balances(currency=currency)
    names = dict(RightsHolder.objects.filter(pk__in=balances).values_list("pk", "legal_name"))
    lines.append("")
    lines.append(f"Statement totals ({currency}, owed to rights holders, all demo generations):")
    for holder_id, amount in sorted(balances.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
        lines.append(f"  {names[holder_id][:48]:<48} {accrual_to_text(amount, currency)}")
    accounts = account_balances(currency=currency)
    platform = -accounts.get(Account.make_key(Account.Kind.PLATFORM_REVENUE, currency), 0)
    residue = -accounts.get(Account.make_key(Account.Kind.ROUNDING_RESIDUE, currency), 0)
    lines.append(
        f"  {len(balances)} holders owed {accrual_to_text(sum(balances.values()), currency)}; "
        f"platform revenue {accrual_to_text(platform, currency)}; "
        f"rounding residue {accrual_to_text(residue, currency)}"
    )
    return lines
