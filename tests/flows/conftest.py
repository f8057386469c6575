"""The flows reuse the attribution tests' tiny registered world, and run their tasks the way
a broker-backed deployment does: published by the services to the real broker, routed by
``CELERY_TASK_ROUTES``, executed by worker processes that consume named queues."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.attribution.conftest import attribution_settings, tiny_world  # noqa: F401


@contextmanager
def project_celery_app(settings, broker_url: str) -> Iterator:
    """The project's Celery configuration with ``CELERY_BROKER_URL`` = ``broker_url``, current
    while the block runs: what a service enqueues is published there instead of run
    in-process, as the broker-less test settings would do."""
    from celery import Celery

    from config.celery import app as project_app

    settings.CELERY_BROKER_URL = broker_url
    settings.CELERY_RESULT_BACKEND = broker_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app = Celery("royalties", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.set_current()
    try:
        yield app
    finally:
        project_app.set_current()
        app.close()


@pytest.fixture
def broker_app(settings, redis_broker_url) -> Iterator:
    """The project's Celery app publishing to the test broker (``project_celery_app``)."""
    with project_celery_app(settings, redis_broker_url) as app:
        yield app
