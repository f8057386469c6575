"""Failures of the broker, the database and the workers, with real processes: a private
Redis the test restarts, Celery workers on the gpu and default queues, the scheduler (Celery
beat) sending the reconciler, and the production web server. Whatever fails, every
generation ends settled exactly once and the ledger verifies.

The PostgreSQL tests run on a cluster of this module's own (``private_postgres``), not on the
server other test runs share, and crash it for real: ``pg_ctl restart -m immediate`` kills
every server process without a clean shutdown, so every session and every open transaction
is cut off, and the server recovers from its write-ahead log on start.
"""

import json
import os
import signal
import sys
import uuid

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection

from attribution.models import AttributionRun, Generation, ModelArtifact
from ledger.services.db import LEDGER_ADVISORY_LOCK_KEY
from tests.attribution.conftest import TEST_ENGINE, post_generation_over_http
from tests.attribution.test_tasks import record_without_enqueue, wait_for
from tests.conftest import PrivatePostgres, ServiceProcess, project_env
from tests.conftest import test_database_url as database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Short leases, so that a lost step is found within seconds (production: minutes).
RECONCILER_ENV = {
    "ATTRIBUTION_RECONCILE_AFTER_SECONDS": "6",
    "ATTRIBUTION_RECONCILE_INTERVAL_SECONDS": "1",
    "ATTRIBUTION_RECONCILE_MAX_REDISPATCHES": "30",
}


@pytest.fixture
def redis_broker_url(private_redis):
    """Every worker and client of these tests uses the test's own Redis, which it restarts."""
    return private_redis.url


@pytest.fixture
def ready_model_version(tiny_model_version, attribution_settings):
    from attribution import services

    services.model_version_artifacts_compute(model_version=tiny_model_version)
    return tiny_model_version


@pytest.fixture
def cluster(queue_worker, private_redis, attribution_settings, tmp_path):
    """``start(scheduler=True, **env)``: a gpu worker, a default worker and the scheduler, as
    a deployment runs them (the scheduler sends the reconciler to the default worker)."""
    processes: list[ServiceProcess] = []

    def start(*, scheduler: bool = True, **env: str):
        gpu = queue_worker("gpu", engine=TEST_ENGINE, **RECONCILER_ENV, **env)
        if scheduler:
            queue_worker("default", **RECONCILER_ENV)
            beat = ServiceProcess(
                [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
                 "--schedule", str(tmp_path / f"beat-{uuid.uuid4().hex[:6]}")],
                env=project_env(
                    CELERY_BROKER_URL=private_redis.url,
                    CELERY_RESULT_BACKEND=private_redis.url,
                    **RECONCILER_ENV,
                ),
                log_path=tmp_path / "beat.log",
                ready=b"beat: Starting",
            ).start()  # fmt: skip
            processes.append(beat)
        return gpu

    yield start
    for process in processes:
        process.stop()


def settled_once(runs) -> None:
    """Every run succeeded, its generation is settled by exactly one settlement, and the
    ledger's chain, balances and provenance verify."""
    from ledger.models import Settlement
    from ledger.selectors.verification import ledger_verify

    for run in runs:
        run.refresh_from_db()
        assert run.status == AttributionRun.Status.SUCCEEDED, (run.status, run.error)
        assert Generation.objects.get(pk=run.generation_id).status == Generation.Status.SETTLED
        assert Settlement.objects.filter(generation_id=run.generation_id).count() == 1
    report = ledger_verify()
    assert report.ok, report.first_break


def all_succeeded(runs, timeout=240.0):
    ids = [run.pk for run in runs]

    def done() -> bool:
        active = AttributionRun.objects.filter(pk__in=ids)
        failed = active.filter(status=AttributionRun.Status.FAILED).first()
        assert failed is None, f"run {failed.pk} failed: {failed.error}"  # a final state
        return active.filter(status=AttributionRun.Status.SUCCEEDED).count() == len(ids)

    wait_for(done, timeout=timeout, what="every run to succeed")


def restart_database(server: PrivatePostgres) -> None:
    """Crash the test's database server and start it again while work is in flight."""
    server.restart()
    connection.close()  # this process's session was cut off too: the next query reconnects


