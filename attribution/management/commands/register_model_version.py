"""Register a stable-audio-tools checkpoint folder as a model version.

manage.py register_model_version NAME CHECKPOINT_DIR [--override-reason TEXT]
"""

from django.core.management.base import BaseCommand, CommandError

from attribution.services import model_version_register
from catalog.management.commands._actor import actor_from_option
from core.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Register a model version from model_config.json, model.safetensors (or model.ckpt) "
        "and training_manifest.json."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("checkpoint_dir")
        parser.add_argument(
            "--override-reason",
            default=None,
            help="register although opted-out recordings are in the training set (audited)",
        )
        parser.add_argument(
            "--user", help="username recorded as the actor in the audit trail (default: none)"
        )

    def handle(self, *args, **options):
        actor = actor_from_option(options["user"])
        try:
            model = model_version_register(
                name=options["name"],
                checkpoint_dir=options["checkpoint_dir"],
                actor=actor,
                override_reason=options["override_reason"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"model version {model.name} (id {model.pk}): checkpoint {model.checkpoint_sha256}, "
            f"{model.training_set_entries.count()} training tracks"
        )
