"""Database plumbing every ledger writer shares: the ledger lock and bulk row inserts."""

import json
from collections.abc import Sequence

from django.db import connection

from core.db import CHAIN_ADVISORY_LOCK_KEY, chain_lock

LEDGER_ADVISORY_LOCK_KEY = CHAIN_ADVISORY_LOCK_KEY


def ledger_lock() -> None:
    """Serialise ledger writers until the end of the current transaction. It is the audit
    trail's lock too (``core.db``), so a writer of both chains never waits on itself."""
    chain_lock()


def int_array(values) -> str:
    """A PostgreSQL array literal of integers (one text parameter, cheap to send)."""
    return "{" + ",".join(map(str, values)) + "}"  # callers pass ints (ids, amounts)


def rows_insert(model, columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> None:
    """Insert plain rows into ``model``'s table, bypassing model instances.

    PostgreSQL: one ``INSERT ... SELECT FROM ROWS FROM (unnest(...), ...)`` statement with
    each column sent as one array literal (every trigger still fires per row). Column
    kinds: ``bigint``/``integer``, ``jsonb`` (one JSON array) and ``const`` (the same
    value in every row). Elsewhere: ``bulk_create``. Settlements write hundreds of lines
    each; building Django objects and adapting parameters one by one was the largest cost.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        names = [name for name, _ in columns]
        model.objects.bulk_create(model(**dict(zip(names, row, strict=True))) for row in rows)
        return
    quote = connection.ops.quote_name
    select, sources, select_params, source_params = [], [], [], []
    for i, (_, kind) in enumerate(columns):
        values = [row[i] for row in rows]
        if kind == "const":
            assert len(set(values)) == 1, f"column {i} is not constant"
            select.append("%s")
            select_params.append(values[0])
            continue
        alias = f"c{len(sources)}"
        select.append(alias)
        if kind == "jsonb":
            sources.append(("jsonb_array_elements(%s::jsonb)", alias))
            source_params.append(json.dumps(values, separators=(",", ":")))
        else:
            assert kind in ("bigint", "integer"), kind
            sources.append((f"unnest(%s::{kind}[])", alias))
            source_params.append(int_array(values))
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608 (identifiers from models)
        f"({', '.join(quote(name) for name, _ in columns)}) "
        f"SELECT {', '.join(select)} FROM ROWS FROM ({', '.join(src for src, _ in sources)}) "
        f"AS t({', '.join(alias for _, alias in sources)})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*select_params, *source_params])
