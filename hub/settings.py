"""Settings, all from environment variables.

With no variables set the hub runs on the embedded default: a SQLite file, the
in-memory channel layer, huey on SQLite, locally generated secrets under
``var/``. ``HUB_ENV=production`` refuses to start without real secrets,
``DATABASE_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HUB_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

HUB_ENV = os.environ.get("HUB_ENV", "embedded")  # embedded | test | production
PRODUCTION = HUB_ENV == "production"


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _local_secrets() -> dict[str, str]:
    """Secrets for the embedded default, generated once per checkout and kept
    out of the repository. Production must pass them in the environment."""
    path = VAR_DIR / "secrets.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
    else:
        data = {}
    wanted = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "LOOKUP_HASH_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "AUDIT_HMAC_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "GRANT_SIGNING_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "SANDBOX_SECRET": lambda: secrets.token_urlsafe(32),
    }
    changed = False
    for key, make in wanted.items():
        if key not in data:
            data[key] = make()
            changed = True
    if changed:
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o600)
    return data


def secret(name: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if PRODUCTION:
        raise RuntimeError(f"{name} must be set in production")
    return _local_secrets()[name]


SECRET_KEY = secret("SECRET_KEY")
FIELD_ENCRYPTION_KEY = secret("FIELD_ENCRYPTION_KEY")
LOOKUP_HASH_KEY = secret("LOOKUP_HASH_KEY")
AUDIT_HMAC_KEY = secret("AUDIT_HMAC_KEY")
GRANT_SIGNING_KEY = secret("GRANT_SIGNING_KEY")
SANDBOX_SECRET = secret("SANDBOX_SECRET")

# Off everywhere unless asked for (a developer's own machine): the embedded demo too
# (issue 11, finding 15).
DEBUG = env_bool("DEBUG", False)
# The interactive API docs and the OpenAPI schema: on for development and tests, off in
# production unless the hospital opens them (e.g. on an internal host).
API_DOCS = env_bool("API_DOCS", HUB_ENV != "production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "channels",
    "huey.contrib.djhuey",
    "apps.audit",
    "apps.accounts",
    "apps.core",
    "apps.im",
    "apps.care_team",
    "apps.psych",
    "apps.notifications",
    "apps.todos",
    "apps.pharmacy",
    "apps.commerce",
    "apps.delivery",  # core: shipments, couriers (issue 12)
    "recordings",
    "apps.media",
    "apps.timed",  # timed sessions (issue 13): deadlines, warnings, hard stops; consultations and rehab
    "apps.consultations",  # 在线复诊 (issue 13)
]

MIDDLEWARE = [
    "hub.middleware.RequestIdMiddleware",
    # The header middlewares wrap the static apps too (/console/, /h5/ are served by
    # FrontendFilesMiddleware, which answers without calling what comes after it).
    "hub.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hub.middleware.FrontendFilesMiddleware",
    "hub.middleware.NumberRangeMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "hub.urls"
ASGI_APPLICATION = "hub.asgi.application"
WSGI_APPLICATION = None
AUTH_USER_MODEL = "accounts.User"

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]


def database_from_url(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        name = unquote(parsed.path[1:] if parsed.path.startswith("//") else parsed.path)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name or str(VAR_DIR / "hub.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    if parsed.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            # No persistent connections (Django's advice under ASGI): daphne runs each
            # request's sync code on a new thread, so a kept connection is never reused
            # and stays open until the garbage collector finds it, one per request, up
            # to the server's limit. The socket path's pool (hub/realtime/db.py) keeps
            # its own, HUB_DB_THREADS at most. DB_CONN_MAX_AGE is for processes with
            # long-lived threads (the huey consumer), never daphne (docs/adr/0007).
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 0),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": 5},
        }
    raise RuntimeError(f"unsupported DATABASE_URL scheme: {parsed.scheme}")


DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'hub.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL)}
if PRODUCTION and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    raise RuntimeError("production needs DATABASE_URL pointing at PostgreSQL")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if PRODUCTION and not REDIS_URL:
    raise RuntimeError("production needs REDIS_URL")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py raises "Too many connections" instead of waiting when
                # its pool is exhausted, and channels-redis cannot select the
                # blocking pool: size the pool explicitly above the peak.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("REDIS_MAX_CONNECTIONS", 1000),
                        "socket_connect_timeout": 5,
                        # Above the layer's 5 s blocking receive (BZPOPMIN): redis-py's
                        # default 5 s socket timeout raced it and failed replies.
                        "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT", 15),
                    }
                ],
                "capacity": 1000,
                "expiry": 30,
                "group_expiry": 86400,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

HUEY_IMMEDIATE = env_bool("HUEY_IMMEDIATE", False)
if HUEY_IMMEDIATE:
    HUEY: dict[str, Any] = {"name": "hub", "immediate": True}
elif REDIS_URL:
    import redis

    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": "hub",
        "immediate": False,
        # A blocking pool waits for a free connection instead of failing under load.
        "connection": {
            "connection_pool": redis.BlockingConnectionPool.from_url(REDIS_URL, max_connections=20, timeout=10)
        },
        "consumer": {"workers": env_int("HUEY_WORKERS", 2), "worker_type": "thread"},
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "hub",
        "filename": str(VAR_DIR / "huey.sqlite3"),
        "immediate": False,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }

LANGUAGE_CODE = "zh-hans"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
FRONTEND_DIRS = {
    "h5": BASE_DIR / "frontend" / "patient" / "dist" / "build" / "h5",
    "console": BASE_DIR / "frontend" / "console" / "dist",
}

# Security headers (level 3): HSTS and secure cookies only behind TLS in production.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SILENCED_SYSTEM_CHECKS = [
    # No cookie sessions exist: the API uses bearer tokens, so there is no
    # SessionMiddleware/CsrfViewMiddleware to check.
    "security.W003",
]

AUTH_PASSWORD_VALIDATORS: list[dict[str, Any]] = []  # the policy lives in apps.accounts.passwords
PASSWORD_HASHERS = (
    ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if env_bool("FAST_PASSWORD_HASHER", False)
    else [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
)

# --- Accounts and sessions -------------------------------------------------
PASSWORD_MAX_AGE_DAYS = env_int("PASSWORD_MAX_AGE_DAYS", 90)
PASSWORD_HISTORY = 5
LOGIN_MAX_FAILURES = 5
LOGIN_LOCK_MINUTES = env_int("LOGIN_LOCK_MINUTES", 15)
STAFF_IDLE_TIMEOUT_MINUTES = env_int("STAFF_IDLE_TIMEOUT_MINUTES", 30)
STAFF_TOKEN_LIFETIME_HOURS = env_int("STAFF_TOKEN_LIFETIME_HOURS", 12)
PATIENT_TOKEN_LIFETIME_DAYS = env_int("PATIENT_TOKEN_LIFETIME_DAYS", 30)
OTP_TTL_SECONDS = 300
OTP_MAX_ATTEMPTS = 5
OTP_SEND_INTERVAL_SECONDS = 60
OTP_DAILY_LIMIT = 10
TOTP_ISSUER = "互联网医院"
MINIPROGRAM_ADAPTER = os.environ.get("MINIPROGRAM_ADAPTER", "apps.accounts.adapters.SandboxMiniProgram")
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 190)

# --- Real-time hub -----------------------------------------------------------
WS_ALLOWED_ORIGINS = env_list("WS_ALLOWED_ORIGINS", ["http://127.0.0.1:8000", "http://localhost:8000"])
WS_AUTH_TIMEOUT_SECONDS = float(os.environ.get("WS_AUTH_TIMEOUT_SECONDS", "5"))
WS_MAX_FRAME_BYTES = 64 * 1024
WS_HEARTBEAT_SECONDS = env_int("WS_HEARTBEAT_SECONDS", 25)
WS_RATE_PER_SECOND = float(os.environ.get("WS_RATE_PER_SECOND", "20"))
WS_RATE_BURST = env_int("WS_RATE_BURST", 40)
WS_TICKET_TTL_SECONDS = 60

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "daphne": {"level": "WARNING"}},
}

WHITENOISE_INDEX_FILE = True
# Serve the API docs' assets straight from the installed apps (collectstatic in the image).
WHITENOISE_USE_FINDERS = True
(VAR_DIR / "static").mkdir(exist_ok=True)
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
HUB_DB_THREADS = env_int("HUB_DB_THREADS", 8)
UPLOAD_ROOT = Path(os.environ.get("UPLOAD_ROOT", VAR_DIR / "uploads"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Media (issue 4: media engine, recordings) --------------------------------
RECORDINGS_ROOT = Path(os.environ.get("RECORDINGS_ROOT", VAR_DIR / "recordings"))
# Audio/video of care is kept at least 3 years (1096 days); a smaller value is raised to that.
RECORDING_RETENTION_DAYS = max(env_int("RECORDING_RETENTION_DAYS", 1096), 1096)
RECORDING_REPLAY_URL_TTL_SECONDS = env_int("RECORDING_REPLAY_URL_TTL_SECONDS", 300)
MEDIA_GRANT_TTL_SECONDS = env_int("MEDIA_GRANT_TTL_SECONDS", 120)
# Embedded default: the media node runs in the web process (single process, no Redis).
MEDIA_EMBEDDED = env_bool("MEDIA_EMBEDDED", not REDIS_URL)
# The node the hub commands (the embedded one's name when MEDIA_EMBEDDED).
MEDIA_NODE = os.environ.get("MEDIA_NODE", "embedded")
# Heartbeat of remote nodes (run_media_control): ping interval and misses before node_lost.
MEDIA_HEARTBEAT_SECONDS = env_int("MEDIA_HEARTBEAT_SECONDS", 5)
MEDIA_HEARTBEAT_MISSES = env_int("MEDIA_HEARTBEAT_MISSES", 3)

# The embedded node's RTMP ingest and HTTP-FLV/HLS ports (0: any free port).
MEDIA_BIND_HOST = os.environ.get("MEDIA_BIND_HOST", "127.0.0.1")
MEDIA_RTMP_PORT = env_int("MEDIA_RTMP_PORT", 1935)
MEDIA_HTTP_PORT = env_int("MEDIA_HTTP_PORT", 8088)
# Where clients reach the node's RTMP and HTTP-FLV/HLS ports, e.g. "rtmp://media.example.org:1935"
# and "https://media.example.org"; empty: the host the client used for the API, on the ports above.
MEDIA_PUBLIC_RTMP_URL = os.environ.get("MEDIA_PUBLIC_RTMP_URL", "")
MEDIA_PUBLIC_LIVE_URL = os.environ.get("MEDIA_PUBLIC_LIVE_URL", "")
# --- media: web-view room passes (apps.media.passes; issue 13) ---
# A mini-program's one-time pass into its video room for an H5 web-view (seconds to redeem it),
# and how long the room session it is redeemed for fetches grants.
MEDIA_PASS_TTL_SECONDS = env_int("MEDIA_PASS_TTL_SECONDS", 60)
MEDIA_PASS_SESSION_TTL_SECONDS = env_int("MEDIA_PASS_SESSION_TTL_SECONDS", 2 * 3600)
# --- end media: web-view room passes ---

# --- Timed sessions (apps.timed; docs/adr/0045-timed-sessions.md) --------------
# The web process's 1 Hz clock (countdown ticks, warnings, the hard stop, media close of
# ended sessions); off only for processes that must not run it. The huey task at each
# deadline and the per-minute sweep run in the worker whatever this says.
TIMED_CLOCK = env_bool("TIMED_CLOCK", True)
# One leader among the web processes (Redis key timed:clock:leader): a dead leader's lease
# lapses after this many ms and another process takes over.
TIMED_LEADER_TTL_MS = env_int("TIMED_LEADER_TTL_MS", 3000)
# The cached running set is reloaded when it changes, and at least this often.
TIMED_RELOAD_SECONDS = env_int("TIMED_RELOAD_SECONDS", 10)
# Ended sessions whose room is not closed yet (worker-ended, node unreachable) are retried this often.
TIMED_MEDIA_RETRY_SECONDS = env_int("TIMED_MEDIA_RETRY_SECONDS", 5)

# --- Psychological scales (apps.psych) ----------------------------------------
# SDS/SAS norm: "china" (SDS 53 / SAS 50 cut-offs) or "zung" (50 / 45). Reports name the norm used.
PSYCH_ZUNG_NORM = os.environ.get("PSYCH_ZUNG_NORM", "china")
# Standard score = raw x 1.25: "truncate" (int(), as in the manuals) or "round" (half up).
PSYCH_STANDARD_ROUNDING = os.environ.get("PSYCH_STANDARD_ROUNDING", "truncate")
# A critical-item alert not acknowledged within this many minutes escalates to the on-duty doctor.
PSYCH_ALERT_ACK_MINUTES = env_int("PSYCH_ALERT_ACK_MINUTES", 30)
# Extra directories of scale definition JSON files (besides apps/psych/scales).
PSYCH_SCALE_DIRS = env_list("PSYCH_SCALE_DIRS", [])

# --- Pharmacy (apps.pharmacy; docs/adr/0042-prescriptions.md) ----------------
# Supply days of a prescription (处方管理办法 第十九条: normally at most 7 days).
PHARMACY_MAX_SUPPLY_DAYS = env_int("PHARMACY_MAX_SUPPLY_DAYS", 7)
# Chronic disease 长期处方 (长期处方管理规范(试行) 2021: at most 12 weeks), only with a chronic reason.
PHARMACY_CHRONIC_MAX_DAYS = env_int("PHARMACY_CHRONIC_MAX_DAYS", 84)
# Western / Chinese patent medicine: at most 5 drugs per prescription (处方管理办法 第六条).
PHARMACY_MAX_DRUGS = env_int("PHARMACY_MAX_DRUGS", 5)
# A prescription is valid on the day issued; the doctor may extend it to this many days.
PHARMACY_MAX_VALID_DAYS = env_int("PHARMACY_MAX_VALID_DAYS", 3)
# The CA-signature adapter: "sandbox" (never in production) or a dotted path to a CaSigner.
PHARMACY_CA_SIGNER = os.environ.get("PHARMACY_CA_SIGNER", "" if PRODUCTION else "sandbox")
if PRODUCTION and PHARMACY_CA_SIGNER == "sandbox":
    raise RuntimeError("PHARMACY_CA_SIGNER=sandbox must not be used in production")
PHARMACY_CA_PIN_MAX_FAILURES = env_int("PHARMACY_CA_PIN_MAX_FAILURES", 5)
PHARMACY_CA_PIN_LOCK_MINUTES = env_int("PHARMACY_CA_PIN_LOCK_MINUTES", 30)
# Seed the small demo catalogue after migrate (never in production: the catalogue comes from the HIS).
PHARMACY_SEED_CATALOGUE = env_bool("PHARMACY_SEED_CATALOGUE", not PRODUCTION)

# --- Orders (apps.commerce; docs/adr/0040-commerce-orders-ledger.md) ------------
# An unpaid order is cancelled (and closed at the provider) after this many minutes.
COMMERCE_UNPAID_TIMEOUT_MINUTES = env_int("COMMERCE_UNPAID_TIMEOUT_MINUTES", 15)
# A refund above this many fen needs a second approval by another role (COMMERCE_REFUND_SECOND_ROLES).
COMMERCE_REFUND_APPROVAL_FEN = env_int("COMMERCE_REFUND_APPROVAL_FEN", 50000)
# Who approves refunds, who gives the second approval, who searches orders and reads reconciliation.
COMMERCE_REFUND_ROLES = env_list("COMMERCE_REFUND_ROLES", ["cs_agent", "sysadmin"])
COMMERCE_REFUND_SECOND_ROLES = env_list("COMMERCE_REFUND_SECOND_ROLES", ["sysadmin"])
COMMERCE_STAFF_ROLES = env_list("COMMERCE_STAFF_ROLES", ["cs_agent", "sysadmin"])
COMMERCE_RECONCILE_ROLES = env_list("COMMERCE_RECONCILE_ROLES", ["sysadmin", "auditor"])
# A fulfilment handler that keeps failing is retried by the sweep (every 5 min) this many times.
COMMERCE_FULFIL_MAX_ATTEMPTS = env_int("COMMERCE_FULFIL_MAX_ATTEMPTS", 12)
# Payments with no notice after this many minutes are queried at the provider.
COMMERCE_PENDING_QUERY_MINUTES = env_int("COMMERCE_PENDING_QUERY_MINUTES", 10)
# Electronic receipts (财政电子票据): the platform adapter (a dotted path; the sandbox never in
# production; empty = no electronic receipts, the hospital's counter issues them), and how
# many times a busy platform is tried before staff are asked to retry.
RECEIPTS_PLATFORM = os.environ.get(
    "RECEIPTS_PLATFORM", "" if PRODUCTION else "apps.commerce.receipts.sandbox.SandboxReceiptPlatform"
)
RECEIPTS_MAX_ATTEMPTS = env_int("RECEIPTS_MAX_ATTEMPTS", 8)
# The provider and channel a checkout uses when the client names none (embedded default: the sandbox).
COMMERCE_DEFAULT_PROVIDER = os.environ.get("COMMERCE_DEFAULT_PROVIDER", "sandbox")
# Which configured provider serves each payment channel (an unconfigured one falls back to the default).
COMMERCE_CHANNEL_PROVIDERS = {
    "wechat_jsapi": "wechat",
    "wechat_mini": "wechat",
    "alipay_mini": "alipay",
    "sandbox": "sandbox",
}
# The notify URL a prepay names is PAYMENTS_PUBLIC_BASE_URL + /api/v1/commerce/notify/<provider> (payments block).

# --- Notifications (apps.notifications; docs/adr/0033-notifications.md) ------
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5)
NOTIFY_RETRY_BASE_SECONDS = env_int("NOTIFY_RETRY_BASE_SECONDS", 30)  # 30 s, 60 s, 2 min, 4 min, ...
NOTIFY_LEASE_SECONDS = env_int("NOTIFY_LEASE_SECONDS", 120)  # a claimed row whose worker died is re-sent after this
NOTIFY_ADAPTERS = {
    "inapp": "apps.notifications.adapters.InAppAdapter",
    "sms": os.environ.get("NOTIFY_SMS_ADAPTER", "apps.notifications.adapters.SandboxSms"),
    "wechat_subscribe": os.environ.get("NOTIFY_WECHAT_ADAPTER", "apps.notifications.adapters.SandboxWechatSubscribe"),
    "alipay_template": os.environ.get("NOTIFY_ALIPAY_ADAPTER", "apps.notifications.adapters.SandboxAlipayTemplate"),
}
# Phones / openids the sandbox gateways fail for (retry tests, fault drills).
SANDBOX_UNREACHABLE_RECIPIENTS = env_list("SANDBOX_UNREACHABLE_RECIPIENTS", [])
# The demo login page may show the latest sandbox SMS (embedded demo only).
SANDBOX_INBOX_VISIBLE = env_bool("SANDBOX_INBOX_VISIBLE", HUB_ENV == "embedded")
if PRODUCTION and SANDBOX_INBOX_VISIBLE:
    raise RuntimeError("SANDBOX_INBOX_VISIBLE must not be set in production")

# --- payments (apps/commerce/payments) ---------------------------------------
# Payment providers by name (docs/adr/0041-payment-providers.md); get_provider(name) builds them.
# Where the gateways reach this hub (notify routes) and where the hub reaches the sandbox gateway.
PAYMENTS_PUBLIC_BASE_URL = os.environ.get("PAYMENTS_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
PAYMENTS_SANDBOX = env_bool("PAYMENTS_SANDBOX", not PRODUCTION)
if PRODUCTION and PAYMENTS_SANDBOX:
    raise RuntimeError("PAYMENTS_SANDBOX must not be set in production")
PAYMENTS_SANDBOX_DIR = Path(os.environ.get("PAYMENTS_SANDBOX_DIR", VAR_DIR / "payments_sandbox"))
PAYMENTS_SANDBOX_BASE_URL = os.environ.get("PAYMENTS_SANDBOX_BASE_URL", f"{PAYMENTS_PUBLIC_BASE_URL}/sandbox/pay")
# "thread": callbacks posted by a daemon thread on WeChat's retry schedule; "inline": the pay
# sheet's pay posts them before answering, the rest wait for /sandbox/pay/callbacks/flush (tests).
PAYMENTS_SANDBOX_DELIVERY = os.environ.get("PAYMENTS_SANDBOX_DELIVERY", "thread")
PAYMENTS_SANDBOX_TIMEOUT_SLEEP = 3.0  # the "timeout" fault answers after this many seconds


def _payment_file(name: str) -> str:
    path = os.environ.get(name, "")
    return Path(path).read_text() if path else ""


def _payment_providers() -> dict[str, dict[str, Any]]:
    base = PAYMENTS_PUBLIC_BASE_URL
    providers: dict[str, dict[str, Any]] = {}
    if PAYMENTS_SANDBOX:
        providers["sandbox"] = {
            "class": "apps.commerce.payments.sandbox.SandboxWechatPay",
            "refund_notify_url": f"{base}/api/v1/commerce/notify/sandbox/refund",
            # The hub calls its own sandbox gateway in process (same signed bytes, no socket).
            "in_process": env_bool("PAYMENTS_SANDBOX_IN_PROCESS", True),
        }
    if os.environ.get("WECHATPAY_MCHID"):
        providers["wechat"] = {
            "class": "apps.commerce.payments.wechat.WechatPayV3",
            "merchant_id": os.environ["WECHATPAY_MCHID"],
            "app_id": os.environ["WECHATPAY_APPID"],
            "merchant_serial": os.environ["WECHATPAY_MERCHANT_SERIAL"],
            "merchant_private_key": _payment_file("WECHATPAY_MERCHANT_KEY_FILE"),
            "apiv3_key": os.environ["WECHATPAY_APIV3_KEY"],
            # The platform public key (PUB_KEY_ID_...) or certificate, by its serial.
            "platform_keys": {os.environ["WECHATPAY_PLATFORM_SERIAL"]: _payment_file("WECHATPAY_PLATFORM_KEY_FILE")},
            "merchant_name": os.environ.get("WECHATPAY_MERCHANT_NAME", ""),
            "refund_notify_url": f"{base}/api/v1/commerce/notify/wechat/refund",
        }
    if os.environ.get("ALIPAY_APP_ID"):
        providers["alipay"] = {
            "class": "apps.commerce.payments.alipay.AlipayMini",
            "app_id": os.environ["ALIPAY_APP_ID"],
            "merchant_id": os.environ["ALIPAY_SELLER_ID"],
            "app_private_key": _payment_file("ALIPAY_APP_KEY_FILE"),
            "alipay_public_key": _payment_file("ALIPAY_PUBLIC_KEY_FILE"),
            "merchant_name": os.environ.get("ALIPAY_MERCHANT_NAME", ""),
        }
    return providers


PAYMENT_PROVIDERS = _payment_providers()
# --- end payments ---

# --- Delivery (apps.delivery; docs/adr/0043-delivery-couriers.md) ------------
# Courier adapters by code; the sandbox is refused in production (and not offered there).
DELIVERY_COURIERS = {
    "sf": "apps.delivery.couriers.sf.SfExpress",
    "dada": "apps.delivery.couriers.dada.Dada",
    **({} if PRODUCTION else {"sandbox": "apps.delivery.couriers.sandbox.SandboxCourier"}),
}
DELIVERY_DEFAULT_COURIER = os.environ.get("DELIVERY_DEFAULT_COURIER", "sf" if PRODUCTION else "sandbox")
# Where couriers post their callbacks (our public base URL); empty: the sandbox posts in-process.
DELIVERY_CALLBACK_BASE_URL = os.environ.get("DELIVERY_CALLBACK_BASE_URL", "")
DELIVERY_COURIER_OPTIONS: dict[str, dict[str, Any]] = {
    "sf": {
        "base_url": os.environ.get("DELIVERY_SF_BASE_URL", "https://sfapi.sf-express.com"),
        "partner_id": os.environ.get("DELIVERY_SF_PARTNER_ID", ""),
        "checkword": os.environ.get("DELIVERY_SF_CHECKWORD", ""),
        "monthly_card": os.environ.get("DELIVERY_SF_MONTHLY_CARD", ""),
    },
    "dada": {
        "base_url": os.environ.get("DELIVERY_DADA_BASE_URL", "https://newopen.imdada.cn"),
        "app_key": os.environ.get("DELIVERY_DADA_APP_KEY", ""),
        "app_secret": os.environ.get("DELIVERY_DADA_APP_SECRET", ""),
        "source_id": os.environ.get("DELIVERY_DADA_SOURCE_ID", ""),
        "shop_no": os.environ.get("DELIVERY_DADA_SHOP_NO", ""),
        "city_code": os.environ.get("DELIVERY_DADA_CITY_CODE", ""),
        "callback_url": DELIVERY_CALLBACK_BASE_URL.rstrip("/") + "/api/v1/delivery/callbacks/dada"
        if DELIVERY_CALLBACK_BASE_URL
        else "",
    },
    "sandbox": {
        # Empty: its own checkword, derived from SANDBOX_SECRET (never a real courier's).
        "checkword": os.environ.get("DELIVERY_SANDBOX_CHECKWORD", ""),
        "callback_base_url": DELIVERY_CALLBACK_BASE_URL,
    },
}
# The sender on every waybill: the hospital pharmacy (never a person's own phone).
DELIVERY_SENDER = {
    "name": os.environ.get("DELIVERY_SENDER_NAME", "互联网医院药房"),
    "phone": os.environ.get("DELIVERY_SENDER_PHONE", "02000000000"),
    "province": os.environ.get("DELIVERY_SENDER_PROVINCE", "广东省"),
    "city": os.environ.get("DELIVERY_SENDER_CITY", "广州市"),
    "district": os.environ.get("DELIVERY_SENDER_DISTRICT", "越秀区"),
    "address": os.environ.get("DELIVERY_SENDER_ADDRESS", "中山二路 1 号 药学部"),
    "company": os.environ.get("DELIVERY_SENDER_COMPANY", "互联网医院"),
}
# Wrong pickup codes: this many per shipment lock it for this many minutes (like the login throttle).
DELIVERY_PICKUP_MAX_FAILURES = env_int("DELIVERY_PICKUP_MAX_FAILURES", 5)
DELIVERY_PICKUP_LOCK_MINUTES = env_int("DELIVERY_PICKUP_LOCK_MINUTES", 15)
# The sandbox courier posts its next event this many seconds after the last (0: only when told).
DELIVERY_SANDBOX_STEP_SECONDS = env_int("DELIVERY_SANDBOX_STEP_SECONDS", 20)
# Number privacy for couriers (apps.delivery.privacy): the courier gets a virtual number bound to the
# recipient's phone. The sandbox never runs in production; DirectNumbers sends the real phone.
DELIVERY_PRIVACY_NUMBERS = os.environ.get(
    "DELIVERY_PRIVACY_NUMBERS",
    "apps.delivery.privacy.DirectNumbers" if PRODUCTION else "apps.delivery.privacy.SandboxPrivacyNumbers",
)
DELIVERY_PRIVACY_BINDING_DAYS = env_int("DELIVERY_PRIVACY_BINDING_DAYS", 15)
DELIVERY_MAX_ADDRESSES = env_int("DELIVERY_MAX_ADDRESSES", 20)
# A courier shipment with no change for this long is tracked by the half-hourly sweep.
DELIVERY_TRACK_AFTER_MINUTES = env_int("DELIVERY_TRACK_AFTER_MINUTES", 120)

# --- consultations: booking, queue, accepting (apps/consultations; issue 13) ---
# R5: a doctor without a licence number or with fewer years of practice cannot go online nor be booked.
CONSULT_MIN_PRACTICE_YEARS = env_int("CONSULT_MIN_PRACTICE_YEARS", 3)
# An unpaid visit is cancelled (its place released) this many minutes after booking (the sweep).
CONSULT_PAYMENT_MINUTES = env_int("CONSULT_PAYMENT_MINUTES", 15)
# A patient may move a waiting visit to another slot of the same doctor and kind this many times.
CONSULT_MAX_RESCHEDULES = env_int("CONSULT_MAX_RESCHEDULES", 2)
# Estimated wait per visit ahead in the queue, in minutes, per kind.
CONSULT_MINUTES_PER_VISIT = {
    "text": env_int("CONSULT_MINUTES_PER_VISIT_TEXT", 10),
    "video": env_int("CONSULT_MINUTES_PER_VISIT_VIDEO", 15),
}
# The price of a department-queue visit ("next available doctor"), in fen, per kind.
CONSULT_QUEUE_PRICE_TEXT_FEN = env_int("CONSULT_QUEUE_PRICE_TEXT_FEN", 3000)
CONSULT_QUEUE_PRICE_VIDEO_FEN = env_int("CONSULT_QUEUE_PRICE_VIDEO_FEN", 5000)
# R4: an identity step-up is valid for accepting that visit for this many minutes; wrong answers
# count per doctor like the login throttle (this many lock the step-up for that many minutes).
CONSULT_STEP_UP_MINUTES = env_int("CONSULT_STEP_UP_MINUTES", 10)
CONSULT_STEP_UP_MAX_FAILURES = env_int("CONSULT_STEP_UP_MAX_FAILURES", 5)
CONSULT_STEP_UP_LOCK_MINUTES = env_int("CONSULT_STEP_UP_LOCK_MINUTES", 15)
# A visit called in holds the doctor <-> patient care relationship (reason "visit") for this many days.
CONSULT_CARE_DAYS = env_int("CONSULT_CARE_DAYS", 30)
# The timed session of a visit (apps/timed): seconds per kind from the call-in, enforced by the server
# (30 and 15 minutes); the doctor may extend once by CONSULT_EXTENSION_MINUTES, billed to the patient (an order).
CONSULT_SESSION_SECONDS = {
    "text": env_int("CONSULT_SESSION_SECONDS_TEXT", 30 * 60),
    "video": env_int("CONSULT_SESSION_SECONDS_VIDEO", 15 * 60),
}
CONSULT_EXTENSION_MINUTES = env_int("CONSULT_EXTENSION_MINUTES", 10)
CONSULT_EXTENSION_PRICE_FEN = env_int("CONSULT_EXTENSION_PRICE_FEN", 2000)
# --- consultations: the doctor's schedule and the call-in sweep (apps/consultations schedule.py, tasks.py) ---
# An accepted visit not called in this many minutes after its slot ended (a department visit: after it
# was accepted) is cancelled with a full refund and the patient told (the minutely sweep).
CONSULT_CALL_GRACE_MINUTES = env_int("CONSULT_CALL_GRACE_MINUTES", 30)
# --- Consultations: clinical parts (apps.consultations his/prior_records/record/invitations) ---
# The hospital information system (HIS) gateway the prior diagnoses (R1) come from: a dotted path to a
# ``HisClient`` class. The sandbox (signed exchange, demo patients' records) is refused in production.
CONSULT_HIS_ADAPTER = os.environ.get(
    "CONSULT_HIS_ADAPTER", "" if PRODUCTION else "apps.consultations.his.SandboxHisClient"
)
CONSULT_HIS_BASE_URL = os.environ.get("CONSULT_HIS_BASE_URL", "")  # the real gateway's address
CONSULT_HIS_APP_ID = os.environ.get("CONSULT_HIS_APP_ID", "ihospital")
# The shared HMAC key of the gateway (base64 or text); empty: the sandbox derives its own.
CONSULT_HIS_SECRET = os.environ.get("CONSULT_HIS_SECRET", "")
CONSULT_HIS_TIMEOUT_SECONDS = env_int("CONSULT_HIS_TIMEOUT_SECONDS", 5)
# Sandbox only: "" (answers), "timeout", "error" (HTTP 502), "bad_signature" (a forged answer).
CONSULT_HIS_SANDBOX_FAILURE = os.environ.get("CONSULT_HIS_SANDBOX_FAILURE", "")
# Third participants: an invitation code is valid this long, once; this many wrong codes per user in
# the window answer 429 until the window passes.
CONSULT_INVITE_MINUTES = env_int("CONSULT_INVITE_MINUTES", 30)
CONSULT_INVITE_MAX_WRONG = env_int("CONSULT_INVITE_MAX_WRONG", 10)
CONSULT_INVITE_WRONG_WINDOW_MINUTES = env_int("CONSULT_INVITE_WRONG_WINDOW_MINUTES", 15)
# Uploaded prior records: at most this many pages, each at most this many MB (images or PDF).
CONSULT_PRIOR_MAX_FILES = env_int("CONSULT_PRIOR_MAX_FILES", 9)
CONSULT_PRIOR_FILE_MAX_MB = env_int("CONSULT_PRIOR_FILE_MAX_MB", 10)
# --- end consultations clinical ---
