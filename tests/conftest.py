"""Fixtures: a fresh app per test on each database backend (SQLite always; PostgreSQL when
TEST_POSTGRES_URL is set, and required when REQUIRE_ALL_BACKENDS=1, as in CI)."""
import functools
import os
from dataclasses import dataclass

import psycopg
import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_migrate import upgrade
from jinja2 import BytecodeCache
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash

from app import create_app, known_lanes, stats
from app.api.auth import issue_token
from app.config import ROOT, TestConfig
from app.engine.registry import deploy, load_processes
from app.extensions import db
from app.models import User

PG_URL = os.environ.get("TEST_POSTGRES_URL")
REQUIRE_ALL = os.environ.get("REQUIRE_ALL_BACKENDS") == "1"
ROLES = ("customer_service", "claims_specialist", "management", "head_office", "training", "compliance", "process_owner",
         "measure_owner", "admin")


def _postgres_test_db(suffix=""):
    admin = make_url(PG_URL)
    name = f"complaints_test_{os.getpid()}{suffix}"
    with psycopg.connect(host=admin.host, port=admin.port, user=admin.username, dbname=admin.database,
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", autouse=True)
def compiled_catalog():
    """What `make translations` does, so the suite also runs from a fresh clone without make."""
    catalog = ROOT / "app" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    mo = catalog.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < catalog.stat().st_mtime:
        with catalog.open("rb") as src, mo.open("wb") as out:
            write_mo(out, read_po(src))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """Backend name -> URL of a database migrated once per session with the real migrations."""
    urls = {}

    def get(backend):
        if backend not in urls:
            if backend == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
            else:
                url = _postgres_test_db()
            app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
                db.engine.dispose()
            urls[backend] = url
        return urls[backend]
    yield get
    if "postgresql" in urls:
        _drop_postgres_db(urls["postgresql"])


def _drop_postgres_db(url):
    admin = make_url(PG_URL)
    with psycopg.connect(host=admin.host, port=admin.port, user=admin.username, dbname=admin.database,
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def bundles():
    app = create_app(TestConfig)
    found, problems = load_processes(app.config["PROCESSES_DIR"], app.config["FORMS_DIR"], known_lanes(app))
    assert not problems, [str(p) for p in problems]
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "postgresql" and not PG_URL:
        if REQUIRE_ALL:
            pytest.fail("TEST_POSTGRES_URL is not set but REQUIRE_ALL_BACKENDS=1")
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL)")
    return request.param


USED_SEQUENCES = text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() "
                      "AND last_value IS NOT NULL")


def _empty_tables():
    """Every table emptied, children first, and on PostgreSQL the sequences the last test used started
    again, in one round trip: a TRUNCATE of every table costs PostgreSQL a new file per table, ten times
    as long as deleting the few rows a test wrote."""
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        used = db.session.execute(USED_SEQUENCES).scalars().all()
        db.session.connection().exec_driver_sql("".join(f'DELETE FROM "{t.name}";' for t in tables)
                                                + "".join(f'ALTER SEQUENCE "{name}" RESTART;' for name in used))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()
    stats.forget(db.engine)     # what the statistics keep per database (engine): its rows are gone


class _TemplateCodeCache(BytecodeCache):
    """Jinja's bytecode cache in memory, shared by the apps of one test process: each test's app has an
    environment of its own that would otherwise compile every template it renders again (a third of the
    suite's CPU went to compiling the same templates and URL rules over and over). Keyed by Jinja on the
    template's name and checked against its source's checksum."""

    def __init__(self):
        self.compiled = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = _TemplateCodeCache()