def hold_the_ledger_lock() -> psycopg.Connection:
    """Another session takes the lock every settlement takes first: the finish step of a run
    then waits inside its transaction, half-way through booking."""
    holder = psycopg.connect(database_url(), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", [LEDGER_ADVISORY_LOCK_KEY])
    return holder


def a_settlement_waits_for_the_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return cursor.fetchone()[0] > 0


def test_runs_whose_queued_steps_a_redis_restart_forgot_are_sent_again_and_settle_once(
    ready_model_version, cluster, celery_client, private_redis, monkeypatch
):
    runs = [
        record_without_enqueue(ready_model_version, f"redis-queued-{n}", monkeypatch)
        for n in range(2)
    ]
    for run in runs:  # handed to the broker, no worker yet
        celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    assert private_redis_queue_length(private_redis) == 2
    private_redis.restart()  # no persistence: both steps are gone
    assert private_redis_queue_length(private_redis) == 0
    cluster()
    all_succeeded(runs)
    settled_once(runs)
    assert all(AttributionRun.objects.get(pk=run.pk).redispatches >= 1 for run in runs)


def private_redis_queue_length(private_redis) -> int:
    import redis

    return redis.Redis.from_url(private_redis.url).llen("gpu")


def test_a_chord_half_done_when_redis_restarts_is_finished_once(
    ready_model_version, cluster, celery_client, private_redis, monkeypatch
):
    # One track per shard: five shard tasks behind one chord counter in Redis.
    worker = cluster(scheduler=False, ATTRIBUTION_SHARD_SIZE="1")
    run = record_without_enqueue(ready_model_version, "redis-chord", monkeypatch)
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    wait_for(lambda: run.shards.exists(), what="the first shard to be scored", interval=0.005)
    pids = [worker.process.pid, *worker.pool_pids()]
    for pid in pids:  # hold the worker where it is while Redis goes away
        os.kill(pid, signal.SIGSTOP)
    done = run.shards.count()
    private_redis.restart()
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    run.refresh_from_db()
    assert 0 < done < run.shard_count == 5, (done, run.shard_count)
    cluster()  # the scheduler and the reconciler
    all_succeeded([run])
    settled_once([run])


def test_a_database_restart_during_the_shards_is_survived_and_books_once(
    private_database, ready_model_version, cluster, celery_client, monkeypatch
):  # private_database first: every row of the test is written on the private cluster
    cluster(ATTRIBUTION_SHARD_SIZE="1")
    run = record_without_enqueue(ready_model_version, "pg-shards", monkeypatch)
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    wait_for(lambda: run.shards.exists(), what="the first shard", interval=0.005)
    assert 0 < run.shards.count() < 5
    restart_database(private_database)
    all_succeeded([run])
    settled_once([run])


def test_a_database_restart_during_the_settlement_is_survived_and_books_once(
    private_database, ready_model_version, cluster, celery_client, monkeypatch
):
    cluster()
    run = record_without_enqueue(ready_model_version, "pg-settle", monkeypatch)
    holder = hold_the_ledger_lock()
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    wait_for(a_settlement_waits_for_the_lock, what="the settlement to be under way")
    restart_database(private_database)  # the settlement's transaction is cut off half-way
    holder.close()  # cut off too: the lock it held went with its session
    all_succeeded([run])
    settled_once([run])


def test_a_worker_killed_during_the_finish_step_books_once(
    ready_model_version, cluster, celery_client, monkeypatch
):
    worker = cluster()
    run = record_without_enqueue(ready_model_version, "kill-finish", monkeypatch)
    holder = hold_the_ledger_lock()
    celery_client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
    wait_for(a_settlement_waits_for_the_lock, what="the finish step to be booking")
    for pid in worker.pool_pids():
        os.kill(pid, signal.SIGKILL)
    holder.execute("SELECT pg_advisory_unlock(%s)", [LEDGER_ADVISORY_LOCK_KEY])
    holder.close()
    all_succeeded([run])
    settled_once([run])


def test_generations_recorded_through_the_api_while_the_broker_is_down_are_all_paid(
    ready_model_version, cluster, private_redis, tmp_path
):
    from rest_framework.authtoken.models import Token

    from tests.core.test_production_server import start_production_server

    user = get_user_model().objects.create_user("generator-api", password="x" * 12)
    user.user_permissions.add(Permission.objects.get(codename="add_generation"))
    token = Token.objects.create(user=user)
    private_redis.stop()
    server, base = start_production_server(
        tmp_path,
        CELERY_BROKER_URL=private_redis.url,
        CELERY_RESULT_BACKEND=private_redis.url,
        ATTRIBUTION_ENGINE=json.dumps(TEST_ENGINE),
    )
    try:
        answers = [
            post_generation_over_http(base, token.key, ready_model_version.name, n)
            for n in range(3)
        ]
    finally:
        server.stop()
    assert [status for status, _, _ in answers] == [201, 201, 201], answers
    assert max(seconds for _, _, seconds in answers) < 30, "a request waited on the broker"
    runs = [AttributionRun.objects.get(generation_id=body["id"]) for _, body, _ in answers]
    assert all(run.status == AttributionRun.Status.QUEUED for run in runs)
    private_redis.start()
    cluster()
    all_succeeded(runs)
    settled_once(runs)


def test_an_artifact_computation_whose_worker_was_killed_is_sent_again_and_ends_ready(
    tiny_model_version, cluster, private_redis, settings
):
    from attribution import services
    from tests.flows.conftest import project_celery_app

    worker = cluster(scheduler=False)
    admin = get_user_model().objects.create_user("artifacts-admin", password="x" * 12)
    with project_celery_app(settings, private_redis.url):  # sent to the worker's broker
        services.model_version_artifacts_queue(model_version=tiny_model_version, actor=admin)
    artifacts = ModelArtifact.objects.filter(model_version=tiny_model_version)
    wait_for(
        lambda: artifacts.filter(progress_percent__gt=0).exists(),
        what="the worker to be computing the artifacts",
        interval=0.05,
    )
    for pid in [worker.process.pid, *worker.pool_pids()]:  # the whole worker dies at once
        os.kill(pid, signal.SIGKILL)
    worker.process.wait()
    assert artifacts.exclude(status=ModelArtifact.Status.COMPUTING).count() == 0
    # Its message was taken, not acknowledged: Redis gives it back only after the
    # visibility timeout (hours). The reconciler sends the computation again.
    cluster()
    wait_for(
        lambda: not artifacts.exclude(status=ModelArtifact.Status.READY).exists(),
        timeout=180,
        what="every artifact to be ready",
    )
    assert max(artifact.redispatches for artifact in artifacts) >= 1
    assert services.model_version_artifacts_missing(tiny_model_version) == []
