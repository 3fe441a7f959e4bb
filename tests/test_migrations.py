"""The migrations build exactly the schema the models describe, on each backend."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db
from app.models import on_backend


def test_models_and_migrations_agree(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": on_backend(conn.dialect.name)})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_sqlite_keeps_its_search_index_with_the_complaints(app, client, people):
    """Migration 0030's triggers are there at the head (a migration rebuilding `complaint` on SQLite would drop
    them silently) and keep the FTS5 index equal to the table through inserts and an update."""
    if db.engine.dialect.name != "sqlite":
        return                                     # PostgreSQL's pg_trgm indexes are ordinary indexes
    from sqlalchemy import text
    from tests.flow import Desk
    triggers = db.session.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                       "AND tbl_name = 'complaint'")).scalars().all()
    assert sorted(triggers) == ["complaint_search_delete", "complaint_search_insert", "complaint_search_update"]
    numbers = [Desk(client, people).register() for _ in range(2)]
    db.session.execute(text("UPDATE complaint SET policy_number = 'PZ-1', customer_name = '改名' WHERE number = :n"),
                       {"n": numbers[0]})
    db.session.commit()
    db.session.execute(text("INSERT INTO complaint_search(complaint_search, rank) VALUES ('integrity-check', 1)"))
    found = db.session.execute(text("SELECT rowid FROM complaint_search WHERE complaint_search MATCH :q"),
                               {"q": '{policy_number customer_name} : "PZ-1"'}).scalars().all()
    assert found == db.session.execute(text("SELECT id FROM complaint WHERE number = :n"),
                                       {"n": numbers[0]}).scalars().all()


def test_0031_marks_the_tasks_that_have_drafts_and_goes_back(backend, tmp_path):
    """Upgrading to 0031 marks the tasks someone keeps a draft of (their drafts go with the change that closes
    them), and it can be undone on both backends without losing human_task's partial indexes."""
    from datetime import datetime, timezone

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect, select, text

    from app import create_app
    from app.config import ROOT, TestConfig
    from app.models import HumanTask, ProcessInstance, ProcessVersion, TaskDraft, User
    from tests.conftest import _drop_postgres_db, _postgres_test_db
    url = f"sqlite:///{tmp_path / 'drafts.db'}" if backend == "sqlite" else _postgres_test_db("_drafts0031")
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    try:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            version = ProcessVersion(process_id="p", version=1, name="p", content_hash="h", bpmn_files={},
                                     spec_json="{}", subprocess_specs_json="{}", forms={}, lanes={},
                                     deployed_by="t", deployed_at=now)
            user = User(username="u", display_name="u", password_hash="x", roles_csv="r")
            db.session.add_all([version, user])
            db.session.flush()
            inst = ProcessInstance(version_id=version.id, process_id="p", status="running", workflow_json="{}",
                                   row_version=1, created_at=now, updated_at=now)
            db.session.add(inst)
            db.session.flush()
            for task_id in ("drafted", "plain"):
                db.session.add(HumanTask(id=task_id, instance_id=inst.id, element_id="e", name="e", state="open",
                                         created_at=now))
            db.session.flush()
            db.session.add(TaskDraft(task_id="drafted", user_id=user.id, data={"a": "b"}, saved_at=now))
            db.session.commit()
            downgrade(directory=str(ROOT / "migrations"), revision="0030")
            assert "has_draft" not in {c["name"] for c in inspect(db.engine).get_columns("human_task")}
            indexes = {i["name"] for i in inspect(db.engine).get_indexes("human_task")}
            assert {"ix_human_task_unclaimed", "ix_human_task_open_due"} <= indexes
            upgrade(directory=str(ROOT / "migrations"))
            db.session.remove()
            marked = db.session.execute(text("SELECT id, has_draft FROM human_task ORDER BY id")).all()
            assert [(task_id, bool(has)) for task_id, has in marked] == [("drafted", True), ("plain", False)]
            assert db.session.execute(select(TaskDraft.task_id)).scalars().all() == ["drafted"]
            db.session.remove()
            db.engine.dispose()
    finally:
        if backend == "postgresql":
            _drop_postgres_db(url)


def test_0033_starts_the_slices_of_an_export_under_way_again(backend, tmp_path):
    """The jobs' files move into the database: an export still under way at the upgrade starts its slices again
    (those it wrote were in the old folder); a finished one and another kind of job are left as they were."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from app import create_app
    from app.config import ROOT, TestConfig
    from tests.conftest import _drop_postgres_db, _postgres_test_db
    url = f"sqlite:///{tmp_path / 'jobs.db'}" if backend == "sqlite" else _postgres_test_db("_jobs0033")
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
    jobs = {1: ("list_export", "running"), 2: ("list_export", "done"), 3: ("migrate", "running"),
            4: ("list_export", "queued")}
    try:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"), revision="0032")
            for job_id, (kind, state) in jobs.items():
                db.session.execute(text(
                    "INSERT INTO background_job (id, kind, started_by, params, state, total, done_count, created_at,"
                    " takeovers) VALUES (:id, :kind, 'u', '{}', :state, 2, 1, CURRENT_TIMESTAMP, 0)"),
                    {"id": job_id, "kind": kind, "state": state})
                for seq, outcome in ((0, "done"), (1, None)):
                    db.session.execute(text(
                        "INSERT INTO background_job_item (job_id, seq, key, outcome, message, done_at) "
                        "VALUES (:job, :seq, :key, :outcome, :message, :at)"),
                        {"job": job_id, "seq": seq, "key": str(seq), "outcome": outcome, "message": outcome and "5",
                         "at": None if outcome is None else "2026-12-01 00:00:00"})
            db.session.commit()
            upgrade(directory=str(ROOT / "migrations"))
            rows = db.session.execute(text("SELECT job_id, seq, outcome, message FROM background_job_item "
                                           "ORDER BY job_id, seq")).all()
            counts = dict(db.session.execute(text("SELECT id, done_count FROM background_job")).all())
            db.session.remove()
            assert [tuple(r) for r in rows] == [
                (1, 0, None, None), (1, 1, None, None), (2, 0, "done", "5"), (2, 1, None, None),
                (3, 0, "done", "5"), (3, 1, None, None), (4, 0, None, None), (4, 1, None, None)]
            assert counts == {1: 0, 2: 1, 3: 1, 4: 0}
            downgrade(directory=str(ROOT / "migrations"), revision="0032")
            assert "background_job_file" not in db.inspect(db.engine).get_table_names()
            db.engine.dispose()
    finally:
        if backend == "postgresql":
            _drop_postgres_db(url)
