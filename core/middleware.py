"""Cross-cutting request/response guards: upload size limits, NUL characters in URLs,
security headers."""

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
        return _refusal(request, message, 413)


def _refusal(request: HttpRequest, message: str, status: int) -> HttpResponse:
    if "/api/" in request.path:
        return JsonResponse({"message": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RejectNulCharactersMiddleware:
    """Answer 400 to a request whose path or query string holds a NUL character.

    PostgreSQL refuses NUL in text, so such a value reaching a query would be a 500
    wherever a view passes a query parameter on unvalidated; forms and DRF serializers
    already refuse NUL in bodies.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return _refusal(request, "NUL characters are not allowed in URLs.", 400)
        return self.get_response(request)


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
