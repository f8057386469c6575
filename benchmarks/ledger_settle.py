"""Ledger benchmark: settlement throughput on PostgreSQL with every invariant on, and how
``verify_ledger`` time grows with the ledger's size.

    .venv/bin/python benchmarks/ledger_settle.py [--generations 400] [--tracks 2000]
        [--holders 1200] [--workers 1] [--database-url postgres://postgres@127.0.0.1/ledger_bench]

It (re)creates the benchmark database, migrates it (so the append-only, deferred-balance
and chain triggers are installed), registers a catalog of ``--tracks`` recordings owned by
``--holders`` rights holders (every third recording co-owned by three holders), records
``--generations`` generations with attribution runs over the whole training set, and
settles them through ``ledger.services.generation_settle`` (the real service: advisory
lock, hash chain, provenance rows, audit row, idempotency check). Each generation's
policy keeps between 50 and 500 tracks (``top_k``), so settlements have roughly 50 to 500
holder postings. Reports postings per second (wall clock, settlement calls only) and the
time of ``ledger_verify`` after each quarter of the generations. Not a test.
"""

import argparse
import os
import random
import sys
import time
from decimal import Decimal
from multiprocessing import Queue, get_context
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # DEBUG off: Django would otherwise keep every query in memory.
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", "ledger-benchmark-only")
    import django

    django.setup()


def recreate_database(database_url: str) -> None:
    import psycopg

    base, name = database_url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def build_fixture(*, tracks: int, holders: int, generations: int, seed: int) -> list[int]:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from attribution.models import AttributionRun, Generation, ModelVersion, TrainingSetEntry
    from catalog.models import OwnershipShare, Recording, RightsHolder

    rng = random.Random(seed)  # noqa: S311 (benchmark data, not secrets)
    with transaction.atomic():
        holder_rows = RightsHolder.objects.bulk_create(
            RightsHolder(legal_name=f"Bench Holder {i:05d}", kind="artist") for i in range(holders)
        )
        recordings = Recording.objects.bulk_create(
            Recording(
                title=f"Bench track {i}",
                isrc=f"USB{i // 100000:02d}26{i % 100000:05d}",
                duration_seconds=Decimal("30.000"),
                sample_rate=44100,
                audio=f"recordings/bench-{i}.wav",
                audio_sha256=f"{i:064x}",
            )
            for i in range(tracks)
        )
        shares = []
        for i, recording in enumerate(recordings):
            if i % 3 == 0:
                owners = rng.sample(holder_rows, 3)
                shares += [
                    OwnershipShare.of(recording, rights_holder=owners[0], percent=50),
                    OwnershipShare.of(recording, rights_holder=owners[1], percent=25),
                    OwnershipShare.of(recording, rights_holder=owners[2], percent=25),
                ]
            else:
                owner = holder_rows[i % holders]
                shares.append(OwnershipShare.of(recording, rights_holder=owner, percent=100))
        OwnershipShare.objects.bulk_create(shares)
        model_version = ModelVersion.objects.create(
            name="bench-model",
            checkpoint_sha256="c" * 64,
            checkpoint_path="/models/bench.ckpt",
            config={},
            manifest_sha256="m" * 64,
            trained_at=timezone.now(),
        )
        TrainingSetEntry.objects.bulk_create(
            TrainingSetEntry(model_version=model_version, position=i, recording=r)
            for i, r in enumerate(recordings)
        )
        user = get_user_model().objects.create(username="bench")
        gens = Generation.objects.bulk_create(
            Generation(
                model_version=model_version,
                prompt=f"bench prompt {g}",
                duration_seconds=Decimal("10.000"),
                audio=f"generations/bench-{g}.wav",
                audio_sha256=f"{g:064x}",
                revenue_minor=rng.randint(1, 500),
                currency="USD",
                requested_by=user,
                idempotency_key=f"bench-{g}",
            )
            for g in range(generations)
        )
        runs = AttributionRun.objects.bulk_create(
            AttributionRun(
                generation=g,
                model_version=model_version,
                status=AttributionRun.Status.SUCCEEDED,
                checkpoint_sha256=model_version.checkpoint_sha256,
                manifest_sha256=model_version.manifest_sha256,
                scores=[rng.gauss(0, 1e-3) for _ in range(tracks)],
            )
            for g in gens
        )
    return [r.pk for r in runs]


