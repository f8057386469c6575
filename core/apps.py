from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform core"

    def ready(self) -> None:
        from core.database_roles import grant_after_migrate

        post_migrate.connect(grant_after_migrate, sender=self)
