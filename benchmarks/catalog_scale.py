"""Catalog benchmark: importing 100,000 recordings with their ownership shares (CSV and
XLSX, on SQLite and on PostgreSQL), then the catalog pages at that size.

    .venv/bin/python benchmarks/catalog_scale.py [--rows 100000] [--requests 5]
        [--postgres-url postgres://postgres@127.0.0.1:5432] [--skip-postgres]
        [--formats csv,xlsx] [--pages-only] [--vacuum] [--staged] [--skip-sqlite]

It writes one import folder per format (``tests/catalog/large_catalog.py``: ``--rows``
recordings, each with its own 20 ms WAV file, two shares each, 201 rights holders; the
same files on every run), then for each database and format imports it into a fresh
database (SQLite: a new file; PostgreSQL: a throwaway database created for the run and
dropped afterwards) with ``catalog_import_folder``, the service behind the
``import_catalog`` command, in a child process, and reports its wall time and the child's
peak RSS (``resource.getrusage``). After each CSV import the child registers a model
version whose training set is every recording and times, through Django's test client
(median of ``--requests`` requests after one warm-up), the pages a rights holder and a
catalog admin use at that size. ``--pages-only`` skips the files and the import: the
child writes the same rights holders, recordings and shares straight into the fresh
database (``bulk_create``, no audio files) and times the pages, with My catalog of the
label also on its middle page, sorted by each column and searched by title and by ISRC.
``--vacuum``: on PostgreSQL, ``VACUUM ANALYZE`` before the pages, as autovacuum leaves a
table some time after a bulk insert (default: ``ANALYZE`` only, right after it).

``--staged``: the import the pages and the API run, instead of the pages. For each database
and format, a child process stages the folder's files as an ``ImportBatch``
(``catalog_import_stage``), which runs the check task, then confirms it
(``catalog_import_confirm``), which runs the import task; without a broker both tasks run
in-process right after their transaction commits, as ``./run serve`` runs them. It reports
each task's seconds (Celery's ``task_prerun``/``task_postrun`` signals), the progress
written on the batch's row (how many writes, and the longest time the row went without
one, counting the task's start and end), what a second connection read from the row while
the tasks ran (PostgreSQL), peak RSS and the catalog's counts afterwards; then another
child imports the same folder with ``catalog_import_folder`` on a fresh database, for
comparison.

Prints the figures and writes ``benchmarks/results/catalog_scale-<date>-<commit>.json``
(``-staged`` with ``--staged``). Not a test.
"""

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "catalog-benchmark-only"  # noqa: S105 (throwaway users of a throwaway database)
sys.path.insert(0, str(REPO_ROOT))


def setup_django(database_url: str, data_dir: Path) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["ROYALTIES_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # DEBUG off: Django would otherwise keep every query in memory.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "catalog-benchmark-only")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def median_ms(client, url: str, requests: int) -> dict:
    response = client.get(url)  # warm-up (templates, first query plans)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {
        "url": url,
        "median_ms": round(statistics.median(times), 1),
        "bytes": len(response.content),
    }


def catalog_rows_write(rows: int) -> None:
    """The rows ``tests.catalog.large_catalog`` describes, written without the import: for
    timing pages only (the recordings name audio files that do not exist)."""
    from decimal import Decimal

    from django.db import transaction

    from catalog.models import OwnershipShare, Recording, RightsHolder
    from tests.catalog import large_catalog

    holders = {
        name: RightsHolder.objects.create(legal_name=name, kind=kind, payout_currency=currency)
        for name, kind, _isni, _ipi, currency, _email in large_catalog.holder_rows()
    }
    for start in range(0, rows, 5000):
        numbers = range(start, min(start + 5000, rows))
        with transaction.atomic():  # each recording's shares sum to 100 at commit
            recordings = Recording.objects.bulk_create(
                Recording(
                    isrc=large_catalog.isrc_for(n),
                    title=large_catalog.recording_row(n)[1],
                    duration_seconds=Decimal("0.020"),
                    sample_rate=large_catalog.SAMPLE_RATE,
                    audio=large_catalog.recording_row(n)[3],
                    audio_sha256=f"{n:064x}",
                    audio_bytes=len(large_catalog.wav_bytes(0)),
                )
                for n in numbers
            )
            OwnershipShare.objects.bulk_create(
                OwnershipShare.of(
                    recording, rights_holder=holders[holder], percent=Decimal(percent)
                )
                for n, recording in zip(numbers, recordings, strict=True)
                for _isrc, holder, percent in large_catalog.share_rows(n)
            )


