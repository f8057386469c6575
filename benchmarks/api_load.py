"""Load: generations recorded concurrently through the production web server's API, attributed
by real workers and settled, each exactly once.

    .venv/bin/python benchmarks/api_load.py [--generations 500] [--clients 16]

It builds the tests' tiny world (5 training tracks, the tiny DiT, the tests' small engine
configuration) in a throwaway PostgreSQL database on 127.0.0.1, starts a private Redis, the
production web server (``gunicorn -c config/gunicorn.py``, production settings), two ``gpu``
workers, one ``default`` worker and the scheduler, then records --generations generations
from --clients concurrent clients, each with its own audio. It reports the API's throughput
and latency percentiles, the time from the first request to the last settlement, and
checks that every generation is settled by exactly one settlement and that the ledger
verifies. Writes benchmarks/results/api_load-<date>-<commit>.json; the database is dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from attribution_common import REPO_ROOT, write_json

sys.path.insert(0, str(REPO_ROOT))

SERVER = "postgres://postgres@127.0.0.1:5432"


def git_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    import psycopg

    db_name = f"royalties_load_{os.getpid()}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    work = Path(tempfile.mkdtemp(prefix="api-load-"))
    processes: list = []  # what run() started, each with stop()
    try:
        result = run(args, db_name, work, processes)
    finally:
        for process in reversed(processes):
            process.stop()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    print(json.dumps(result, indent=2))
    out = REPO_ROOT / "benchmarks" / "results" / f"api_load-{date.today()}-{result['commit']}.json"
    write_json(out, result)
    print(f"wrote {out.relative_to(REPO_ROOT)}")


def run(args, db_name: str, work: Path, processes: list) -> dict:
    from tests.attribution.conftest import (
        TEST_ENGINE,
        post_generation_over_http,
        write_tiny_world,
    )
    from tests.conftest import PrivateRedis, ServiceProcess, free_port

    def start(cmd: list[str], env: dict, log: Path, ready: bytes) -> ServiceProcess:
        return ServiceProcess(cmd, env=env, log_path=log, ready=ready).start(timeout=120)

    redis = PrivateRedis(work)
    redis.start()
    processes.append(redis)
    data_dir = work / "data"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=f"{SERVER}/{db_name}",
        ROYALTIES_DATA_DIR=str(data_dir),
        CELERY_BROKER_URL=redis.url,
        CELERY_RESULT_BACKEND=redis.url,
        ATTRIBUTION_ENGINE=json.dumps(TEST_ENGINE),
        ATTRIBUTION_SHARD_SIZE="2",
        ATTRIBUTION_TORCH_THREADS="1",
        DJANGO_LOG_LEVEL="WARNING",
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    from attribution import services
    from attribution.models import AttributionRun
    from catalog.services import catalog_import_folder
    from ledger.models import Settlement
    from ledger.selectors.verification import ledger_verify

    catalog, checkpoint = write_tiny_world(work)
    assert catalog_import_folder(folder=catalog, actor=None).ok
    model_version = services.model_version_register(
        name="tiny-load", checkpoint_dir=checkpoint, actor=None
    )
    services.model_version_artifacts_compute(model_version=model_version)
    user = get_user_model().objects.create_user("load-generator", password="x" * 16)
    user.user_permissions.add(Permission.objects.get(codename="add_generation"))
    token = Token.objects.create(user=user).key

    port = free_port()
    web_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "load-benchmark-" + "k" * 40,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": "2",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=REPO_ROOT, env=web_env, check=True,
    )  # fmt: skip
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    for name, queue in (("gpu1", "gpu"), ("gpu2", "gpu"), ("default", "default")):
        processes.append(
            start(
                [*celery, "worker", "-Q", queue, "-n", f"{name}@%h", "--concurrency=1",
                 "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"],
                env, work / f"{name}.log", b"ready.",
            )
        )  # fmt: skip
    processes.append(
        start(
            [*celery, "beat", "--loglevel=INFO", "--schedule", str(work / "beat")],
            env, work / "beat.log", b"beat: Starting",
        )
    )  # fmt: skip
    processes.append(
        start(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
            web_env, work / "web.log", b"Booting worker",
        )
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        answers = list(
            pool.map(
                lambda index: post_generation_over_http(base, token, model_version.name, index),
                range(args.generations),
            )
        )
    recorded_s = time.perf_counter() - started
    statuses = sorted({status for status, _, _ in answers})
    latencies = [seconds for _, _, seconds in answers]
    deadline = time.monotonic() + 6 * 3600
    while time.monotonic() < deadline:
        active = AttributionRun.objects.exclude(
            status__in=[AttributionRun.Status.SUCCEEDED, AttributionRun.Status.FAILED]
        ).count()
        if active == 0:
            break
        time.sleep(1)
    settled_s = time.perf_counter() - started
    runs = AttributionRun.objects.all()
    per_generation = Settlement.objects.values_list("generation_id", flat=True)
    settlements = list(per_generation)
    verification = ledger_verify()
    return {
        "benchmark": "api_load",
        "commit": git_commit(),
        "date": str(date.today()),
        "machine": f"{os.cpu_count()}-core CPU",
        "command": "benchmarks/api_load.py " + " ".join(sys.argv[1:]),
        "generations": args.generations,
        "clients": args.clients,
        "web_workers": 2,
        "gpu_workers": 2,
        "http_statuses": statuses,
        "recording_seconds": round(recorded_s, 2),
        "recording_throughput_per_s": round(args.generations / recorded_s, 2),
        "api_latency_p50_s": round(percentile(latencies, 0.50), 3),
        "api_latency_p95_s": round(percentile(latencies, 0.95), 3),
        "api_latency_p99_s": round(percentile(latencies, 0.99), 3),
        "api_latency_max_s": round(max(latencies), 3),
        "seconds_to_last_settlement": round(settled_s, 1),
        "settled_per_s": round(args.generations / settled_s, 2),
        "runs_succeeded": runs.filter(status=AttributionRun.Status.SUCCEEDED).count(),
        "runs_failed": runs.filter(status=AttributionRun.Status.FAILED).count(),
        "runs_sent_again": runs.filter(redispatches__gt=0).count(),
        "settlements": len(settlements),
        "generations_settled_twice": len(settlements) - len(set(settlements)),
        "ledger_verifies": verification.ok,
    }


if __name__ == "__main__":
    main()
