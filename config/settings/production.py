"""Production settings: DEBUG off, secret key required, HTTPS-only cookies and HSTS.

``DJANGO_SETTINGS_MODULE=config.settings.production python manage.py check --deploy``
passes with ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS`` set. The headers every mode
sends (CSP, nosniff, referrer policy, X-Frame-Options DENY) are in ``base``.

Extra environment variables: ``DJANGO_SECURE_SSL_REDIRECT`` (default ``1``; ``0`` when
the proxy redirects), ``DJANGO_CSRF_TRUSTED_ORIGINS`` (comma-separated
``https://host`` origins, when pages are served under another host than the API).
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "0")

from config.settings.base import *  # noqa: F403
from config.settings.base import env_bool, env_list

if DEBUG:  # noqa: F405
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Production settings refuse DJANGO_DEBUG=1.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Hashed, compressed static files, cached for a year by browsers (WhiteNoise serves them;
# ./run web runs collectstatic first).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