def child_pages(args: argparse.Namespace) -> None:
    """In a fresh process: migrate, write the rows, time the pages."""
    setup_django(args.database_url, Path(args.data_dir))
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    catalog_rows_write(args.rows)
    result = {
        "ok": True,
        "rows_written_seconds": round(time.perf_counter() - started, 1),
        "pages": pages_time(args.rows, args.requests, more=True, vacuum=args.vacuum),
    }
    print("RESULT " + json.dumps(result))


def pages_time(rows: int, requests: int, *, more: bool = False, vacuum: bool = False) -> dict:
    """Register a model version over every recording, then time the pages."""
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from attribution.models import ModelVersion, TrainingSetEntry
    from catalog.models import Recording, RightsHolder
    from core.roles import CATALOG_ADMIN, RIGHTS_HOLDER
    from core.services import roles_ensure, user_create_or_update
    from tests.catalog import large_catalog

    roles_ensure()
    admin = user_create_or_update(username="bench-admin", password=PASSWORD, role=CATALOG_ADMIN)
    holder_user = user_create_or_update(
        username="bench-label", password=PASSWORD, role=RIGHTS_HOLDER
    )
    label = RightsHolder.objects.get(legal_name=large_catalog.LABEL)
    label.users.add(holder_user)
    artist_user = user_create_or_update(
        username="bench-artist", password=PASSWORD, role=RIGHTS_HOLDER
    )
    RightsHolder.objects.get(legal_name="Scale Artist 000").users.add(artist_user)
    version = ModelVersion.objects.create(
        name="scale",
        checkpoint_sha256="0" * 64,
        checkpoint_path="/nonexistent",
        config={},
        manifest_sha256="0" * 64,
        trained_at=timezone.now(),
    )
    ids = Recording.objects.order_by("isrc").values_list("pk", flat=True).iterator(chunk_size=5000)
    batch = []
    for position, recording_id in enumerate(ids):
        batch.append(
            TrainingSetEntry(
                model_version=version,
                position=position,
                recording_id=recording_id,
                track_id=f"track-{position}",
            )
        )
        if len(batch) == 5000:
            TrainingSetEntry.objects.bulk_create(batch)
            batch = []
    TrainingSetEntry.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # --vacuum: as autovacuum leaves tables after a bulk insert (visibility map
            # set, so index-only scans need not visit the table).
            cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")
    last = (rows + 49) // 50
    label_pages = (rows + 49) // 50  # the label holds a share of every recording
    pages = {}
    client = Client()
    client.force_login(holder_user)
    pages["my catalog, page 1 (label: a share of every recording)"] = median_ms(
        client, reverse("catalog:my-catalog"), requests
    )
    pages["my catalog, last page (label)"] = median_ms(
        client, f"{reverse('catalog:my-catalog')}?page={label_pages}", requests
    )
    if more:
        my_catalog = reverse("catalog:my-catalog")
        middle = (label_pages + 1) // 2
        pages["my catalog, middle page (label)"] = median_ms(
            client, f"{my_catalog}?page={middle}", requests
        )
        for sort in ("isrc", "-isrc", "title", "-title", "share", "-share", "-holder"):
            for page in (1, label_pages):
                pages[f"my catalog, sort={sort}, page {page} (label)"] = median_ms(
                    client, f"{my_catalog}?sort={sort}&page={page}", requests
                )
        number = rows // 2
        title = large_catalog.recording_row(number)[1]  # "Scale track 50000": 1 + 10 titles
        pages[f"my catalog, search {title!r} (label)"] = median_ms(
            client, f"{my_catalog}?q={title.replace(' ', '+')}", requests
        )
        prefix = large_catalog.isrc_for(number)[:9]  # 100 ISRCs
        pages[f"my catalog, search {prefix!r} (label)"] = median_ms(
            client, f"{my_catalog}?q={prefix}", requests
        )
        pages["my catalog, search 'track', sort=title, last page (label)"] = median_ms(
            client, f"{my_catalog}?q=track&sort=title&page={label_pages}", requests
        )
    pages["opt-out form (label)"] = median_ms(client, reverse("catalog:opt-out-request"), requests)
    pages["API recordings, page 1 (label)"] = median_ms(
        client, "/catalog/api/recordings/", requests
    )
    if more:
        pages["API recordings, page 1 by title (label)"] = median_ms(
            client, "/catalog/api/recordings/?ordering=title", requests
        )
        pages["API recordings, last by ISRC (label)"] = median_ms(
            client, "/catalog/api/recordings/?ordering=-isrc", requests
        )
        pages["API recordings, a page in the middle (label)"] = median_ms(
            client, api_middle(client, rows), requests
        )
    client.force_login(artist_user)
    pages[f"my catalog, page 1 (artist: {rows // large_catalog.HOLDERS} recordings)"] = median_ms(
        client, reverse("catalog:my-catalog"), requests
    )
    client.force_login(admin)
    detail = reverse("attribution:model-version", args=[version.pk])
    pages[f"model version, page 1 ({rows} training tracks)"] = median_ms(client, detail, requests)
    pages["model version, last page"] = median_ms(client, f"{detail}?page={last}", requests)
    pages["model versions list"] = median_ms(
        client, reverse("attribution:model-versions"), requests
    )
    pages["API recordings, page 1 (catalog admin)"] = median_ms(
        client, "/catalog/api/recordings/", requests
    )
    if api_paged_by_cursor(client):
        pages["API recordings, last by ISRC (catalog admin)"] = median_ms(
            client, "/catalog/api/recordings/?ordering=-isrc", requests
        )
    else:
        pages["API recordings, last page (catalog admin)"] = median_ms(
            client, f"/catalog/api/recordings/?page={last}", requests
        )
    return pages


