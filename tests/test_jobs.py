"""Background jobs (app/jobs/, /jobs) on both backends: a bulk migration as a job runs to done with its
result list; a runner that dies in the middle is taken over once its lease has run out and no complaint
moves twice; a job is cancelled; a list export as a job gives the rows of the direct export, to its starter
only, until its file expires; the progress JSON; who may see what."""
import csv
import io
import re
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy import text as sql
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.jobs import KINDS, claim, list_export, migration, run_batch, store
from app.jobs.runner import LEASE_SECONDS, LOST
from app.jobs.setup import context, run_pass
from app.jobs.files import JobFiles
from app.models import (AuditEvent, BackgroundJob, BackgroundJobFile, BackgroundJobItem, ProcessInstance,
                        ProcessVersion)
from app.timeutil import utcnow
from tests.conftest import make_user
from tests.flow import HAPPY_PATH, Desk
from tests.test_migration import deploy_changed, remove_re_evaluation, safe_change
from tests.test_web import Browser, fresh, text

PROCESS = "/procedure/complaint_handling"
JOB_URL = re.compile(r"^/jobs/(\d+)$")


@pytest.fixture
def jobs_app(app):
    app.config.update(JOBS_MIGRATE_INLINE_MAX=2)
    return app


@pytest.fixture
def desk(jobs_app, people):
    return Desk(jobs_app.test_client(), people)


def versions_of(numbers) -> dict:
    fresh()
    rows = db.session.execute(select(ProcessInstance.business_key, ProcessVersion.version)
                              .join(ProcessVersion, ProcessVersion.id == ProcessInstance.version_id)
                              .where(ProcessInstance.business_key.in_(numbers))).all()
    return dict(rows)


def migrations() -> int:
    fresh()
    return db.session.execute(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "instance_migrated")).scalar_one()


def job_id_of(response) -> int:
    assert response.status_code == 302, text(response)
    return int(JOB_URL.match(response.location).group(1))


def test_a_bulk_migration_runs_as_a_job_with_its_result_list(jobs_app, desk, people, tmp_path):
    movable = [desk.register() for _ in range(3)]
    stuck = desk.register()
    desk.walk(stuck, HAPPY_PATH[:4] + [("customer_confirmation", {"satisfied": False,
                                                                   "dissatisfaction_reasons": "不满意"})])
    deploy_changed(tmp_path, remove_re_evaluation)
    jobs_app.extensions["runtime"].migrate(desk_instance(movable[0]), version(2), "by-hand")    # moved meanwhile
    owner = Browser(jobs_app).login("process_owner")

    page = owner.get(f"{PROCESS}/migrate")            # more than JOBS_MIGRATE_INLINE_MAX: no dry run inline
    assert page.status_code == 200 and 'data-testid="migrate-check-job"' in page.text
    assert 'data-testid="migrate-dry-run"' not in page.text
    check_id = job_id_of(owner.post(f"{PROCESS}/migrate?to=2", {"all": "1", "dry_run": "1"}, page=f"{PROCESS}/migrate"))
    r = owner.post(f"{PROCESS}/migrate?to=2", {"all": "1"}, page=f"{PROCESS}/migrate")
    job_id = job_id_of(r)
    waiting = owner.get(f"/jobs/{job_id}")
    assert '<progress max="3" value="0"' in waiting.text and "等待开始" in text(waiting)
    assert owner.get(f"/jobs/{job_id}.json").json["state"] == "queued"

    out = jobs_app.test_cli_runner().invoke(args=["jobs", "run-once", "--seconds", "30"])
    assert "worked 2 job(s)" in out.output, out.output
    check = owner.get(f"/jobs/{check_id}.json").json                      # the check, first, moved nothing
    assert check["outcomes"] == {"done": 2, "already": 0, "refused": 1, "failed": 0}
    assert "可迁移" in text(owner.get(f"/jobs/{check_id}")) and check["summary"].startswith("已完成 3 / 3")
    progress = owner.get(f"/jobs/{job_id}.json").json
    assert progress == {"id": job_id, "kind": "migrate", "state": "done", "total": 3, "done": 3, "percent": 100,
                        "outcomes": {"done": 2, "already": 0, "refused": 1, "failed": 0}, "finished": True,
                        "error": None, "state_label": "已完成", "summary": progress["summary"],
                        "page_url": f"/jobs/{job_id}", "download_url": None, "expires_at": None}
    assert versions_of(movable + [stuck]) == {**dict.fromkeys(movable, 2), stuck: 1}
    assert migrations() == 3                           # two by the job, one by hand: none twice
    done = owner.get(f"/jobs/{job_id}")
    outcomes = dict(re.findall(r'data-testid="job-item" data-complaint="([^"]+)" data-outcome="(\w+)"', done.text))
    assert outcomes == {movable[1]: "done", movable[2]: "done", stuck: "refused"}
    assert "已迁移到版本 2" in text(done) and "其当前步骤 重新评估 (re_evaluation) 已被删除" in text(done)
    assert f'data-job="{job_id}"' in owner.get(f"{PROCESS}/migrate").text        # the migration page lists it
    assert f'data-job="{job_id}"' in owner.get("/jobs").text


