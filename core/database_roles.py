"""Two database roles (PostgreSQL): the schema's owner migrates, the application only uses.

The application's role owns no table, so it cannot ``ALTER TABLE ... DISABLE TRIGGER``,
drop a table or a trigger, or replace a trigger function; it is not a superuser, so it
cannot set ``session_replication_role`` either. What it may do is granted after every
migrate by ``app_role_privileges_grant``:

- SELECT and INSERT on every table;
- UPDATE and DELETE too, except on the append-only tables: those with a trigger named
  ``<table>_append_only`` (the ledger's and the audit trail's), whose triggers would refuse
  the statements anyway;
- never TRUNCATE, REFERENCES or TRIGGER; only SELECT on ``django_migrations``;
- USAGE and SELECT on every sequence (inserts draw ids from them).

The grant is computed from the schema as it is after the migration, so a new table or a
newly append-only one is covered by the next migrate.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

APPEND_ONLY_TABLES_SQL = """
    SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND t.tgname = c.relname || '_append_only'
    ORDER BY c.relname
"""


def append_only_tables(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    with connections[using].cursor() as cursor:
        cursor.execute(APPEND_ONLY_TABLES_SQL)
        return [name for (name,) in cursor.fetchall()]


def app_role_privileges_grant(*, role: str, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Grant ``role`` what the application needs in the current schema and nothing more
    (run as the schema's owner; idempotent). Returns the append-only tables."""
    connection = connections[using]
    assert connection.vendor == "postgresql", "database roles are PostgreSQL's"
    quote = connection.ops.quote_name
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT current_schema(), current_user")
        schema, owner = cursor.fetchone()
        if owner == role:
            raise RuntimeError(
                f"migrating as {role!r}, the application's role: connect as the owner "
                "(DATABASE_OWNER_URL)"
            )
        schema, role_name = quote(schema), quote(role)
        tables = append_only_tables(using=using)
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role_name}")
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role_name}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role_name}"
        )
        for table in tables:
            cursor.execute(f"REVOKE UPDATE, DELETE ON {quote(table)} FROM {role_name}")
        cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {role_name}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role_name}")
    return tables


@contextmanager
def connected_as_owner(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Within: ``using`` connects as ``settings.DATABASE_OWNER`` (when set)."""
    owner = settings.DATABASE_OWNER
    if owner is None or using != DEFAULT_DB_ALIAS:
        yield
        return
    connection = connections[using]
    saved = {key: connection.settings_dict.get(key) for key in ("USER", "PASSWORD")}
    connection.close()
    connection.settings_dict.update({key: owner.get(key) for key in saved})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def grant_after_migrate(sender, *, using: str, **kwargs) -> None:
    """``post_migrate`` receiver: the application's role gets its privileges on what the
    migration created (when a separate owner migrates)."""
    role = settings.DATABASE_APP_ROLE
    if role and using == DEFAULT_DB_ALIAS and connections[using].vendor == "postgresql":
        app_role_privileges_grant(role=role, using=using)
