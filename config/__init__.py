"""Project configuration: settings, the Celery app and URL routing.

The Celery app is imported here so that `@shared_task` functions bind to it as soon as
Django starts (the pattern recommended by Celery's Django guide).
"""

from config.celery import app as celery_app

__all__ = ("celery_app",)