def desk_instance(number) -> int:
    return db.session.execute(select(ProcessInstance.id).where(ProcessInstance.business_key == number)).scalar_one()


def version(number) -> ProcessVersion:
    return db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == "complaint_handling",
                                                           ProcessVersion.version == number)).scalar_one()


def test_a_runner_that_dies_is_taken_over_and_no_complaint_moves_twice(jobs_app, desk, tmp_path, monkeypatch):
    monkeypatch.setitem(KINDS, migration.KIND, replace(KINDS[migration.KIND], batch=2))
    numbers = [desk.register() for _ in range(5)]
    deploy_changed(tmp_path, safe_change)
    target = version(2)
    cli = jobs_app.test_cli_runner()
    queued = cli.invoke(args=["processes", "migrate", "complaint_handling", "--job", "--by", "process_owner"]).output
    job_id = int(re.match(r"job (\d+): migration of 5 instance", queued).group(1))
    assert re.search(rf"^{job_id}\tmigrate\tqueued\t0/5\tprocess_owner", cli.invoke(args=["jobs", "list"]).output, re.M)
    rows = [(desk_instance(n), n, 1) for n in numbers]
    ctx = context(jobs_app)

    assert claim(db.session, "runner-a") == job_id
    assert run_batch(ctx, job_id, "runner-a") == "more"          # two moved and recorded
    # Runner A moves the third complaint and dies before recording it; the job stays held by its lease.
    jobs_app.extensions["runtime"].migrate(rows[2][0], target, "process_owner")
    assert claim(db.session, "runner-b") is None
    with time_machine.travel(utcnow() + timedelta(seconds=LEASE_SECONDS + 1)):
        assert claim(db.session, "runner-b") == job_id
        while run_batch(ctx, job_id, "runner-b") == "more":
            pass
        assert run_batch(ctx, job_id, "runner-a") == LOST        # back from the dead: it stops
    fresh()
    job = db.session.get(BackgroundJob, job_id)
    assert (job.state, job.done_count, job.takeovers, job.claimed_by) == ("done", 5, 1, None)
    assert store.outcome_counts(db.session, job_id) == {"done": 4, "already": 1, "refused": 0, "failed": 0}
    assert set(versions_of(numbers).values()) == {2} and migrations() == 5


def test_a_job_is_cancelled_by_its_starter_only(jobs_app, desk, people, tmp_path):
    numbers = [desk.register() for _ in range(3)]
    deploy_changed(tmp_path, safe_change)
    owner = Browser(jobs_app).login("process_owner")
    job_id = job_id_of(owner.post(f"{PROCESS}/migrate?to=2", {"instance": [str(desk_instance(n)) for n in numbers]},
                                  page=f"{PROCESS}/migrate"))
    other = Browser(jobs_app).login(make_owner("process_owner_2"))
    assert other.get(f"/jobs/{job_id}").status_code == 404                      # another's job is none of theirs
    assert other.post(f"/jobs/{job_id}/cancel", page="/jobs").status_code == 404
    assert Browser(jobs_app).login("compliance").get(f"/jobs/{job_id}").status_code == 404
    assert Browser(jobs_app).login("claims_specialist").get("/jobs").status_code == 403
    assert Browser(jobs_app).get(f"/jobs/{job_id}.json").status_code == 302     # to the login page

    r = owner.post(f"/jobs/{job_id}/cancel", page=f"/jobs/{job_id}", follow_redirects=True)
    assert "任务已取消" in text(r) and 'data-state-code="cancelled"' in r.text
    assert run_pass(jobs_app, 10)["jobs"] == 0
    assert set(versions_of(numbers).values()) == {1} and migrations() == 0
    assert 'data-outcome=""' in owner.get(f"/jobs/{job_id}").text and "未执行" in text(owner.get(f"/jobs/{job_id}"))


def make_owner(username):
    make_user(username, "process_owner")
    return username


