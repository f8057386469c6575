"""Uploaded import files kept on the server between "check" and "confirm".

A catalog admin uploads import files, reads the per-row report, then confirms; the files
confirmed are the very files checked (nothing is uploaded twice). Each check is a
*staged import*: a folder ``DATA_DIR/import-staging/<token>/`` holding the uploaded
files (``<kind>/<original name, reduced to safe characters>``) and ``staged.json``: who
uploaded them, their SHA-256, the audio folder, the report of the check and, once
confirmed, the import batch.

This module only stores and loads; ``catalog.services`` decides (``catalog_import_stage``,
``catalog_import_confirm``) and ``catalog.selectors.staged_import_get`` reads for a user.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings

STAGING_KEY_PATTERN = r"[0-9a-f]{32}"
_TOKEN = re.compile(rf"^{STAGING_KEY_PATTERN}$")
MANIFEST = "staged.json"

CHECKED = "checked"
APPLIED = "applied"


def staging_root() -> Path:
    return Path(settings.DATA_DIR) / "import-staging"


def safe_file_name(name: str) -> str:
    """The base name of an uploaded file, reduced to safe characters (suffix kept)."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "upload"
    return f"{stem[:100]}{suffix}"


@dataclass
class StagedImport:
    token: str
    actor_id: int | None
    created_at: str
    audio_folder: str = ""
    # kind -> {"name": original name, "path": path under the folder, "sha256", "bytes"}
    files: dict[str, dict] = field(default_factory=dict)
    state: str = CHECKED
    report: dict = field(default_factory=dict)  # ImportReport.as_dict()
    summary: str = ""
    isrcs: list[str] = field(default_factory=list)  # recordings named in the files
    batch_id: int | None = None
    replaces: str = ""  # the token of the check these files corrected

    @property
    def pk(self) -> str:  # the audit trail names a staged import by its token
        return self.token

    def __str__(self) -> str:
        names = ", ".join(info["name"] for info in self.files.values())
        return f"Staged import {self.token[:8]} ({names})"

    @property
    def folder(self) -> Path:
        return staging_root() / self.token

    def path(self, kind: str) -> Path:
        return self.folder / self.files[kind]["path"]

    @property
    def ok(self) -> bool:
        return bool(self.report.get("ok"))

    @property
    def applied(self) -> bool:
        return self.state == APPLIED

    @property
    def changes_anything(self) -> bool:
        return any(self.report.get("created", {}).values()) or any(
            self.report.get("updated", {}).values()
        )

    @property
    def counts(self) -> list[dict]:
        """Per kind of file: records created, updated, unchanged (or that would be)."""
        report = self.report
        return [
            {
                "kind": kind,
                "label": kind.replace("_", " "),
                **{
                    key: report.get(key, {}).get(kind, 0)
                    for key in ("created", "updated", "unchanged")
                },
            }
            for kind in report.get("kinds", [])
        ]

    @property
    def can_confirm(self) -> bool:
        return self.state == CHECKED and self.ok and self.changes_anything

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f"{MANIFEST}.tmp"
        temporary.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        temporary.replace(self.folder / MANIFEST)


def staged_import_load(token: str) -> StagedImport | None:
    """The staged import ``token`` names, or None (bad token, unknown or unreadable)."""
    if not _TOKEN.match(str(token)):
        return None
    path = staging_root() / token / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return StagedImport(**data)
