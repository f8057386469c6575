"""The production web server (``./run web``: gunicorn with config/gunicorn.py, static files by
WhiteNoise) started as a real process with the production settings."""

import re
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import REPO_ROOT, ServiceProcess, free_port, project_env

pytestmark = pytest.mark.django_db(transaction=True)


def production_env(data_dir, port: int, **extra: str) -> dict[str, str]:
    return project_env(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="production-server-test-" + "k" * 40,
        DJANGO_SECURE_SSL_REDIRECT="0",  # the test speaks plain HTTP, as a proxy would inside
        ROYALTIES_DATA_DIR=str(data_dir),
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_WORKERS="1",
        **extra,
    )


def start_production_server(tmp_path, **extra: str) -> tuple[ServiceProcess, str]:
    """collectstatic, then gunicorn exactly as ``./run web`` starts it; (process, base URL)."""
    port = free_port()
    env = production_env(tmp_path / "data", port, **extra)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    server = ServiceProcess(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
        env=env,
        log_path=tmp_path / "gunicorn.log",
        ready=b"Booting worker",
    ).start()
    return server, f"http://127.0.0.1:{port}"


def test_the_production_server_serves_pages_and_hashed_static_files(tmp_path):
    server, base = start_production_server(tmp_path)
    try:
        with urllib.request.urlopen(f"{base}/accounts/login/", timeout=30) as response:
            assert response.status == 200
            page = response.read().decode()
        # The manifest storage names each file by its content's hash...
        stylesheet = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page)
        assert stylesheet is not None, page[:2000]
        with urllib.request.urlopen(base + stylesheet.group(1), timeout=30) as response:
            assert response.status == 200
            assert b"{" in response.read()
            # ...so browsers may keep it for good.
            assert "immutable" in response.headers["Cache-Control"]
    finally:
        server.stop()
    assert b"Booting worker" in (tmp_path / "gunicorn.log").read_bytes()