def api_paged_by_cursor(client) -> bool:
    return "count" not in client.get("/catalog/api/recordings/").json()


def api_middle(client, rows: int) -> str:
    """The URL of the API page that starts after the middle recording by ISRC: a cursor
    as a ``next`` link carries it, or ``?page=``."""
    from tests.catalog import large_catalog

    if not api_paged_by_cursor(client):
        return f"/catalog/api/recordings/?page={rows // 100 + 1}"
    from core.pagination import cursor_encode

    return f"/catalog/api/recordings/?cursor={cursor_encode([large_catalog.isrc_for(rows // 2)])}"


def catalog_counts() -> dict:
    from catalog.models import OwnershipShare, Recording, RightsHolder

    return {
        "rights_holders": RightsHolder.objects.count(),
        "recordings": Recording.objects.count(),
        "ownership_shares": OwnershipShare.objects.count(),
    }


def child_import(args: argparse.Namespace) -> None:
    """In a fresh process: migrate, import the folder, optionally time the pages."""
    setup_django(args.database_url, Path(args.data_dir))
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from catalog.services import catalog_import_folder

    rss_before = peak_rss_mib()
    started = time.perf_counter()
    report = catalog_import_folder(folder=args.folder, actor=None)
    seconds = time.perf_counter() - started
    result = {
        "ok": report.ok,
        "problems": [p.as_dict() for p in report.problems[:5]],
        "created": report.created,
        "import_seconds": round(seconds, 1),
        "rows_per_second": round(report.rows / seconds),
        "peak_rss_mib_before_import": round(rss_before),
        "peak_rss_mib": round(peak_rss_mib()),
        "counts": catalog_counts(),
    }
    if args.pages and report.ok:
        result["pages"] = pages_time(args.rows, args.requests, vacuum=args.vacuum)
    print("RESULT " + json.dumps(result))


