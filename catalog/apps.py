from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        # Services send the import tasks by name (they must not import the tasks module,
        # which imports them); importing it here registers the names in every process.
        from catalog import tasks  # noqa: F401