def _cache_url_builders():
    """Werkzeug compiles each URL rule's builder with Python's compiler when an app adds the rule; the
    suite builds one app per test from the same rules. The builder's code is a function of the rule's
    text, defaults and flags alone (it reaches the rule's converters through its `self` argument), so one
    compilation per process serves every app. Without the private hook (another Werkzeug), nothing changes."""
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "cached", False):
        return
    compiled = {}

    @functools.wraps(compile_builder)
    def cached(rule, append_unknown=True):
        key = (rule.rule, rule.host, rule.subdomain, rule.merge_slashes, repr(sorted((rule.defaults or {}).items())),
               append_unknown)
        if key not in compiled:
            compiled[key] = compile_builder(rule, append_unknown)
        return compiled[key]
    cached.cached = True
    Rule._compile_builder = cached


_cache_url_builders()


def _share_engines():
    """One SQLAlchemy engine per database URL and options in a test process, shared by the apps of its
    tests: an engine keeps the SQL it compiled (its statement cache), and a new engine per test compiled
    every statement again, a sixth of the suite's CPU. Each test still starts with no open connection
    (the app fixture disposes the engine's pool). A test that adds an event listener to the engine
    removes it."""
    make_engine = db._make_engine
    if getattr(make_engine, "shared", False):
        return
    engines = {}

    def shared(bind_key, options, app):
        named = {k: v.render_as_string(hide_password=False) if isinstance(v, URL) else v for k, v in options.items()}
        key = (bind_key, repr(sorted(named.items(), key=lambda item: item[0])))
        if key not in engines:
            engines[key] = make_engine(bind_key, options, app)
        return engines[key]
    shared.shared = True
    db._make_engine = shared


_share_engines()


@pytest.fixture
def app(backend, database_url, bundles):
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=database_url(backend))
    app.jinja_env.bytecode_cache = TEMPLATE_CODE
    with app.app_context():
        _empty_tables()
        deploy(db.session, bundles, "test")
        yield app
        db.session.remove()
        db.engine.dispose()


@dataclass
class Person:
    user: User
    token: str

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}


def make_user(username, *roles) -> Person:
    return make_users({username: roles})[username]


def make_users(roles_of: dict) -> dict:
    """{username: Person} for {username: roles}, written in one transaction."""
    users = {}
    for username, roles in roles_of.items():
        user = users[username] = User(username=username, display_name=username)
        user.roles = roles
        # A cheap hash keeps fixtures fast; real users get the default (scrypt) via `flask users create`.
        user.password_hash = generate_password_hash("pw-" + username, method="pbkdf2:sha256:1000")
        db.session.add(user)
    db.session.flush()
    # Tokens valid across the moved clocks of the tests.
    tokens = {username: issue_token(user, 3650, commit=False) for username, user in users.items()}
    db.session.commit()
    return {username: Person(user, tokens[username]) for username, user in users.items()}


@pytest.fixture
def people(app):
    """One user per role, plus a second claims specialist and manager."""
    return make_users({**{role: (role,) for role in ROLES}, "claims_specialist_2": ("claims_specialist",),
                       "management_2": ("management",)})


@pytest.fixture
def client(app):
    return app.test_client()


# ---- customer messages: a real SMTP server and SMS gateway on 127.0.0.1 (scripts/mail_sink.py) ----
@pytest.fixture
def sink():
    """aiosmtpd on a free port and the HTTP SMS gateway beside it; `sink.emails` / `sink.sms`
    hold what arrived (newest first), `sink.sms_answer` and `sink.smtp_reply` set their answers."""
    from scripts.mail_sink import Sink, free_port
    started = Sink("127.0.0.1", smtp_port=free_port(), http_port=0).start()
    yield started
    started.stop()


@pytest.fixture
def outbox(app, sink):
    """The app with both channels pointing at the sink (plain SMTP, short timeouts, no pace)."""
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=sink.smtp_port, SMTP_SECURITY="none", SMTP_USER=None,
                      SMTP_TIMEOUT_SECONDS=2.0, MAIL_FROM="投诉中心 <complaints@insurer.example>",
                      SMS_GATEWAY_URL=sink.sms_url, SMS_GATEWAY_KEY="gateway-test-key", SMS_TIMEOUT_SECONDS=0.5,
                      PUBLIC_BASE_URL="https://complaints.insurer.example", OUTBOX_MAX_PER_SECOND=0)
    return app
