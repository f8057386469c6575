"""Cross-cutting request/response guards: upload size limits and security headers."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


def upload_limit_for(view_name: str | None) -> int:
    """The largest request body (bytes) the view named ``view_name`` accepts."""
    return settings.UPLOAD_MAX_BYTES_BY_URL_NAME.get(view_name or "", settings.UPLOAD_MAX_BYTES)


class UploadSizeLimitMiddleware:
    """Answer 413 to a request whose declared body (``Content-Length``) exceeds the limit
    of the view it is for, before anything reads the body.

    Limits: ``UPLOAD_MAX_BYTES_BY_URL_NAME`` per URL name (e.g. the catalog import),
    otherwise ``UPLOAD_MAX_BYTES``. Under WSGI the body read never goes past
    ``Content-Length``, so a body cannot be larger than declared. It sits before the CSRF
    middleware, whose check reads (and so would parse) the posted form.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        match = request.resolver_match
        limit = upload_limit_for(match.view_name if match else None)
        if length <= limit:
            return None
        message = (
            f"The upload is too large: {length / 2**20:.1f} MiB, "
            f"at most {limit / 2**20:.1f} MiB is accepted here."
        )
        if "/api/" in request.path:
            return JsonResponse({"message": message}, status=413)
        return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


class ContentSecurityPolicyMiddleware:
    """Send ``CONTENT_SECURITY_POLICY`` (when set) on every response that has none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
