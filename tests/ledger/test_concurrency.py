"""Several processes settling at once, and a process killed mid-settlement (PostgreSQL)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection  # noqa: F401 (read by the skipif condition below)

from ledger import selectors, services
from ledger.models import (
    JournalEntry,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
)
from tests.conftest import test_database_url as application_database_url
from tests.ledger import factories

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),
]


def worker_env() -> dict[str, str]:
    """The environment of a settling process: the test database, as the application's role."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": application_database_url(),
    }


def worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.settle_worker", *args],
        cwd=REPO_ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_settlements_keep_the_chain_linear():
    model_version, _ = factories.catalog_create(tracks=30, holders=4)
    runs = []
    for seed in range(16):
        generation = factories.generation_create(
            model_version=model_version, revenue_minor=1000 + seed
        )
        runs.append(
            factories.run_create(generation=generation, scores=factories.scores_for(30, seed))
        )
    ids = [str(r.pk) for r in runs]
    processes = []
    for n in range(4):  # every process settles every run, each in its own order
        order = ids[:]
        random.Random(n).shuffle(order)
        processes.append(worker("settle", *order))
    results: dict[str, set[str]] = {}
    for p in processes:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        for line in out.splitlines():
            run_id, seq = line.split()
            results.setdefault(run_id, set()).add(seq)
    # Every process got the same entry for a run: one settlement each, no duplicates.
    assert all(len(seqs) == 1 for seqs in results.values()) and len(results) == 16
    assert Settlement.objects.count() == 16
    assert list(JournalEntry.objects.values_list("seq", flat=True)) == list(range(1, 17))
    report = selectors.ledger_verify()
    assert report.ok, report.first_break
    assert report.entries_checked == 16


def test_killed_settlement_leaves_nothing_partial(tmp_path):
    model_version, _ = factories.catalog_create(tracks=10, holders=3)
    generation = factories.generation_create(model_version=model_version, revenue_minor=500)
    run = factories.run_create(generation=generation, scores=factories.scores_for(10))
    first = factories.run_create(
        generation=factories.generation_create(model_version=model_version),
        scores=factories.scores_for(10, 3),
    )
    services.generation_settle(attribution_run=first)
    marker = tmp_path / "inside"
    p = worker("hang", str(run.pk), str(marker))
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert p.poll() is None, p.communicate()[1]
        assert time.monotonic() < deadline, "worker never reached the settlement transaction"
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    p.stdout.close()
    p.stderr.close()
    # Nothing of the killed settlement is visible: no entry, posting, settlement or line.
    assert JournalEntry.objects.count() == 1
    assert not Posting.objects.filter(entry_id__gt=1).exists()
    assert not Settlement.objects.filter(attribution_run=run).exists()
    first_settlement = Settlement.objects.get()
    assert not SettlementHolderLine.objects.exclude(settlement=first_settlement).exists()
    assert not SettlementTrackLine.objects.exclude(settlement=first_settlement).exists()
    assert selectors.ledger_verify().ok
    # The advisory lock died with the connection: settling again works and chains on.
    entry = services.generation_settle(attribution_run=run)
    assert entry.seq == 2
    assert selectors.ledger_verify().ok
