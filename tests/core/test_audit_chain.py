"""The audit trail is append-only and hash-chained; ``verify_ledger`` checks its chain.

Real commits on PostgreSQL: the statements run on connections of their own, as the
owner (who holds every privilege, so only the triggers stand in the way) and as the
application's role; tampering is done as a superuser with every trigger disabled.
"""

import io
import itertools
import re
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import ProgrammingError, connection, connections, transaction

from core import hashing
from core.models import AuditEvent
from core.selectors import audit_trail_verify
from core.services import audit_record
from ledger import selectors
from tests.conftest import APP_ROLE, database_session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),
]


@pytest.fixture
def trail() -> list[AuditEvent]:
    """Five audit events, one with an actor."""
    user = get_user_model().objects.create(username="auditor")
    with transaction.atomic():
        events = [
            audit_record(actor=None, action="test.note", obj=user, after={"n": n}) for n in range(4)
        ]
    events.append(audit_record(actor=user, action="test.note", obj=user, reason="by hand"))
    return events


def tamper(sql: str, params=None) -> None:
    """``sql`` as a superuser with every trigger disabled: what the chain must expose."""
    with database_session(as_owner=True) as owner, owner.transaction():
        owner.execute("SET LOCAL session_replication_role = replica")
        owner.execute(sql, params)


def test_events_form_a_chain(trail):
    assert [e.seq for e in trail] == [1, 2, 3, 4, 5]
    assert trail[0].prev_hash == hashing.GENESIS_HASH
    for earlier, later in itertools.pairwise(trail):
        assert later.prev_hash == earlier.hash
    report = audit_trail_verify()
    assert report.ok and report.events_checked == 5
    assert (report.head_seq, report.head_hash) == (5, trail[-1].hash)
    ledger = selectors.ledger_verify()
    assert ledger.ok and ledger.audit.events_checked == 5


ERASING_STATEMENTS = [
    "UPDATE core_auditevent SET reason = 'rewritten'",
    "DELETE FROM core_auditevent WHERE seq = 5",
    "WITH gone AS (DELETE FROM core_auditevent RETURNING 1) SELECT count(*) FROM gone",
    "MERGE INTO core_auditevent e USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
    "TRUNCATE core_auditevent",
    "TRUNCATE core_auditevent CASCADE",
    "TRUNCATE auth_user CASCADE",  # reaches the trail through the actor's key
]


@pytest.mark.parametrize("as_owner", [True, False], ids=["owner", "application"])
def test_no_statement_erases_the_trail(trail, as_owner):
    import psycopg

    with database_session(as_owner=as_owner) as session:
        for sql in ERASING_STATEMENTS:
            with pytest.raises(psycopg.Error) as refused:
                session.execute(sql)
            if as_owner:  # restrict_violation, raised by the trail's triggers
                assert refused.value.sqlstate == "23001", (sql, refused.value)
                assert "append-only" in str(refused.value), sql
            else:  # insufficient_privilege, or else the same triggers
                assert refused.value.sqlstate in ("42501", "23001"), (sql, refused.value)
    assert AuditEvent.objects.count() == 5
    assert audit_trail_verify().ok


def test_an_event_that_does_not_extend_the_chain_is_refused(trail):
    import psycopg

    forged = (
        "INSERT INTO core_auditevent (seq, prev_hash, hash, occurred_at, action, object_type, "
        "object_id, object_repr, reason) VALUES (%s, %s, %s, now(), 'forged', 'X', '1', '', '')"
    )
    cases = [
        (6, "f" * 64),  # a prev_hash that is no event's hash
        (6, trail[3].hash),  # the hash of an event that is not the tip
        (9, trail[4].hash),  # a gap in seq
    ]
    with database_session() as app:
        for seq, prev_hash in cases:
            with pytest.raises(psycopg.errors.CheckViolation, match="hash chain"):
                app.execute(forged, [seq, prev_hash, hashing.sha256_hex(b"x")])
        # the tip's hash and the next seq: accepted (the trigger is not refusing everything)
        app.execute(forged, [6, trail[4].hash, hashing.sha256_hex(b"x")])
    assert AuditEvent.objects.count() == 6


FORGED_COLUMNS = (
    "seq, prev_hash, hash, occurred_at, action, object_type, object_id, object_repr, reason"
)


