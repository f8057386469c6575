"""Shared fixtures: a real Celery worker process against the real Redis broker."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
# A Redis database per pytest process (8-15), so that test runs side by side on one machine
# do not flush or consume each other's queues.
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{8 + os.getpid() % 8}")


# The application's database role in the tests (PostgreSQL): it owns nothing and has only
# what ``core.database_roles`` grants. The test database is created and migrated by
# DATABASE_URL's user (the owner); every test then runs as this role (below).
APP_ROLE = os.environ.get("TEST_DATABASE_APP_ROLE", "royalties_test_app")


def test_database_url(*, as_owner: bool = False) -> str:
    """The URL of the database this test process uses (pytest-django's test database), as
    the application's role (what workers and servers started by a test use) or the owner."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("worker processes share the test database only on PostgreSQL")
    user = db["USER"] if as_owner else db.get("OPTIONS", {}).get("assume_role", db["USER"])
    return f"postgres://{user}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextmanager
def database_session(*, as_owner: bool = False) -> Iterator["psycopg.Connection"]:
    """A connection of its own to the test database, in autocommit, logged in as the
    application's role (what an attacker holding the application's credentials gets) or as
    the owner: every statement it runs is committed, or refused, on its own."""
    import psycopg

    with psycopg.connect(test_database_url(as_owner=as_owner), autocommit=True) as session:
        yield session


def role_ensure(cursor, role: str) -> None:
    """Create the login role ``role`` if missing (several test processes may race)."""
    cursor.execute(
        "DO $$ BEGIN "
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix, django_db_blocker
) -> None:
    """Before the test database is created: the application's role exists."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection._nodb_cursor() as cursor:
            role_ensure(cursor, APP_ROLE)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database is migrated by its owner; then the application's role is granted
    its privileges and every test connection acts as that role (``SET ROLE``), so a test
    sees what the application may do, not what the owner may.

    The owner stays the session user, for the harness only: between transactional tests
    Django empties the database with TRUNCATE, which the ledger and the audit trail refuse;
    it does so as the owner with triggers off (``SET LOCAL``, one transaction). Tests that
    tamper with the database on purpose do the same (``tests.ledger.test_db_invariants``).
    Workers and servers that tests start log in as the application's role itself
    (``test_database_url``)."""
    from django.db import connection
    from django.db.backends.postgresql.operations import DatabaseOperations

    from core.database_roles import app_role_privileges_grant

    if connection.vendor != "postgresql":
        yield
        return
    with django_db_blocker.unblock():
        app_role_privileges_grant(role=APP_ROLE)
    options = connection.settings_dict.setdefault("OPTIONS", {})
    sql_flush = DatabaseOperations.sql_flush

    def sql_flush_as_owner(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = sql_flush(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if not statements:
            return statements
        return ["SET LOCAL ROLE NONE", "SET LOCAL session_replication_role = replica", *statements]

    options["assume_role"] = APP_ROLE
    DatabaseOperations.sql_flush = sql_flush_as_owner
    connection.close()
    try:
        yield
    finally:
        DatabaseOperations.sql_flush = sql_flush
        options.pop("assume_role", None)
        connection.close()


def project_env(**extra: str) -> dict[str, str]:
    """The environment of a project process sharing this test's database."""
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=test_database_url())
    env.update(extra)
    return env


class ServiceProcess:
    """A long-running project process (the scheduler, the production web server) started by
    a test with that test's database and folders, logging to a file."""

    def __init__(self, cmd: list[str], *, env: dict[str, str], log_path: Path, ready: bytes):
        self.cmd, self.env, self.log_path, self.ready = cmd, env, log_path, ready
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "ServiceProcess":
        self.log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.cmd, cwd=REPO_ROOT, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.cmd[:4]} exited early:\n{self.log_path.read_text()}")
            if self.ready in self.log_path.read_bytes():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.cmd[:4]} did not become ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_file.close()
        self.process = None


class WorkerProcess(ServiceProcess):
    """A ``celery worker`` subprocess bound to a private Redis database and queue names."""

    def __init__(
        self,
        *,
        queues: str,
        broker_url: str,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        concurrency: int = 1,
    ):
        self.queues = queues
        self.broker_url = broker_url
        self.extra_env = extra_env or {}
        self.concurrency = concurrency
        cmd = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
            "-Q", queues, "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-heartbeat",
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        env = project_env(CELERY_BROKER_URL=broker_url, CELERY_RESULT_BACKEND=broker_url)
        env.update(self.extra_env)
        super().__init__(cmd, env=env, log_path=log_path, ready=b"ready.")

    def start(self, timeout: float = 60) -> "WorkerProcess":
        super().start(timeout)
        return self

    def pool_pids(self) -> list[int]:
        """The prefork children that execute tasks."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]


@pytest.fixture
def redis_broker_url() -> Iterator[str]:
    """A flushed Redis database for one test's broker traffic."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture
