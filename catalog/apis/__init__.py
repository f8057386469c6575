"""REST API of the catalog (under ``/catalog/api/``), one module per aggregate.

Everyone signed in may read; what they see is scoped: catalog admins and finance see the
whole catalog, a rights holder's users see that holder and its recordings and opt-outs.
Only catalog admins write, except that a rights holder's users may request (and
withdraw) opt-outs and reference licences for that holder. Every write calls one service.
"""

from catalog.apis.common import FILTER_BACKENDS, IsCatalogAdmin, IsCatalogAdminOrReadOnly
from catalog.apis.holders import RightsHolderViewSet
from catalog.apis.imports import ImportApi, ImportCheckApi, ImportConfirmApi, StagedImportApi
from catalog.apis.licences import ReferenceLicenceViewSet
from catalog.apis.opt_outs import OptOutViewSet
from catalog.apis.recordings import RecordingViewSet

__all__ = [
    "FILTER_BACKENDS",
    "ImportApi",
    "ImportCheckApi",
    "ImportConfirmApi",
    "IsCatalogAdmin",
    "IsCatalogAdminOrReadOnly",
    "OptOutViewSet",
    "RecordingViewSet",
    "ReferenceLicenceViewSet",
    "RightsHolderViewSet",
    "StagedImportApi",
]