@pytest.mark.parametrize(
    ("sql", "seq", "reason"),
    [
        ("UPDATE core_auditevent SET reason = 'rewritten' WHERE seq = 2", 2, "does not match"),
        ("UPDATE core_auditevent SET after = '{\"n\": 7}' WHERE seq = 4", 4, "does not match"),
        ("UPDATE core_auditevent SET actor_id = NULL WHERE seq = 5", 5, "does not match"),
        (
            "UPDATE core_auditevent SET occurred_at = occurred_at + interval '1 second' "
            "WHERE seq = 1",
            1,
            "does not match",
        ),
        ("DELETE FROM core_auditevent WHERE seq = 3", 3, "missing"),
        (  # inserted out of the chain: an event placed between 3 and 4
            "UPDATE core_auditevent SET seq = seq + 1000 WHERE seq >= 4; "
            "UPDATE core_auditevent SET seq = seq - 999 WHERE seq > 1000; "
            f"INSERT INTO core_auditevent ({FORGED_COLUMNS}) "
            "VALUES (4, repeat('d', 64), repeat('e', 64), now(), 'forged', 'X', '1', '', '')",
            4,
            "prev_hash",
        ),
        (  # appended after the tip, linked to it, with a made-up hash
            f"INSERT INTO core_auditevent ({FORGED_COLUMNS}) SELECT 6, hash, repeat('e', 64), "
            "now(), 'forged', 'X', '1', '', '' FROM core_auditevent WHERE seq = 5",
            6,
            "does not match",
        ),
    ],
)
def test_tampering_is_found_by_verify_ledger(trail, sql, seq, reason):
    tamper(sql)
    report = selectors.ledger_verify()
    assert not report.ok
    assert report.first_break is None  # the journal is intact; the trail is not
    assert report.audit.break_seq == seq, report.audit.first_break
    assert reason in report.audit.first_break
    with pytest.raises(CommandError, match=f"audit event #{seq}: .*{reason}"):
        call_command("verify_ledger", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_consistently_rehashed_edit_breaks_the_next_link(trail):
    event = AuditEvent.objects.get(seq=2)
    event.reason = "forged"
    forged_hash = hashing.audit_event_hash(event.prev_hash, event)
    tamper("UPDATE core_auditevent SET reason = 'forged', hash = %s WHERE seq = 2", [forged_hash])
    report = audit_trail_verify()
    assert report.break_seq == 3 and "prev_hash" in report.first_break


def test_cutting_off_the_newest_events_is_found_with_an_anchor(trail):
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    head = re.search(r"^audit head (\S+)$", out.getvalue(), re.MULTILINE).group(1)
    assert head == f"5:{trail[-1].hash}"
    tamper("DELETE FROM core_auditevent WHERE seq = 5")
    call_command("verify_ledger", stdout=io.StringIO())  # the chain alone cannot tell
    with pytest.raises(CommandError, match="audit event #5: anchored event is missing"):
        call_command("verify_ledger", "--expect-audit", head, stdout=io.StringIO())


def test_json_is_hashed_as_the_database_gives_it_back(trail):
    """Numbers, nested documents and keys that are not strings verify after a round trip
    through ``jsonb``."""
    awkward = {
        "float": 0.1,
        "integral float": 1.0,
        "exponent": 1e20,
        "huge": 1.7976931348623157e308,
        "tiny": 5e-324,
        "negative zero": -0.0,
        "big int": 2**70,
        3: ("tuple", None, True),
        "nested": [{"é": "ü\n\t"}, []],
    }
    audit_record(actor=None, action="test.json", obj=trail[0], before=awkward, after=[awkward])
    report = audit_trail_verify()
    assert report.ok, report.first_break
    assert report.events_checked == 6


def test_concurrent_appends_keep_one_chain(trail):
    """Writers in separate transactions, all at once: each waits for the chain's tip."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def append(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(5):
                with transaction.atomic():
                    audit_record(actor=None, action="test.concurrent", obj=trail[0], after=[n, i])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    report = audit_trail_verify()
    assert report.ok, report.first_break
    assert report.events_checked == 5 + 4 * 5


def test_the_application_cannot_disable_the_triggers():
    """As the application's role, every way around the triggers is closed."""
    import psycopg

    attempts = [
        "ALTER TABLE core_auditevent DISABLE TRIGGER core_auditevent_append_only",
        "ALTER TABLE core_auditevent DISABLE TRIGGER ALL",
        "DROP TRIGGER core_auditevent_append_only ON core_auditevent",
        "DROP TABLE core_auditevent CASCADE",
        "ALTER TABLE ledger_posting DISABLE TRIGGER ALL",
        "DROP TABLE ledger_journalentry CASCADE",
        "ALTER TABLE ledger_posting RENAME TO ledger_posting_old",
        "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "SET session_replication_role = replica",
        "SET ROLE postgres",
    ]
    with database_session() as app:
        assert app.execute("SELECT current_user").fetchone()[0] == APP_ROLE
        for sql in attempts:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql)
        owned = app.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = current_user"
        ).fetchone()[0]
        assert owned == 0


def test_the_tests_run_as_the_application_role(trail):
    """The test connection acts as the application's role, so every test proves that the
    application works with the privileges it is granted and no more."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == APP_ROLE
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        AuditEvent.objects.filter(seq=1).delete()
