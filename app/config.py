"""Settings, read from the environment so that no secret lives in the code."""
import atexit
import math
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(name, default=None, environ=os.environ):
    value = environ.get(name)
    return default if value in (None, "") else value


class SettingError(ValueError):
    """A setting in the environment that cannot work: the app does not start, and the message names it."""


class SettingMissing(SettingError, RuntimeError):
    """A setting the app cannot start without, unset or unusable (create_app; a RuntimeError, as it always was)."""


def _number(name, default, kind=int, least=0, most=None):
    """A number from the environment, at least `least` (and at most `most`); unset: `default`."""
    raw = _env(name)
    if raw is None:
        return kind(default)
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)):         # nan, inf, 1e999
        raise SettingError(f"{name}={raw!r}: not a {'whole number' if kind is int else 'number'}")
    if value < least or (most is not None and value > most):
        bounds = f"from {least} to {most}" if most is not None else f"at least {least}"
        raise SettingError(f"{name}={raw!r}: must be {bounds}")
    return value


FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _flag(name, default: bool, environ=os.environ) -> bool:
    """1/0 (also true/false, yes/no, on/off) from the environment; anything else is an error, not a silent no."""
    raw = _env(name, environ=environ)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word not in FLAGS:
        raise SettingError(f"{name}={raw!r}: use 1 (on) or 0 (off)")
    return FLAGS[word]


def _role_list(name, default, roles):
    """Comma-separated role codes of `roles`, or "-" for none: a code that is no role is refused (a typo would
    otherwise silently require nothing of anyone)."""
    raw = _env(name, default)
    codes = tuple(code.strip() for code in raw.split(",") if code.strip() and code.strip() != "-")
    unknown = [code for code in codes if code not in roles]
    if unknown:
        raise SettingError(f"{name}={raw!r}: no role {', '.join(unknown)} (roles: {', '.join(roles)}; - for none)")
    return codes


def _choice(name, default, choices):
    """One of `choices` (compared ignoring case, returned as listed)."""
    raw = _env(name, default)
    for choice in choices:
        if raw.strip().lower() == choice.lower():
            return choice
    raise SettingError(f"{name}={raw!r}: must be one of {', '.join(choices)}")


def development(environ=os.environ) -> bool:
    """A developer's machine: APP_ENV=development (set by `make run` / scripts/run-dev.sh) or FLASK_DEBUG."""
    return environ.get("APP_ENV") == "development" or \
        (environ.get("FLASK_DEBUG") or "0").lower() not in ("0", "false", "no")


def secure_cookies(environ=os.environ) -> bool:
    """Session cookies are Secure (sent over HTTPS only) unless SESSION_COOKIE_SECURE=0 says otherwise
    or this is development."""
    return _flag("SESSION_COOKIE_SECURE", not development(environ), environ)


# Where links point on a developer's machine or in the tests when PUBLIC_BASE_URL is not set.
DEV_PUBLIC_BASE_URL = "http://127.0.0.1:5000"


