"""Where uploaded import files are kept between "check" and "confirm".

A catalog admin uploads import files, reads the per-row report, then confirms; the files
confirmed are the very files checked (nothing is uploaded twice). Each staged batch
(``catalog.models.ImportBatch`` with a ``token``) keeps its files in
``DATA_DIR/import-staging/<token>/<kind>/<original name, reduced to safe characters>``,
on storage every worker reads: the tasks stream them from there, so no process ever
holds a whole file in memory.

This module only names paths; ``catalog.services`` decides (``catalog_import_stage``,
``catalog_import_confirm``) and ``catalog.selectors.import_batch_get`` reads for a user.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

STAGING_KEY_PATTERN = r"[0-9a-f]{32}"
STAGING_KEY = re.compile(rf"^{STAGING_KEY_PATTERN}$")


def staging_root() -> Path:
    return Path(settings.DATA_DIR) / "import-staging"


def safe_file_name(name: str) -> str:
    """The base name of an uploaded file, reduced to safe characters (suffix kept)."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "upload"
    return f"{stem[:100]}{suffix}"
