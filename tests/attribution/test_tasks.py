"""Attribution through the real Redis broker and real worker processes (PostgreSQL)."""

import os
import signal
import time

import pytest
from django.contrib.auth import get_user_model

from attribution import services
from attribution.models import AttributionRun, Generation
from tests.attribution.conftest import TEST_ENGINE, tone, wav_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout=180.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def gpu_workers(queue_worker, attribution_settings):
    """Workers on both queues sharing this test's database, media and artifact folders."""

    def start(engine=None, **extra_env: str):
        return queue_worker("gpu,default", engine=engine or TEST_ENGINE, **extra_env)

    return start


@pytest.fixture
def ready_model_version(tiny_model_version, attribution_settings):
    services.model_version_artifacts_compute(model_version=tiny_model_version)
    return tiny_model_version


def record_without_enqueue(model_version, key, monkeypatch, engine=None):
    """Record a generation without enqueueing its run; the test then sends the task itself,
    through the broker (the test process runs tasks eagerly). The run records ``engine``
    (default TEST_ENGINE) as its configuration, and workers follow what the run records."""
    from django.conf import settings

    from attribution.services import runs

    monkeypatch.setattr(settings, "ATTRIBUTION_ENGINE", engine or TEST_ENGINE)

    monkeypatch.setattr(runs, "run_step_send_on_commit", lambda **kwargs: None)
    user, _ = get_user_model().objects.get_or_create(username="generator")
    generation = services.generation_record(
        model_version=model_version,
        prompt="a bright tone",
        audio=wav_bytes(tone(11, 0.4)),
        revenue_minor=1000,
        currency="EUR",
        requested_by=user,
        idempotency_key=key,
    )
    return AttributionRun.objects.get(generation=generation)


def settled_entries(run):
    from ledger.models import Settlement

    return Settlement.objects.filter(generation=run.generation).count()


def test_a_worker_attributes_and_settles_a_delivered_task_once(
    ready_model_version, gpu_workers, celery_client, monkeypatch
):
    gpu_workers()
    run = record_without_enqueue(ready_model_version, "worker-1", monkeypatch)
    # Delivered twice (a duplicate delivery): still one settlement.
    deliveries = [
        celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
        for _ in range(2)
    ]
    for delivery in deliveries:  # each prepare, then the finish step it launched, if any
        finish_task_id = delivery.get(timeout=180)
        if finish_task_id is not None:
            celery_client.AsyncResult(finish_task_id).get(timeout=180)
    run.refresh_from_db()
    assert run.status == AttributionRun.Status.SUCCEEDED and run.attempts == 2
    assert run.progress_percent == 100 and run.shard_count == 3
    assert Generation.objects.get(pk=run.generation_id).status == Generation.Status.SETTLED
    assert settled_entries(run) == 1


def test_a_worker_killed_mid_run_is_replaced_and_books_once(
    ready_model_version, gpu_workers, celery_client, monkeypatch
):
    worker = gpu_workers()
    run = record_without_enqueue(ready_model_version, "worker-kill", monkeypatch)
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    wait_for(
        lambda: AttributionRun.objects.get(pk=run.pk).attempts >= 1,
        what="the first delivery to start",
        interval=0.01,
    )
    for pid in worker.pool_pids():
        os.kill(pid, signal.SIGKILL)  # the process running the task dies
    wait_for(
        lambda: AttributionRun.objects.get(pk=run.pk).status == AttributionRun.Status.SUCCEEDED,
        what="the redelivered run to succeed",
    )
    run.refresh_from_db()
    assert settled_entries(run) == 1
    log = worker.log_path.read_text()
    assert "WorkerLostError" in log or run.attempts >= 2, log[-3000:]


