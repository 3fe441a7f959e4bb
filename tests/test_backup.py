"""Backup and restore (issue 13 item 7), on SQLite and PostgreSQL: `flask backup create` of a database with
complaints under way and an evidence file, restored into a new empty database and evidence store; there the
audit trail verifies, the file downloads with the same bytes and an open complaint goes on. A damaged backup, one
from a newer schema and a restore over a database that holds data are refused and change nothing; a backup of an
older schema is upgraded as it is restored."""
import hashlib
import re
import io
import json
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, select, text, update
from sqlalchemy.engine import make_url

from app import create_app, evidence, scheduler
from app.backup import in_use, procedure, schema
from app.config import ROOT, TestConfig
from app.extensions import db
from app.models import SchedulerHeartbeat, is_search_index
from app.timeutil import utcnow
from tests.conftest import _drop_postgres_db, _postgres_test_db
from tests.flow import Desk

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n"
PART = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}


@pytest.fixture
def own_store(app, tmp_path):
    """The app of the test with an evidence directory of its own."""
    app.config["EVIDENCE_DIR"] = str(tmp_path / "evidence")
    evidence.init_app(app)
    return app


@pytest.fixture
def new_database(backend, tmp_path):
    """A function giving the URL of a new, empty database (dropped after the test)."""
    made = []

    def make(name):
        url = f"sqlite:///{tmp_path / name}.db" if backend == "sqlite" else _postgres_test_db(f"_{name}")
        made.append(url)
        return url
    yield make
    for url in made:
        if backend == "postgresql":
            _drop_postgres_db(url)


def app_on(url, tmp_path, name):
    return create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url, EVIDENCE_DIR=str(tmp_path / f"evidence-{name}"))


