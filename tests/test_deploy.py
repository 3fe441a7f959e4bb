"""The deployment files in deploy/ (README "Deployment" and "Upgrades"), checked as far as this machine allows:
systemd-analyze verifies the units (their paths pointed at this checkout: no systemd runs here); the compose file
and the Dockerfile are read and checked (no Docker daemon here, so no image is built); `flask db upgrade` as the
migrate unit runs it is a no-op the second time, on both backends; and a real nginx with the site file, TLS and
all, proxies to a real gunicorn started the way the web unit starts it, on a socket handed over the way systemd
hands it, through a release switch with a reload and a restart."""
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, inspect

from app.config import ROOT, Config
from app.input_guard import UPLOAD_FORM_MARGIN
from tests.conftest import _drop_postgres_db, _postgres_test_db

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
PREFIX = "/srv/complaints/current"          # where the units and the site expect the release
HOST = "complaints.example.com"
SERVICES = ("complaints-migrate.service", "complaints-web.service", "complaints-scheduler.service")
# Settings that are secrets (names ending so in app/config.py) and the one secret-bearing URL.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|_KEY)$")


def unit(name) -> list:
    """[(section, key, value)] of a unit file, in order (keys may repeat)."""
    entries, section = [], None
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key, value))
    return entries


def values(name, key) -> list:
    return [v for _, k, v in unit(name) if k == key]


def exec_start(name, prefix) -> list:
    """The unit's ExecStart command line with the release folder moved to `prefix`."""
    return shlex.split(values(name, "ExecStart")[0].replace(PREFIX, str(prefix)))


def env_example() -> dict:
    settings = {}
    for line in (DEPLOY / "complaints.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), line
            settings[key] = value
    return settings


# ---- systemd ---------------------------------------------------------------------------------------------------
def test_units_pass_systemd_analyze_verify(tmp_path):
    """No warning at all: systemd-analyze prints unknown keys and bad values without failing on them. The units'
    binaries must exist, so the release folder is pointed at this checkout."""
    for path in UNITS.iterdir():
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8").replace(PREFIX, str(ROOT)))
    files = sorted(str(p) for p in tmp_path.iterdir())
    verified = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True)
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")
    for name in SERVICES:
        review = subprocess.run(["systemd-analyze", "security", "--offline=true", str(tmp_path / name)],
                                capture_output=True, text=True)
        exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", review.stdout).group(1))
        assert exposure <= 2.0, (name, review.stdout)


def test_units_run_as_the_app_with_its_secrets_and_hardening():
    for name in SERVICES:
        settings = {k: v for _, k, v in unit(name)}
        assert (settings["User"], settings["Group"]) == ("complaints", "complaints")
        assert settings["EnvironmentFile"] == "/etc/complaints/complaints.env"
        assert settings["WorkingDirectory"] == PREFIX
        assert settings["Restart"] == "on-failure"
        for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                           ("ProtectHome", "yes"), ("CapabilityBoundingSet", "")]:
            assert settings[key] == value, (name, key)
        # Every folder the app writes is under the one writable path.
        example = env_example()
        assert example["EVIDENCE_DIR"].startswith(settings["ReadWritePaths"] + "/")


def test_migrations_run_once_before_the_web_and_the_scheduler():
    """Not an ExecStartPre of the web: two units starting at once would migrate side by side. systemd runs the
    one oneshot unit both require, once per start transaction."""
    assert values("complaints-migrate.service", "Type") == ["oneshot"]
    assert exec_start("complaints-migrate.service", PREFIX)[1:] == ["--app", "app:create_app", "db", "upgrade"]
    for name in ("complaints-web.service", "complaints-scheduler.service"):
        assert "complaints-migrate.service" in " ".join(values(name, "Requires"))
        assert "complaints-migrate.service" in " ".join(values(name, "After"))
        assert not values(name, "ExecStartPre")
    assert exec_start("complaints-scheduler.service", PREFIX)[1:] == ["scheduler", "run"]
    web = exec_start("complaints-web.service", PREFIX)
    assert web[1:3] == ["-c", f"{PREFIX}/deploy/gunicorn.conf.py"] and web[-1] == "wsgi:app"
    assert values("complaints-web.service", "ExecReload") == ["/bin/kill -s HUP $MAINPID"]
    socket_path = values("complaints-web.socket", "ListenStream")[0]
    assert f"server unix:{socket_path};" in (DEPLOY / "nginx" / "complaints.conf").read_text(encoding="utf-8")