def csv_rows(data: bytes) -> list:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_a_list_export_job_gives_the_direct_exports_rows_to_its_starter_only(jobs_app, desk, people):
    made = [desk.register(customer_name="=HYPERLINK(\"x\")"), desk.register(channel="website"), desk.register()]
    manager = Browser(jobs_app).login("management")
    direct = manager.get("/complaints/export.csv?status=open")
    assert direct.status_code == 200
    job_id = job_id_of(manager.get("/complaints/export.csv?status=open&background=1"))
    jobs_app.config["JOBS_EXPORT_INLINE_MAX"] = 2                                # more rows than that: a job
    xlsx_id = job_id_of(manager.post("/complaints/export.xlsx", {"q": made[0][:-1]}, page="/complaints"))
    assert 'data-testid="job-download"' not in manager.get(f"/jobs/{job_id}").text
    assert run_pass(jobs_app, 30)["jobs"] == 2

    r = manager.get(f"/jobs/{job_id}/download")
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("attachment; filename=complaints-")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8" and r.headers["Content-Length"] == str(len(r.data))
    # The file is in the database (any web worker on any host hands it out), and the slices are gone.
    fresh()
    kept = db.session.execute(select(BackgroundJobFile.job_id, BackgroundJobFile.name, BackgroundJobFile.content)
                              .order_by(BackgroundJobFile.job_id)).all()
    assert [(j, n) for j, n, _ in kept] == [(job_id, "result.csv"), (xlsx_id, "result.xlsx")] and kept[0][2] == r.data
    assert csv_rows(r.data) == csv_rows(direct.data) and len(csv_rows(r.data)) == 4   # masked, newest first
    sheet = load_workbook(io.BytesIO(manager.get(f"/jobs/{xlsx_id}/download").data)).active
    assert sorted(row[0] for row in sheet.iter_rows(min_row=2, values_only=True)) == sorted(made)
    assert "已写入 3 行" in text(manager.get(f"/jobs/{job_id}"))
    events = db.session.execute(select(AuditEvent.data).where(AuditEvent.action == "complaints_exported")
                                .order_by(AuditEvent.id)).scalars().all()
    assert [(e["format"], e["term"], e.get("job")) for e in events] == [("csv", False, None), ("csv", False, job_id),
                                                                      ("xlsx", True, xlsx_id)]
    fresh()
    params = str(db.session.get(BackgroundJob, xlsx_id).params) + str(db.session.execute(
        select(BackgroundJobItem.data).where(BackgroundJobItem.job_id == xlsx_id)).scalars().all())
    assert made[0][:-1] not in params and "=HYPERLINK" not in params            # no term, no name kept

    other = Browser(jobs_app).login("compliance")                                # may export, did not start it
    assert other.get(f"/jobs/{job_id}/download").status_code == 404
    assert Browser(jobs_app).login("claims_specialist").get(f"/jobs/{job_id}/download").status_code == 403
    with time_machine.travel(utcnow() + timedelta(hours=25)):
        assert run_pass(jobs_app, 10)["purged"] == 2
        manager = Browser(jobs_app).login("management")                        # a day later: logged in again
        assert manager.get(f"/jobs/{job_id}/download").status_code == 404
        assert "文件已在保存期满后删除" in text(manager.get(f"/jobs/{job_id}"))


def export_as_job(jobs_app, manager) -> int:
    """The open complaints' CSV export, made a job (more rows than JOBS_EXPORT_INLINE_MAX): its id."""
    jobs_app.config["JOBS_EXPORT_INLINE_MAX"] = 2
    return job_id_of(manager.get("/complaints/export.csv?status=open"))


class Stopped(BaseException):
    """The runner's process ends (not an error the runner handles)."""


def test_an_export_stopped_while_finishing_is_finished_by_the_next_pass(jobs_app, desk, monkeypatch):
    """The result file and the removal of the slices are written with the job's end, in one transaction: a runner
    that stops after writing the result but before recording the end leaves the slices for the next one."""
    made = [desk.register() for _ in range(3)]
    manager = Browser(jobs_app).login("management")
    job_id = export_as_job(jobs_app, manager)
    kind = KINDS[list_export.KIND]

    def finish_then_stop(ctx, job):
        kind.finish(ctx, job)
        raise Stopped

    with monkeypatch.context() as patched:
        patched.setitem(KINDS, list_export.KIND, replace(kind, finish=finish_then_stop))
        with pytest.raises(Stopped):
            run_pass(jobs_app, 30)
    db.session.rollback()                                                       # what the process had not committed
    fresh()
    names = db.session.execute(select(BackgroundJobFile.name).where(BackgroundJobFile.job_id == job_id)).scalars()
    assert list(names) == ["part-000000.jsonl"]                                  # the slice, not the result
    with time_machine.travel(utcnow() + timedelta(seconds=LEASE_SECONDS + 1)):
        assert run_pass(jobs_app, 30)["jobs"] == 1
        rows = csv_rows(Browser(jobs_app).login("management").get(f"/jobs/{job_id}/download").data)
    assert sorted(row[0] for row in rows[1:]) == sorted(made)


