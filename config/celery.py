"""The Celery application.

Two queues: ``gpu`` for attribution work (model loading, unlearning, scoring) and
``default`` for everything else (settlement, statements, exports). A GPU worker runs
``celery -A config worker -Q gpu``; a general worker runs ``-Q default``.

Without ``CELERY_BROKER_URL`` the settings turn on eager mode, so tasks run in-process and
a new user needs no broker (see ``config/settings/base.py``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("royalties")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