def max_gap(moments: list[float]) -> float:
    """The longest time between consecutive ``moments`` (seconds, in order); 0 for fewer
    than two."""
    return max((later - earlier for earlier, later in itertools.pairwise(moments)), default=0.0)


class BatchWatcher(threading.Thread):
    """Reads the newest import batch's row through its own database connection every
    ``interval`` seconds, as a page would while a task runs; keeps each change it sees."""

    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval = interval
        self.seen: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from catalog.models import ImportBatch

        try:
            while not self.stop.wait(self.interval):
                row = (
                    ImportBatch.objects.order_by("-pk")
                    .values("status", "phase", "processed", "total")
                    .first()
                )
                if row is not None and (not self.seen or self.seen[-1]["row"] != row):
                    self.seen.append({"at": time.perf_counter(), "row": row})
        finally:
            connection.close()


def child_staged(args: argparse.Namespace) -> None:
    """In a fresh process: migrate, stage the folder as a batch (the check task runs),
    confirm it (the import task runs), both in-process as without a broker."""
    os.environ["CELERY_BROKER_URL"] = ""  # no broker: the tasks run eagerly, in-process
    os.environ["CELERY_RESULT_BACKEND"] = ""
    setup_django(args.database_url, Path(args.data_dir))
    from celery.signals import task_postrun, task_prerun
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    assert settings.CELERY_TASK_ALWAYS_EAGER, "the staged benchmark runs the tasks in-process"
    from catalog.models import ImportBatch
    from catalog.services import catalog_import_confirm, catalog_import_stage
    from catalog.services.imports import import_folder_files
    from catalog.services.staged_imports import APPLY_STEP, CHECK_STEP, BatchProgress
    from core.roles import CATALOG_ADMIN
    from core.services import roles_ensure, user_create_or_update

    roles_ensure()
    admin = user_create_or_update(username="bench-admin", password=PASSWORD, role=CATALOG_ADMIN)
    tasks: dict[str, dict] = {}
    running: list[str] = []

    def started(sender=None, **_):
        running.append(sender.name)
        tasks[sender.name] = {"start": time.perf_counter(), "writes": [], "skipped": 0}

    def ended(sender=None, **_):
        tasks[sender.name]["end"] = time.perf_counter()
        running.pop()

    task_prerun.connect(started, weak=False)
    task_postrun.connect(ended, weak=False)
    write = BatchProgress.write

    def counted_write(progress, **values):
        # What BatchProgress.write skips: SQLite, inside the import's transaction.
        skipped = connection.in_atomic_block and connection.vendor == "sqlite"
        write(progress, **values)
        if running:
            task = tasks[running[-1]]
            if skipped:
                task["skipped"] += 1
            else:
                task["writes"].append(time.perf_counter())

    BatchProgress.write = counted_write
    watcher = BatchWatcher() if connection.vendor == "postgresql" else None
    if watcher is not None:
        watcher.start()
    rss_before = peak_rss_mib()
    folder = Path(args.folder)
    began = time.perf_counter()
    batch = catalog_import_stage(
        files=import_folder_files(folder), actor=admin, audio_folder=str(folder)
    )
    stage_seconds = time.perf_counter() - began
    batch.refresh_from_db()
    checked = {"status": batch.status, "summary": batch.summary}
    began = time.perf_counter()
    if batch.status == ImportBatch.Status.CHECKED and batch.ok:
        batch = catalog_import_confirm(batch=batch, actor=admin)
    confirm_seconds = time.perf_counter() - began
    if watcher is not None:
        watcher.stop.set()
        watcher.join()
    batch.refresh_from_db()
    result = {
        "ok": batch.status == ImportBatch.Status.APPLIED,
        "checked": checked,
        "status": batch.status,
        "error": batch.error,
        "stage_call_seconds": round(stage_seconds, 1),
        "confirm_call_seconds": round(confirm_seconds, 1),
        "progress_rows": settings.CATALOG_IMPORT_PROGRESS_ROWS,
        "tasks": {},
        "counts": catalog_counts(),
        "peak_rss_mib_before_import": round(rss_before),
        "peak_rss_mib": round(peak_rss_mib()),
    }
    for label, name in (("check", CHECK_STEP), ("import", APPLY_STEP)):
        task = tasks.get(name)
        if task is None or "end" not in task:
            continue
        moments = [task["start"], *task["writes"], task["end"]]
        summary = {
            "seconds": round(task["end"] - task["start"], 1),
            "progress_writes": len(task["writes"]),
            "progress_not_written": task["skipped"],
            "max_seconds_without_progress": round(max_gap(moments), 1),
        }
        if watcher is not None:
            seen = [s["row"] for s in watcher.seen if task["start"] <= s["at"] <= task["end"]]
            summary["rows_read_by_another_connection"] = len(seen)
            summary["last_read_by_another_connection"] = seen[-1] if seen else None
        result["tasks"][label] = summary
    print("RESULT " + json.dumps(result))


