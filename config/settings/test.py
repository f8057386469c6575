"""Test settings: PostgreSQL by default (CI has it), fast password hashing.

``DATABASE_URL`` still wins, so the SQLite smoke test can point a subprocess elsewhere.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATA_DIR = Path(os.environ.get("ROYALTIES_TEST_DATA_DIR", BASE_DIR / "var" / "test-data"))  # noqa: F405
MEDIA_ROOT = DATA_DIR / "media"
ARTIFACTS_DIR = DATA_DIR / "artifacts"

# One test database per pytest process, so concurrent runs on one machine (several
# developers, or a developer beside CI) never drop each other's database. Subprocesses
# that a test starts get the database's real name through DATABASE_URL.
DATABASES["default"].setdefault("TEST", {})  # noqa: F405
DATABASES["default"]["TEST"]["NAME"] = f"test_{DATABASES['default']['NAME']}_{os.getpid()}"  # noqa: F405