def flask(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def tables(url) -> list:
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def upload(client, people, number):
    return client.post(f"/api/v1/complaints/{number}/evidence", headers=people["customer_service"].headers,
                       data={"file": (io.BytesIO(PDF), "发票.pdf")}, content_type="multipart/form-data")


def test_a_restored_backup_verifies_serves_its_evidence_and_its_complaints_go_on(own_store, client, people, tmp_path,
                                                                                 new_database):
    app = own_store
    desk = Desk(client, people)
    number = desk.register()
    desk.complete(number, "initial_review")
    r = upload(client, people, number)
    assert r.status_code == 201, r.json
    file_id = r.json["id"]
    assert flask(app, "audit", "seal").exit_code == 0
    made = flask(app, "backup", "create", str(tmp_path / "backup"))
    assert made.exit_code == 0, made.output
    assert "1 evidence files (referenced)" in made.output
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["database"]["revision"] == schema.heads(app)
    sha = hashlib.sha256(PDF).hexdigest()
    assert set(manifest["files"]) == {PART[manifest["database"]["kind"]], f"evidence/{sha[:2]}/{sha[2:]}"}

    restored = app_on(new_database("restored"), tmp_path, "restored")
    with restored.app_context():
        done = flask(restored, "backup", "restore", str(tmp_path / "backup"), "--by", "ops")
        assert done.exit_code == 0, done.output
        assert "1 complaints, 1 open tasks, 1 evidence files" in done.output and "audit trail intact" in done.output
        Desk(restored.test_client(), people).register()          # a complaint the backup does not have
        db.session.execute(text("CREATE TABLE leftover (x integer)"))   # and a table (a newer schema's)
        db.session.commit()
        again = flask(restored, "backup", "restore", str(tmp_path / "backup"))
        assert again.exit_code == 1 and "the database holds data" in again.output and "--force" in again.output
        forced = flask(restored, "backup", "restore", str(tmp_path / "backup"), "--force")
        assert forced.exit_code == 0, forced.output
        assert "1 complaints, 1 open tasks" in forced.output                 # replaced, not merged
        assert "leftover" not in tables(restored.config["SQLALCHEMY_DATABASE_URI"])
        verified = flask(restored, "audit", "verify")
        assert verified.exit_code == 0 and "intact" in verified.output, verified.output

        there = restored.test_client()
        r = there.get(f"/api/v1/evidence/{file_id}", headers=people["management"].headers)
        assert r.status_code == 200 and r.data == PDF
        going_on = Desk(there, people)
        going_on.complete(number, "investigate")
        assert "analyse_and_plan" in going_on.open_tasks(number)
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_evidence_missing_from_the_store_fails_the_backup_and_its_check_warns(own_store, client, people, tmp_path,
                                                                              backend):
    number = Desk(client, people).register()
    assert upload(client, people, number).status_code == 201
    sha = hashlib.sha256(PDF).hexdigest()
    [stored] = [p for p in (tmp_path / "evidence").rglob("*") if p.is_file() and sha[2:] in p.name]
    stored.unlink()
    folder = tmp_path / "backup"
    made = flask(own_store, "backup", "create", str(folder))
    assert made.exit_code == 1 and f"PROBLEM: evidence {sha} is missing in the store" in made.output
    checked = flask(own_store, "backup", "check", str(folder))
    assert checked.exit_code == 0 and "all parts intact" in checked.output
    assert f"WARNING: evidence {sha} was missing in the store when the backup was made" in checked.output


def test_a_damaged_or_newer_backup_and_a_database_with_data_are_refused_and_nothing_changes(own_store, client, people,
                                                                                           tmp_path, new_database):
    app = own_store
    number = Desk(client, people).register()
    assert upload(client, people, number).status_code == 201
    backup = tmp_path / "backup #1 100%"                       # a folder name that is no plain URI path
    assert flask(app, "backup", "create", str(backup)).exit_code == 0
    busy = flask(app, "backup", "restore", str(backup))        # over the app's own database
    assert busy.exit_code == 1 and "the database holds data" in busy.output
    part = backup / PART["sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "postgresql"]
    intact = part.read_bytes()
    part.write_bytes(intact[:1000] + bytes([intact[1000] ^ 1]) + intact[1001:])     # one byte changed

    url = new_database("target")
    target = app_on(url, tmp_path, "target")
    with target.app_context():
        checked = flask(target, "backup", "check", str(backup))
        assert checked.exit_code == 1 and f"{part.name}: damaged" in checked.output
        refused = flask(target, "backup", "restore", str(backup))
        assert refused.exit_code == 1 and f"{part.name}: damaged" in refused.output, refused.output
        assert tables(url) == [] and not list((tmp_path / "evidence-target").glob("*/*"))

        part.write_bytes(intact)
        manifest = json.loads((backup / "manifest.json").read_text())
        manifest["database"]["revision"] = ["9999"]
        rewrite_manifest(backup, manifest)
        newer = flask(target, "backup", "restore", str(backup))
        assert newer.exit_code == 1 and "revision 9999" in newer.output and "Upgrade the code" in newer.output
        assert tables(url) == [] and not list((tmp_path / "evidence-target").glob("*/*"))
        if part.name == PART["sqlite"]:     # a part that is no database, its sums written again: opened and refused
            manifest["database"]["revision"] = json.loads(json.dumps(schema.heads(app)))
            part.write_text("not a database\n")
            manifest["files"][part.name]["sha256"] = hashlib.sha256(part.read_bytes()).hexdigest()
            sums = [f"{manifest['files'][part.name]['sha256']}  {part.name}" if line.endswith(f"  {part.name}")
                    else line for line in (backup / "SHA256SUMS").read_text().splitlines()]
            (backup / "SHA256SUMS").write_text("\n".join(sums) + "\n")
            rewrite_manifest(backup, manifest)
            for command in ("check", "restore"):
                refused = flask(target, "backup", command, str(backup))
                assert refused.exit_code == 1 and "not a usable SQLite database" in refused.output, refused.output
            assert tables(url) == [] and not [f for f in tmp_path.rglob("*") if ".restore-" in f.name]
        db.engine.dispose()


def complaints_in(app) -> int:
    with app.app_context():
        count = db.session.execute(text("SELECT count(*) FROM complaint")).scalar_one()
        db.session.remove()
        return count


def test_a_restore_over_a_database_still_in_use_is_refused_and_changes_nothing(own_store, client, people, tmp_path,
                                                                                 new_database):
    """README: How to restore, step 1 (stop gunicorn and the scheduler), checked: data that a running
    scheduler (its heartbeat younger than SCHEDULER_HEARTBEAT_MAX_SECONDS) or, on PostgreSQL, any other
    session still uses is not replaced, even with --force."""
    Desk(client, people).register()
    assert scheduler.beat(own_store, force=True)                     # the backed-up system's scheduler runs
    backup = tmp_path / "backup"
    assert flask(own_store, "backup", "create", str(backup)).exit_code == 0
    url = new_database("target")
    target = app_on(url, tmp_path, "target")
    with target.app_context():
        assert flask(target, "backup", "restore", str(backup)).exit_code == 0
        assert db.session.execute(select(SchedulerHeartbeat)).first() is None   # not this database's scheduler
        db.session.remove()
        Desk(target.test_client(), people).register()                # work done since on the target
        assert scheduler.beat(target, force=True)
        refused = flask(target, "backup", "restore", str(backup), "--force")
        assert refused.exit_code == 1, refused.output
        assert re.search(r"still in use by the scheduler \(its heartbeat is \d+ s old", refused.output)
        assert "SCHEDULER_HEARTBEAT_MAX_SECONDS" in refused.output and "nothing was restored" in refused.output
        assert complaints_in(target) == 2
        limit = target.config["SCHEDULER_HEARTBEAT_MAX_SECONDS"]
        db.session.execute(update(SchedulerHeartbeat).values(beat_at=utcnow() - timedelta(seconds=limit + 1)))
        db.session.commit()
        db.session.remove()
        if target.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            address = make_url(url)
            with psycopg.connect(host=address.host, port=address.port, user=address.username,
                                 dbname=address.database, application_name="psql-by-hand"):
                refused = flask(target, "backup", "restore", str(backup), "--force")
            assert refused.exit_code == 1, refused.output
            assert "1 other session(s) connected to it (psql-by-hand from " in refused.output
            assert complaints_in(target) == 2
        forced = flask(target, "backup", "restore", str(backup), "--force")      # the scheduler stopped
        assert forced.exit_code == 0, forced.output
        assert complaints_in(target) == 1
        db.engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_another_roles_session_counts_though_its_name_is_hidden(backend, new_database, app):
    """An app role without pg_read_all_stats sees other roles' sessions with their type and address blanked:
    they still count as in use."""
    url = make_url(new_database("watched"))
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True,
                         application_name="dba-by-hand") as dba:
        dba.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'restore_probe') THEN "
                    "CREATE ROLE restore_probe LOGIN; END IF; END $$")
        engine = create_engine(url.set(username="restore_probe"))
        try:
            with engine.connect() as conn:
                found = in_use.users_of(conn, app.config)
        finally:
            engine.dispose()
    assert found == ["1 other session(s) connected to it (dba-by-hand of another role (its address needs "
                     "pg_read_all_stats to be shown))"]