def test_every_export_gets_the_long_timeout():
    """The site's export location covers every download route the app has (they stream for a while)."""
    from app import create_app
    from app.config import TestConfig
    site = (DEPLOY / "nginx" / "complaints.conf").read_text(encoding="utf-8")
    exports = re.compile(re.search(r"location ~ (\S+) \{\n[^}]*proxy_read_timeout 120s;", site).group(1))
    rules = [r.rule for r in create_app(TestConfig).url_map.iter_rules()
             if re.search(r"\.(csv|xlsx|zip)$|/case-file", r.rule)]
    assert len(rules) >= 12
    for rule in rules:
        assert exports.match(re.sub(r"<[^>]+>", "7", rule)), rule


def test_env_example_names_every_secret_and_fills_in_none():
    text = (DEPLOY / "complaints.env.example").read_text(encoding="utf-8")
    secrets_part = text.split("# ---- Required")[0]
    names = re.findall(r'_env\("([A-Z0-9_]+)"', (ROOT / "app" / "config.py").read_text(encoding="utf-8"))
    example = env_example()
    for name in [n for n in names if SECRET_NAME.search(n)]:
        assert re.search(rf"^{name}=$", secrets_part, re.M), f"{name}: list it, empty, under Secrets"
    assert "PASSWORD@" in example["DATABASE_URL"]          # a placeholder, not a password
    assert "$" not in "".join(example.values())               # compose would expand it
    assert example["TRUSTED_PROXIES"] == "1" and example["PUBLIC_BASE_URL"].startswith("https://")
    assert (DEPLOY / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*.env"


# ---- the container ---------------------------------------------------------------------------------------------
def test_compose_file():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app", "scheduler"}
    assert set(compose["volumes"]) == {"pgdata", "data"}
    db = services["db"]
    assert db["image"].startswith("postgres:") and "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    migrate = exec_start("complaints-migrate.service", PREFIX)[1:]
    assert services["migrate"]["command"] == ["flask", *migrate] and services["migrate"]["restart"] == "no"
    assert services["scheduler"]["command"] == ["flask", "scheduler", "run"]
    for name in ("migrate", "app", "scheduler"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["env_file"] == "complaints.env" and service["init"] is True
        assert "data:/var/lib/complaints" in service["volumes"]
        assert service["depends_on"]["db"] == {"condition": "service_healthy"}
    for name in ("app", "scheduler"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["app"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "/healthz" in " ".join(services["app"]["healthcheck"]["test"])
    assert db["env_file"] == "postgres.env" and (DEPLOY / "postgres.env.example").exists()


def dockerfile_stages() -> list:
    """[(FROM line, [(instruction, arguments)])] with continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    stages = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "FROM":
            stages.append((rest, []))
        else:
            stages[-1][1].append((instruction, " ".join(rest.split())))
    return stages


def test_dockerfile_builds_assets_and_runs_as_a_user():
    (vendor_from, vendor), (app_from, steps) = dockerfile_stages()
    assert re.fullmatch(r"node:\d+-bookworm-slim AS vendor", vendor_from)
    assert ("RUN", "make vendor") in vendor
    copied = [args.split()[:-1] for op, args in vendor if op == "COPY"]
    assert copied == [["Makefile", "package.json", "package-lock.json"]]
    assert app_from == "python:3.11-slim-bookworm"
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "pip install -r /tmp/requirements.txt" in runs
    assert "pybabel -q compile -d app/translations -f" in runs
    assert ("COPY", "--from=vendor /src/app/static/vendor app/static/vendor") in steps
    ops = [op for op, _ in steps]
    assert ("USER", "complaints") in steps and ops.index("USER") > max(i for i, op in enumerate(ops) if op == "RUN")
    assert json.loads(dict(steps)["CMD"]) == ["gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind", "0.0.0.0:8000",
                                             "wsgi:app"]


def test_vendor_stage_has_what_make_vendor_reads(tmp_path):
    """The vendor stage copies only these files: `make -n vendor` finds every prerequisite among them."""
    for name in ("Makefile", "package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    planned = subprocess.run(["make", "-n", "vendor"], cwd=tmp_path, capture_output=True, text=True)
    assert planned.returncode == 0, planned.stderr
    assert "npm ci" in planned.stdout and "app/static/vendor/bpmn-js" in planned.stdout


def ignored(path: str, patterns: list) -> bool:
    """Docker's .dockerignore match for the simple patterns used here (`*` within a name, `**/` any folders); a
    matched folder excludes what is under it."""
    parts = path.split("/")
    for pattern in patterns:
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            return True
    return False


def test_dockerignore_keeps_the_app_and_leaves_out_secrets_and_builds():
    patterns = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#")]
    for kept in ("wsgi.py", "app/__init__.py", "app/translations/zh_Hans_CN/LC_MESSAGES/messages.po",
                 "migrations/env.py", "processes/complaint_handling.bpmn", "forms", "requirements.txt",
                 "deploy/gunicorn.conf.py", "tests/test_deploy.py", "deploy/complaints.env.example"):
        assert not ignored(kept, patterns), kept
        assert (ROOT / kept).exists(), kept
    for left_out in ("deploy/complaints.env", "deploy/postgres.env", ".env", ".venv/bin/python",
                     "node_modules/bpmn-js/package.json", "app/static/vendor/bpmn-js/LICENSE", "instance/complaints.db",
                     "app/__pycache__/config.cpython-311.pyc", ".git/HEAD",
                     "app/translations/zh_Hans_CN/LC_MESSAGES/messages.mo"):
        assert ignored(left_out, patterns), left_out


# ---- flask db upgrade on every deploy --------------------------------------------------------------------------
def test_db_upgrade_twice_is_a_noop(backend, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else _postgres_test_db("_deploy")
    try:
        command = exec_start("complaints-migrate.service", ROOT)
        env = {"PATH": os.environ["PATH"], "SECRET_KEY": "deploy-test", "PUBLIC_BASE_URL": f"https://{HOST}",
               "DATABASE_URL": url}
        if backend == "postgresql":          # two hosts deploying at once: one upgrades, the other waits, then none
            both = [subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
            outcomes = [(p.wait(), p.stderr.read()) for p in both]
            assert [code for code, _ in outcomes] == [0, 0], outcomes
            assert sorted("Running upgrade" in err for _, err in outcomes) == [False, True]
        # SQLite: one upgrades, the next does nothing; PostgreSQL: one more after the pair does nothing.
        runs = [subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
                for _ in range(2 if backend == "sqlite" else 1)]
        assert [r.returncode for r in runs] == [0] * len(runs), runs[-1].stderr
        assert ("Running upgrade" in runs[0].stderr) == (backend == "sqlite")
        assert "Running upgrade" not in runs[-1].stderr
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head_revision()
            assert "login_attempt" in inspect(conn).get_table_names()
        engine.dispose()
    finally:
        if backend == "postgresql":
            _drop_postgres_db(url)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_only_the_server_deploys_on_start_a_flask_command_does_not(backend, tmp_path):
    """wsgi.py deploys processes/ when gunicorn imports it; a `flask` command that loads the app from it (the
    Makefile's and the units' FLASK_APP=wsgi.py) deploys nothing: `flask processes check` must not deploy what it
    checks, and `flask processes deploy --by` records its own author. A setting missing or wrong, and a database not
    migrated yet (app/cli/group.py), are said, not a traceback."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {"PATH": os.environ["PATH"], "SECRET_KEY": "deploy-test", "PUBLIC_BASE_URL": f"https://{HOST}",
           "DATABASE_URL": url, "FLASK_APP": "wsgi.py"}
    flask = [str(ROOT / ".venv" / "bin" / "flask")]

    def deployed():
        engine = create_engine(url)
        with engine.connect() as conn:
            found = conn.exec_driver_sql("SELECT process_id, deployed_by FROM process_version").all()
        engine.dispose()
        return sorted(found)
    for wrong, said in (({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
                        ({"API_TOKEN_DAYS": "abc"}, "API_TOKEN_DAYS='abc': not a whole number")):
        refused = subprocess.run(flask + ["users", "list"], cwd=ROOT, env={**env, **wrong}, capture_output=True,
                                 text=True)
        assert refused.returncode == 1 and said in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
        listed = subprocess.run(flask + ["--help"], cwd=ROOT, env={**env, **wrong}, capture_output=True, text=True)
        assert said in listed.stderr and "Traceback" not in listed.stderr, listed.stderr     # one line, then help
        assert "Usage: flask" in listed.stdout
    before = subprocess.run(flask + ["users", "list"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert before.returncode == 1 and "Traceback" not in before.stderr, before.stderr   # no tables yet: says so
    assert "it is not migrated, run `flask db upgrade` first" in before.stderr
    for args in (["db", "upgrade"], ["processes", "check"], ["users", "list"]):
        ran = subprocess.run(flask + args, cwd=ROOT, env=env, capture_output=True, text=True)
        assert ran.returncode == 0, ran.stderr
        assert deployed() == [] and "deployed as version" not in ran.stderr, args
    ran = subprocess.run(flask + ["processes", "deploy", "--by", "wang.fang"], cwd=ROOT, env=env, capture_output=True,
                         text=True)
    assert ran.returncode == 0 and {by for _, by in deployed()} == {"wang.fang"}, ran.stderr
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM process_version")
    engine.dispose()
    started = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", "import wsgi"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    assert started.returncode == 0 and {by for _, by in deployed()} == {"system"}, started.stderr


def head_revision() -> str:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    config = AlembicConfig()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


# ---- nginx in front of gunicorn --------------------------------------------------------------------------------
RELEASE_TAG = '''

_inner = app.wsgi_app


def _tagged(environ, start_response):       # the test's release mark on every answer
    def start(status, headers, exc_info=None):
        return start_response(status, headers + [("X-Release", "{tag}")], exc_info)
    return _inner(environ, start)


app.wsgi_app = _tagged
'''
# systemd's hand-over of a listening socket: fd 3, LISTEN_FDS and LISTEN_PID (gunicorn checks it is its own).
ACTIVATE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
            "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); os.execv(sys.argv[2], sys.argv[2:])")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_release(folder, tag):
    """A release folder as the deploy step leaves it: this checkout's files, wsgi.py marking its answers."""
    folder.mkdir()
    for name in ("app", "migrations", "processes", "forms", "deploy", ".venv"):
        (folder / name).symlink_to(ROOT / name)
    (folder / "wsgi.py").write_text((ROOT / "wsgi.py").read_text(encoding="utf-8") + RELEASE_TAG.format(tag=tag))


def switch(current, release):
    """Point the `current` symlink at another release in one step, as the README's upgrade does."""
    staged = current.with_name("current.new")
    staged.symlink_to(release)
    os.replace(staged, current)


def self_signed(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))


def site_config(folder, ports, sock) -> str:
    """The site file with this machine's ports, certificate, log folder, socket and release folder; every
    replaced text must be there exactly as often as expected, so the file cannot drift from what is tested."""
    text = (DEPLOY / "nginx" / "complaints.conf").read_text(encoding="utf-8")
    for old, new, count in [
            ("listen 80;", f"listen 127.0.0.1:{ports['http']};", 1), ("listen [::]:80;", "", 1),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{ports['https']} ssl http2;", 1),
            ("listen [::]:443 ssl http2;", "", 1),
            ("/etc/ssl/complaints/fullchain.pem", str(folder / "cert.pem"), 1),
            ("/etc/ssl/complaints/privkey.pem", str(folder / "key.pem"), 1),
            ("/var/log/nginx/", f"{folder}/", 3), ("unix:/run/complaints/web.sock", f"unix:{sock}", 1),
            (PREFIX, str(folder / "current"), 2)]:
        assert text.count(old) == count, old
        text = text.replace(old, new)
    return text


def nginx_binary() -> str:
    found = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
    assert found, "nginx is missing: scripts/ensure-deploy-tools.sh installs it (make test runs it)"
    return found


class Site:
    """nginx (the site file) on 127.0.0.1 in front of gunicorn (the web unit's command) on a unix socket that
    the test holds, as systemd holds complaints-web.socket."""

    def __init__(self, folder, database_url):
        self.folder, self.ports = folder, {"http": free_port(), "https": free_port()}
        self.database = database_url.removeprefix("sqlite:///")
        for tag in ("A", "B"):
            make_release(folder / f"release-{tag}", tag)
        self.current = folder / "current"
        self.current.symlink_to(folder / "release-A")
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(folder / "web.sock"))
        self.listener.listen(128)
        os.chmod(folder / "web.sock", 0o666)
        self_signed(folder)
        self.tls = ssl.create_default_context(cafile=str(folder / "cert.pem"))
        self.gunicorn = self.start_gunicorn(database_url)
        self.nginx = self.start_nginx()

    def gunicorn_env(self, database_url) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST", "APP_ENV", "FLASK_"))
               and k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update({k: v for k, v in env_example().items() if v})
        for assignment in values("complaints-web.service", "Environment"):
            env.update(item.split("=", 1) for item in shlex.split(assignment.replace(PREFIX, str(self.current))))
        env.update(SECRET_KEY="deploy-test", DATABASE_URL=database_url, EVIDENCE_DIR=str(self.folder / "evidence"),
                   DEPLOY_ON_START="0", WEB_CONCURRENCY="1")
        return env

    def start_gunicorn(self, database_url=None):
        self.env = self.env if database_url is None else self.gunicorn_env(database_url)
        command = exec_start("complaints-web.service", self.current)
        log = open(self.folder / "gunicorn.log", "ab")
        fd = self.listener.fileno()
        return subprocess.Popen([sys.executable, "-c", ACTIVATE, str(fd), *command], cwd=self.current,
                                env=self.env, pass_fds=(fd,), stdout=log, stderr=log)

    def start_nginx(self):
        (self.folder / "site.conf").write_text(site_config(self.folder, self.ports, self.folder / "web.sock"))
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "".join(f"{kind}_temp_path {self.folder}/{kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {self.folder}/nginx.pid;\nerror_log {self.folder}/error.log;\n"
            f"events {{ worker_connections 64; }}\nhttp {{\ninclude /etc/nginx/mime.types;\n{temp}"
            f"include {self.folder}/site.conf;\n}}\n")
        command = [nginx_binary(), "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0 and "[warn]" not in checked.stderr, checked.stderr
        nginx = subprocess.Popen([*command, "-g", "daemon off;"])
        wait_for(lambda: nginx.poll() is not None or self.listening())
        assert nginx.poll() is None, (self.folder / "error.log").read_text()
        return nginx

    def listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.ports["https"])) == 0

    def request(self, method, path, headers=None, body=None, source="127.0.0.1", tls=True, send_body=True):
        """(status, headers, body) of one request to nginx from `source` (any 127.0.0.0/8 address)."""
        raw = socket.create_connection(("127.0.0.1", self.ports["https" if tls else "http"]), timeout=60,
                                       source_address=(source, 0))
        conn = http.client.HTTPConnection(HOST, timeout=60)
        conn.sock = self.tls.wrap_socket(raw, server_hostname=HOST) if tls else raw
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            length = {"Content-Length": str(len(body))} if body is not None else {}
            for name, value in {"Host": HOST, **length, **(headers or {})}.items():
                conn.putheader(name, value)
            conn.endheaders(body if send_body else None)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def stop(self):
        for process in (self.nginx, self.gunicorn):
            process.terminate()
            process.wait(timeout=60)
        self.listener.close()


@pytest.fixture
def site(tmp_path, database_url):
    started = Site(tmp_path, database_url("sqlite"))
    yield started
    started.stop()


def test_nginx_site_in_front_of_gunicorn(site):
    """One nginx and gunicorn for every check (each start of the app costs seconds)."""
    check_tls_and_health(site)
    check_redirect_to_https(site)
    check_app_sees_client_address_and_https(site)
    check_upload_limit(site)
    check_metrics_only_for_monitoring(site)
    check_static_files(site)
    check_log_has_no_query_string(site)
    check_release_switch_reload_and_restart(site)


def check_tls_and_health(site):
    status, headers, body = site.request("GET", "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["Strict-Transport-Security"] == "max-age=63072000"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])      # nginx's $request_id, through the app
    assert headers["Server"] == "nginx" and headers["X-Release"] == "A"
    with site.tls.wrap_socket(socket.create_connection(("127.0.0.1", site.ports["https"])),
                              server_hostname=HOST) as tls:
        assert tls.version() == "TLSv1.3"


def check_redirect_to_https(site):
    status, headers, _ = site.request("GET", "/complaints?page=2", tls=False)
    assert (status, headers["Location"]) == (301, f"https://{HOST}/complaints?page=2")


def login_form(site, source):
    status, headers, body = site.request("GET", "/login", source=source)
    assert status == 200
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
    cookie = headers["Set-Cookie"]
    assert "; Secure" in cookie                       # a production app: the session cookie is HTTPS-only
    return token, cookie.split(";")[0]


def check_app_sees_client_address_and_https(site):
    """Through nginx the app takes the client's address (not nginx's, not a forged X-Forwarded-For) and sees
    HTTPS: Flask-WTF refuses an HTTPS form post without a Referer (it checks the Referer for HTTPS requests
    only), and the same post with one gets past it, so the token was good."""
    token, cookie = login_form(site, "127.0.0.2")
    form = f"csrf_token={token}&username=nobody&password=wrong".encode()
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = site.request("POST", "/login", headers, form, source="127.0.0.2")
    assert status == 400
    status, _, _ = site.request("POST", "/login", {**headers, "Referer": f"https://{HOST}/login",
                                                   "X-Forwarded-For": "203.0.113.9"}, form, source="127.0.0.2")
    assert status == 401
    with sqlite3.connect(site.database) as conn:
        keys = {k for (k,) in conn.execute("SELECT key FROM login_attempt WHERE key LIKE 'ip:%'")}
    assert "ip:127.0.0.2" in keys and not keys & {"ip:203.0.113.9", "ip:127.0.0.1", "ip:"}


def check_upload_limit(site):
    """nginx's client_max_body_size is the largest body the app reads (an evidence upload and its form): a body
    just under it reaches the app; one byte over it is refused by nginx, in both languages. (A body of exactly
    the limit reaches the app, which refuses it: werkzeug's stream under gunicorn takes the limit as exclusive.)"""
    limit = Config.EVIDENCE_MAX_BYTES + UPLOAD_FORM_MARGIN
    configured = re.search(r"client_max_body_size (\d+)m;", (DEPLOY / "nginx" / "complaints.conf").read_text())
    assert int(configured.group(1)) * 1024 * 1024 == limit
    path, kind = "/complaints/TS-20260101-000001/evidence", "multipart/form-data; boundary=x"
    status, headers, _ = site.request("POST", path, {"Content-Type": kind}, multipart(limit - 1))
    assert status == 400 and "Content-Security-Policy" in headers     # the app's answer (no CSRF token)
    status, headers, body = site.request("POST", path, {"Content-Type": kind, "Content-Length": str(limit + 1)},
                                         send_body=False)
    assert status == 413 and "Content-Security-Policy" not in headers
    assert "每次上传最多 20 MB" in body.decode() and "at most 20 MB per upload" in body.decode()


def multipart(size) -> bytes:
    """A form with one file, `size` bytes in all."""
    head = (b'--x\r\nContent-Disposition: form-data; name="files"; filename="scan.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n")
    tail = b"\r\n--x--\r\n"
    return head + b"a" * (size - len(head) - len(tail)) + tail


def check_metrics_only_for_monitoring(site):
    status, _, body = site.request("GET", "/metrics")
    assert status == 200 and b"complaints_http_requests_total" in body
    status, headers, _ = site.request("GET", "/metrics", source="127.0.0.2")
    assert status == 403 and "Content-Security-Policy" not in headers          # refused by nginx
    status, _, _ = site.request("GET", "/metrics", {"X-Forwarded-For": "127.0.0.1"}, source="127.0.0.2")
    assert status == 403


def check_static_files(site):
    for url, path in [("/static/web.css", "app/static/web.css"),
                      ("/analysis/static/analysis.js", "app/web/analysis/static/analysis.js")]:
        status, headers, body = site.request("GET", url)
        assert (status, body) == (200, (ROOT / path).read_bytes())
        assert "X-Request-ID" not in headers                      # nginx served it, not the app
        assert (headers["Cache-Control"], headers["X-Content-Type-Options"]) == ("no-cache", "nosniff")
        assert headers["Strict-Transport-Security"] == "max-age=63072000"
        status, _, _ = site.request("GET", url, {"If-None-Match": headers["ETag"]})
        assert status == 304


def check_log_has_no_query_string(site):
    """Nor a link's key: a customer's page link, a password reset link."""
    site.request("GET", "/login?name=%E7%8E%8B%E8%8A%B3-secret")
    site.request("GET", "/my/SecretCustomerLinkToken1234")
    site.request("GET", "/password/reset/SecretResetToken")
    log = access_log(site, until="/password/reset/")
    assert "GET /login HTTP/1.1" in log and "Secret" not in log and "secret" not in log
    assert "GET /my/<link> HTTP/1.1" in log and "GET /password/reset/<token> HTTP/1.1" in log


def access_log(site, until: str, seconds: float = 5.0) -> str:
    """The site's access log once it holds `until` (nginx writes a request's line after its answer went out)."""
    deadline = time.monotonic() + seconds
    while True:
        log = (site.folder / "complaints.access.log").read_text(encoding="utf-8")
        if until in log or time.monotonic() > deadline:
            return log
        time.sleep(0.02)


def check_release_switch_reload_and_restart(site):
    """README "Upgrades": switch `current` to the new release, reload (HUP): the new workers answer from it and
    no request fails meanwhile; then a restart on the held socket: requests wait, none is refused."""
    answers, stop = [], threading.Event()

    def keep_asking():
        while not stop.is_set():
            try:
                status, headers, _ = site.request("GET", "/healthz")
                answers.append((status, headers["X-Release"]))
            except Exception as exc:      # noqa: BLE001  (any failure is what this check looks for)
                answers.append((repr(exc), None))
    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        wait_for(lambda: answers)         # release A has answered before the switch (else a race decides)
        switch(site.current, site.folder / "release-B")
        site.gunicorn.send_signal(signal.SIGHUP)
        wait_for(lambda: answers and answers[-1][1] == "B")
        site.gunicorn.terminate()
        site.gunicorn.wait(timeout=60)
        seen = len(answers)
        site.gunicorn = site.start_gunicorn()
        wait_for(lambda: len(answers) > seen + 3)
    finally:
        stop.set()
        asking.join(timeout=90)
    assert {status for status, _ in answers} == {200}, [a for a in answers if a[0] != 200][:3]
    releases = [release for _, release in answers]
    assert releases[0] == "A" and releases[-1] == "B" and releases == sorted(releases)


def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