def test_a_run_over_its_time_limit_fails_cleanly_and_an_admin_can_re_run_it(
    ready_model_version, gpu_workers, celery_client, monkeypatch
):
    from core.services import user_create_or_update

    gpu_workers(ATTRIBUTION_SOFT_TIME_LIMIT="2")
    slow = {**TEST_ENGINE, "unlearn_timesteps": 50_000}
    run = record_without_enqueue(ready_model_version, "worker-slow", monkeypatch, engine=slow)
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    failed = wait_for(
        lambda: AttributionRun.objects.filter(
            pk=run.pk, status=AttributionRun.Status.FAILED
        ).first(),
        what="the run to fail on its time limit",
    )
    assert "time limit of 2 s" in failed.error
    assert Generation.objects.get(pk=run.generation_id).status == Generation.Status.FAILED
    assert settled_entries(run) == 0
    admin = user_create_or_update(username="cat-admin", password="x" * 12, role="catalog_admin")
    rerun = services.attribution_run_rerun(run=failed, actor=admin, reason="limit raised")
    assert rerun.status == AttributionRun.Status.QUEUED and rerun.pk != failed.pk


def test_a_lost_database_connection_is_retried_and_the_run_still_books_once(
    ready_model_version, gpu_workers, celery_client, monkeypatch
):
    from django.db import connection

    from attribution.services.runs import PREPARE_SHARE

    # The run's query state takes seconds, and the prepare task writes its progress every
    # second while it works: cut off mid-way, its next write meets the broken connection. (A
    # cut between tasks would go unnoticed: each task starts on a fresh connection.)
    gpu_workers()
    long_query = {**TEST_ENGINE, "unlearn_timesteps": 8000}
    run = record_without_enqueue(
        ready_model_version, "worker-db-lost", monkeypatch, engine=long_query
    )
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    wait_for(
        lambda: AttributionRun.objects.filter(
            pk=run.pk, progress_percent__gt=0, progress_percent__lte=PREPARE_SHARE // 2
        ).exists(),
        what="the run to report progress early in its prepare step",
        interval=0.05,
    )
    with connection.cursor() as cursor:  # every other session of this database is cut off
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    done = wait_for(
        lambda: AttributionRun.objects.filter(
            pk=run.pk, status=AttributionRun.Status.SUCCEEDED
        ).first(),
        what="the retried run to succeed",
    )
    assert done.retries >= 1
    assert settled_entries(run) == 1


def test_two_workers_score_the_shards_and_match_the_engine_computed_in_one_process(
    ready_model_version, gpu_workers, celery_client, monkeypatch
):
    import numpy as np

    from attribution.engine.methods import unlearning_scores

    workers = [gpu_workers(), gpu_workers()]
    run = record_without_enqueue(ready_model_version, "worker-two", monkeypatch)
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    done = wait_for(
        lambda: AttributionRun.objects.filter(
            pk=run.pk, status=AttributionRun.Status.SUCCEEDED
        ).first(),
        what="the run to succeed",
    )
    # every shard was scored by one of the two worker processes, none by this one
    pool_pids = {str(pid) for worker in workers for pid in worker.pool_pids()}
    shard_pids = {name.rsplit(":", 1)[1] for name in done.shards.values_list("worker", flat=True)}
    assert done.shards.count() == 3 and shard_pids <= pool_pids, (shard_pids, pool_pids)

    import torch

    torch.set_num_threads(1)  # as the workers (ATTRIBUTION_TORCH_THREADS=1)
    cfg = services.run_engine_config(done)  # the configuration the run recorded
    loaded = services.loaded_model_for(ready_model_version, device=cfg.device)
    query = services.generation_query(done.generation, loaded.model)
    # One process, every stage: the same bytes as two workers sharing the shards.
    expected = unlearning_scores(loaded.model, query, loaded.train_set, cfg, store=loaded.store)
    assert np.asarray(done.scores).tobytes() == expected.tau.tobytes()
    assert done.scores_sha256 == expected.tau_sha256()
    assert done.provenance["query_state_sha256"] == expected.provenance["query_state_sha256"]