def policy_for(run_id: int):
    from ledger.splits import SplitPolicy

    top_k = random.Random(run_id).randint(50, 500)  # noqa: S311
    return SplitPolicy(temperature=Decimal(1), top_k=top_k, min_share=Decimal(0))


def settle(run_ids: list[int], batch: int = 1) -> int:
    """Settle the runs (``batch`` per transaction); returns the number of postings booked."""
    from attribution.models import AttributionRun
    from ledger import services
    from ledger.models import Posting

    seqs = []
    for start in range(0, len(run_ids), batch):
        chunk = run_ids[start : start + batch]
        runs = AttributionRun.objects.select_related("generation", "model_version").filter(
            pk__in=chunk
        )
        if batch == 1:
            run = runs.get()
            entries = [services.generation_settle(attribution_run=run, policy=policy_for(run.pk))]
        else:
            # one policy per chunk (top_k drawn from the chunk's first run)
            entries = services.generation_settle_many(
                attribution_runs=list(runs), policy=policy_for(chunk[0])
            )
        assert all(not isinstance(e, Exception) for e in entries), entries
        seqs += [e.seq for e in entries]
    return Posting.objects.filter(entry_id__in=seqs).count()


def _worker(database_url: str, run_ids: list[int], batch: int, out: Queue, go) -> None:
    try:
        setup_django(database_url)
        from django.db import connection

        connection.ensure_connection()
        out.put("ready")
        go.wait()  # start together, so start-up time is not measured
        out.put(settle(run_ids, batch))
    except BaseException as exc:  # report, never leave the parent waiting
        import traceback

        out.put(f"worker failed: {exc!r}\n{traceback.format_exc()}")
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=400)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--holders", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch", type=int, default=1, help="settlements per transaction (generation_settle_many)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LEDGER_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ledger_bench"
        ),
    )
    args = parser.parse_args()
    recreate_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from ledger.models import JournalEntry, Posting
    from ledger.selectors import ledger_verify

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    run_ids = build_fixture(
        tracks=args.tracks, holders=args.holders, generations=args.generations, seed=args.seed
    )
    print(
        f"fixture: {args.tracks} tracks, {args.holders} holders, {len(run_ids)} runs "
        f"in {time.perf_counter() - started:.1f}s"
    )
    connection.close()

    quarters = [run_ids[i * len(run_ids) // 4 : (i + 1) * len(run_ids) // 4] for i in range(4)]
    total_postings = 0
    total_seconds = 0.0
    for q, chunk in enumerate(quarters, start=1):
        if args.workers == 1:
            started = time.perf_counter()
            booked = settle(chunk, args.batch)
        else:
            context = get_context("spawn")  # fresh interpreters: no inherited connections
            out: Queue = context.Queue()
            go = context.Event()
            procs = [
                context.Process(
                    target=_worker,
                    args=(args.database_url, chunk[w :: args.workers], args.batch, out, go),
                )
                for w in range(args.workers)
            ]
            for p in procs:
                p.start()
            ready = [out.get(timeout=600) for _ in procs]
            if any(r != "ready" for r in ready):
                raise SystemExit(next(r for r in ready if r != "ready"))
            started = time.perf_counter()
            go.set()
            results = [out.get(timeout=600) for _ in procs]
            failures = [r for r in results if isinstance(r, str)]
            if failures:
                raise SystemExit(failures[0])
            booked = sum(results)
            for p in procs:
                p.join()
        elapsed = time.perf_counter() - started
        total_postings += booked
        total_seconds += elapsed
        started = time.perf_counter()
        report = ledger_verify()
        verify_seconds = time.perf_counter() - started
        assert report.ok, report.first_break
        print(
            f"quarter {q}: {len(chunk)} settlements, {booked} postings in {elapsed:.2f}s "
            f"= {booked / elapsed:,.0f} postings/s ({booked / len(chunk):.0f} per settlement); "
            f"ledger now {JournalEntry.objects.count()} entries / {Posting.objects.count()} "
            f"postings, verify_ledger {verify_seconds:.2f}s "
            f"({report.postings_checked / verify_seconds:,.0f} postings/s)"
        )
    print(
        f"TOTAL: {total_postings} postings in {total_seconds:.2f}s = "
        f"{total_postings / total_seconds:,.0f} postings/s sustained ({args.workers} worker(s), "
        f"{args.batch} settlement(s) per transaction)"
    )


if __name__ == "__main__":
    main()
