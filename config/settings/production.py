"""Production settings: DEBUG off, secret key required, HTTPS-only cookies and HSTS.

``DJANGO_SETTINGS_MODULE=config.settings.production python manage.py check --deploy``
passes with ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS`` set.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "0")

from config.settings.base import *  # noqa: F403
from config.settings.base import env_bool

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
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
