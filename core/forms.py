"""Log-in forms with rate limiting (``core.login_limits``), for the site and the admin."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from core.login_limits import (
    client_address,
    login_failure_record,
    login_failures_clear,
    login_lockout_remaining,
)


def lockout_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    unit = "minute" if minutes == 1 else "minutes"
    return (
        "Too many failed log-ins for this username from your address. "
        f"Try again in {minutes} {unit}."
    )


class RateLimitedLoginMixin:
    """Refuse a locked-out username+address before checking the password; count each
    wrong password; clear the count on success. ``locked_out`` tells the view to answer 429.
    """

    locked_out = False

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        remaining = login_lockout_remaining(username=username, address=address)
        if username and remaining:
            self.locked_out = True
            raise forms.ValidationError(lockout_message(remaining), code="locked_out")
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if username and error.code == "invalid_login":
                lockout = login_failure_record(username=username, address=address)
                if lockout:
                    self.locked_out = True
                    raise forms.ValidationError(
                        lockout_message(lockout), code="locked_out"
                    ) from error
            raise
        login_failures_clear(username=username, address=address)
        return cleaned


class LoginForm(RateLimitedLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(RateLimitedLoginMixin, AdminAuthenticationForm):
    pass
