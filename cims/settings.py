"""CIMS settings: one module, read from environment variables only.

Every variable is listed in README.md ("Configuration"). Defaults are the safe production ones;
the quick start (``make run``) sets DEBUG=true and, with no DATABASE_URL, uses an SQLite file and
secrets generated once into the ignored ``var/`` folder.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from cims.env import decode_key, env_bool, env_cron, env_int, env_list, env_str, parse_key_ring
from cims.local_secrets import load_local_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CIMS_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

# --- Secrets -----------------------------------------------------------------------------------
# Unset secrets come from var/secrets.json (created on first use). SECRETS_FROM_LOCAL_FILE lists
# them so that `check --deploy` can say so (cims.W001).
_SECRET_NAMES = ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "BACKUP_ENCRYPTION_KEY")
_env_secrets = {name: env_str(name) for name in _SECRET_NAMES}
SECRETS_FROM_LOCAL_FILE = sorted(name for name, value in _env_secrets.items() if value is None)
if SECRETS_FROM_LOCAL_FILE:
    _local = load_local_secrets(VAR_DIR)
    _env_secrets = {name: value or _local[name] for name, value in _env_secrets.items()}

SECRET_KEY = _env_secrets["SECRET_KEY"]
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
# Field encryption key ring: "kid:base64,kid:base64", the first one encrypts (see docs/operations.md).
FIELD_ENCRYPTION_KEYS = parse_key_ring("FIELD_ENCRYPTION_KEYS", _env_secrets["FIELD_ENCRYPTION_KEYS"])
# Key of the HMAC blind indexes that make encrypted fields searchable; separate from the ring.
BLIND_INDEX_KEY = decode_key("BLIND_INDEX_KEY", _env_secrets["BLIND_INDEX_KEY"])
# Key of encrypted backups; kept apart from the database and from the field keys.
BACKUP_ENCRYPTION_KEY = decode_key("BACKUP_ENCRYPTION_KEY", _env_secrets["BACKUP_ENCRYPTION_KEY"])

# --- Hosts and HTTPS ---------------------------------------------------------------------------
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Number of reverse proxies in front of the app whose X-Forwarded-For / X-Forwarded-Proto we trust.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

_https = env_bool("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _https)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        # plotly.js creates one empty <style> element and fills it through the CSSOM (which CSP
        # does not govern); the hash is that of the empty string, so no inline CSS is allowed.
        "style-src": [SELF, "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Applications ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # widget templates for the TemplatesSetting form renderer
    "guardian",
    "simple_history",
    "import_export",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our own static files (CSP: 'self')
    "cims",
    "accounts",
    "customers",
    "followups",
    "complaints",
    "reports",
    "lottery",
]

MIDDLEWARE = [
    "cims.middleware.HealthCheckMiddleware",  # probes use internal addresses: answer before host checks
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Axes must come last: it turns a lockout raised during authentication into the lockout page.
    "axes.middleware.AxesMiddleware",
    # Rate limits on search and export (429), and no-store on every page served to a signed-in user.
    "cims.hardening.RateLimitMiddleware",
    "cims.hardening.NoStoreMiddleware",
]

ROOT_URLCONF = "cims.urls"
WSGI_APPLICATION = "cims.wsgi.application"
ASGI_APPLICATION = "cims.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cims.navigation.navigation",
                "cims.help.help_context",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
if _database_url:
    try:
        DATABASES = {
            "default": dj_database_url.parse(
                _database_url,
                conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
                conn_health_checks=True,
            )
        }
    except (ValueError, dj_database_url.UnknownSchemeError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if DATABASES["default"]["ENGINE"].endswith("postgresql") and not env_bool("DATABASE_JIT", False):
        # PostgreSQL's JIT compiles every query its planner costs high — the reports' aggregates
        # over millions of rows — and the compilation alone took 0.2–0.9 s per query, more than
        # the query. A web request is better without it (docs/performance.md).
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "cims.sqlite3",
            # The quick start runs a web server and a worker on one file: wait for locks instead of failing.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The customer table's covering indexes INCLUDE columns on PostgreSQL; SQLite builds them without
# (the same rows, just not index-only), which Django would otherwise warn about on every command.
SILENCED_SYSTEM_CHECKS = ["models.W040"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []

# --- Cache, Redis, Celery ----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Without Redis the quick start still runs real background jobs: kombu's file-system transport
# carries the messages between the web process and the worker through folders under var/.
CELERY_QUEUE_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "out"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "out"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Imports and exports (customers/importing) ---------------------------------------------------
IMPORT_MAX_UPLOAD_MB = env_int("IMPORT_MAX_UPLOAD_MB", 300, minimum=1)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 1_000_000, minimum=1)
# Files with more data rows than this are checked and imported by the Celery worker, with progress.
IMPORT_BACKGROUND_ROWS = env_int("IMPORT_BACKGROUND_ROWS", 3000, minimum=0)

# --- Files kept with customers and contracts (customers/attachments.py) -----------------------
# Largest attachment (scanned contract, business licence, quote), in MB. The bytes are stored
# encrypted in the database, so this also bounds how much one upload adds to it and its backups.
ATTACHMENT_MAX_MB = env_int("ATTACHMENT_MAX_MB", 10, minimum=1)

# --- Sales rules (followups) ------------------------------------------------------------------
# The customer pool (公海): how many customers a rep may own, and when an idle customer returns.
POOL_MAX_OWNED = env_int("POOL_MAX_OWNED", 2000, minimum=1)
POOL_IDLE_DAYS = env_int("POOL_IDLE_DAYS", 30, minimum=1)
POOL_WARNING_DAYS = env_int("POOL_WARNING_DAYS", 3, minimum=0)
# Contracts: how many days before the end date the owner is reminded and a renewal task is made.
CONTRACT_RENEWAL_DAYS = env_int("CONTRACT_RENEWAL_DAYS", 30, minimum=1)
# A customer is due a return visit (回访) this many days after a sale, until one is recorded.
RETURN_VISIT_AFTER_DAYS = env_int("RETURN_VISIT_AFTER_DAYS", 7, minimum=0)

# --- Complaints and service tickets (complaints) ------------------------------------------------
# Hours from filing to resolution, by severity (the SLA); a ticket within SLA_WARNING_HOURS of its
# due time is flagged "about to breach" and its assignee notified; a breached one is escalated.
SLA_HOURS = {
    "critical": env_int("SLA_HOURS_CRITICAL", 4, minimum=1),
    "high": env_int("SLA_HOURS_HIGH", 24, minimum=1),
    "medium": env_int("SLA_HOURS_MEDIUM", 72, minimum=1),
    "low": env_int("SLA_HOURS_LOW", 120, minimum=1),
}
SLA_WARNING_HOURS = env_int("SLA_WARNING_HOURS", 2, minimum=0)

# --- The customer portal and personal data (accounts.portal, customers.privacy) ------------------
# Days an invitation link (first password) stays valid; Django's one-time password-reset tokens.
PASSWORD_RESET_TIMEOUT = env_int("PORTAL_INVITATION_DAYS", 7, minimum=1) * 24 * 3600
# Profile fields a portal customer may correct themselves (each correction is kept in history).
PORTAL_EDITABLE_FIELDS = env_list("PORTAL_EDITABLE_FIELDS", ["phone", "mobile", "email", "address", "city"])
# The version of the privacy notice consents are given to (recorded with each consent entry).
PRIVACY_NOTICE_VERSION = env_str("PRIVACY_NOTICE_VERSION", "2026-01")

# --- Reports (reports.facts, reports.profiles, scheduled reports) -------------------------------
# Minutes between refreshes of the summary tables the reports read; each page shows their age.
REPORT_REFRESH_MINUTES = env_int("REPORT_REFRESH_MINUTES", 15, minimum=1)

# --- Backups and the restore drill (cims.backups; docs/operations.md "Backups") ------------------
# Where encrypted backups are written (keep it on another disk, or copy it off the machine).
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(VAR_DIR / "backups")))
# Cron expressions in Asia/Shanghai: the backup every night, the restore drill every Sunday.
BACKUP_SCHEDULE = env_cron("BACKUP_SCHEDULE", "30 2 * * *")
BACKUP_DRILL_SCHEDULE = env_cron("BACKUP_DRILL_SCHEDULE", "30 4 * * 0")
# Retention: the newest backup of each of the last N days, M weeks and K months is kept.
BACKUP_KEEP_DAILY = env_int("BACKUP_KEEP_DAILY", 7, minimum=1)
BACKUP_KEEP_WEEKLY = env_int("BACKUP_KEEP_WEEKLY", 4, minimum=0)
BACKUP_KEEP_MONTHLY = env_int("BACKUP_KEEP_MONTHLY", 6, minimum=0)
# The scratch database the drill restores into; by default "<database>_drill" on the same
# PostgreSQL server, or a temporary SQLite file in the quick start. It is dropped and recreated.
BACKUP_DRILL_DATABASE_URL = env_str("BACKUP_DRILL_DATABASE_URL")

# --- Audit (cims.audit) --------------------------------------------------------------------------
# Days the access log is kept; older rows are removed by a nightly job that records a chain anchor.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 1095, minimum=30)
# Days the change history of records is kept (0: for ever).
HISTORY_RETENTION_DAYS = env_int("HISTORY_RETENTION_DAYS", 0, minimum=0)
# Access requests (数据访问权限审批): the longest and the default time an approved grant lasts.
ACCESS_GRANT_MAX_DAYS = env_int("ACCESS_GRANT_MAX_DAYS", 30, minimum=1)
ACCESS_GRANT_DEFAULT_DAYS = env_int("ACCESS_GRANT_DEFAULT_DAYS", 7, minimum=1)

# --- Rate limits (cims.hardening): per user (or per address when anonymous), HTTP 429 beyond ---
RATE_LIMIT_SEARCH_PER_MINUTE = env_int("RATE_LIMIT_SEARCH_PER_MINUTE", 60, minimum=1)
RATE_LIMIT_EXPORT_PER_HOUR = env_int("RATE_LIMIT_EXPORT_PER_HOUR", 30, minimum=1)

# --- REST API (cims.api) and webhooks (cims.webhooks) -------------------------------------------
# Requests a minute per API token (a token may have its own limit); HTTP 429 with Retry-After beyond.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
# Hours an Idempotency-Key is remembered: a retry within them creates nothing twice.
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24, minimum=1)
# Attempts of one webhook delivery (exponential backoff between them) and the timeout of each.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# Plain http:// endpoints (and private addresses) are refused unless allowed, e.g. on a closed network.
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", DEBUG)
# Days the log of settled (delivered or failed) webhook deliveries is kept.
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 90, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cims.api.authentication.TokenAuthentication",
        "cims.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["cims.api.permissions.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["cims.api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "cims.api.pagination.KeysetPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cims.api.errors.exception_handler",
    "DEFAULT_VERSIONING_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CIMS API",
    "DESCRIPTION": "The integration API of CIMS (客户信息管理系统). See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["cims.api.permissions.StaffDocs"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # One name per choice set shared by several serializers (otherwise drf-spectacular guesses).
    "ENUM_NAME_OVERRIDES": {
        "ContractStatusEnum": "customers.models.Contract.Status",
        "CustomerStatusEnum": "customers.models.Customer.Status",
        "TicketStatusEnum": "complaints.models.Ticket.Status",
        "FollowUpKindEnum": "followups.models.FollowUp.Kind",
        "TicketKindEnum": "complaints.models.Ticket.Kind",
        "TicketEventKindEnum": "complaints.models.TicketEvent.Kind",
        "TransactionChannelEnum": "customers.models.Transaction.Channel",
        "TicketChannelEnum": "complaints.models.Ticket.Channel",
    },
}

# --- Authentication ----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses locked-out accounts and addresses before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions expire after SESSION_IDLE_MINUTES without a request (sliding expiry).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 120, minimum=5) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "cims.views.csrf_failure"

# Login throttling (django-axes): 5 failures for one account, or from one address, lock it out.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "cims.request_ip.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False

# Object permissions (django-guardian): no anonymous user row; refusals are 404/403 in our helpers.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# --- Internationalisation ----------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------------
STATIC_URL = "/static/"
# The user guide's screenshots (taken by the browser tests) are served as static/help/….
STATICFILES_DIRS = [BASE_DIR / "static", ("help", BASE_DIR / "docs" / "user-guide" / "img")]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Unhashed fallback when a file is missing from the manifest (tests run without collectstatic).
WHITENOISE_MANIFEST_STRICT = False
WHITENOISE_USE_FINDERS = DEBUG

# --- Email -------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if env_str("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive; set one of them.")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "CIMS <noreply@localhost>")
# The address users reach CIMS at (https://cims.example.com): makes the links in e-mails absolute.
SITE_URL = env_str("SITE_URL", "")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("CIMS admin", address) for address in env_list("ADMIN_EMAILS")]

# --- Logging -----------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "cims.security": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}

CIMS_VERSION = "0.1.0"
CIMS_SITE_NAME = _("CIMS Customer Information Management")
# The Django admin's path; moving it off /admin/ keeps drive-by scanners away from its login.
ADMIN_URL = env_str("ADMIN_URL", "admin/")
if not ADMIN_URL.endswith("/") or ADMIN_URL.startswith("/"):
    raise ImproperlyConfigured("ADMIN_URL must be a relative path ending in '/', e.g. 'admin/'.")
FORM_RENDERER = "cims.forms.BootstrapFormRenderer"
