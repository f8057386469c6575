"""A second opinion named by ATTRIBUTION_METHOD runs through the platform's own tasks
(eager, on PostgreSQL): its model-version artifacts are computed, a generation's run
succeeds with it and records it."""

import pytest

from attribution import services
from attribution.methods import artifact_kinds
from attribution.models import AttributionRun, ModelArtifact
from tests.attribution.test_audit import settle


@pytest.mark.parametrize(
    ("method", "own_artifacts"),
    [("gradient_similarity", {"gradients"}), ("activation_similarity", set())],
)
def test_a_second_opinion_can_be_the_configured_method(
    method, own_artifacts, tiny_model_version, attribution_settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    attribution_settings.ATTRIBUTION_METHOD = method
    attribution_settings.ATTRIBUTION_ENGINE = {
        **attribution_settings.ATTRIBUTION_ENGINE,
        "first_order_timesteps": 4,
        "projection_dim": 64,
        "similarity_timesteps": 2,
    }
    assert set(artifact_kinds(method)) == own_artifacts
    artifacts = services.model_version_artifacts_compute(model_version=tiny_model_version)
    # its own artifacts and the audit method's, all ready
    assert set(artifacts) == own_artifacts | {"fisher", "base_losses"}
    assert {artifact.status for artifact in artifacts.values()} == {ModelArtifact.Status.READY}
    run = settle(tiny_model_version, f"gen-{method}", django_capture_on_commit_callbacks)
    assert run.status == AttributionRun.Status.SUCCEEDED, run.error
    assert run.method == method and run.provenance["method"] == method
    assert len(run.provenance["artifact_sha256"]) == len(own_artifacts)


def test_second_opinions_run_through_the_pipeline_book_nothing_and_show_what_they_would_pay(
    tiny_model_version, attribution_settings, django_capture_on_commit_callbacks, client
):
    from django.db.models import Sum

    from ledger.models import JournalEntry, Posting, Settlement
    from ledger.selectors import generation_detail
    from tests.ledger.generation_world import user

    attribution_settings.ATTRIBUTION_ENGINE = {
        **attribution_settings.ATTRIBUTION_ENGINE,
        "similarity_timesteps": 2,
    }
    services.model_version_artifacts_compute(model_version=tiny_model_version)
    paying = settle(tiny_model_version, "gen-opinions", django_capture_on_commit_callbacks)
    assert paying.status == AttributionRun.Status.SUCCEEDED, paying.error
    generation = paying.generation
    settlement = Settlement.objects.get(generation=generation)
    finance = user("finance-opinions", "finance")
    ledger_before = (
        JournalEntry.objects.count(),
        list(Posting.objects.order_by("pk").values_list("pk", "account_id", "amount")),
        Settlement.objects.count(),
    )

    opinions = []
    for method in ("audio_similarity", "activation_similarity"):
        with django_capture_on_commit_callbacks(execute=True):
            run = services.attribution_run_second_opinion(
                generation=generation, method=method, actor=finance, reason="second opinion"
            )
        run.refresh_from_db()
        assert run.status == AttributionRun.Status.SUCCEEDED, run.error
        assert (run.method, run.purpose, run.provenance["method"]) == (method, "audit", method)
        assert len(run.scores) == len(paying.scores)
        opinions.append(run)
    ledger_after = (
        JournalEntry.objects.count(),
        list(Posting.objects.order_by("pk").values_list("pk", "account_id", "amount")),
        Settlement.objects.count(),
    )
    assert ledger_after == ledger_before  # second opinions book nothing
    assert Posting.objects.aggregate(total=Sum("amount"))["total"] == 0

    panel = generation_detail(generation=generation, user=finance).methods
    assert [column.run.pk for column in panel.columns] == [paying.pk] + [r.pk for r in opinions]
    for column in panel.columns:
        assert column.total_accrual == settlement.pool
    assert [row.amounts[0].amount_accrual for row in panel.rows] == [
        row.paid_accrual for row in panel.rows
    ]
    client.force_login(finance)
    page = client.get(f"/attribution/generations/{generation.pk}/").content.decode()
    for run in (paying, *opinions):
        assert f'id="method-column-{run.pk}"' in page
    assert "audio similarity (MFCC and chroma)" in page and "activation similarity" in page
