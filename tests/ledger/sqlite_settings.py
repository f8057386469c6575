"""Test settings on a SQLite file (for ``sqlite_cases.py``): the test database lives at
``$LEDGER_SQLITE_PATH.test`` instead of the per-process PostgreSQL name."""

import os

os.environ["DATABASE_URL"] = f"sqlite:///{os.environ['LEDGER_SQLITE_PATH']}"

from config.settings.test import *  # noqa: F403

DATABASES["default"]["TEST"] = {"NAME": os.environ["LEDGER_SQLITE_PATH"] + ".test"}  # noqa: F405
