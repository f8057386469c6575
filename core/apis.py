"""API plumbing shared by every app."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import ApplicationError


def exception_handler(exc, context):
    """Turn ``ApplicationError`` into a 400 with its message, field and detail."""
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=400)
    return drf_exception_handler(exc, context)
