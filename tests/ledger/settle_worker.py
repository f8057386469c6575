"""A separate process that settles attribution runs (used by the multi-process tests).

    python -m tests.ledger.settle_worker settle RUN_ID [RUN_ID ...]
    python -m tests.ledger.settle_worker hang RUN_ID MARKER_FILE

``settle`` prints ``run_id seq`` per run. ``hang`` stops inside the settlement transaction,
after the postings, the entry and the settlement lines are written but before commit,
creates MARKER_FILE and sleeps until it is killed.
"""

import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from attribution.models import AttributionRun
    from ledger import services
    from ledger.services import settlements

    mode, *args = argv
    if mode == "settle":
        for run_id in args:
            entry = services.generation_settle(
                attribution_run=AttributionRun.objects.get(pk=run_id)
            )
            print(run_id, entry.seq, flush=True)
    elif mode == "hang":
        run_id, marker = args

        def hang(**kwargs):
            Path(marker).write_text("inside the settlement transaction")
            time.sleep(600)

        settlements.audit_record = hang  # called inside the transaction, before commit
        services.generation_settle(attribution_run=AttributionRun.objects.get(pk=run_id))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
