"""The Celery application.

Two queues (``CELERY_TASK_ROUTES``): ``gpu`` for every ``attribution.*`` task (model loading,
artifacts, unlearning, scoring, and the finish step, whose transaction also books the
settlement) and ``default`` for everything else. A GPU worker runs
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
