"""Pages that belong to no single app: the home page, log-in, health check."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from core.forms import LoginForm
from core.navigation import dashboard_url_for, nav_links_for
from core.roles import ROLE_LABELS, user_roles


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """A user with one role starts on that role's dashboard; others (several roles, or
    none yet) get an overview of what they may open."""
    dashboard = dashboard_url_for(request.user)
    if dashboard is not None:
        return redirect(dashboard)
    links = nav_links_for(request.user)
    sections = [
        (ROLE_LABELS[role], [link for link in links if link.role == role])
        for role in user_roles(request.user)
    ]
    return render(request, "core/home.html", {"sections": sections})


class LoginView(auth_views.LoginView):
    """Django's log-in page with rate limiting (``core.login_limits``): a locked-out
    username+address gets the form back with the lockout message and status 429."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked_out:
            response.status_code = 429
        return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
