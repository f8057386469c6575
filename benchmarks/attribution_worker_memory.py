"""Benchmark: a GPU worker's memory over 100 consecutive attribution jobs.

Runs against real PostgreSQL (database ``bench_attribution``, recreated) and Redis (db 14)
with a real ``celery worker -Q gpu`` process, on the tiny test model (5 training tracks),
so it measures what the worker keeps between jobs, not the model's size. Prints the
resident memory (VmRSS) of the process that executes the tasks after selected jobs and
the growth from job 10 to the last job.

    .venv/bin/python benchmarks/attribution_worker_memory.py [--jobs 100]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "bench_attribution"
BROKER = "redis://127.0.0.1:6379/14"
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB_NAME}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()

    recreate_database()
    import django

    django.setup()
    import redis
    from celery import Celery
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(BROKER).flushdb()
    from attribution import services
    from attribution.models import AttributionRun
    from attribution.services import model_version_register
    from catalog.services import catalog_import_folder
    from tests.attribution.conftest import TEST_ENGINE, tone, wav_bytes, write_tiny_world
    from tests.conftest import WorkerProcess

    workdir = Path(tempfile.mkdtemp(prefix="bench-attr-"))
    settings.MEDIA_ROOT = workdir / "data" / "media"
    settings.ARTIFACTS_DIR = workdir / "data" / "artifacts"
    settings.ATTRIBUTION_ENGINE = TEST_ENGINE
    settings.ATTRIBUTION_SHARD_SIZE = 2
    catalog, checkpoint = write_tiny_world(workdir)
    assert catalog_import_folder(folder=catalog, actor=None).ok
    model_version = model_version_register(name="bench", checkpoint_dir=checkpoint, actor=None)
    services.model_version_artifacts_compute(model_version=model_version)
    user = get_user_model().objects.create_user("bench", password="x" * 12)

    worker = WorkerProcess(
        queues="gpu",
        broker_url=BROKER,
        log_path=workdir / "worker.log",
        extra_env={
            "ROYALTIES_TEST_DATA_DIR": str(workdir / "data"),
            "ATTRIBUTION_ENGINE": json.dumps(TEST_ENGINE),
            "ATTRIBUTION_SHARD_SIZE": "2",
        },
    )
    worker.start()
    client = Celery("bench", broker=BROKER, backend=BROKER, set_as_current=False)
    from attribution import tasks

    tasks.prepare_run.delay = lambda run_id: None  # this script sends the tasks itself
    samples: list[tuple[int, int, float]] = []
    started = time.monotonic()
    try:
        for job in range(1, args.jobs + 1):
            generation = services.generation_record(
                model_version=model_version,
                prompt=f"bench tone {job}",
                audio=wav_bytes(tone(100 + job, 0.4)),
                revenue_minor=100,
                currency="EUR",
                requested_by=user,
                idempotency_key=f"bench-{job}",
            )
            run = AttributionRun.objects.get(generation=generation)
            job_start = time.monotonic()
            client.send_task("attribution.prepare_run", args=[run.pk], queue="gpu")
            while True:
                run.refresh_from_db()
                if run.status in ("succeeded", "failed"):
                    break
                time.sleep(0.05)
            if run.status != "succeeded":
                raise SystemExit(f"job {job} failed: {run.error}")
            (pid,) = worker.pool_pids()
            samples.append((job, rss_kib(pid), time.monotonic() - job_start))
    finally:
        worker.stop()
    total = time.monotonic() - started
    print(f"{args.jobs} jobs in {total:.1f} s ({total / args.jobs:.2f} s per job)")
    print("job  worker RSS (MiB)  job seconds")
    shown = {1, 2, 5, 10, 25, 50, 75, args.jobs}
    for job, rss, seconds in samples:
        if job in shown:
            print(f"{job:>3}  {rss / 1024:>16.1f}  {seconds:>11.2f}")
    rss10 = next(rss for job, rss, _ in samples if job == min(10, args.jobs))
    last = samples[-1][1]
    print(
        f"RSS growth from job {min(10, args.jobs)} to job {args.jobs}: "
        f"{(last - rss10) / 1024:+.1f} MiB ({last / rss10:.3f}x)"
    )


if __name__ == "__main__":
    main()
