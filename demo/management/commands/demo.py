"""``manage.py demo``: the platform's main job on the demo world (see ``demo/services.py``)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ApplicationError
from core.progress import StageProgressBars
from demo.services import DEMO_USERS, demo_main_job, demo_report_lines


class Command(BaseCommand):
    help = (
        "Build or reuse the demo catalog and model, record a few generations, attribute and "
        "book them, and print the top tracks, per-holder amounts and statement totals."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tracks", type=int, help="demo training tracks (default 300)")
        parser.add_argument("--train-minutes", type=float, help="training budget (default 8)")

    def handle(self, *args, tracks=None, train_minutes=None, **options) -> None:
        build_options = {}
        if tracks is not None:
            build_options["tracks"] = tracks
        if train_minutes is not None:
            build_options["train_minutes"] = train_minutes
        bars = StageProgressBars(self.stderr._out)
        try:
            result = demo_main_job(
                say=self.stdout.write,
                progress=bars,
                build_options=build_options,
                eager=settings.CELERY_TASK_ALWAYS_EAGER,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bars.close()
        for line in demo_report_lines(result):
            self.stdout.write(line)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo users (log in at http://127.0.0.1:8000/):"))
        for username, password, role, _, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<8} password {password:<18} role {role or 'superuser'}")
        self.stdout.write(
            "Open the web pages: ./run serve, then http://127.0.0.1:8000/ "
            "(API docs at /api/docs/, admin at /admin/)."
        )