class Config:
    SECRET_KEY = _env("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'complaints.db'}")
    # hide_parameters: a database error's message must not carry the statement's values (personal data) into a log.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}
    PROCESSES_DIR = Path(_env("PROCESSES_DIR", ROOT / "processes"))
    FORMS_DIR = Path(_env("FORMS_DIR", ROOT / "forms"))
    # Business time: days, working days and "end of day" are reckoned here; storage is UTC.
    BUSINESS_TIMEZONE = "Asia/Shanghai"
    # The process a newly registered complaint runs on.
    COMPLAINT_PROCESS = _env("COMPLAINT_PROCESS", "complaint_handling")
    # {date} is the business-day date of registration, {seq} a per-day counter.
    COMPLAINT_NUMBER_FORMAT = _env("COMPLAINT_NUMBER_FORMAT", "TS-{date:%Y%m%d}-{seq:06d}")
    API_TOKEN_DAYS = _number("API_TOKEN_DAYS", 90, least=1)
    SCHEDULER_INTERVAL_SECONDS = _number("SCHEDULER_INTERVAL_SECONDS", 15, least=1)
    # Operations (/healthz, /readyz, /metrics; README "Operating it"). SCHEDULER_EXPECTED=0: no scheduler runs
    # beside this app (a test, a demo without timers), so /readyz does not ask for its heartbeat; else the
    # heartbeat (written at most once a minute) must be younger than SCHEDULER_HEARTBEAT_MAX_SECONDS.
    SCHEDULER_EXPECTED = _flag("SCHEDULER_EXPECTED", True)
    SCHEDULER_HEARTBEAT_MAX_SECONDS = _number("SCHEDULER_HEARTBEAT_MAX_SECONDS", 300, least=1)
    # /metrics answers only these addresses or networks (comma-separated), without login; others get 403.
    METRICS_ALLOWED_IPS = _env("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
    # json: one JSON object per log line (app/logs.py); text: Python's plain lines (development and tests).
    LOG_FORMAT = _choice("LOG_FORMAT", "text" if development() else "json", ("json", "text"))
    # SpiffWorkflow's own loggers ("spiff.*") write a line at INFO for every task's change of state (some 30 per
    # change); they say what our audit trail and element visits already hold. WARNING keeps their problems only.
    SPIFF_LOG_LEVEL = _choice("SPIFF_LOG_LEVEL", "WARNING", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    # The audit trail's seals: how often the scheduler seals the chains that grew, and the key that signs
    # the seals (unset: derived from SECRET_KEY). Keep it outside the database and never change it
    # without keeping the old one: the seals it signed are checked with it.
    AUDIT_SEAL_MINUTES = _number("AUDIT_SEAL_MINUTES", 10, least=1)
    AUDIT_SEAL_KEY = _env("AUDIT_SEAL_KEY")
    # No request body (form, JSON, diagram upload) beyond this is read at all.
    MAX_CONTENT_LENGTH = _number("MAX_CONTENT_LENGTH", 5 * 1024 * 1024, least=1024)
    # Evidence files (app/evidence/): the largest file accepted (the pages that take uploads read bodies up
    # to this plus 1 MiB), where contents are kept (EVIDENCE_DIR, default <instance>/evidence; or another
    # store class, "module:Class"), and the virus scanner run on each upload (content on stdin; exit 0
    # clean, 1 infected, else refused as unchecked), e.g. "clamdscan --no-summary --stream -".
    EVIDENCE_MAX_BYTES = _number("EVIDENCE_MAX_BYTES", 20 * 1024 * 1024, least=1)
    EVIDENCE_DIR = _env("EVIDENCE_DIR")
    EVIDENCE_STORE = _env("EVIDENCE_STORE", "app.evidence.store:FileStore")
    # EVIDENCE_STORE=app.evidence.s3store:S3Store keeps them in an S3-compatible bucket (README "Evidence and
    # internal notes"): the bucket; an endpoint for MinIO, Ceph or OSS/COS (unset: AWS); the region; a key
    # prefix; server-side encryption (AES256 or aws:kms, with an optional KMS key id); path or virtual
    # addressing (auto: botocore decides); the wait and the attempts per request. No credentials here: boto3
    # takes them from the environment (AWS_ACCESS_KEY_ID…, AWS_PROFILE, web identity) or the instance's role.
    EVIDENCE_S3_BUCKET = _env("EVIDENCE_S3_BUCKET")
    EVIDENCE_S3_ENDPOINT_URL = _env("EVIDENCE_S3_ENDPOINT_URL")
    EVIDENCE_S3_REGION = _env("EVIDENCE_S3_REGION")
    EVIDENCE_S3_PREFIX = _env("EVIDENCE_S3_PREFIX", "evidence/")
    EVIDENCE_S3_SSE = _env("EVIDENCE_S3_SSE", "")
    EVIDENCE_S3_SSE_KMS_KEY_ID = _env("EVIDENCE_S3_SSE_KMS_KEY_ID")
    EVIDENCE_S3_ADDRESSING_STYLE = _env("EVIDENCE_S3_ADDRESSING_STYLE", "auto")
    EVIDENCE_S3_TIMEOUT_SECONDS = _number("EVIDENCE_S3_TIMEOUT_SECONDS", 30, float, least=0.1)
    EVIDENCE_S3_MAX_ATTEMPTS = _number("EVIDENCE_S3_MAX_ATTEMPTS", 3, least=1)
    EVIDENCE_SCAN_COMMAND = _env("EVIDENCE_SCAN_COMMAND", "")
    EVIDENCE_SCAN_TIMEOUT = _number("EVIDENCE_SCAN_TIMEOUT", 60, float, least=0.1)
    # Single sign-on through the insurer's OpenID Connect provider (app/sso.py, app/web/sso/; README "Single
    # sign-on"). Off unless OIDC_ISSUER is set; then OIDC_CLIENT_ID, OIDC_CLIENT_SECRET (environment only) and
    # OIDC_GROUP_ROLES are required. OIDC_GROUP_ROLES maps the provider's groups to role codes: a JSON object
    # ({"group": "role"} or {"group": ["role", …]}) or "group=role,group=role"; other groups are ignored.
    # OIDC_LINK_LOCAL_ACCOUNTS=1 lets an SSO login take over a local account of the same username.
    OIDC_ISSUER = _env("OIDC_ISSUER")
    OIDC_DISCOVERY_URL = _env("OIDC_DISCOVERY_URL")          # default: <issuer>/.well-known/openid-configuration
    OIDC_CLIENT_ID = _env("OIDC_CLIENT_ID")
    OIDC_CLIENT_SECRET = _env("OIDC_CLIENT_SECRET")
    OIDC_REDIRECT_URI = _env("OIDC_REDIRECT_URI")            # default: this app's /login/sso/callback
    OIDC_SCOPES = _env("OIDC_SCOPES", "openid profile email")
    OIDC_USERNAME_CLAIM = _env("OIDC_USERNAME_CLAIM", "preferred_username")
    OIDC_NAME_CLAIM = _env("OIDC_NAME_CLAIM", "name")
    OIDC_EMAIL_CLAIM = _env("OIDC_EMAIL_CLAIM", "email")
    OIDC_GROUPS_CLAIM = _env("OIDC_GROUPS_CLAIM", "groups")
    OIDC_GROUP_ROLES = _env("OIDC_GROUP_ROLES", "")
    OIDC_LINK_LOCAL_ACCOUNTS = _flag("OIDC_LINK_LOCAL_ACCOUNTS", False)
    OIDC_BUTTON_LABEL = _env("OIDC_BUTTON_LABEL", "")        # default: 使用公司统一身份登录 / Sign in with company SSO
    OIDC_TIMEOUT_SECONDS = _number("OIDC_TIMEOUT_SECONDS", 10, float, least=0.1)
    # Logging out here also ends the session at the provider when its discovery document names an
    # end_session_endpoint (RP-initiated logout); the browser then comes back to OIDC_POST_LOGOUT_REDIRECT_URI.
    OIDC_LOGOUT_AT_PROVIDER = _flag("OIDC_LOGOUT_AT_PROVIDER", True)
    OIDC_POST_LOGOUT_REDIRECT_URI = _env("OIDC_POST_LOGOUT_REDIRECT_URI")   # default: this app's /login
    # Background jobs (app/jobs/, README "Background jobs"): how long an export's file is kept (in the database), and
    # from how many complaints a migration (rows an export) is a job.
    JOBS_KEEP_HOURS = _number("JOBS_KEEP_HOURS", 24, float, least=0.1)
    JOBS_MIGRATE_INLINE_MAX = _number("JOBS_MIGRATE_INLINE_MAX", 20)
    JOBS_EXPORT_INLINE_MAX = _number("JOBS_EXPORT_INLINE_MAX", 5000)
    JOBS_PASS_SECONDS = 50          # a scheduler pass works jobs this long at most
    # Deploy processes/ when the app starts (a broken file is refused; the last good version keeps serving).
    DEPLOY_ON_START = _flag("DEPLOY_ON_START", True)

    # Roles. `lane` is the lane name a BPMN diagram uses for the role; roles without a lane hold no tasks.
    ROLES = {
        "customer_service": {"lane": "客服人员", "zh": "客服人员", "en": "Customer service", "pii": True},
        "claims_specialist": {"lane": "理赔专员", "zh": "理赔专员", "en": "Claims specialist", "pii": False},
        "management": {"lane": "管理层", "zh": "管理层", "en": "Management", "pii": False, "supervisor": True},
        # Head-office senior management (or the superior institution): approves a second extension of the
        # regulator's time limit (R-DECIDE, 30 + 30 days).
        "head_office": {"lane": "总公司高级管理层", "zh": "总公司高级管理层", "en": "Head-office senior management",
                        "pii": False},
        "training": {"lane": "培训部门", "zh": "培训部门", "en": "Training", "pii": False},
        # The owner of an improvement measure set at the quarterly review meeting (C-5.3, C-5.4): typically a
        # department head, given this role beside their own; a measure's task is assigned to its named owner.
        "measure_owner": {"lane": "改进措施责任人", "zh": "改进措施责任人", "en": "Improvement measure owner",
                          "pii": False},
        "compliance": {"lane": None, "zh": "合规审查", "en": "Compliance reviewer", "pii": False, "reader": True},
        "process_owner": {"lane": None, "zh": "流程管理员", "en": "Process owner", "pii": False},
        # Administers the users (app/accounts.py, /admin/users): no complaint, task or procedure of its own.
        "admin": {"lane": None, "zh": "系统管理员", "en": "Administrator", "pii": False},
    }
    # Passwords (app/passwords.py): the minimum length, and an optional sorted file of SHA-1 hashes of
    # breached passwords (the offline Pwned Passwords list). One-time reset links last RESET_LINK_HOURS.
    PASSWORD_MIN_LENGTH = _number("PASSWORD_MIN_LENGTH", 12, least=8, most=128)
    PASSWORD_BREACHED_FILE = _env("PASSWORD_BREACHED_FILE", "")
    RESET_LINK_HOURS = _number("RESET_LINK_HOURS", 24, least=1)
    # The second factor (app/second_factor.py): any user may set one up; users with these roles (comma-
    # separated; "admin" by default, none on a developer's machine; e.g. "admin,process_owner"; "-" for none)
    # must, before anything else, at their next password login.
    TOTP_REQUIRED_ROLES = _role_list("TOTP_REQUIRED_ROLES", "-" if development() else "admin", ROLES)
    TOTP_ISSUER = _env("TOTP_ISSUER", "理赔投诉处理")

    # Task-data keys copied onto the complaint row after every change (data key -> column).
    RECORD_FIELDS = {"outcome": "outcome", "satisfied": "satisfied", "round": "rounds",
                     "risk_level": "risk_level", "accepted_at": "accepted_at",
                     "closed_at": "closed_at", "decided_at": "decided_at", "review_until": "review_until",
                     "decision_due": "decision_due_at", "decision_warning_days": "decision_warning_days",
                     "decision_clock": "decision_clock",
                     # coded data the analysis decides (C-3.3.2): codes of processes/vocabularies/
                     "cause_code": "cause_code", "responsible_party": "responsible_party"}
    # Processes worked only by someone who took no part in the complaint's handling (回避, R-REVIEW).
    INDEPENDENT_PROCESSES = ("complaint_review",)
    # Deadlines whose due time the complaint row carries, by the element id of their timer: kept right
    # when `flask calendar recompute` moves them (the main instance's only).
    DEADLINE_FIELDS = {"decision_clock": "decision_due_at"}
    # What a process beside the main one (a call to the customer, a review) may copy onto the complaint:
    # the review period, which starts again when customer service tells the customer a decision that
    # never reached them (processes/customer_contact.bpmn).
    SIDE_RECORD_FIELDS = {"review_until": "review_until"}

    # Customer messages (app/outbox/). Templates live in processes/messages/ and deploy with the process.
    COMPANY_NAME = _env("COMPANY_NAME", "保险公司")
    SERVICE_HOTLINE = _env("SERVICE_HOTLINE", "95500")
    # The address customers reach the app at: links in messages are built on it (no request to ask).
    # Required outside development and tests (create_app refuses to start without it), where it
    # defaults to DEV_PUBLIC_BASE_URL.
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL")
    # The key of the customers' link tokens; unset, SECRET_KEY. A separate one lets SECRET_KEY (the
    # session key) be rotated without breaking every link customers hold.
    PORTAL_LINK_SECRET = _env("PORTAL_LINK_SECRET")
    PORTAL_LINK_DAYS = _number("PORTAL_LINK_DAYS", 90, least=1)
    # E-mail over SMTP; SMTP_SECURITY: starttls | ssl | none. Unset SMTP_HOST = no e-mail channel.
    SMTP_HOST = _env("SMTP_HOST")
    SMTP_PORT = _number("SMTP_PORT", 587, least=1, most=65535)
    SMTP_SECURITY = _choice("SMTP_SECURITY", "starttls", ("starttls", "ssl", "none"))
    SMTP_USER = _env("SMTP_USER")
    SMTP_PASSWORD = _env("SMTP_PASSWORD")
    SMTP_TIMEOUT_SECONDS = _number("SMTP_TIMEOUT_SECONDS", 10, float, least=0.1)
    MAIL_FROM = _env("MAIL_FROM", "complaints@example.com")
    # The handlers' morning digest of their tasks (app/digest_mail.py): sent from this hour (Beijing time) on
    # working days to the users who turned it on.
    DIGEST_HOUR = _number("DIGEST_HOUR", 8, most=23)
    # SMS through an HTTP gateway (app/outbox/sms.py). Unset SMS_GATEWAY_URL = no SMS channel.
    SMS_GATEWAY_URL = _env("SMS_GATEWAY_URL")
    SMS_GATEWAY_KEY = _env("SMS_GATEWAY_KEY")
    SMS_TIMEOUT_SECONDS = _number("SMS_TIMEOUT_SECONDS", 10, float, least=0.1)
    # Delivery: tries per channel before a message counts as failed, and the back-off between them.
    OUTBOX_MAX_ATTEMPTS = _number("OUTBOX_MAX_ATTEMPTS", 6, least=1)
    OUTBOX_BACKOFF_SECONDS = (60, 300, 900, 3600, 3 * 3600)
    OUTBOX_BATCH = _number("OUTBOX_BATCH", 100, least=1)
    OUTBOX_INTERVAL_SECONDS = _number("OUTBOX_INTERVAL_SECONDS", 10, float, least=0.1)
    # How long a dispatcher holds the deliveries it claimed; after that another may resend them.
    OUTBOX_LEASE_SECONDS = _number("OUTBOX_LEASE_SECONDS", 300, least=1)
    # Sending pace: at full speed the dispatcher slows the handlers' requests on SQLite (see README).
    OUTBOX_MAX_PER_SECOND = _number("OUTBOX_MAX_PER_SECOND", 20, float)     # 0: no pacing

    # Web UI. Chinese by default, English on request; every displayed time in Asia/Shanghai.
    BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "app" / "translations")
    LANGUAGES = {"zh_Hans_CN": "中文", "en": "English"}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = secure_cookies()
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    # A handler may keep a task form open for hours: the CSRF token lives as long as the session.
    WTF_CSRF_TIME_LIMIT = None
    # Login limits, counted in the database (shared by every worker and host) for any submitted username,
    # existing or not: LOGIN_MAX_ATTEMPTS wrong passwords for one username within LOGIN_ATTEMPT_WINDOW_MINUTES
    # (with no successful login in between) lock it for LOGIN_LOCK_MINUTES; LOGIN_IP_MAX_ATTEMPTS failures
    # from one address within LOGIN_IP_WINDOW_MINUTES refuse every login from it until they age out.
    LOGIN_MAX_ATTEMPTS = _number("LOGIN_MAX_ATTEMPTS", 5, least=1)
    LOGIN_LOCK_MINUTES = _number("LOGIN_LOCK_MINUTES", 15, least=1)
    LOGIN_ATTEMPT_WINDOW_MINUTES = _number("LOGIN_ATTEMPT_WINDOW_MINUTES", 24 * 60, least=1)
    LOGIN_IP_MAX_ATTEMPTS = _number("LOGIN_IP_MAX_ATTEMPTS", 30, least=1)
    LOGIN_IP_WINDOW_MINUTES = _number("LOGIN_IP_WINDOW_MINUTES", 15, least=1)
    # Behind nginx or another reverse proxy: how many proxy hops' X-Forwarded-For/-Proto to believe
    # (0 = none: the address the connection comes from is the client's).
    TRUSTED_PROXIES = _number("TRUSTED_PROXIES", 0)
    # Strict-Transport-Security max-age in seconds; 0 (default) sends none (let the TLS proxy decide).
    HSTS_SECONDS = _number("HSTS_SECONDS", 0)
    WEB_PER_PAGE = 25
    # Fields of earlier decisions shown prominently on a task page (e.g. why the customer was dissatisfied).
    WEB_HIGHLIGHT_FIELDS = ("dissatisfaction_reasons", "rejection_reason", "decision_comments")


def _scratch_dir(prefix) -> str:
    """A temporary folder for the tests' files, removed when this process ends (each test worker and each
    `flask` subprocess made two that stayed behind)."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    SQLALCHEMY_DATABASE_URI = _env("TEST_DATABASE_URL", "sqlite://")
    DEPLOY_ON_START = False
    SCHEDULER_EXPECTED = False    # no scheduler runs beside the test app (tests that need one say so)
    TOTP_REQUIRED_ROLES = ()      # the tests that need the requirement set it
    LOG_FORMAT = "text"
    WTF_CSRF_ENABLED = True       # the web tests send the token like a browser does
    SESSION_COOKIE_SECURE = REMEMBER_COOKIE_SECURE = False    # the test client and browser tests use http
    EVIDENCE_DIR = _env("TEST_EVIDENCE_DIR") or _scratch_dir("complaints-evidence-")   # never instance/
