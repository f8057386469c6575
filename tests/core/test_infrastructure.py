"""The foundation: database vendors, migrations, the real broker and worker, settings."""

import os
import subprocess
import sys
import uuid

import pytest
from django.db import connection

from tests.conftest import REPO_ROOT


@pytest.mark.django_db
def test_suite_runs_against_postgresql():
    assert connection.vendor == "postgresql"


def test_migrations_apply_on_the_embedded_sqlite_default(tmp_path):
    """The embedded default: no DATABASE_URL, a SQLite file under the data folder."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", ROYALTIES_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db.sqlite3").stat().st_size > 0
    check = subprocess.run(
        [sys.executable, "-c", (
            "import django, os; django.setup();"
            "from django.db import connection; from django.db.migrations.executor import "
            "MigrationExecutor; ex = MigrationExecutor(connection);"
            "print(connection.vendor, len(ex.migration_plan(ex.loader.graph.leaf_nodes())))"
        )],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["sqlite", "0"]


@pytest.mark.worker
def test_task_travels_through_redis_to_a_real_worker(celery_worker_process, celery_client):
    token = uuid.uuid4().hex
    result = celery_client.send_task("core.health_check", args=[token], queue="default")
    payload = result.get(timeout=60)
    assert payload["token"] == token
    assert payload["pid"] != os.getpid()
    assert payload["pid"] != celery_worker_process.process.pid  # a prefork child ran it


def test_tasks_run_in_process_without_a_broker():
    from core.tasks import health_check

    result = health_check.delay("eager")
    assert result.get()["pid"] == os.getpid()


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_the_deploy_check():
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="x" * 20 + uuid.uuid4().hex + uuid.uuid4().hex,
        DJANGO_ALLOWED_HOSTS="royalties.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
