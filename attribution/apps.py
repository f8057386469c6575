from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"

    def ready(self) -> None:
        # Services enqueue tasks by name (they must not import the tasks module, which imports
        # them); importing it here registers the names in every process, the web one included.
        from attribution import tasks  # noqa: F401
