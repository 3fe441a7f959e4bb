"""`flask processes trace` on a database that is not ready says what to run instead of a traceback."""
import os

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
