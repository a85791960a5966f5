"""Django settings for bmadcc.

This is the only module of the app that reads environment variables (the shared-data location
comes through :func:`ml.paths.shared_data_dir`, which the Django-free tests and benches share).
Every value has an embedded default
for a fresh laptop (SQLite, in-memory channel layer, django-q2 ORM broker); CI and production
override them. The helpers fail loudly on a malformed value rather than guessing.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from ml.paths import shared_data_dir

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def envpath(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


VAR_DIR = envpath("BMADCC_VAR_DIR", BASE_DIR / "var")
DEBUG = envbool("DEBUG", False)


def local_secret_key(path: Path) -> str:
    """The key ``scripts/setup.sh`` generated into ``path``, or "" when there is none."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


# Production sets SECRET_KEY. A local install falls back to the key the setup script generated
# under var/, so manage.py works from a plain shell; a fixed development key is only acceptable
# with DEBUG on (or for benchmarks, BMADCC_ALLOW_DEV_SECRET).
SECRET_KEY = os.environ.get("SECRET_KEY") or local_secret_key(VAR_DIR / "secret-key")
if not SECRET_KEY:
    if not DEBUG and not envbool("BMADCC_ALLOW_DEV_SECRET", False):
        raise ImproperlyConfigured(
            f"SECRET_KEY must be set when DEBUG is off (or run scripts/setup.sh once, which "
            f"generates {VAR_DIR / 'secret-key'})"
        )
    SECRET_KEY = "dev-only-insecure-key-not-for-production"  # never with DEBUG off on a server
ALLOWED_HOSTS = [h for h in envstr("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in envstr("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# Where slide files live (content-addressed by SHA-256) and where model weights are looked up.
SLIDE_STORAGE_DIR = envpath("SLIDE_STORAGE_DIR", VAR_DIR / "slides")
MODEL_DIR = envpath("MODEL_DIR", VAR_DIR / "models")
# Uploaded model weights stream to disk; a larger upload is refused with 413.
MODEL_UPLOAD_MAX_BYTES = envint("MODEL_UPLOAD_MAX_BYTES", 4 * 1024**3)
# Finished training-data exports (ZIP files and folders), one per export job.
EXPORT_DIR = envpath("EXPORT_DIR", VAR_DIR / "exports")
# Real sample files (read-only) that the demo setup registers; never copied into the repo.
# ml.paths owns the variable and its default, so the Django-free tests and benches agree.
SHARED_DATA_DIR = shared_data_dir()
# Folders whose files may be registered in place (import_slides, setup_demo): a file, or the
# file a symlink points at, outside all of them is refused. Comma-separated; the default is the
# shared sample data and var/ (the demo slide is built under var/demo).
SLIDE_IMPORT_ROOTS = [
    Path(p).expanduser().resolve()
    for p in envstr("SLIDE_IMPORT_ROOTS", f"{SHARED_DATA_DIR},{VAR_DIR}").split(",")
    if p
]
# The demo account's password; when unset, setup_demo generates one and keeps it under var/.
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "")
# Uploads larger than this are refused before any byte is written (bytes; 0 = unlimited).
SLIDE_UPLOAD_MAX_BYTES = envint("SLIDE_UPLOAD_MAX_BYTES", 200 * 1024**3)
# A pending slide no worker claimed this long after it was registered is queued again (s).
SLIDE_INGEST_REQUEUE_S = envint("SLIDE_INGEST_REQUEUE_S", 300)
SLIDE_HANDLE_CACHE_SIZE = envint("SLIDE_HANDLE_CACHE_SIZE", 32)
TILE_CACHE_SECONDS = envint("TILE_CACHE_SECONDS", 3600)
# Encoded tiles kept in each server process's memory (bytes).
TILE_MEMORY_CACHE_BYTES = envint("TILE_MEMORY_CACHE_BYTES", 256 * 1024 * 1024)
# Two annotators' cells are the same cell when their IoU reaches this (issue 4; SPEC §5).
AGREEMENT_IOU_THRESHOLD = 0.5

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_q",
    "axes",
    "csp",
    "apps.accounts",
    "apps.slides",
    "apps.annotations",
    "apps.agreement",
    "apps.analysis",
    "apps.registry",
    "apps.exports",
    "apps.reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "bmadcc_web.body_limit.BodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.accounts.sessions.RenewIdleSession",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.PasswordChangeRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "bmadcc_web.urls"
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
            ]
        },
    }
]
WSGI_APPLICATION = "bmadcc_web.wsgi.application"
ASGI_APPLICATION = "bmadcc_web.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'bmadcc.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The ingest worker and the web server write concurrently; WAL plus a busy timeout keeps
    # SQLite from answering "database is locked" under that light load.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL", "")