def test_an_export_of_several_slices_keeps_every_slice(jobs_app, desk, monkeypatch):
    """Each slice is committed as it is written: a later item of the same batch (which rolls back its own read)
    cannot take an earlier one with it. A name with a line separator (U+2028, which JSON leaves as it is) stays one
    row."""
    monkeypatch.setattr(list_export, "SLICE", 1)
    made = [desk.register(customer_name=f"\u2028王{n}") for n in range(5)]     # masked, the name keeps its first
    manager = Browser(jobs_app).login("management")
    direct = csv_rows(manager.get("/complaints/export.csv?status=open").data)
    job_id = export_as_job(jobs_app, manager)
    assert run_pass(jobs_app, 30)["jobs"] == 1
    fresh()
    assert db.session.get(BackgroundJob, job_id).state == "done" and db.session.get(BackgroundJob, job_id).total == 5
    rows = csv_rows(manager.get(f"/jobs/{job_id}/download").data)
    assert sorted(row[0] for row in rows[1:]) == sorted(made) and rows == direct


def test_an_export_taken_over_while_finishing_keeps_nothing_of_the_loser(jobs_app, desk, monkeypatch):
    """A runner that lost the job (taken over, cancelled) while it wrote the result commits nothing of it."""
    desk.register(), desk.register(), desk.register()
    manager = Browser(jobs_app).login("management")
    job_id = export_as_job(jobs_app, manager)
    kind = KINDS[list_export.KIND]

    def finish_then_lose(ctx, job):
        with db.engine.begin() as other:                 # another runner takes the job over meanwhile
            other.execute(sql("UPDATE background_job SET claimed_by = 'other:1' WHERE id = :id"), {"id": job_id})
        return kind.finish(ctx, job)

    monkeypatch.setitem(KINDS, list_export.KIND, replace(kind, finish=finish_then_lose))
    run_pass(jobs_app, 30)
    fresh()
    names = db.session.execute(select(BackgroundJobFile.name).where(BackgroundJobFile.job_id == job_id)).scalars()
    assert list(names) == ["part-000000.jsonl"] and db.session.get(BackgroundJob, job_id).state == "running"


def test_a_busy_database_lets_the_job_go_for_the_next_pass(jobs_app, desk, monkeypatch):
    """A database error in a batch (SQLite's write lock held past its timeout) is no failure of the item or the
    job: the pass ends, the job is let go, and the next pass finishes it."""
    made = [desk.register() for _ in range(3)]
    manager = Browser(jobs_app).login("management")
    job_id = export_as_job(jobs_app, manager)
    real = JobFiles.write_lines

    def busy(self, *args):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(JobFiles, "write_lines", busy)
    assert run_pass(jobs_app, 30)["jobs"] == 1
    fresh()
    job = db.session.get(BackgroundJob, job_id)
    assert (job.state, job.claimed_by, job.done_count, job.takeovers) == ("running", None, 0, 0)
    monkeypatch.setattr(JobFiles, "write_lines", real)
    assert run_pass(jobs_app, 30)["jobs"] == 1
    rows = csv_rows(manager.get(f"/jobs/{job_id}/download").data)
    assert sorted(row[0] for row in rows[1:]) == sorted(made)


def test_the_files_no_job_needs_are_purged(app):
    """Every file of a failed or cancelled job goes at once; a done job's leftovers too, its result when it expires;
    a queued or running job keeps its own. A file written again replaces the one of that name."""
    now = utcnow()
    states = {"running": None, "failed": None, "cancelled": None, "done": "result.csv", "expired": "result.csv"}
    ids = {}
    for name, result in states.items():
        job = BackgroundJob(kind="list_export", started_by="x", params={}, state="done" if name == "expired" else name,
                            result_file=result, expires_at=now + timedelta(hours=-1 if name == "expired" else 1))
        db.session.add(job)
        db.session.flush()
        ids[name] = job.id
    files = JobFiles(db.session)
    for job_id in ids.values():
        files.write_lines(job_id, "part-000000.jsonl", [["old"]])
        files.write_lines(job_id, "part-000000.jsonl", [["a", 1], ["b", None]])
        files.write(job_id, "result.csv", b"number\n")
    db.session.commit()
    assert list(files.read_lines(ids["running"], "part-000000.jsonl")) == [["a", 1], ["b", None]]
    assert files.purge(now) == 7
    left = db.session.execute(select(BackgroundJobFile.job_id, BackgroundJobFile.name)).all()
    assert sorted(left) == sorted([(ids["running"], "part-000000.jsonl"), (ids["running"], "result.csv"),
                                   (ids["done"], "result.csv")])
    assert db.session.get(BackgroundJob, ids["expired"]).result_file is None
    assert files.read(ids["done"], "result.csv") == b"number\n" and files.read(ids["failed"], "result.csv") is None
    with pytest.raises(ValueError):
        files.write(ids["running"], "../x", b"")
