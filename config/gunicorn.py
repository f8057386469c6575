"""Gunicorn's settings for the production web server (``./run web``, read with ``-c``).

Environment: ``WEB_BIND`` (default ``127.0.0.1:8000``), ``WEB_WORKERS`` (processes, default
2), ``WEB_THREADS`` (threads per process, default 4), ``WEB_TIMEOUT`` (seconds a request may
take, default 120: an upload of UPLOAD_MAX_BYTES over a slow link). Static files are served
by the application itself (WhiteNoise), from what ``collectstatic`` gathered in STATIC_ROOT.
"""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("WEB_TIMEOUT", "120"))
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
# Loading Django once before forking shares its memory between workers; a bad setting
# stops the server at start instead of in every worker.
preload_app = True
