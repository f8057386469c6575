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
