"""The steps of a backup and of a restore, in their order. A restore changes nothing until the whole backup
is checked (every hash, the schema revision, the target database empty or --force); SQLite's database is
prepared (and upgraded) in a private file and then copied in, PostgreSQL's restored in one transaction."""
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, delete, func, inspect, select, text
from sqlalchemy.engine import make_url

from .. import audit
from ..audit_verify import Report, verify as verify_trail
from ..evidence.store import store_of
from ..extensions import db
from ..models import Complaint, HumanTask, SchedulerHeartbeat, is_search_index
from ..timeutil import utcnow
from . import BackupError, evidence, folder, in_use, postgres, schema, sqlite

PARTS = {"sqlite": sqlite.PART, "postgresql": postgres.PART}
RESTORED = "backup_restored"          # the audit event a restore writes to the system chain


def kind_of(app) -> str:
    kind = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name()
    if kind not in PARTS:
        raise BackupError(f"backups cover SQLite and PostgreSQL, not {kind}")
    return kind


def _facts(conn) -> tuple[list, set]:
    """(alembic revisions, SHA-256 of every evidence file) of a database."""
    tables = set(inspect(conn).get_table_names())
    revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() \
        if "alembic_version" in tables else []
    hashes = set(conn.execute(text("SELECT DISTINCT sha256 FROM evidence_file")).scalars()) \
        if "evidence_file" in tables else set()
    return sorted(revisions), hashes


def create(app, dest: Path, everything: bool) -> dict:
    """Write the backup to `dest` (a new directory); its manifest."""
    kind, url = kind_of(app), database_url()
    with folder.Writer(dest) as writer:
        part = writer.path(PARTS[kind])
        revisions, hashes = _dump_sqlite(url, part) if kind == "sqlite" else _dump_postgres(url, part)
        writer.add(PARTS[kind])
        copied = evidence.copy_out(store_of(app), None if everything else hashes, writer)
        return writer.finish({"created_at": utcnow().isoformat(), "database": {
            "kind": kind, "part": PARTS[kind], "revision": revisions, "evidence_files": len(hashes)},
            "evidence": copied})


def _dump_sqlite(url, part):
    sqlite.dump(url, part)
    engine = create_engine(f"sqlite:///{part}")
    try:
        with engine.connect() as conn:
            return _facts(conn)
    finally:
        engine.dispose()


def _dump_postgres(url, part):
    """pg_dump in the snapshot of a read-only transaction that reads the revision and the evidence list too."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            postgres.dump(url, snapshot, part)
            return _facts(conn)


def check(app, src: Path, open_database=False) -> tuple[dict, bool]:
    """(manifest, whether its database needs an upgrade) of a backup this app can restore; else BackupError.
    `open_database`: also open an SQLite database part and run SQLite's integrity check on it (a restore does so
    on its private copy)."""
    manifest = folder.read(src)
    evidence.parts(manifest)
    kind = manifest["database"]["kind"]
    if kind != kind_of(app):
        raise BackupError(f"this is a backup of a {kind} database, and the app is configured for {kind_of(app)}: "
                          f"point DATABASE_URL at a {kind} database to restore it")
    if open_database and kind == "sqlite":
        sqlite.check_file(src / manifest["database"]["part"])
    return manifest, schema.needs_upgrade(app, manifest["database"]["revision"])


def holding_data(app) -> list:
    """The tables of the app's database that hold rows (alembic's own and SQLite's search index aside: an empty
    database just migrated has rows there)."""
    url = database_url()
    if kind_of(app) == "sqlite" and not sqlite.path_of(url).exists():
        return []
    with db.engine.connect() as conn:
        names = [t for t in inspect(conn).get_table_names() if t != "alembic_version" and not is_search_index(t)]
        return [t for t in names if conn.execute(text(f'SELECT 1 FROM "{t}" LIMIT 1')).first()]


@dataclass
class Restored:
    manifest: dict
    upgraded: bool
    evidence_files: int
    complaints: int
    open_tasks: int
    absent: list             # evidence the database refers to that the store does not hold
    trail: Report

    @property
    def ok(self) -> bool:
        return self.trail.intact and not self.absent


def database_url() -> str:
    """The URL the app's engine uses (Flask-SQLAlchemy resolves a relative SQLite file against instance/)."""
    return db.engine.url.render_as_string(hide_password=False)


