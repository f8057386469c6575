"""``manage.py compute_model_artifacts MODEL_VERSION``: the Fisher and theta0 losses.

Runs in this process (resumable: an interrupted run continues where it stopped), or with
``--queue`` marks the artifacts computing and sends the work to a GPU worker (the reconciler
sends it again if it stops).
"""

from django.core.management.base import BaseCommand, CommandError

from attribution import services
from attribution.models import ModelVersion
from core.exceptions import ApplicationError
from core.progress import StageProgressBars


class Command(BaseCommand):
    help = "Compute (or resume) a model version's Fisher and cached training-set losses."

    def add_arguments(self, parser) -> None:
        parser.add_argument("model_version", help="model version id or name")
        parser.add_argument("--queue", action="store_true", help="send it to a gpu worker")

    def handle(self, *args, model_version: str, queue: bool, **options) -> None:
        lookup = {"pk": int(model_version)} if model_version.isdigit() else {"name": model_version}
        found = ModelVersion.objects.filter(**lookup).first()
        if found is None:
            raise CommandError(f"No model version {model_version!r}.")
        if queue:
            try:
                services.model_version_artifacts_queue(
                    model_version=found, actor=None, reason="manage.py compute_model_artifacts"
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"Queued artifact computation for {found.name}.")
            return
        bars = StageProgressBars(self.stderr._out)
        try:
            artifacts = services.model_version_artifacts_compute(model_version=found, progress=bars)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bars.close()
        for kind, artifact in artifacts.items():
            self.stdout.write(f"{kind}: {artifact.status} {artifact.path}")
