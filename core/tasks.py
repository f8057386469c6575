"""Operational tasks."""

import os
import socket

from celery import shared_task


@shared_task(name="core.health_check", soft_time_limit=10, time_limit=20)
def health_check(token: str) -> dict:
    """Echo ``token`` with the worker's host and pid, proving a worker ran the task."""
    return {"token": token, "hostname": socket.gethostname(), "pid": os.getpid()}
