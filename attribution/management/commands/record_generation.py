"""``manage.py record_generation``: record a generation (uploaded audio or generated here)
and, with ``--wait``, follow its attribution to the ledger."""

import time
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from attribution import selectors, services
from attribution.models import AttributionRun, ModelVersion
from catalog.models import Recording
from core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Record a generation and queue its attribution (idempotent by --key)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model-version", required=True, help="id or name")
        parser.add_argument("--prompt", required=True)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--audio", type=Path, help="generated audio to upload (WAV/FLAC)")
        source.add_argument("--generate", action="store_true", help="sample it with the model")
        parser.add_argument("--seconds", type=float, default=4.0, help="with --generate")
        parser.add_argument("--seed", type=int, default=0, help="with --generate")
        parser.add_argument("--revenue-minor", type=int, required=True)
        parser.add_argument("--currency", required=True)
        parser.add_argument("--key", required=True, help="idempotency key")
        parser.add_argument("--user", required=True, help="username of the requester")
        parser.add_argument("--wait", action="store_true", help="wait for the attribution")
        parser.add_argument(
            "--reference",
            default="",
            help="with --generate: ISRC of a catalog recording to condition on (licensed)",
        )
        parser.add_argument(
            "--noise-level",
            type=float,
            default=None,
            help="with --reference: the sigma the reference is noised to (conditioning strength)",
        )

    def handle(self, *args, **opts) -> None:
        reference = opts["model_version"]
        lookup = {"pk": int(reference)} if reference.isdigit() else {"name": reference}
        model_version = ModelVersion.objects.filter(**lookup).first()
        if model_version is None:
            raise CommandError(f"No model version {reference!r}.")
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"No user {opts['user']!r}.")
        common = dict(
            model_version=model_version,
            prompt=opts["prompt"],
            revenue_minor=opts["revenue_minor"],
            currency=opts["currency"],
            requested_by=user,
            idempotency_key=opts["key"],
        )
        try:
            if opts["generate"]:
                reference = None
                if opts["reference"]:
                    reference = Recording.objects.filter(isrc=opts["reference"]).first()
                    if reference is None:
                        raise CommandError(f"No recording with ISRC {opts['reference']!r}.")
                generation = services.generation_generate(
                    seconds_total=opts["seconds"],
                    seed=opts["seed"],
                    reference=reference,
                    reference_noise_level=opts["noise_level"],
                    **common,
                )
            else:
                if not opts["audio"].is_file():
                    raise CommandError(f"No audio file {opts['audio']}.")
                generation = services.generation_record(
                    audio=opts["audio"].read_bytes(), duration_seconds=None, **common
                )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Generation {generation.pk} ({generation.status}).")
        if not opts["wait"]:
            return
        run = selectors.latest_run(generation)
        while run is not None and run.status not in (
            AttributionRun.Status.SUCCEEDED,
            AttributionRun.Status.FAILED,
        ):
            self.stdout.write(
                f"  run {run.pk}: {run.status} {run.progress_percent}% "
                f"(eta {run.eta_seconds if run.eta_seconds is not None else '?'} s)"
            )
            time.sleep(2)
            run.refresh_from_db()
        if run is None or run.status == AttributionRun.Status.FAILED:
            raise CommandError(f"Attribution failed: {run.error if run else 'no run'}")
        for track in selectors.top_attributed_tracks(run):
            self.stdout.write(
                f"  #{track['rank']} {track['title']} ({track['isrc']}) "
                f"score {Decimal(str(track['score'])):.6g}"
            )
