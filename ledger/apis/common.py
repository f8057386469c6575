"""What every ledger endpoint shares: the finance permission, id bounds, the file
renderers."""

import json

from rest_framework import permissions
from rest_framework.renderers import BaseRenderer

from core.roles import FINANCE, user_has_role
from ledger.exports import CONTENT_TYPES

XLSX = CONTENT_TYPES["xlsx"]


MAX_ID = 2**63 - 1  # ids are bigint at most: larger input is a 400, not a database error


class IsFinance(permissions.BasePermission):
    message = "Only finance users may use this."

    def has_permission(self, request, view):
        return user_has_role(request.user, FINANCE)


class _FileRenderer(BaseRenderer):
    """Lets a client ask for a download's media type in ``Accept``; the file views return
    the bytes themselves, and errors come out as JSON text."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class CSVRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"


class PDFRenderer(_FileRenderer):
    media_type = "application/pdf"
    format = "pdf"


class XLSXRenderer(_FileRenderer):
    media_type = XLSX
    format = "xlsx"
