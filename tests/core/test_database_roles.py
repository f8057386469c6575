"""Two database roles: ``manage.py migrate`` connects as the schema's owner
(``DATABASE_OWNER_URL``) and grants the application's role (``DATABASE_URL``) what it
needs; that role owns nothing and cannot get around the ledger's and the audit trail's
triggers, while the application works.

A throwaway database owned by an owner role that is not a superuser, as in production
(docs/operations.md). It starts with audit events recorded before the trail was chained,
which the migration chains.
"""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.db import connection

from tests.conftest import APP_ROLE, REPO_ROOT, role_ensure

OWNER_ROLE = os.environ.get("TEST_DATABASE_OWNER_ROLE", "royalties_test_owner")

pytestmark = pytest.mark.skipif("connection.vendor != 'postgresql'")


def url(user: str, name: str) -> str:
    db = connection.settings_dict
    return f"postgres://{user}@{db['HOST']}:{db['PORT']}/{name}"


@pytest.fixture
def database() -> str:
    """An empty database owned by ``OWNER_ROLE``; dropped afterwards."""
    name = f"roles_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    superuser = connection.settings_dict["USER"]
    with psycopg.connect(url(superuser, "postgres"), autocommit=True) as admin:
        role_ensure(admin, APP_ROLE)
        role_ensure(admin, OWNER_ROLE)
        admin.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    try:
        yield name
    finally:
        with psycopg.connect(url(superuser, "postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def manage(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url(APP_ROLE, name),
        "DATABASE_OWNER_URL": url(OWNER_ROLE, name),
    }
    env.pop("CELERY_BROKER_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


APPLICATION_REFUSED = [
    "TRUNCATE ledger_posting",
    "TRUNCATE core_auditevent",
    "TRUNCATE catalog_rightsholder CASCADE",
    "DELETE FROM core_auditevent",
    "UPDATE core_auditevent SET reason = 'x'",
    "DELETE FROM ledger_journalentry",
    "UPDATE ledger_posting SET amount = 0",
    "ALTER TABLE core_auditevent DISABLE TRIGGER ALL",
    "ALTER TABLE ledger_journalentry DISABLE TRIGGER ledger_journalentry_append_only",
    "DROP TABLE ledger_posting",
    "DROP TRIGGER core_auditevent_append_only ON core_auditevent",
    "SET session_replication_role = replica",
    f"SET ROLE {OWNER_ROLE}",
    "CREATE TABLE core_auditevent_copy (id int)",
]


def test_migrate_as_owner_then_the_application_role_cannot_erase(database):
    manage(database, "migrate", "core", "0001", "--noinput")
    with psycopg.connect(url(OWNER_ROLE, database), autocommit=True) as owner:
        for action in ("user.create", "recording.update", "ledger.verify"):
            owner.execute(
                "INSERT INTO core_auditevent (occurred_at, action, object_type, object_id, "
                "object_repr, before, after, reason) "
                "VALUES (now(), %s, 'User', '1', 'x', NULL, '{\"n\": 1.0, \"e\": 1e20}', '')",
                [action],
            )
    manage(database, "migrate", "--noinput")

    with psycopg.connect(url(OWNER_ROLE, database), autocommit=True) as owner:
        owners = owner.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(OWNER_ROLE,)]
        chain = owner.execute("SELECT seq, action FROM core_auditevent ORDER BY id").fetchall()
        assert chain == [(1, "user.create"), (2, "recording.update"), (3, "ledger.verify")]
        # the owner holds every privilege; the triggers still refuse
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            owner.execute("TRUNCATE core_auditevent")
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            owner.execute("TRUNCATE ledger_journalentry CASCADE")

    with psycopg.connect(url(APP_ROLE, database), autocommit=True) as app:
        owned = app.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = current_user"
        ).fetchone()[0]
        assert owned == 0
        for sql in APPLICATION_REFUSED:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql)
        privileges = dict(
            app.execute(
                "SELECT t, has_table_privilege(current_user, t, 'UPDATE') "
                "FROM unnest(%s::text[]) t",
                [["ledger_posting", "core_auditevent", "ledger_payoutline", "catalog_recording"]],
            ).fetchall()
        )
        assert privileges == {
            "ledger_posting": False,
            "core_auditevent": False,
            "ledger_payoutline": True,  # its status moves forward (guarded by a trigger)
            "catalog_recording": True,
        }
        truncatable = app.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND has_table_privilege(current_user, format('%I.%I', schemaname, tablename), "
            "'TRUNCATE')"
        ).fetchone()[0]
        assert truncatable == 0

    # the application works as its role: a service writes and audits; everything verifies
    manage(
        database,
        "shell",
        "-c",
        "from core.services import user_create_or_update; "
        "user_create_or_update(username='finance', password='x', role='finance')",
    )
    verified = manage(database, "verify_ledger")
    assert "4 audit events checked" in verified.stdout


APPLICATION = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "royalties",
    "USER": "royalties_app",
    "HOST": "db",
    "PORT": 5432,
}


@pytest.mark.parametrize(
    ("owner_url", "refusal"),
    [
        ("postgres://royalties_app@db:5432/royalties", "same role"),
        ("postgres://royalties_owner@db:5432/other", "NAME"),
        ("postgres://royalties_owner@elsewhere:5432/royalties", "HOST"),
    ],
)
def test_the_owner_url_must_name_the_same_database_as_another_role(monkeypatch, owner_url, refusal):
    from django.core.exceptions import ImproperlyConfigured

    from config.settings.base import database_owner_from_env

    monkeypatch.setenv("DATABASE_OWNER_URL", owner_url)
    with pytest.raises(ImproperlyConfigured, match=refusal):
        database_owner_from_env(APPLICATION)
    monkeypatch.setenv("DATABASE_OWNER_URL", "postgres://royalties_owner:pw@db:5432/royalties")
    owner = database_owner_from_env(APPLICATION)
    assert (owner["USER"], owner["PASSWORD"]) == ("royalties_owner", "pw")
    monkeypatch.delenv("DATABASE_OWNER_URL")
    assert database_owner_from_env(APPLICATION) is None
