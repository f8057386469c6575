"""Recording generations and attributing them in-process (eager tasks), on PostgreSQL."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from attribution import services
from attribution.engine.config import EngineConfig
from attribution.models import AttributionRun, AttributionShard, Generation, ModelArtifact
from core.exceptions import ApplicationError
from tests.attribution.conftest import tone, wav_bytes


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("generator-service", password="x" * 12)


def record(model_version, user, key="gen-1", **overrides):
    fields = dict(
        model_version=model_version,
        prompt="a bright tone",
        audio=wav_bytes(tone(11, 0.4)),
        revenue_minor=250,
        currency="EUR",
        requested_by=user,
        idempotency_key=key,
    )
    fields.update(overrides)
    return services.generation_record(**fields)


def test_same_idempotency_key_returns_the_same_generation_and_queues_once(
    tiny_model_version, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        first = record(tiny_model_version, user)
        again = record(tiny_model_version, user)
    assert first.pk == again.pk
    assert AttributionRun.objects.filter(generation=first).count() == 1
    assert len(callbacks) == 1


def test_same_key_with_a_different_request_is_refused(tiny_model_version, user):
    record(tiny_model_version, user)
    with pytest.raises(ApplicationError, match="already used for a different generation"):
        record(tiny_model_version, user, revenue_minor=999)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"audio": wav_bytes(np.zeros(2000, dtype=np.float32))}, "audio", "silent"),
        ({"audio": b"not audio at all"}, "audio", "could not be decoded"),
        ({"audio": wav_bytes(tone(3, 0.9))}, "audio", "generates at most"),
        ({"currency": "euro"}, "currency", "3-letter"),
        ({"revenue_minor": -5}, "revenue_minor", "non-negative"),
        ({"revenue_minor": 2.5}, "revenue_minor", "whole number"),
        ({"prompt": "  "}, "prompt", "prompt"),
        ({"idempotency_key": ""}, "idempotency_key", "idempotency key"),
    ],
)
def test_bad_generations_are_refused_with_a_clear_error(
    tiny_model_version, user, overrides, field, message
):
    with pytest.raises(ApplicationError, match=message) as caught:
        record(tiny_model_version, user, **overrides)
    assert caught.value.field == field
    assert not Generation.objects.exists()


def test_missing_artifacts_fail_the_run_naming_them(
    tiny_model_version, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        generation = record(tiny_model_version, user)
    run = AttributionRun.objects.get(generation=generation)
    assert run.status == AttributionRun.Status.FAILED
    assert "Diagonal Fisher information" in run.error
    assert "Cached training-set losses" in run.error
    assert "compute_model_artifacts" in run.error
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED


def attribute(model_version, user, key, callbacks_fixture):
    with callbacks_fixture(execute=True):
        generation = record(model_version, user, key=key)
    return AttributionRun.objects.get(generation=generation)


def test_a_generation_is_attributed_sharded_and_settled_once(
    tiny_model_version, user, django_capture_on_commit_callbacks, attribution_settings
):
    from ledger.models import JournalEntry

    artifacts = services.model_version_artifacts_compute(model_version=tiny_model_version)
    assert {a.status for a in artifacts.values()} == {ModelArtifact.Status.READY}

    run = attribute(tiny_model_version, user, "gen-a", django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert run.status == AttributionRun.Status.SUCCEEDED, run.error
    assert run.progress_percent == 100
    assert run.shard_count == 3  # 5 tracks, 2 per shard
    assert AttributionShard.objects.filter(run=run).count() == 3
    assert len(run.scores) == 5 and all(np.isfinite(run.scores))
    assert run.checkpoint_sha256 == tiny_model_version.checkpoint_sha256
    assert run.library_versions["torch"]
    assert run.generation.status == Generation.Status.SETTLED
    entries = JournalEntry.objects.count()

    # Repeating the finish step (a redelivered chord body) books nothing more.
    services.attribution_run_finish(run_id=run.pk)
    assert JournalEntry.objects.count() == entries
    with pytest.raises(ApplicationError, match="already been attributed"):
        services.attribution_run_queue(generation=run.generation, actor=user)

    # Sharding does not change the scores: one shard gives bit-identical results.
    attribution_settings.ATTRIBUTION_SHARD_SIZE = 5
    services.loaded_models_clear()
    other = attribute(tiny_model_version, user, "gen-b", django_capture_on_commit_callbacks)
    other.refresh_from_db()
    assert other.shard_count == 1
    assert other.generation.audio_sha256 == run.generation.audio_sha256
    assert other.scores == run.scores


def test_only_a_failed_run_can_be_re_run(
    tiny_model_version, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        generation = record(tiny_model_version, user)
    failed = AttributionRun.objects.get(generation=generation)
    assert failed.status == AttributionRun.Status.FAILED
    services.model_version_artifacts_compute(model_version=tiny_model_version)
    with django_capture_on_commit_callbacks(execute=True):
        rerun = services.attribution_run_rerun(run=failed, actor=user, reason="artifacts ready")
    rerun.refresh_from_db()
    assert rerun.status == AttributionRun.Status.SUCCEEDED, rerun.error
    assert rerun.requested_by == user
    with pytest.raises(ApplicationError, match="Only a failed"):
        services.attribution_run_rerun(run=rerun, actor=user)


def test_the_platform_generates_audio_with_the_model_and_records_it_once(
    tiny_model_version, user, django_capture_on_commit_callbacks
):
    request = dict(
        model_version=tiny_model_version,
        prompt="a low tone",
        seconds_total=0.4,
        seed=7,
        revenue_minor=100,
        currency="EUR",
        requested_by=user,
        idempotency_key="generated-1",
        steps=4,
    )
    with django_capture_on_commit_callbacks() as callbacks:
        generation = services.generation_generate(**request)
        again = services.generation_generate(**request)
    assert again.pk == generation.pk and len(callbacks) == 1
    assert generation.source == Generation.Source.GENERATED and generation.seed == 7
    assert abs(float(generation.duration_seconds) - 0.4) < 0.02
    with pytest.raises(ApplicationError, match="Duration must be between"):
        services.generation_generate(
            **{**request, "prompt": "too long", "seconds_total": 5.0, "idempotency_key": "g-2"}
        )


def test_generated_audio_bytes_do_not_depend_on_when_they_are_written():
    """libsndfile stamps float WAVs with the time; the hash keys the unlearning draws."""
    import io
    import time

    import numpy as np
    import soundfile

    samples = np.random.default_rng(0).uniform(-1.5, 1.5, size=(800, 1)).astype(np.float32)
    first = services.wav_float_bytes(samples, 16000)
    time.sleep(1.1)  # the PEAK chunk's timestamp has one-second resolution
    second = services.wav_float_bytes(samples, 16000)
    assert first == second and b"PEAK" not in first
    decoded, rate = soundfile.read(io.BytesIO(first), dtype="float32", always_2d=True)
    assert rate == 16000 and np.array_equal(decoded, samples)  # lossless, no clipping


def test_a_run_uses_the_engine_config_it_recorded_when_queued(
    tiny_model_version, user, django_capture_on_commit_callbacks, attribution_settings
):
    """Workers configured differently from the web process cannot mix settings into a run."""
    services.model_version_artifacts_compute(model_version=tiny_model_version)
    recorded = dict(attribution_settings.ATTRIBUTION_ENGINE)
    with django_capture_on_commit_callbacks() as callbacks:
        generation = record(tiny_model_version, user, key="queued-under-a")
    attribution_settings.ATTRIBUTION_ENGINE = {**recorded, "lr": recorded["lr"] * 50}
    for callback in callbacks:  # the task runs where ATTRIBUTION_ENGINE now differs
        callback()
    run = AttributionRun.objects.get(generation=generation)
    assert run.status == AttributionRun.Status.SUCCEEDED, run.error
    assert run.engine_config == EngineConfig(**recorded).to_dict()
    assert run.provenance["engine_config"] == run.engine_config

    attribution_settings.ATTRIBUTION_ENGINE = recorded
    same = attribute(
        tiny_model_version, user, "queued-and-run-under-a", django_capture_on_commit_callbacks
    )
    attribution_settings.ATTRIBUTION_ENGINE = {**recorded, "lr": recorded["lr"] * 50}
    other = attribute(
        tiny_model_version, user, "queued-under-b", django_capture_on_commit_callbacks
    )
    same.refresh_from_db(), other.refresh_from_db()
    assert same.scores == run.scores
    assert other.scores != run.scores


def test_scores_and_their_settlement_commit_together_or_not_at_all(
    tiny_model_version, user, django_capture_on_commit_callbacks, monkeypatch
):
    from ledger import receivers
    from ledger.models import Settlement

    services.model_version_artifacts_compute(model_version=tiny_model_version)

    def ledger_down(**kwargs):
        raise RuntimeError("the ledger refused the settlement")

    monkeypatch.setattr(receivers, "generation_settle", ledger_down)
    with pytest.raises(RuntimeError, match="refused the settlement"):
        attribute(tiny_model_version, user, "settle-fails", django_capture_on_commit_callbacks)
    run = AttributionRun.objects.get(generation__idempotency_key="settle-fails")
    assert run.status != AttributionRun.Status.SUCCEEDED
    assert run.scores is None and run.scores_sha256 == ""
    assert not Settlement.objects.filter(generation=run.generation).exists()


def test_artifacts_of_another_engine_config_are_marked_stale_and_can_be_computed_again(
    tiny_model_version, user, django_capture_on_commit_callbacks, attribution_settings
):
    computed_for = dict(attribution_settings.ATTRIBUTION_ENGINE)
    services.model_version_artifacts_compute(model_version=tiny_model_version)
    # runs now record a batch size whose theta0 losses were never computed
    attribution_settings.ATTRIBUTION_ENGINE = {**computed_for, "batch_size": 3}
    services.loaded_models_clear()
    run = attribute(tiny_model_version, user, "other-config", django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert run.status == AttributionRun.Status.FAILED
    assert "not been computed for this engine configuration" in run.error
    assert "compute_model_artifacts" in run.error
    artifacts = {a.kind: a for a in tiny_model_version.artifacts.all()}
    assert {a.status for a in artifacts.values()} == {ModelArtifact.Status.MISSING}
    assert all("compute_model_artifacts" in a.error for a in artifacts.values())
    assert services.model_version_artifacts_missing(tiny_model_version)
    # computing again (the queue accepts it now) makes the rerun succeed
    services.model_version_artifacts_compute(model_version=tiny_model_version)
    with django_capture_on_commit_callbacks(execute=True):
        rerun = services.attribution_run_rerun(run=run, actor=user, reason="artifacts computed")
    rerun.refresh_from_db()
    assert rerun.status == AttributionRun.Status.SUCCEEDED, rerun.error


def test_a_step_float32_cannot_resolve_fails_the_run_and_books_nothing(
    tiny_model_version, user, django_capture_on_commit_callbacks, attribution_settings
):
    from ledger.models import Settlement

    services.model_version_artifacts_compute(model_version=tiny_model_version)
    engine = dict(attribution_settings.ATTRIBUTION_ENGINE)
    attribution_settings.ATTRIBUTION_ENGINE = {**engine, "target_update_norm": 1e-12}
    run = attribute(
        tiny_model_version, user, "too-small-a-step", django_capture_on_commit_callbacks
    )
    run.refresh_from_db()
    assert run.status == AttributionRun.Status.FAILED
    assert "below what float32 arithmetic resolves" in run.error
    assert run.generation.status == Generation.Status.FAILED
    assert not Settlement.objects.filter(generation=run.generation).exists()