def test_the_search_index_is_no_data_of_its_own(backend, tmp_path, new_database):
    """SQLite's search index (migration 0030) has rows in a new database: they are not data a restore would
    overwrite (the complaints they index are)."""
    target = app_on(new_database("migrated"), tmp_path, "migrated")
    with target.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        assert not [t for t in procedure.holding_data(target) if is_search_index(t)]
        if backend == "sqlite":
            assert "complaint_search_config" in tables(target.config["SQLALCHEMY_DATABASE_URI"])
        db.session.remove()
        db.engine.dispose()


def rewrite_manifest(backup, manifest):
    """What an operator's careless edit would do: the manifest changed and its sum written again."""
    text = json.dumps(manifest)
    (backup / "manifest.json").write_text(text)
    sums = (backup / "SHA256SUMS").read_text().splitlines()
    sums[0] = f"{hashlib.sha256(text.encode()).hexdigest()}  manifest.json"
    (backup / "SHA256SUMS").write_text("\n".join(sums) + "\n")


def test_a_backup_of_an_older_schema_is_upgraded_as_it_is_restored(backend, tmp_path, new_database):
    old_app = app_on(new_database("old"), tmp_path, "old")
    head = schema.heads(old_app)[0]
    before = schema.ScriptDirectory(schema.migrations_dir(old_app)).get_revision(head).down_revision
    with old_app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision=before)
        db.session.execute(text("INSERT INTO calendar_day (day, working, note, set_by, set_at) "
                                "VALUES (:day, :working, 'made before the upgrade', 'old', :at)"),
                           {"day": date(2026, 10, 10), "working": True, "at": datetime(2026, 9, 1, tzinfo=timezone.utc)})
        db.session.commit()
        made = flask(old_app, "backup", "create", str(tmp_path / "backup"))
        assert made.exit_code == 0 and f"revision {before}" in made.output, made.output
        db.session.remove()
        db.engine.dispose()
    restored = app_on(new_database("upgraded"), tmp_path, "upgraded")
    with restored.app_context():
        done = flask(restored, "backup", "restore", str(tmp_path / "backup"))
        assert done.exit_code == 0 and f"upgraded from revision {before}" in done.output, done.output
        assert flask(restored, "backup", "check", str(tmp_path / "backup")).output.endswith(
            "restoring upgrades it to this code's schema\n")
        assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        assert db.session.execute(text("SELECT note FROM calendar_day")).scalars().all() == ["made before the upgrade"]
        db.session.remove()
        db.engine.dispose()
