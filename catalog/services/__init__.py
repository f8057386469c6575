"""Writes to the catalog, one module per aggregate. Every function runs in one transaction
and records an audit row for each change (``core.services.audit_record``).

``holders`` (rights holders), ``recordings`` (training tracks and their audio), ``shares``
(ownership shares), ``opt_outs``, ``licences`` (reference licences), ``imports`` (the
catalog import, all or nothing) and ``staged_imports`` (check uploaded files, confirm them
later; both steps run as tasks), ``reconcile_imports`` (send a lost step again); ``common``
holds what they share.

Invariant asserted here and enforced by the database on PostgreSQL (migration 0002):
the ownership shares of every recording sum to exactly 100.0000 percent.
"""

from catalog.services.common import snapshot
from catalog.services.holders import HOLDER_FIELDS, rights_holder_create, rights_holder_update
from catalog.services.imports import (
    catalog_import,
    catalog_import_files,
    catalog_import_folder,
    import_folder_files,
)
from catalog.services.licences import reference_licence_grant, reference_licence_withdraw
from catalog.services.opt_outs import opt_out_create, opt_out_withdraw
from catalog.services.reconcile_imports import ImportReconcileReport, catalog_imports_reconcile
from catalog.services.recordings import RECORDING_FIELDS, recording_create, recording_update
from catalog.services.shares import ShareSpec, recording_shares_set, shares_problems
from catalog.services.staged_imports import (
    IMPORT_SUFFIXES,
    STAGING_MAX_AGE_SECONDS,
    catalog_import_apply_run,
    catalog_import_check_run,
    catalog_import_confirm,
    catalog_import_fail,
    catalog_import_stage,
    import_upload_check,
)

__all__ = [
    "HOLDER_FIELDS",
    "IMPORT_SUFFIXES",
    "RECORDING_FIELDS",
    "STAGING_MAX_AGE_SECONDS",
    "ImportReconcileReport",
    "ShareSpec",
    "catalog_import",
    "catalog_import_apply_run",
    "catalog_import_check_run",
    "catalog_import_confirm",
    "catalog_import_fail",
    "catalog_import_files",
    "catalog_import_folder",
    "catalog_import_stage",
    "catalog_imports_reconcile",
    "import_folder_files",
    "import_upload_check",
    "opt_out_create",
    "opt_out_withdraw",
    "recording_create",
    "recording_shares_set",
    "recording_update",
    "reference_licence_grant",
    "reference_licence_withdraw",
    "rights_holder_create",
    "rights_holder_update",
    "shares_problems",
    "snapshot",
]
