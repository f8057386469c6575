"""The flows reuse the attribution tests' tiny registered world, and run their tasks the way
a broker-backed deployment does: published by the services to the real broker, routed by
``CELERY_TASK_ROUTES``, executed by worker processes that consume named queues."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attribution.conftest import attribution_settings, tiny_world  # noqa: F401
from tests.conftest import WorkerProcess


@pytest.fixture
def broker_app(settings, redis_broker_url) -> Iterator:
    """The project's Celery configuration with ``CELERY_BROKER_URL`` set, current in this
    test: what a service enqueues with ``.delay`` (or by task name) is published to the test
    broker instead of run in-process, as the broker-less test settings would do."""
    from celery import Celery

    from config.celery import app as project_app

    settings.CELERY_BROKER_URL = redis_broker_url
    settings.CELERY_RESULT_BACKEND = redis_broker_url
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
def queue_worker(redis_broker_url, tmp_path):
    """``start(queues)``: a worker process consuming only ``queues``, with this test's
    database, data folder and engine settings as they are when it starts; all stopped
    after the test."""
    from django.conf import settings

    started: list[WorkerProcess] = []

    def start(queues: str) -> WorkerProcess:
        data_dir = Path(settings.MEDIA_ROOT).parent
        assert Path(settings.ARTIFACTS_DIR).parent == data_dir, "one data folder for workers"
        worker = WorkerProcess(
            queues=queues,
            broker_url=redis_broker_url,
            log_path=tmp_path / f"worker-{len(started)}-{queues}.log",
            extra_env={
                "ROYALTIES_TEST_DATA_DIR": str(data_dir),
                "ATTRIBUTION_ENGINE": json.dumps(settings.ATTRIBUTION_ENGINE),
                "ATTRIBUTION_SHARD_SIZE": str(settings.ATTRIBUTION_SHARD_SIZE),
                "ATTRIBUTION_TORCH_THREADS": "1",
            },
        )
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
