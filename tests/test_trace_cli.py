"""The `flask` commands on a database that is not ready, and on process files that are not right, say what to do
instead of a traceback."""
import os
import shutil

import psycopg
import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import ProcessVersion
from tests.conftest import PG_URL


@pytest.fixture
def empty_database(backend, tmp_path):
    """The URL of a database without any table, on the backend under test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin = make_url(PG_URL)
    name = f"complaints_empty_{os.getpid()}"
    connect = dict(host=admin.host, port=admin.port, user=admin.username, dbname=admin.database, autocommit=True)
    with psycopg.connect(**connect) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(**connect) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_trace_on_an_unmigrated_database_says_to_run_db_upgrade(empty_database):
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=empty_database)
    with app.app_context():
        try:
            result = app.test_cli_runner().invoke(args=["processes", "trace"])
            assert result.exit_code != 0
            assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
            assert "run `flask db upgrade` first" in result.output and "Traceback" not in result.output
            # The files in processes/ can be traced without a database.
            files = app.test_cli_runner().invoke(args=["processes", "trace", "--files"])
            assert files.exit_code == 0 and "| C-4.1 |" in files.output
        finally:
            db.session.remove()
            db.engine.dispose()


def test_trace_on_a_migrated_database_without_versions_says_to_deploy(app):
    db.session.execute(delete(ProcessVersion))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["processes", "trace"])
    assert result.exit_code != 0 and "nothing deployed; run `flask processes deploy`" in result.output


def test_every_command_group_on_an_unmigrated_database_says_to_run_db_upgrade(empty_database):
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=empty_database)
    with app.app_context():
        try:
            for args in (["users", "list"], ["audit", "verify"], ["calendar", "status"], ["jobs", "list"],
                         ["outbox", "status"], ["vocab", "unmapped"]):
                result = app.test_cli_runner().invoke(args=args)
                assert result.exit_code == 1 and "run `flask db upgrade` first" in result.output, (args, result.output)
                assert isinstance(result.exception, SystemExit), (args, repr(result.exception))
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_process_files_that_are_not_right_are_named_and_one_version_has_nothing_to_compare(app, backend, tmp_path):
    processes = tmp_path / "processes"
    shutil.copytree(app.config["PROCESSES_DIR"], processes)
    (processes / "folder.bpmn").mkdir()                                   # a folder so named is no file
    app.config["PROCESSES_DIR"] = processes
    assert app.test_cli_runner().invoke(args=["processes", "trace", "--files"]).exit_code == 0
    (processes / "broken.bpmn").write_text("<definitions", encoding="utf-8")
    for args in (["processes", "trace", "--files"], ["processes", "check"]):
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 1 and "broken.bpmn" in result.output, (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, repr(result.exception))
    only = app.test_cli_runner().invoke(args=["processes", "diff", "complaint_handling"])
    assert only.exit_code == 1 and "version 1 is its first" in only.output
    missing = app.test_cli_runner().invoke(args=["processes", "diff", "complaint_handling", "--to", "0"])
    assert missing.exit_code == 1 and "has no version 0" in missing.output
