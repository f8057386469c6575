"""Settings shared by every mode, read from the environment (12-factor).

Environment variables:

``DJANGO_DEBUG``          ``1`` (default here) or ``0``.
``DJANGO_SECRET_KEY``     required unless DEBUG is on; a fixed development key is used then.
``DJANGO_ALLOWED_HOSTS``  comma-separated; defaults to localhost only.
``DATABASE_URL``          any URL dj-database-url understands; default: the embedded
                          SQLite file ``$ROYALTIES_DATA_DIR/db.sqlite3``. Every process
                          (web, workers, scheduler) connects with it.
``DATABASE_OWNER_URL``    PostgreSQL, optional: the same database as the role that owns
                          the schema. ``manage.py migrate`` connects with it and then grants
                          ``DATABASE_URL``'s role what the application needs and no more
                          (docs/operations.md). Unset: migrate uses ``DATABASE_URL``.
``CELERY_BROKER_URL``     e.g. ``redis://127.0.0.1:6379/0``. Unset: tasks run in-process
                          (eager), so a new user needs no broker.
``CELERY_RESULT_BACKEND`` defaults to the broker URL when a broker is set.
``ROYALTIES_DATA_DIR``    where the database, media and artifacts live (default ``./data``).
``DJANGO_CACHE_URL``      e.g. ``redis://127.0.0.1:6379/1``; unset: a per-process memory
                          cache. The login rate limiter keeps its counters there, so set
                          it when several server processes run.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

_DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

DATA_DIR = Path(os.environ.get("ROYALTIES_DATA_DIR", BASE_DIR / "data")).resolve()
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
ARTIFACTS_DIR = DATA_DIR / "artifacts"
STATIC_ROOT = DATA_DIR / "static"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise (the middleware below) serves STATIC_ROOT as collectstatic filled it; in debug
# mode it reads the source folders directly, so nothing has to be collected first.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "catalog",
    "attribution",
    "ledger",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the application itself (STATIC_ROOT after collectstatic): no
    # separate file server is needed behind the proxy.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.RejectNulCharactersMiddleware",
    # Before the CSRF check, which reads (parses) the posted body.
    "core.middleware.UploadSizeLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.navigation.navigation",
            ],
        },
    },
]


def database_from_env() -> dict:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=0)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        if config["NAME"] not in ("", ":memory:"):
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # WAL lets the web server read while a task writes; IMMEDIATE transactions take the
        # write lock up front so concurrent writers wait instead of failing mid-transaction.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    return config


DATABASES = {"default": database_from_env()}


def database_owner_from_env(application: dict) -> dict | None:
    """The owner's connection: ``application``'s database, another user and password."""
    url = os.environ.get("DATABASE_OWNER_URL")
    if not url:
        return None
    owner = dj_database_url.parse(url, conn_max_age=0)
    if application["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_OWNER_URL is for PostgreSQL only")
    differs = [key for key in ("ENGINE", "NAME", "HOST", "PORT") if owner[key] != application[key]]
    if differs:
        raise ImproperlyConfigured(
            f"DATABASE_OWNER_URL must name DATABASE_URL's database; its {', '.join(differs)} differ"
        )
    if owner["USER"] == application["USER"]:
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL and DATABASE_URL name the same role; the application's role "
            "must own nothing"
        )
    return owner


DATABASE_OWNER = database_owner_from_env(DATABASES["default"])
# The role granted the application's privileges after each migrate (None: no separate owner).
DATABASE_APP_ROLE = DATABASES["default"]["USER"] if DATABASE_OWNER else None

_CACHE_URL = os.environ.get("DJANGO_CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL}
        if _CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Security (docs/operations.md, "Security") -----------------------------------------------
# Login rate limiting (core.login_limits): this many failed log-ins for one username from
# one address within the window lock that pair out for LOGIN_LOCKOUT_SECONDS.
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_SECONDS", "900"))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900"))
# Where the client's address is read from. Behind a reverse proxy that sets a header the
# client cannot forge, name it here, e.g. "HTTP_X_REAL_IP".
CLIENT_IP_META_KEY = os.environ.get("DJANGO_CLIENT_IP_META_KEY", "REMOTE_ADDR")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("DJANGO_SESSION_COOKIE_AGE", str(12 * 60 * 60)))
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Scripts only from our own static files (no inline script, no CDN). Inline styles are
# allowed: the server-rendered SVG charts carry a <style> element.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

# Uploads. Request bodies larger than these are refused with 413 before they are read
# (core.middleware.UploadSizeLimitMiddleware): per URL name, else UPLOAD_MAX_BYTES. The
# services check the content again (type, decodability, length).
UPLOAD_MAX_BYTES = int(os.environ.get("UPLOAD_MAX_BYTES", 64 * 1024 * 1024))
# Each catalog import file (CSV/XLSX; the audio is read from a server folder) may be at
# most CATALOG_MAX_IMPORT_BYTES (the catalog service says which file is too large); a
# request carries up to three of them.
CATALOG_MAX_IMPORT_BYTES = int(os.environ.get("CATALOG_MAX_IMPORT_BYTES", 32 * 1024 * 1024))
_CATALOG_IMPORT_REQUEST_BYTES = 3 * CATALOG_MAX_IMPORT_BYTES + 1024 * 1024
UPLOAD_MAX_BYTES_BY_URL_NAME = {
    "catalog:import": _CATALOG_IMPORT_REQUEST_BYTES,
    "catalog:api-import": _CATALOG_IMPORT_REQUEST_BYTES,
    "catalog:api-import-check": _CATALOG_IMPORT_REQUEST_BYTES,
}
# Non-file form fields and JSON bodies (Django's own cap: 400 beyond it); uploaded files
# larger than FILE_UPLOAD_MAX_MEMORY_SIZE are spooled to a temporary file, not memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Catalog audio ingestion refuses training tracks larger or longer than these.
CATALOG_MAX_AUDIO_BYTES = int(os.environ.get("CATALOG_MAX_AUDIO_BYTES", 200 * 1024 * 1024))
CATALOG_MAX_AUDIO_SECONDS = int(os.environ.get("CATALOG_MAX_AUDIO_SECONDS", 15 * 60))

# The share of a generation's royalty pool a new reference licence proposes (the licence
# form's initial value; the API's when `pool_share_percent` is left out), a string of a
# percent with at most 4 decimals. Why this value: docs/ledger.md, "Reference use" (the
# measured reference benchmark in BENCHMARKS.md).
CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT = os.environ.get(
    "CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT", "25"
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.apis.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Royalty ledger API",
    "DESCRIPTION": "Catalog registration, attribution of generations, royalty ledger.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every model choice set gets its own name, so two fields called "kind" or "status"
    # never collide (tests/test_api_schema.py fails on any schema warning).
    "ENUM_NAME_OVERRIDES": {
        "RightsHolderKindEnum": "catalog.models.RightsHolder.Kind",
        "ModelArtifactKindEnum": "attribution.models.ModelArtifact.Kind",
        "ModelArtifactStatusEnum": "attribution.models.ModelArtifact.Status",
        "GenerationSourceEnum": "attribution.models.Generation.Source",
        "GenerationStatusEnum": "attribution.models.Generation.Status",
        "AttributionRunStatusEnum": "attribution.models.AttributionRun.Status",
        "AccountKindEnum": "ledger.models.Account.Kind",
        "JournalEntryKindEnum": "ledger.models.JournalEntry.Kind",
        "PayoutBatchStatusEnum": "ledger.models.PayoutBatch.Status",
        "PayoutLineStatusEnum": "ledger.models.PayoutLine.Status",
    },
}

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or CELERY_BROKER_URL or None
# No broker configured: run tasks in-process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues are chosen by routing (Celery 5.5+ deprecates the per-task ``queue`` attribute):
# attribution work goes to GPU workers, everything else to the default queue.
CELERY_TASK_ROUTES = {
    "attribution.reconcile_runs": {"queue": "default"},  # bookkeeping, not GPU work
    "attribution.*": {"queue": "gpu"},
    "*": {"queue": "default"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Catalog imports from the pages and the API (catalog.tasks): the check and the import of
# a batch run on the default queue and write their progress on the batch's row at least
# every CATALOG_IMPORT_PROGRESS_ROWS rows. A run silent for CATALOG_IMPORT_STALE_SECONDS
# (its worker died) is taken over by the redelivered task. Past the soft limit a run
# fails cleanly (nothing imported); the hard limit is the backstop.
CATALOG_IMPORT_PROGRESS_ROWS = int(os.environ.get("CATALOG_IMPORT_PROGRESS_ROWS", "1000"))
CATALOG_IMPORT_STALE_SECONDS = int(os.environ.get("CATALOG_IMPORT_STALE_SECONDS", "300"))
CATALOG_IMPORT_SOFT_TIME_LIMIT = int(os.environ.get("CATALOG_IMPORT_SOFT_TIME_LIMIT", "3600"))
CATALOG_IMPORT_TIME_LIMIT = CATALOG_IMPORT_SOFT_TIME_LIMIT + 120
# A batch checking or importing with no sign of life (step sent, progress reported) for
# CATALOG_IMPORT_RECONCILE_AFTER_SECONDS, and its step not waiting in the broker, gets its step
# sent again (the message was lost), at most CATALOG_IMPORT_MAX_REDISPATCHES times before it
# fails. The lease exceeds CATALOG_IMPORT_STALE_SECONDS, so the step sent again takes over the
# dead run's claim at once.
CATALOG_IMPORT_RECONCILE_AFTER_SECONDS = int(
    os.environ.get("CATALOG_IMPORT_RECONCILE_AFTER_SECONDS", "900")
)
CATALOG_IMPORT_MAX_REDISPATCHES = int(os.environ.get("CATALOG_IMPORT_MAX_REDISPATCHES", "5"))
if CATALOG_IMPORT_RECONCILE_AFTER_SECONDS <= CATALOG_IMPORT_STALE_SECONDS:
    raise ImproperlyConfigured(
        "CATALOG_IMPORT_RECONCILE_AFTER_SECONDS must exceed CATALOG_IMPORT_STALE_SECONDS"
    )
# Redis redelivers an unacknowledged task after this long; it must exceed the longest
# task's hard time limit or a long task would be delivered twice while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7 * 60 * 60}

# --- Attribution ----------------------------------------------------------------------------
# Overrides of attribution.engine.config.EngineConfig (whose defaults are the paper's best),
# as a JSON object, e.g. ATTRIBUTION_ENGINE='{"device": "cuda", "batch_size": 64}'.
ATTRIBUTION_ENGINE: dict = json.loads(os.environ.get("ATTRIBUTION_ENGINE") or "{}")
# The attribution method new runs use (attribution.engine.methods.METHODS). A run records its
# method and engine configuration when it is queued; every later step of it uses those.
ATTRIBUTION_METHOD = os.environ.get("ATTRIBUTION_METHOD", "unlearning")
# Seconds between checkpoints of a per-checkpoint artifact being computed (resumable work).
ATTRIBUTION_CHECKPOINT_SECONDS = float(os.environ.get("ATTRIBUTION_CHECKPOINT_SECONDS", "120"))
# Training-set items per shard task; several GPU workers share one job's shards.
ATTRIBUTION_SHARD_SIZE = int(os.environ.get("ATTRIBUTION_SHARD_SIZE", "64"))
# Time limit (seconds) of one prepare (load, encode, unlearn) or shard task. The services
# check it between batches and fail the run cleanly; Celery's own soft and hard limits sit
# above it as a backstop only (its signal can interrupt arbitrary code, e.g. an import).
ATTRIBUTION_SOFT_TIME_LIMIT = int(os.environ.get("ATTRIBUTION_SOFT_TIME_LIMIT", "3000"))
ATTRIBUTION_CELERY_SOFT_TIME_LIMIT = ATTRIBUTION_SOFT_TIME_LIMIT + 60
ATTRIBUTION_TIME_LIMIT = ATTRIBUTION_SOFT_TIME_LIMIT + 120
# The reconciler (attribution/services/reconcile.py): a run with no step sent and no progress
# reported for ATTRIBUTION_RECONCILE_AFTER_SECONDS, and none of its steps waiting in the
# broker, gets its next step sent again, at most ATTRIBUTION_RECONCILE_MAX_REDISPATCHES times
# before it fails; likewise a model version's artifact computation (its artifacts are then
# marked failed) and an opt-out unlearning job. The lease must exceed the longest silence of
# a working step (loading a large model); running steps, computations and unlearning jobs
# report progress at least every 30 s otherwise.
ATTRIBUTION_RECONCILE_AFTER_SECONDS = int(
    os.environ.get("ATTRIBUTION_RECONCILE_AFTER_SECONDS", "900")
)
ATTRIBUTION_RECONCILE_MAX_REDISPATCHES = int(
    os.environ.get("ATTRIBUTION_RECONCILE_MAX_REDISPATCHES", "5")
)
ATTRIBUTION_RECONCILE_INTERVAL_SECONDS = float(
    os.environ.get("ATTRIBUTION_RECONCILE_INTERVAL_SECONDS", "60")
)
# The scheduler (./run scheduler, Celery beat) sends the reconciler on the default queue; a
# pass that waited longer than one interval is dropped, the next one does the same work.
CELERY_BEAT_SCHEDULE = {
    "reconcile-attribution-runs": {
        "task": "attribution.reconcile_runs",
        "schedule": ATTRIBUTION_RECONCILE_INTERVAL_SECONDS,
        "options": {"expires": ATTRIBUTION_RECONCILE_INTERVAL_SECONDS},
    },
    "reconcile-catalog-imports": {
        "task": "catalog.reconcile_imports",
        "schedule": ATTRIBUTION_RECONCILE_INTERVAL_SECONDS,
        "options": {"expires": ATTRIBUTION_RECONCILE_INTERVAL_SECONDS},
    },
}
# Where text encoders that model configs name (Stable Audio Open's "t5-base") are read from,
# as <folder>/<name>; nothing is downloaded. Also searched: text_encoders/<name> inside the
# checkpoint folder and the Hugging Face cache (docs/operations.md).
ATTRIBUTION_TEXT_ENCODER_DIR = Path(
    os.environ.get("ATTRIBUTION_TEXT_ENCODER_DIR") or DATA_DIR / "text_encoders"
)
# torch's CPU threads in a worker; results are bit-identical only between processes that
# use the same count (floating-point sums are split per thread). Unset: torch's default.
ATTRIBUTION_TORCH_THREADS = int(os.environ.get("ATTRIBUTION_TORCH_THREADS") or 0) or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}

# --- Ledger (docs/ledger.md) ------------------------------------------------------------------
# Default split policy (ledger.splits.SplitPolicy); each settlement stores the policy it used.
# Softmax temperature on *standardised* scores (scale-free: z-scores, not raw scores).
LEDGER_SOFTMAX_TEMPERATURE = os.environ.get("LEDGER_SOFTMAX_TEMPERATURE", "1")
LEDGER_TOP_K = int(os.environ.get("LEDGER_TOP_K", "100"))  # at most this many paid tracks; 0: all
LEDGER_MIN_SHARE = os.environ.get("LEDGER_MIN_SHARE", "0.001")  # drop tracks below 0.1 %
# Fraction of each generation's revenue forming the training-data royalty pool.
LEDGER_POOL_FRACTION = os.environ.get("LEDGER_POOL_FRACTION", "0.5")
# Minimum payout per currency, in minor units; smaller balances carry forward.
LEDGER_PAYOUT_MINIMUM_MINOR = {"USD": 1000, "EUR": 1000, "GBP": 1000, "JPY": 1000}
LEDGER_PAYOUT_MINIMUM_DEFAULT_MINOR = 1000
