"""Django settings for bmadcc.

This is the only module of the app that reads environment variables (the shared-data location
comes through :func:`ml.paths.shared_data_dir`, which the Django-free tests and benches share).
Every value has an embedded default
for a fresh laptop (SQLite, in-memory channel layer, django-q2 ORM broker); CI and production
override them. The helpers fail loudly on a malformed value rather than guessing.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
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
# Finished training-data exports (ZIP files and folders), one per export job.
EXPORT_DIR = envpath("EXPORT_DIR", VAR_DIR / "exports")
# Real sample files (read-only) that the demo setup registers; never copied into the repo.
# ml.paths owns the variable and its default, so the Django-free tests and benches agree.
SHARED_DATA_DIR = shared_data_dir()
# The demo account's password; when unset, setup_demo generates one and keeps it under var/.
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "")
# Uploads larger than this are refused before any byte is written (bytes; 0 = unlimited).
SLIDE_UPLOAD_MAX_BYTES = envint("SLIDE_UPLOAD_MAX_BYTES", 200 * 1024**3)
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
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.PasswordChangeRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

Q_CLUSTER = {
    # Its own name gives a set of workers its own Redis queue (tests, or a second deployment).
    "name": envstr("Q_NAME", "bmadcc"),
    "workers": envint("Q_WORKERS", 2),
    "timeout": envint("Q_TIMEOUT", 3600),
    "retry": envint("Q_TIMEOUT", 3600) + 60,
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
ANALYSIS_CHUNK_SIZE = envint("ANALYSIS_CHUNK_SIZE", 8)
ANALYSIS_LEASE_S = envint("ANALYSIS_LEASE_S", 300)
ANALYSIS_MAX_ATTEMPTS = envint("ANALYSIS_MAX_ATTEMPTS", 3)
if min(ANALYSIS_CHUNK_SIZE, ANALYSIS_LEASE_S, ANALYSIS_MAX_ATTEMPTS) < 1:
    raise ImproperlyConfigured("ANALYSIS_CHUNK_SIZE, _LEASE_S and _MAX_ATTEMPTS must be >= 1")
# Workers push progress through the Redis channel layer; without Redis (the embedded default:
# daphne and qcluster are separate processes) the websocket consumer polls the run's row.
ANALYSIS_PUSH = bool(REDIS_URL)
ANALYSIS_POLL_MS = envint("ANALYSIS_POLL_MS", 250)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "slides:list"
LOGOUT_REDIRECT_URL = "login"

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
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    # libvips reports every thread pool it finishes at INFO; only its warnings matter here.
    "loggers": {"pyvips": {"level": "WARNING"}},
}
