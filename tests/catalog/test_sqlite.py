"""Large catalog imports on SQLite, in a subprocess on a SQLite database."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_large_imports_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.ledger.sqlite_settings",
        "LEDGER_SQLITE_PATH": str(tmp_path / "catalog.sqlite3"),
        "ROYALTIES_TEST_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ds",
         "tests.ledger.sqlite_settings",
         "tests/catalog/sqlite_cases.py"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout
