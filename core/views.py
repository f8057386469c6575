"""Pages that belong to no single app."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.roles import ALL_ROLES, user_has_role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    roles = [role for role in ALL_ROLES if user_has_role(request.user, role)]
    return render(request, "core/home.html", {"roles": roles})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