def restore(app, src: Path, force: bool, by: str) -> Restored:
    manifest, upgrade = check(app, src)
    busy = holding_data(app)
    if busy and not force:
        raise BackupError(f"the database holds data (in {', '.join(busy[:5])}{', …' if len(busy) > 5 else ''}): "
                          "restore into a new, empty database, or give --force to replace what it holds")
    db.session.remove()
    db.engine.dispose()                 # no connection of ours holds the old database
    if busy:
        _refuse_while_in_use(app)
    store, url, part = store_of(app), database_url(), src / manifest["database"]["part"]
    if manifest["database"]["kind"] == "sqlite":
        count = _restore_sqlite(app, url, part, upgrade, lambda: evidence.restore(store, src, manifest))
    else:
        count = evidence.restore(store, src, manifest)
        _restore_postgres(app, url, part, upgrade, replace=bool(busy))
    return _afterwards(app, manifest, upgrade, count, src, by)


def _refuse_while_in_use(app):
    """Data that something still uses is not replaced (README: How to restore, step 1)."""
    with db.engine.connect() as conn:
        users = in_use.users_of(conn, app.config)
    db.engine.dispose()
    if users:
        raise BackupError("the database is still in use by " + "; by ".join(users)
                          + ": stop gunicorn and the scheduler first, nothing was restored")


def _restore_sqlite(app, url, part, upgrade, restore_evidence) -> int:
    target = sqlite.path_of(url)
    staged = sqlite.stage(part, target)
    try:
        if upgrade:
            _upgrade_file(app, staged)
        count = restore_evidence()
        sqlite.put_in_place(staged, target)
        return count
    finally:
        sqlite.discard(staged)


def _upgrade_file(app, staged: Path):
    """`flask db upgrade` on the staged file, through an app like this one pointed at it."""
    from .. import create_app
    from ..config import Config
    sibling = create_app(Config, **{**app.config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{staged}"})
    with sibling.app_context():
        try:
            schema.upgrade_to_head(sibling)
        except Exception as exc:                  # noqa: BLE001  (nothing was restored: say why)
            raise BackupError(f"upgrading the backup's database failed, nothing was restored: {exc}") from exc
        finally:
            db.engine.dispose()


def _restore_postgres(app, url, part, upgrade, replace):
    postgres.restore(url, part, replace)
    if upgrade:
        try:
            schema.upgrade_to_head(app)
        except Exception as exc:                  # noqa: BLE001
            raise BackupError(f"the backup was restored, but upgrading it to this code's schema failed: {exc}. "
                              "Fix the cause and run `flask db upgrade`") from exc


def _afterwards(app, manifest, upgraded, count, src, by) -> Restored:
    """Forget the backed-up system's scheduler heartbeat (no scheduler runs on the restored database yet; kept, it
    would make a restore again refuse as "in use" for SCHEDULER_HEARTBEAT_MAX_SECONDS). Record the restore in the
    audit trail, then check the trail and the evidence the database refers to."""
    session = db.session
    session.execute(delete(SchedulerHeartbeat))
    audit.record(session, by, RESTORED, data={"backup": src.name, "created_at": manifest["created_at"],
                                             "revision": manifest["database"]["revision"],
                                             "upgraded_to": schema.heads(app) if upgraded else None})
    session.commit()
    _revisions, hashes = _facts(session.connection())
    return Restored(manifest, upgraded, count,
                    complaints=session.execute(select(func.count()).select_from(Complaint)).scalar_one(),
                    open_tasks=session.execute(select(func.count()).where(HumanTask.state == "open")).scalar_one(),
                    absent=evidence.absent(store_of(app), hashes),
                    trail=verify_trail(session, audit.seal_key(app.config)))