def fresh_database(kind: str, postgres_url: str, workdir: Path, label: str):
    if kind == "sqlite":
        path = workdir / f"{label}.sqlite3"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    import psycopg

    name = f"catalog_scale_{os.getpid()}_{label}"
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{postgres_url}/{name}", drop


def git_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()


def catalog_folders_write(args: argparse.Namespace, results: dict, workdir: Path) -> dict:
    """The import folder of each format: ``{format: folder}``."""
    from tests.catalog import large_catalog

    started = time.perf_counter()
    csv_folder = large_catalog.catalog_folder_write(workdir / "csv", args.rows)
    results["write_csv_and_audio_seconds"] = round(time.perf_counter() - started, 1)
    xlsx_folder = workdir / "xlsx"
    folders = {"csv": csv_folder}
    if "xlsx" in args.formats.split(","):
        started = time.perf_counter()
        xlsx_folder.mkdir()
        (xlsx_folder / "audio").symlink_to(csv_folder / "audio")
        large_catalog.catalog_folder_write(xlsx_folder, args.rows, fmt="xlsx", audio=False)
        results["write_xlsx_seconds"] = round(time.perf_counter() - started, 1)
        folders["xlsx"] = xlsx_folder
    results["file_bytes"] = {
        f"{kind}.{fmt}": (folder / f"{kind}.{fmt}").stat().st_size
        for fmt, folder in folders.items()
        for kind in large_catalog.HEADERS
    }
    print(f"files written: {results['file_bytes']}", flush=True)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--formats", default="csv,xlsx", help="import these formats (pages: after CSV)"
    )
    parser.add_argument(
        "--pages-only",
        action="store_true",
        help="no files and no import: write the rows straight into the database, time pages",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="PostgreSQL: VACUUM ANALYZE before timing pages (default: ANALYZE only)",
    )
    parser.add_argument(
        "--staged",
        action="store_true",
        help="the staged import (check task, then import task) instead of the pages, "
        "then catalog_import_folder on a fresh database for comparison",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--pages", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.staged:
            child_staged(args)
        elif args.pages_only:
            child_pages(args)
        else:
            child_import(args)
        return
    if args.staged and args.pages_only:
        parser.error("--staged imports the files; it cannot go with --pages-only")

    workdir = Path(tempfile.mkdtemp(prefix="catalog-scale-"))
    results: dict = {
        "benchmark": "catalog_scale",
        "date": date.today().isoformat(),
        "commit": git_commit(),
        "machine": "the 2-core CPU machine",
        "command": "benchmarks/catalog_scale.py " + " ".join(sys.argv[1:]),
        "rows": args.rows,
        "share_rows": 2 * args.rows,
        "imports": [],
    }
    if args.staged:
        results["load_average_at_start"] = [round(load, 1) for load in os.getloadavg()]
    try:
        folders = {"rows": None}
        if not args.pages_only:
            folders = catalog_folders_write(args, results, workdir)
        databases = ([] if args.skip_sqlite else ["sqlite"]) + (
            [] if args.skip_postgres else ["postgresql"]
        )
        # --staged: the staged import, then the command's on a fresh database.
        paths = ["staged", "command"] if args.staged else [None]
        for database in databases:
            for fmt, folder in folders.items():
                for path in paths:
                    label = f"{database}_{fmt}" + (f"_{path}" if path else "")
                    url, drop = fresh_database(database, args.postgres_url, workdir, label)
                    data_dir = workdir / f"data-{label}"
                    try:
                        command = [
                        sys.executable, __file__, "--child", "--database-url", url,
                        "--data-dir", str(data_dir), "--folder", str(folder),
                        "--rows", str(args.rows), "--requests", str(args.requests),
                        *(["--pages"] if fmt == "csv" and not args.staged else []),
                        *(["--pages-only"] if args.pages_only else []),
                        *(["--staged"] if path == "staged" else []),
                        *(["--vacuum"] if args.vacuum else []),
                    ]  # fmt: skip
                        started = time.perf_counter()
                        child = subprocess.run(
                            command, capture_output=True, text=True, cwd=REPO_ROOT
                        )
                        wall = time.perf_counter() - started
                    finally:
                        drop()
                    lines = [
                        line for line in child.stdout.splitlines() if line.startswith("RESULT ")
                    ]
                    if child.returncode != 0 or not lines:
                        raise SystemExit(
                            f"{label} failed:\n{child.stdout[-3000:]}{child.stderr[-3000:]}"
                        )
                    outcome = json.loads(lines[-1].removeprefix("RESULT "))
                    outcome.update(database=database, format=fmt, child_wall_seconds=round(wall, 1))
                    if path:
                        outcome["path"] = path
                    results["imports"].append(outcome)
                    if path == "staged":
                        for name, task in outcome["tasks"].items():
                            print(
                                f"{database} {fmt} staged: {name} task {task['seconds']} s, "
                                f"{task['progress_writes']} progress writes, at most "
                                f"{task['max_seconds_without_progress']} s apart",
                                flush=True,
                            )
                        print(
                            f"{database} {fmt} staged: {outcome['status']}, {outcome['counts']}, "
                            f"peak RSS {outcome['peak_rss_mib']} MiB",
                            flush=True,
                        )
                    elif args.pages_only:
                        print(f"{database}: rows written in {outcome['rows_written_seconds']} s")
                    else:
                        print(
                            f"{database} {fmt}{' command path' if path else ''}: import "
                            f"{outcome['import_seconds']} s "
                            f"({outcome['rows_per_second']} rows/s), peak RSS "
                            f"{outcome['peak_rss_mib']} MiB, ok={outcome['ok']}",
                            flush=True,
                        )
                    for name, page in outcome.get("pages", {}).items():
                        print(f"    {name}: {page['median_ms']} ms", flush=True)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        suffix = "" if args.rows == 100_000 else f"-{args.rows}"
        if args.pages_only:
            suffix += "-pages"
        if args.staged:
            suffix += "-staged"
            results["load_average_at_end"] = [round(load, 1) for load in os.getloadavg()]
        if args.vacuum:
            suffix += "-vacuum"
        elif args.formats not in ("csv,xlsx", "csv" if args.staged else ""):
            suffix += f"-{args.formats.replace(',', '-')}"
        path = out / f"catalog_scale-{results['date']}-{results['commit']}{suffix}.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {path}", flush=True)
    finally:
        # Hundreds of thousands of small files: removed once, after the figures are out.
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    main()
