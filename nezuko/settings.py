"""Nezuko's settings: environment only (django-environ).

Every variable is listed in `.env.example` and in the README's configuration
table. A `.env` file beside `manage.py` is read when present (`make run`
writes one with fresh keys on first start).
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
    CSRF_TRUSTED_ORIGINS=(list, []),
    SECURE_SSL_REDIRECT=(bool, True),
    LOG_FORMAT=(str, ""),
    LOG_LEVEL=(str, "INFO"),
    LOG_RING_SIZE=(int, 1000),
    TELEGRAM_API_URL=(str, "https://api.telegram.org"),
    BOT_TOKEN=(str, ""),
    WEBHOOK_URL=(str, ""),
    WEBHOOK_SECRET=(str, ""),
    SENTRY_DSN=(str, ""),
    SENTRY_ENVIRONMENT=(str, "production"),
    NEZUKO_ENCRYPTION_KEYS=(list, []),
    NEZUKO_READ_DOTENV=(bool, True),
    TELEGRAM_LOGIN_MAX_AGE=(int, 86400),
    DASHBOARD_URL=(str, ""),
    EVENT_RETENTION_DAYS=(int, 30),
    ROLLUP_RETENTION_DAYS=(int, 400),
    NEZUKO_PEOPLE_RETENTION_DAYS=(int, 365),
    NEZUKO_SPOOL_DIR=(str, ""),
    NEZUKO_JOURNAL_FSYNC=(bool, False),
    NEZUKO_MEMBERSHIP_TTL=(int, 12 * 3600),
    NEZUKO_UPDATE_BUS=(str, ""),
    NEZUKO_BUS_PREFIX=(str, "nezuko:bus"),
    NEZUKO_BUS_PARTITIONS=(int, 8),
    WEBHOOK_MAX_CONNECTIONS=(int, 40),
    NEZUKO_SUPERADMINS=(str, ""),
)

# Real environment variables always win over the file.
if env("NEZUKO_READ_DOTENV"):
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env("DEBUG")


def _development_default(name: str, value):
    """A secret may default in development only; production must set it."""
    if DEBUG:
        return value
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")


# --- Core ---------------------------------------------------------------------

SECRET_KEY = env("SECRET_KEY", default="") or _development_default(
    "SECRET_KEY", "dev-only-insecure-secret-key-change-me"
)
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # daphne first: its runserver serves ASGI (websockets) in development.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_prometheus",
    "django_htmx",
    "template_partials",
    "ninja",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "bots",
    "groups",
    "verification",
    "analytics",
    "dashboard",
    # Last: the composition root (runbot) sits above every app.
    "nezuko",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "nezuko.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # The language a person chose on the dashboard follows them (dashboard/language.py).
    "dashboard.language.RememberedLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "dashboard.twofactor.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "nezuko.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "nezuko.asgi.application"

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
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en"
# The languages Nezuko ships complete catalogs for (locale/<code>/LC_MESSAGES/django.po,
# compiled by `make run` / `make test`). groups/languages.py picks one per person.
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("pt-br", "Português (Brasil)"),
    ("ru", "Русский"),
    ("uk", "Українська"),
    ("id", "Bahasa Indonesia"),
    ("hi", "हिन्दी"),
    ("fa", "فارسی"),
    ("ar", "العربية"),
    ("tr", "Türkçe"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app and static/ folders, so `collectstatic` is optional.
WHITENOISE_USE_FINDERS = True
try:
    STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start when it is missing.
except OSError:
    pass

LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "dashboard:login"

# --- Database -------------------------------------------------------------------

# SQLite is the embedded default; a PostgreSQL URL uses psycopg 3.
SQLITE_DEFAULT = f"sqlite:///{BASE_DIR / 'var' / 'nezuko.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", default=SQLITE_DEFAULT)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while runbot writes; IMMEDIATE avoids
    # "database is locked" on lock upgrades inside transactions.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
else:
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Local disk for what must survive a crash or an outage: each bot's update journal
# (bots.journal: received, not yet handled) and the ledger writes, events and rollups
# that wait here (bots.spool) while the database is away.
NEZUKO_SPOOL_DIR = Path(env("NEZUKO_SPOOL_DIR") or BASE_DIR / "var" / "spool")

# --- Cache and channel layer ----------------------------------------------------

REDIS_URL = env("REDIS_URL", default="")
# Idle pooled connections are PINGed before reuse after this long, so one that a
# NAT, proxy or Redis's own `timeout` dropped overnight reconnects instead of failing.
REDIS_HEALTH_CHECK_SECONDS = 30
# channels-redis waits on BZPOPMIN for 5 s at a time (RedisChannelLayer.brpop_timeout);
# redis-py 6+ abandons any read after 5 s by default, so the two raced and every
# idle websocket closed with 1011. No socket timeout at all: with one, redis-py
# sends through asyncio.wait_for, which on Python 3.11 can swallow the cancel
# that ends a consumer, leaving it polling Redis forever. TCP keepalive finds a
# dead Redis instead (docs/operations.md).
CHANNEL_LAYER_SOCKET_TIMEOUT = None
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                # Short timeouts: a Redis that blinks must not stall the engine.
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                "CONNECTION_POOL_KWARGS": {
                    "health_check_interval": REDIS_HEALTH_CHECK_SECONDS,
                    "socket_keepalive": True,
                },
            },
            "KEY_PREFIX": "nezuko",
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                        "socket_connect_timeout": 2,
                        "socket_keepalive": True,
                        "health_check_interval": REDIS_HEALTH_CHECK_SECONDS,
                    }
                ],
                "prefix": "nezuko",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Telegram -------------------------------------------------------------------

TELEGRAM_API_URL = env("TELEGRAM_API_URL").rstrip("/")
BOT_TOKEN = env("BOT_TOKEN")
WEBHOOK_URL = env("WEBHOOK_URL").rstrip("/")
WEBHOOK_SECRET = env("WEBHOOK_SECRET")
if WEBHOOK_URL and not WEBHOOK_SECRET:
    raise ImproperlyConfigured("WEBHOOK_SECRET must be set when WEBHOOK_URL is set.")
TELEGRAM_LOGIN_MAX_AGE = env("TELEGRAM_LOGIN_MAX_AGE")
# Public base URL of the dashboard, for the one-time login links the bot sends;
# unset: where runbot serves it (bots.served).
DASHBOARD_URL = env("DASHBOARD_URL").rstrip("/")
# fsync every journal append (bots.journal): survives a power loss, not only a kill.
NEZUKO_JOURNAL_FSYNC = env("NEZUKO_JOURNAL_FSYNC")
# Seconds a "subscribed" answer is trusted. The channel's chat_member updates change it at
# once, so this only bounds how long a missed update could go unnoticed; answers in use are
# asked again in the background (lowest priority) before they expire. 12 h: one call per
# active subscriber per ~10 h (benchmarks/freshness.py); docs/engine.md says what a
# missed update costs.
NEZUKO_MEMBERSHIP_TTL = env("NEZUKO_MEMBERSHIP_TTL")
# The update bus (bots.bus): updates travel through Redis Streams, so runbot processes
# share the bots and their chats and any web worker takes any bot's webhook. Empty
# (automatic): on whenever REDIS_URL is set; "redis": on, and REDIS_URL is required;
# "off": each process journals and handles the updates of the bots it polls (the
# embedded default, and what `runbot --bot` pins need). Resolved here to "redis" or "off".
_UPDATE_BUS_CHOICES = ("", "redis", "off")
NEZUKO_UPDATE_BUS = env("NEZUKO_UPDATE_BUS").strip().lower()
if NEZUKO_UPDATE_BUS not in _UPDATE_BUS_CHOICES:
    raise ImproperlyConfigured(
        f"NEZUKO_UPDATE_BUS must be empty (on when REDIS_URL is set), 'redis' or 'off'; "
        f"{NEZUKO_UPDATE_BUS!r} is neither."
    )
if NEZUKO_UPDATE_BUS == "redis" and not REDIS_URL:
    raise ImproperlyConfigured(
        "NEZUKO_UPDATE_BUS=redis needs REDIS_URL; leave it empty to use the bus only "
        "when REDIS_URL is set, or set it to 'off'."
    )
if NEZUKO_UPDATE_BUS == "":
    NEZUKO_UPDATE_BUS = "redis" if REDIS_URL else "off"
# Prefix of the bus's Redis keys (streams, polled marks, the members set): two
# installations sharing one Redis database need different ones.
NEZUKO_BUS_PREFIX = env("NEZUKO_BUS_PREFIX").strip() or "nezuko:bus"
# Streams per bot: one chat's updates stay in one, in order; at most this many
# processes work one bot at once. Changing it re-partitions: drain the bus first.
NEZUKO_BUS_PARTITIONS = env("NEZUKO_BUS_PARTITIONS")
if NEZUKO_BUS_PARTITIONS < 1:
    raise ImproperlyConfigured("NEZUKO_BUS_PARTITIONS must be at least 1.")
# setWebhook's max_connections (1-100): deliveries Telegram makes at once per bot.
WEBHOOK_MAX_CONNECTIONS = min(100, max(1, env("WEBHOOK_MAX_CONNECTIONS")))


def _telegram_ids(name: str, raw: str) -> frozenset[int]:
    """Comma-separated Telegram user ids; anything else stops the start with its name."""
    ids = set()
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if not part.isdigit() or int(part) <= 0:
            raise ImproperlyConfigured(
                f"{name} must be Telegram user ids separated by commas; {part!r} is not one."
            )
        ids.add(int(part))
    return frozenset(ids)


# Telegram users who may use /stats and /broadcast in a private chat with any bot.
NEZUKO_SUPERADMINS = _telegram_ids("NEZUKO_SUPERADMINS", env("NEZUKO_SUPERADMINS"))

# --- Security -------------------------------------------------------------------

# Fernet keys, comma separated: the first encrypts, all decrypt (rotation).
NEZUKO_ENCRYPTION_KEYS = env("NEZUKO_ENCRYPTION_KEYS") or _development_default(
    "NEZUKO_ENCRYPTION_KEYS",
    # A fixed development key, so a dev database stays readable across restarts.
    ["ZGV2LW9ubHktbmV6dWtvLWtleS1kby1ub3QtdXNlLSE="],
)

if not DEBUG:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT")
    # Probes and scrapers talk plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Passwords, logins, throttling and CSP -------------------------------------

# Argon2id first; a PBKDF2 hash still verifies and is rewritten as Argon2 on login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# AxesBackend checks the lockout before any password is looked at; it is a
# ModelBackend too, so sessions made by tests' force_login keep working.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# How many proxies in front of Nezuko append to X-Forwarded-For. 0 (the default)
# trusts only the socket's address: a client cannot pick its own by sending the header.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# django-axes: the staff login and the admin login lock an account, and an
# address, after LOGIN_FAILURE_LIMIT wrong passwords, for LOGIN_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dashboard.auth.lockout_response"
AXES_VERBOSE = False
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# django-ninja throttling of /api/v1/ (requests per period: s, min, hour, day).
NINJA_NUM_PROXIES = TRUSTED_PROXY_COUNT
API_RATE_PER_TOKEN = env.str("API_RATE_PER_TOKEN", default="600/min")
API_RATE_PER_ADDRESS = env.str("API_RATE_PER_ADDRESS", default="1200/min")
# One-time login links and the Telegram Login Widget callback, per address.
LOGIN_RATE_PER_ADDRESS = env.str("LOGIN_RATE_PER_ADDRESS", default="20/min")

# TOTP two-factor for staff accounts (django-otp): optional per account, or
# required for every staff account when STAFF_2FA_REQUIRED is true.
STAFF_2FA_REQUIRED = env.bool("STAFF_2FA_REQUIRED", default=False)
OTP_TOTP_ISSUER = "Nezuko"

# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>` when set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Content-Security-Policy (django-csp): no inline or eval'd script anywhere.
# Inline *style* attributes stay allowed: chart bar widths are set that way.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, "https://telegram.org"],  # the Login Widget's script
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https://t.me", "https://*.telegram.org"],
        "frame-src": ["https://oauth.telegram.org"],  # the Login Widget's iframe
        "connect-src": [SELF],  # htmx requests and the live feed's websocket
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Observability --------------------------------------------------------------

LOG_FORMAT = env("LOG_FORMAT") or ("console" if DEBUG else "json")
LOG_LEVEL = env("LOG_LEVEL").upper()
SENTRY_DSN = env("SENTRY_DSN")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT")

from nezuko.logging import build_logging_config  # noqa: E402

# The staff logs page shows this many of the process's last lines (dashboard.logring).
LOG_RING_SIZE = env("LOG_RING_SIZE")
LOGGING = build_logging_config(LOG_FORMAT, LOG_LEVEL, LOG_RING_SIZE)

from nezuko.observability import configure  # noqa: E402

configure(
    log_format=LOG_FORMAT,
    sentry_dsn=SENTRY_DSN,
    sentry_environment=SENTRY_ENVIRONMENT,
)

# --- Retention ------------------------------------------------------------------

EVENT_RETENTION_DAYS = env("EVENT_RETENTION_DAYS")
ROLLUP_RETENTION_DAYS = env("ROLLUP_RETENTION_DAYS")
# The people directory (docs/people.md): names, username, language and referral of
# people not seen for this many days are removed (0 keeps them).
NEZUKO_PEOPLE_RETENTION_DAYS = env("NEZUKO_PEOPLE_RETENTION_DAYS")
if NEZUKO_PEOPLE_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("NEZUKO_PEOPLE_RETENTION_DAYS must be 0 (keep) or more.")