def queue_worker(redis_broker_url, tmp_path):
    """``start(queues, engine=None, concurrency=1, **env)``: a worker process consuming only
    ``queues``, with this test's database, data folder, shard size and engine settings (or
    ``engine``) as they are when it starts; all stopped after the test."""
    import json

    from django.conf import settings

    started: list[WorkerProcess] = []

    def start(
        queues: str, *, engine: dict | None = None, concurrency: int = 1, **extra_env: str
    ) -> WorkerProcess:
        data_dir = Path(settings.MEDIA_ROOT).parent
        assert Path(settings.ARTIFACTS_DIR).parent == data_dir, "one data folder for workers"
        worker = WorkerProcess(
            queues=queues,
            broker_url=redis_broker_url,
            log_path=tmp_path / f"worker-{len(started)}-{queues.replace(',', '-')}.log",
            extra_env={
                "ROYALTIES_TEST_DATA_DIR": str(data_dir),
                "ATTRIBUTION_ENGINE": json.dumps(
                    settings.ATTRIBUTION_ENGINE if engine is None else engine
                ),
                "ATTRIBUTION_SHARD_SIZE": str(settings.ATTRIBUTION_SHARD_SIZE),
                "ATTRIBUTION_TORCH_THREADS": "1",
                **extra_env,
            },
            concurrency=concurrency,
        )
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def celery_worker_process(redis_broker_url, tmp_path) -> Iterator[WorkerProcess]:
    """A real worker process on the default and gpu queues, stopped after the test."""
    worker = WorkerProcess(
        queues="default,gpu", broker_url=redis_broker_url, log_path=tmp_path / "worker.log"
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def celery_client(redis_broker_url):
    """A Celery client bound to the test broker, independent of the eager default app."""
    from celery import Celery

    client = Celery(
        "test-client", broker=redis_broker_url, backend=redis_broker_url, set_as_current=False
    )
    client.conf.task_serializer = "json"
    yield client
    client.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A ``redis-server`` of one test's own, without persistence (as ``./run test`` starts the
    shared one), so that the test can stop and restart it without touching anyone else's."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        """Stop it the way a crash or a restart does: everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def postgres_bin() -> Path:
    """The newest PostgreSQL server binaries installed (Debian's layout)."""
    import glob

    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of a test module's own (trust authentication, no fsync), so that a
    test can crash and restart it without touching the server other test runs share.

    Its ``template`` database is migrated once, the way a deployment's is (the owner runs
    ``manage.py migrate``, then the application's role gets its privileges); a test gets a
    copy of it (``database_create``). initdb refuses to run as root: then the cluster
    belongs to the ``postgres`` OS user, in a folder of its own under the system's temporary
    folder (pytest's are private to root)."""

    OWNER = "postgres"
    TEMPLATE = "royalties_template"

    def __init__(self):
        import tempfile

        self.bin = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="royalties-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.folder, user="postgres", group="postgres")

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} {args[1:3]} failed:\n{done.stdout}{done.stderr}{log}")

    def _pg_ctl(self, action: str, *options: str) -> None:
        server_options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", server_options, *options,
        )  # fmt: skip

    def url(self, database: str, role: str | None = None) -> str:
        return f"postgres://{role or self.OWNER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if not self.data.exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", self.OWNER, "--auth=trust", "-E", "UTF8",
                "--no-sync",
            )  # fmt: skip
        self._pg_ctl("start")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """Crash and start again (``-m immediate``: no clean shutdown, every session cut off,
        recovery from the write-ahead log on start), as a server killed and brought back by
        its supervisor."""
        self._pg_ctl("restart", "-m", "immediate")

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as session:
            session.execute(sql)

    def template_migrate(self, app_role: str) -> None:
        """Create the application's role and migrate the template database as its owner."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as session:
            role_ensure(session.cursor(), app_role)
            session.execute(f'CREATE DATABASE "{self.TEMPLATE}"')
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DATABASE_URL=self.url(self.TEMPLATE, app_role),
            DATABASE_OWNER_URL=self.url(self.TEMPLATE),
        )
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"migrating the private cluster failed:\n{done.stderr}")

    def database_create(self, name: str) -> None:
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.TEMPLATE}"')

    def database_drop(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Stop it and delete its files."""
        import shutil

        try:
            self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster for one test module, its template database migrated."""
    server = PrivatePostgres()
    try:
        server.start()
        server.template_migrate(APP_ROLE)
        yield server
    finally:
        server.close()


@pytest.fixture
def private_database(private_postgres, django_db_blocker) -> Iterator[PrivatePostgres]:
    """For one test: this process's connection, and every worker or server the test starts
    (``test_database_url``), use a fresh copy of the private cluster's migrated database, as
    the application's role; the shared test database is left alone. Use it before any
    fixture that writes rows."""
    from django.db import connection

    name = f"test_private_{uuid.uuid4().hex[:10]}"
    with django_db_blocker.unblock():
        private_postgres.database_create(name)
        connection.close()
    keys = ("HOST", "PORT", "NAME")
    saved = {key: connection.settings_dict[key] for key in keys}
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(private_postgres.port), NAME=name)
    try:
        yield private_postgres
    finally:
        connection.close()
        connection.settings_dict.update(saved)
        private_postgres.database_drop(name)