# Typed once here: the two branches below give the cache different OPTIONS.
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "bmadcc",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            # Deep-zoom JPEG tiles are ~10-40 kB; this keeps a few thousand of them.
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }

#: Seconds a task may run before django-q2 kills its worker (an analysis worker stops taking
#: more chunks in one task well before it).
Q_TIMEOUT = envint("Q_TIMEOUT", 3600)
Q_WORKERS = envint("Q_WORKERS", 2)
Q_CLUSTER = {
    # Its own name gives a set of workers its own Redis queue (tests, or a second deployment).
    "name": envstr("Q_NAME", "bmadcc"),
    "workers": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    "retry": Q_TIMEOUT + 60,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "label": "Jobs",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
# Tests and one-shot scripts run jobs in-process (sync); the real app uses the qcluster worker.
Q_CLUSTER["sync"] = envbool("Q_SYNC", False)

# Analysis runs (apps/analysis). Each qcluster worker process uses ANALYSIS_DEVICE ("cuda",
# "cuda:1", "cpu"; empty = CUDA when present, else CPU): run one qcluster per GPU, each with its
# own ANALYSIS_DEVICE and Q_WORKERS=1. A chunk is ANALYSIS_CHUNK_SIZE TOIs; a step whose worker
# has not reported for ANALYSIS_LEASE_S seconds is taken again, at most ANALYSIS_MAX_ATTEMPTS
# times before the run fails.
ANALYSIS_DEVICE = envstr("ANALYSIS_DEVICE", "")
if ANALYSIS_DEVICE and not (
    ANALYSIS_DEVICE in {"cpu", "cuda"} or ANALYSIS_DEVICE.removeprefix("cuda:").isdigit()
):
    raise ImproperlyConfigured(
        f"ANALYSIS_DEVICE={ANALYSIS_DEVICE!r} is not a device (use cpu, cuda or cuda:N)"
    )
# CPU threads each worker process's models use. Two processes each running as many threads as
# there are cores oversubscribe the machine: on 2 cores, two qclusters at 2 threads each spent
# 7x longer classifying a chunk (0.9 s against 0.13 s). Unset: the cores divided among this
# cluster's Q_WORKERS; several qclusters on one machine should share the cores out explicitly.
ANALYSIS_THREADS = envint("ANALYSIS_THREADS", 0) or max(
    1, (os.cpu_count() or 1) // max(1, Q_WORKERS)
)
ANALYSIS_CHUNK_SIZE = envint("ANALYSIS_CHUNK_SIZE", 8)
ANALYSIS_LEASE_S = envint("ANALYSIS_LEASE_S", 300)
ANALYSIS_MAX_ATTEMPTS = envint("ANALYSIS_MAX_ATTEMPTS", 3)
if min(ANALYSIS_CHUNK_SIZE, ANALYSIS_LEASE_S, ANALYSIS_MAX_ATTEMPTS) < 1:
    raise ImproperlyConfigured("ANALYSIS_CHUNK_SIZE, _LEASE_S and _MAX_ATTEMPTS must be >= 1")
# Workers push progress through the Redis channel layer; without Redis (the embedded default:
# daphne and qcluster are separate processes) the websocket consumer polls the run's row.
ANALYSIS_PUSH = bool(REDIS_URL)
ANALYSIS_POLL_MS = envint("ANALYSIS_POLL_MS", 250)

# Accounts and sessions (21 CFR Part 11 §11.300). Every password set through Django (admin,
# changepassword, createsuperuser) passes these validators.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": envint("PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes counts failed logins (page, admin, anything through authenticate()) and locks
# out, for LOGIN_LOCKOUT_MINUTES after LOGIN_FAILURE_LIMIT of them, the account (guessing one
# user's password) and the client address (spraying many users); each failure is kept in its
# AccessFailureLog table, each locked-out pair in AccessAttempt.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# A report signature re-enters the password: SIGN_FAILURE_LIMIT wrong ones within
# SIGN_LOCKOUT_MINUTES lock that user's signing for the rest of the window (apps/reports).
SIGN_FAILURE_LIMIT = envint("SIGN_FAILURE_LIMIT", 3)
SIGN_LOCKOUT_MINUTES = envint("SIGN_LOCKOUT_MINUTES", 30)
if min(AXES_FAILURE_LIMIT, SIGN_FAILURE_LIMIT, SIGN_LOCKOUT_MINUTES) < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and SIGN_FAILURE_LIMIT/_MINUTES must be >= 1")
# A session ends after SESSION_IDLE_MINUTES without a request: requests renew it, at most once
# a minute (apps/accounts/sessions.py), rather than Django's SESSION_SAVE_EVERY_REQUEST write
# on every tile and save.
SESSION_COOKIE_AGE = envint("SESSION_IDLE_MINUTES", 30) * 60
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "slides:list"
LOGOUT_REDIRECT_URL = "login"

# HTTPS and the browser's protections (manage.py check --deploy is clean with HTTPS=true).
# HTTPS=true: the site is served over TLS only (redirect, HSTS, secure cookies). BEHIND_PROXY=
# true: a TLS proxy in front sets X-Forwarded-Proto (and X-Forwarded-For, which django-axes
# reads for the client's address); never set it without such a proxy, or clients could claim
# HTTPS.
HTTPS = envbool("HTTPS", False)
BEHIND_PROXY = envbool("BEHIND_PROXY", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
SESSION_COOKIE_HTTPONLY = True
# The annotation front end reads the CSRF token from its cookie (Django's documented pattern),
# so that one cookie stays readable by scripts; the session cookie never is.
CSRF_COOKIE_HTTPONLY = False
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    AXES_IPWARE_PROXY_COUNT = 1
# Content-Security-Policy (django-csp), on in development too, so every browser test runs
# under it: scripts, styles, fonts and XHR from this origin only, no inline code. Images may
# also be data: and blob: URLs (OpenSeadragon's navigator and canvas exports). The one inline
# style allowed is OpenSeadragon 6's own <style data-openseadragon-mobile-css> (by its hash;
# nothing of ours is inline): a new OpenSeadragon that changes it shows up as a
# CSP violation in the browser tests. A template may nonce one <style> (the API docs' page).
OPENSEADRAGON_MOBILE_CSS = "'sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", OPENSEADRAGON_MOBILE_CSS, NONCE],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "dist"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Slide uploads stream to a temporary file in chunks and never sit in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Spooled uploads sit beside the store, on the same disk, sized for slides rather than /tmp.
FILE_UPLOAD_TEMP_DIR = str(SLIDE_STORAGE_DIR / ".upload-tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
# Largest non-file request body, refused from its length before it is read (body_limit.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 16 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Every operation documents the client errors it can answer (one place, not every view).
    "DEFAULT_SCHEMA_CLASS": "bmadcc_web.api_schema.ErrorDocumentingAutoSchema",
    "DEFAULT_METADATA_CLASS": "bmadcc_web.metadata.Metadata",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # Domain errors (apps.core.errors.AppError) answer through one error -> status table.
    "EXCEPTION_HANDLER": "bmadcc_web.exception_handler.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "bmadcc API",
    "DESCRIPTION": "Whole-slide bone marrow aspirate differential cell counts.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets come from the sidecar package: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A membership's role, and the old and new role in the team audit log: one enum.
    "ENUM_NAME_OVERRIDES": {"RoleEnum": "apps.accounts.models.Role"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    # libvips reports every thread pool it finishes at INFO; only its warnings matter here.
    "loggers": {"pyvips": {"level": "WARNING"}},
}
