"""Reads that stay fast at 100,000 complaints (issue 10, target 5) and still say the same: the per-element
statistics from daily summaries (exact counts, a median within 1%, marked approximate), the review
filter of the queues driven by the running reviews, the complaint page in a bounded number of queries,
the personal search by index. benchmarks/reads.py measures them; these tests hold their meaning."""
import dataclasses
import math
import random
import re
import statistics
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import func, select, text

from app import complaint_list, queues, stats, vocab_store
from app.extensions import db
from app.models import ElementDayStat, HumanTask, ProcessInstance, ProcessVersion
from tests.flow import HAPPY_PATH, Desk
from tests.sql_capture import plans, sent_by
from tests.test_migration import deploy_changed, safe_change
from tests.test_web import as_, browser  # noqa: F401  (browser is a fixture)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
FIRST_DAY = datetime(2026, 11, 10, tzinfo=timezone.utc)
PROCESS = "complaint_handling"


# ---- the histogram --------------------------------------------------------------------------------
def test_a_histogram_median_is_within_one_percent_of_the_exact_one():
    rng = random.Random(3)
    for scale in (0.2, 6, 40, 300):
        hours = [rng.lognormvariate(0, 0.8) * scale for _ in range(5000)]
        counts = {}
        for h in hours:
            counts[stats.bucket_of(h)] = counts.get(stats.bucket_of(h), 0) + 1
        assert math.isclose(stats.histogram_median(counts), statistics.median(hours), rel_tol=0.01), scale


def test_each_hour_falls_in_its_bucket():
    for hours in (0, 0.001, 1 / 60, 0.5, 1, 29.6, 24 * 365):
        low, high = stats.bucket_bounds(stats.bucket_of(hours))
        assert low <= hours < high or math.isclose(hours, low)


# ---- the statistics ---------------------------------------------------------------------------------
def _version(number=1, process_id=PROCESS) -> ProcessVersion:
    return db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                           ProcessVersion.version == number)).scalar_one()


def _copy_of_version_1(**changes) -> ProcessVersion:
    """Version 1 deployed again with `changes` (e.g. as version 2, or as another process)."""
    v1 = _version()
    copy = ProcessVersion(**{c.key: getattr(v1, c.key) for c in ProcessVersion.__table__.columns if c.key != "id"})
    for name, value in {"content_hash": "copy", **changes}.items():
        setattr(copy, name, value)
    db.session.add(copy)
    db.session.commit()
    return copy


def _instance(version, status="running", process_id=PROCESS) -> ProcessInstance:
    inst = ProcessInstance(version_id=version.id, process_id=process_id, status=status, workflow_json="{}",
                           created_at=FIRST_DAY, updated_at=FIRST_DAY)
    db.session.add(inst)
    db.session.flush()
    return inst


def _task(inst, element_id, created, completed=None, due=None) -> HumanTask:
    task = HumanTask(id=str(uuid.uuid4()), instance_id=inst.id, element_id=element_id, name=element_id,
                     role="claims_specialist", state="completed" if completed else "open",
                     created_at=created, completed_at=completed, due_at=due)
    db.session.add(task)
    return task


def finished_over_ten_days(version) -> list[tuple[datetime, float]]:
    """30 investigations finished on each day from 10 to 19 November (a spread of durations), and 3
    this morning: (finished at, hours) of each."""
    rng = random.Random(7)
    done = []
    inst = _instance(version, status="completed")
    days = [FIRST_DAY + timedelta(days=d) for d in range(10)]
    for day in days:
        for i in range(30):
            finished = day + timedelta(hours=8, minutes=i * 17)
            hours = round(rng.lognormvariate(0, 0.8) * 40, 3)
            _task(inst, "investigate", finished - timedelta(hours=hours), finished)
            done.append((finished, hours))
    for i in range(3):
        finished = NOW - timedelta(hours=5, minutes=i)
        _task(inst, "investigate", finished - timedelta(hours=2 + i), finished)
        done.append((finished, 2 + i))
    db.session.commit()
    return done


def test_a_period_of_summarized_days_counts_exactly_and_marks_its_median_approximate(app, monkeypatch):
    monkeypatch.setattr(stats, "EXACT_ROWS", 0)          # whatever its size, the period uses the summaries
    done = finished_over_ten_days(_version())
    figures = stats.element_stats(db.session, PROCESS, NOW, FIRST_DAY, NOW)["investigate"]
    exact = statistics.median(hours for _, hours in done)
    assert figures["completed"] == 303 and figures["median_exact"] is False
    assert math.isclose(figures["median_hours"], exact, rel_tol=0.1)          # its bucket's width
    # Ten days summarized, each with its marker; the hours of today are read from the tasks.
    rows = db.session.execute(select(ElementDayStat.element_id, func.count()).group_by(ElementDayStat.element_id)).all()
    assert sorted(rows) == [(stats.DAY_DONE, 10), ("investigate", 10)]
    # The next read writes nothing and says the same.
    again = []
    seen = sent_by(lambda: again.append(stats.element_stats(db.session, PROCESS, NOW, FIRST_DAY, NOW)))
    assert not [s for s in seen if s.line.upper().startswith("INSERT")]
    assert again[0]["investigate"] == figures


def test_the_next_day_counts_the_day_that_ended(app, monkeypatch):
    """Merged summaries are kept for the next reads of the same days; a day more is a period of its own."""
    monkeypatch.setattr(stats, "EXACT_ROWS", 0)
    finished_over_ten_days(_version())
    first = stats.element_stats(db.session, PROCESS, NOW, FIRST_DAY, NOW)["investigate"]
    inst = _instance(_version(), status="completed")
    tomorrow = NOW + timedelta(days=1)
    _task(inst, "investigate", tomorrow - timedelta(hours=30), tomorrow - timedelta(hours=2))
    db.session.commit()
    assert stats.element_stats(db.session, PROCESS, NOW, FIRST_DAY, NOW)["investigate"] == first
    later = stats.element_stats(db.session, PROCESS, tomorrow + timedelta(days=1), FIRST_DAY,
                                tomorrow + timedelta(days=1))["investigate"]
    assert later["completed"] == first["completed"] + 1


def test_a_small_period_is_read_exactly(app):
    done = finished_over_ten_days(_version())
    figures = stats.element_stats(db.session, PROCESS, NOW, FIRST_DAY, NOW)["investigate"]
    assert figures == {"waiting": 0, "overdue": 0, "completed": 303, "median_exact": True,
                       "median_hours": round(statistics.median(hours for _, hours in done), 2)}


def test_a_period_inside_days_counts_only_its_own_hours(app, monkeypatch):
    monkeypatch.setattr(stats, "EXACT_ROWS", 0)
    done = finished_over_ten_days(_version())
    since, until = FIRST_DAY + timedelta(days=2, hours=12), FIRST_DAY + timedelta(days=6, hours=12)
    got = []
    seen = sent_by(lambda: got.append(stats.element_stats(db.session, PROCESS, NOW, since, until)))
    figures = got[0]["investigate"]
    exact = [s.line for s in seen if s.line.startswith("SELECT human_task.element_id") and "completed_at >=" in s.line]
    assert len(exact) == 1 and "UNION ALL" in exact[0], exact     # both ends of the period in one read
    inside = [hours for finished, hours in done if since <= finished < until]
    assert figures["completed"] == len(inside) and figures["median_exact"] is False
    assert math.isclose(figures["median_hours"], statistics.median(inside), rel_tol=0.1)
    # A period reaching back years summarizes only the days since the first task finished.
    stats.element_stats(db.session, PROCESS, NOW, datetime(2000, 1, 1, tzinfo=timezone.utc), NOW)
    marked = db.session.execute(select(func.min(ElementDayStat.day), func.count()).where(
        ElementDayStat.element_id == stats.DAY_DONE)).one()
    assert marked == (FIRST_DAY.date(), 10)


def test_a_day_is_summarized_only_once_it_has_been_over_for_an_hour(app, monkeypatch):
    monkeypatch.setattr(stats, "EXACT_ROWS", 0)
    finished_over_ten_days(_version())
    just_after_midnight = FIRST_DAY + timedelta(days=10, minutes=30)      # 20 November, 00:30
    stats.element_stats(db.session, PROCESS, just_after_midnight, FIRST_DAY, just_after_midnight)
    last = db.session.execute(select(func.max(ElementDayStat.day))).scalar_one()
    assert last == (FIRST_DAY + timedelta(days=8)).date()                 # 19 November is still read exactly


def test_waiting_and_overdue_count_the_open_tasks_of_the_process_and_version(app):
    v1, v2 = _version(), _copy_of_version_1(version=2)
    one, two = _instance(v1), _instance(v2)
    review = _instance(_version(process_id="complaint_review"), process_id="complaint_review")
    for inst, due in ((one, NOW - timedelta(hours=1)), (one, NOW + timedelta(days=1)), (two, None)):
        _task(inst, "investigate", NOW - timedelta(days=2), due=due)
    _task(review, "review_decision", NOW - timedelta(days=2), due=NOW - timedelta(days=1))
    _task(one, "analyse_and_plan", NOW - timedelta(days=3), NOW - timedelta(days=1))
    _task(two, "analyse_and_plan", NOW - timedelta(days=3), NOW - timedelta(hours=40))
    db.session.commit()
    every = stats.element_stats(db.session, PROCESS, NOW, NOW - timedelta(days=7), NOW)
    assert every["investigate"] == {"waiting": 3, "overdue": 1, "completed": 0, "median_hours": None,
                                    "median_exact": True}
    assert every["analyse_and_plan"]["completed"] == 2 and every["analyse_and_plan"]["median_hours"] == 40.0
    assert "review_decision" not in every
    first = stats.element_stats(db.session, PROCESS, NOW, NOW - timedelta(days=7), NOW, version_id=v1.id)
    assert first["investigate"]["waiting"] == 2 and first["analyse_and_plan"]["completed"] == 1


def test_an_element_another_process_has_too_is_told_apart_by_instance(app, monkeypatch):
    """A task's element id tells its process, unless another process has an element of that id too."""
    other = _copy_of_version_1(process_id="other_process")          # the same element ids, another process
    mine, theirs = _instance(_version()), _instance(other, process_id="other_process")
    for inst in (mine, theirs):
        _task(inst, "investigate", NOW - timedelta(days=2), due=NOW - timedelta(hours=1))
        _task(inst, "analyse_and_plan", NOW - timedelta(days=3), NOW - timedelta(days=1))
    db.session.commit()
    assert "investigate" in stats.scope_of(db.session, PROCESS).by_instance
    for exact_rows in (0, stats.EXACT_ROWS):                         # from the summaries, and exactly
        monkeypatch.setattr(stats, "EXACT_ROWS", exact_rows)
        figures = stats.element_stats(db.session, PROCESS, NOW, NOW - timedelta(days=7), NOW)
        assert figures["investigate"]["waiting"] == 1 and figures["investigate"]["overdue"] == 1
        assert figures["analyse_and_plan"]["completed"] == 1


def test_the_statistics_of_an_unknown_process_are_not_found(app, client, people):
    r = client.get("/api/v1/processes/nope/stats", headers=people["management"].headers)
    assert r.status_code == 404


def test_the_statistics_read_the_versions_once_and_ask_when_the_first_task_finished_once(app, client, people):
    """The API's statistics learn whether the process exists from the versions they read anyway, and ask when
    the database's first task finished only once (it does not change)."""
    finished_over_ten_days(_version())
    period = {"since": FIRST_DAY.isoformat(), "until": NOW.isoformat()}

    def read():
        got.append(client.get(f"/api/v1/processes/{PROCESS}/stats", query_string=period,
                              headers=people["management"].headers))
    got = []
    with time_machine.travel(NOW, tick=False):
        seen = sent_by(read)
        versions = [s.line for s in seen if "FROM process_version" in s.line]
        assert len(versions) == 1 and "WHERE" not in versions[0], versions
        assert len([s for s in seen if "min(human_task.completed_at)" in s.line]) == 1
        seen = sent_by(read)
        assert not [s for s in seen if "min(human_task.completed_at)" in s.line]
    assert [r.json["elements"]["investigate"]["completed"] for r in got] == [303, 303]


def test_the_statistics_read_their_indexes(app, monkeypatch):
    monkeypatch.setattr(stats, "EXACT_ROWS", 0)
    finished_over_ten_days(_version())
    stats.element_stats(db.session, PROCESS, NOW, FIRST_DAY, NOW)       # the days are summarized
    seen = sent_by(lambda: stats.element_stats(db.session, PROCESS, NOW, FIRST_DAY, NOW))
    for plan in plans([s for s in seen if s.line.upper().startswith("SELECT")]):
        assert "SCAN human_task" not in plan and "Seq Scan on human_task" not in plan, plan
        assert "SCAN process_instance" not in plan and "Seq Scan on process_instance" not in plan, plan
        if db.engine.dialect.name == "sqlite" and "human_task" in plan:
            assert "COVERING INDEX ix_human_task_" in plan, plan                   # no table row read


def test_the_procedure_page_marks_an_approximate_median(app, browser, people, monkeypatch):  # noqa: F811 (fixture)
    monkeypatch.setattr(stats, "EXACT_ROWS", 0)
    finished_over_ten_days(_version())
    with time_machine.travel(NOW, tick=False):
        b = as_(browser, "management")
        row = {e["id"]: e for e in b.get("/procedure/complaint_handling/v1/stats.json?days=30").json["elements"]}
        page = b.get("/procedure/complaint_handling?days=30").get_data(as_text=True)
    assert row["investigate"]["median_exact"] is False and row["investigate"]["median"].startswith("≈ ")
    assert "标有 ≈ 的中位数取自每日汇总" in page and ">≈ " in page


# ---- the queues' review filter ----------------------------------------------------------------------
def test_the_review_filter_starts_from_the_running_reviews(app, people):
    """The queue's 回避 filter for reviews must not read the user's completed tasks (a year of them at
    100,000 complaints): it looks at each running review's complaint instead."""
    user = people["management"].user
    found = queues.queue_query(user, "available", independent=app.config["INDEPENDENT_PROCESSES"])
    [plan] = plans(sent_by(lambda: queues.count(db.session, found)))
    assert "Seq Scan on human_task" not in plan and "SCAN human_task" not in plan, plan
    if db.engine.dialect.name == "sqlite":
        assert "ix_human_task_instance (instance_id=? AND state=? AND completed_by_id=?)" in plan, plan
        assert "ix_audit_event_business_key_action (business_key=? AND action=?)" in plan, plan
        assert "ix_human_task_completed" not in plan, plan


def test_the_role_queue_reads_the_unclaimed_tasks_in_its_order(app, client, people):
    """The role queue's statement can read the partial index of unclaimed open tasks, whose order within a role
    is the page's (PostgreSQL sorted every unclaimed task of the role for each page with the general index:
    `assignee_id IS NULL` is no equality to it): 'open' is written into the statement, so that a prepared
    statement's generic plan may take the partial index too."""
    desk = Desk(client, people)
    for _ in range(3):
        desk.complete(desk.register(), "initial_review")
    headers = people["claims_specialist"].headers
    [sent] = [s for s in sent_by(lambda: client.get("/api/v1/tasks?queue=available", headers=headers))
              if "FROM human_task" in s.statement]
    page, parameters = sent.statement, sent.parameters
    assert "human_task.state = 'open'" in page and "open" not in str(parameters), page
    # So are the review filter's constants: planned for any status and process, PostgreSQL's generic plan read every
    # instance (a sequential scan and a JIT compilation: 1.6 s at 100,000 complaints).
    for constant in ("'running'", "'completed'", "'case_event_sent'", "'complaint_review'"):
        assert constant in page and constant.strip("'") not in str(parameters), (constant, page)
    # Which index a planner takes for a handful of rows is a toss-up (PostgreSQL took either partial index or the
    # general one in CI runs); at 100,000 complaints benchmarks/reads.py --explain shows the unclaimed one.
    [plan] = plans([sent])
    assert "SCAN human_task" not in plan and "Seq Scan on human_task" not in plan, plan


def test_a_queue_statement_is_built_once_and_bound_for_each_user(app, client, people):
    """The queues' statements are built once per shape and kept; each request binds its own user's values (id,
    name, roles, filters, window). Users taking turns on the kept statements each see their own queue: the claims
    specialist the complaint's task, the colleague who handled the original claim not (回避), management none."""
    desk = Desk(client, people)
    avoided = desk.register(claim_handler="claims_specialist_2")
    other = desk.register(channel="website")
    for number in (avoided, other):
        desk.complete(number, "initial_review")

    def available(who, **filters):
        found = queues.queue_query(people[who].user, "available", independent=app.config["INDEPENDENT_PROCESSES"],
                                   **filters)
        rows, total = queues.page(db.session, found, 1, 10)
        assert total == len(rows)
        return sorted(task.business_key for task, _complaint in rows)

    available("claims_specialist")                 # the first call of this shape may build it
    before = queues._kept_page_query.cache_info()
    for _ in range(2):
        assert available("claims_specialist") == sorted([avoided, other])
        assert available("claims_specialist_2") == [other]
        assert available("management") == []
    after = queues._kept_page_query.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 6
    assert available("claims_specialist", channel="website") == [other]
    assert available("claims_specialist", channel="hotline") == [avoided]
    assert available("claims_specialist_2", channel="hotline") == []
    found = queues.queue_query(people["claims_specialist"].user, "available")
    assert [len(queues.page(db.session, found, n, 1)[0]) for n in (1, 2, 3)] == [1, 1, 0]   # the window is bound too
    assert queues.count(db.session, found) == 2
    assert queues.count(db.session, queues.queue_query(people["claims_specialist_2"].user, "available")) == 1
    # A queue whose conditions were changed after queue_query is not read with the statements kept for its shape.
    narrowed = dataclasses.replace(found, task_conditions=found.task_conditions + (HumanTask.business_key == other,))
    assert queues.count(db.session, narrowed) == 1
    assert [task.business_key for task, _ in queues.page(db.session, narrowed, 1, 10)[0]] == [other]
    # Queues combined in one statement must bind the same values.
    mine, theirs = (queues.queue_query(people[who].user, "mine") for who in ("claims_specialist", "management"))
    assert queues.joint_params(mine, found) == {**mine.params, **found.params}
    with pytest.raises(ValueError, match="queue_user_id"):
        queues.joint_params(mine, theirs)


def test_the_step_filter_offers_the_steps_of_the_users_own_queues(app, client, people):
    """The queue page's step choices: where the user's tasks (held) and their roles' unclaimed ones wait, not a
    step whose tasks all sit in someone else's hands."""
    desk = Desk(client, people)
    numbers = [desk.register() for _ in range(2)]
    for number in numbers:
        desk.complete(number, "initial_review")
    first, second = people["claims_specialist"], people["claims_specialist_2"]
    name = desk.open_tasks(numbers[0])["investigate"]["name"]
    steps = lambda who: queues.open_steps(db.session, who.user)        # noqa: E731
    assert steps(first) == steps(second) == [("investigate", name)]
    assert [e for e, _ in steps(people["customer_service"])] == []
    for number in numbers:
        task = desk.task_id(number, "investigate")
        assert client.post(f"/api/v1/tasks/{task}/claim", headers=second.headers).status_code == 200
    assert steps(first) == [] and steps(second) == [("investigate", name)]


def test_the_team_page_offers_the_steps_open_tasks_wait_at_read_by_index(app, client, people):
    """Every step an open task waits at, whoever holds it, once each and in order; not a step whose tasks are done.
    Read by one index probe per step (a GROUP BY had read every open task)."""
    desk = Desk(client, people)
    numbers = [desk.register() for _ in range(3)]
    desk.complete(numbers[0], "initial_review")
    expected = sorted({(t["element_id"], t["name"]) for n in numbers for t in desk.open_tasks(n).values()})
    assert queues.waiting_steps(db.session) == expected and len(expected) >= 2
    [plan] = plans(sent_by(lambda: queues.waiting_steps(db.session)))
    assert "SCAN human_task" not in plan and "Seq Scan on human_task" not in plan, plan


def test_a_queue_page_brings_its_total_on_every_path(app, client, people):
    """The total comes with the page's rows (one statement), and by itself for a page past the end; an empty
    first page is an empty queue."""
    desk = Desk(client, people)
    numbers = [desk.register(channel=channel) for channel in ("hotline", "hotline", "website")]
    for number in numbers:
        desk.complete(number, "initial_review")
    user = people["claims_specialist"].user
    for filters, order, total in (({}, "due", 3), ({"channel": "hotline"}, "due", 2), ({}, "received", 3),
                                  ({}, "created", 3)):
        found = queues.queue_query(user, "available", **filters)
        pages = [queues.page(db.session, found, n, 2, order=order) for n in (1, 2, 3)]
        assert [len(rows) for rows, _ in pages] == [2, total - 2, 0] and {t for _, t in pages} == {total}
        assert all(complaint.number in numbers for rows, _ in pages for _task, complaint in rows)
    empty, got = queues.queue_query(user, "mine"), []
    seen = sent_by(lambda: got.append(queues.page(db.session, empty, 1, 2)))
    assert got[-1] == ([], 0) and len(seen) == 1                       # an empty first page: an empty queue
    seen = sent_by(lambda: got.append(queues.page(db.session, empty, 2, 2)))
    assert got[-1] == ([], 0) and len(seen) == 2                       # past the end: counted
    listed = client.get("/api/v1/tasks?queue=available&per_page=2", headers=people["claims_specialist"].headers).json
    assert listed["total"] == 3 and {item["complaint"]["number"] for item in listed["items"]} <= set(numbers)
    assert listed["items"][0]["complaint"]["customer_name"] == "张*"                  # masked as before


def test_the_queue_page_reads_the_newest_version_once_and_a_deployment_is_seen_at_once(app, people, browser, tmp_path):
    """The page's vocabularies (the filters) and its forms' labels both start from the newest versions of the
    processes: one lookup per request for all of them (vocab_store.newest_versions), a new deployment seen at once."""
    desk = Desk(app.test_client(), people)
    desk.complete(desk.register(), "initial_review")
    b = as_(browser, "claims_specialist")
    assert b.get("/").status_code == 200
    versions = [s.line for s in sent_by(lambda: b.get("/")) if "FROM process_version" in s.line]
    assert len(versions) == 1 and "max(process_version.version)" in versions[0], versions
    first = vocab_store.newest_version(db.session, PROCESS)
    assert sent_by(lambda: vocab_store.newest_version(db.session, PROCESS)) == []     # kept for the transaction
    added = ProcessVersion(process_id=PROCESS, version=999, content_hash="0" * 64, bpmn_files={}, spec_json="",
                           subprocess_specs_json="", forms={}, lanes={})
    db.session.add(added)
    db.session.flush()                                   # flushed in this transaction: seen at once
    assert vocab_store.newest_version(db.session, PROCESS).id == added.id
    db.session.rollback()
    assert vocab_store.newest_version(db.session, PROCESS).id == first.id
    deploy_changed(tmp_path, safe_change)
    assert vocab_store.newest_version(db.session, PROCESS).id != first.id


# ---- the complaint page and the search ----------------------------------------------------------------
def test_the_complaint_page_reads_a_bounded_number_of_queries(app, client, people):
    desk = Desk(client, people)
    number = desk.register()
    desk.walk(number, HAPPY_PATH)
    for who, most in (("compliance", 8), ("customer_service", 12)):      # the full view writes its audit row
        seen = sent_by(lambda: client.get(f"/api/v1/complaints/{number}", headers=people[who].headers))
        assert len(seen) <= most, (who, len(seen), [s.line[:60] for s in seen])
    page = client.get(f"/api/v1/complaints/{number}", headers=people["customer_service"].headers).json
    assert [t["element_id"] for t in page["tasks"]] == HAPPY_PATH
    assert {t["completed_by"] for t in page["tasks"]} == {"customer_service", "claims_specialist"}
    assert page["complaint"]["personal_data"] == "full" and page["history"][-1]["action"] == "personal_data_viewed"


def test_the_search_by_a_personal_identifier_reads_indexes(app, client, people):
    desk = Desk(client, people)
    number = desk.register(id_number="110101199001049999")
    headers = people["customer_service"].headers
    # One a page: the page is full, so its count is sent (and planned) too.
    seen = sent_by(lambda: client.post("/api/v1/complaints/search?per_page=1", json={"q": "110101199001049999"},
                                       headers=headers))
    found = client.post("/api/v1/complaints/search", json={"q": "110101199001049999"}, headers=headers).json
    assert [c["number"] for c in found["items"]] == [number]
    assert any(s.line.upper().startswith("SELECT COUNT(") for s in seen)
    for plan in plans([s for s in seen if "FROM complaint" in s.statement]):
        assert "SCAN complaint" not in plan and "Seq Scan on complaint" not in plan, plan


def test_a_search_is_one_statement_whether_it_finds_exactly_or_in_part(app, client, people):
    """Whether a term has exact matches (which then hide the partial ones) is asked inside the list's own
    statement, not in one of its own: a search that finds less than a page reads complaint once."""
    desk = Desk(client, people)
    first, second = desk.register(policy_number="PA-7788-0001"), desk.register(policy_number="PA-7788-00011")
    for term, found in (("PA-7788-0001", [first]), ("PA-7788-000", [second, first]), (first, [first]),
                        ("PB-0000", [])):
        got = []
        seen = sent_by(lambda: got.append(client.get(f"/api/v1/complaints?q={term}",
                                                     headers=people["compliance"].headers)))
        assert [c["number"] for c in got[0].json["items"]] == found, term
        assert len([s for s in seen if "FROM complaint" in s.line]) == 1, (term, [s.line[:80] for s in seen])


def test_a_whole_number_skips_the_trigram_read(app, client, people, monkeypatch, caplog):
    """With an exact match the partial matches' read is skipped (a whole number's trigrams occur in every number):
    on PostgreSQL by a one-time filter (EXPLAIN ANALYZE: never executed); on SQLite, which tests a subquery in WHERE
    on every row it reads, by their LIMIT, computed once (shown with a search phrase FTS5 refuses when it reads)."""
    desk = Desk(client, people)
    made = [desk.register(policy_number=f"PA-2026-{n:05d}") for n in range(3)]

    def found(term):
        r = client.get(f"/api/v1/complaints?q={term}", headers=people["compliance"].headers)
        return [c["number"] for c in r.json["items"]] if r.status_code == 200 else r.status_code
    if db.engine.dialect.name == "postgresql":
        for term, read in (("PA-2026-00001", False), ("A-2026-00001", True)):
            [page] = [s for s in sent_by(lambda: found(term)) if "partial_match" in s.statement]
            plan = "\n".join(row[0] for row in db.session.connection().exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF) " + page.statement, page.parameters))
            db.session.rollback()
            partial = next(line for line in plan.splitlines() if "partial_match" in line and " on " in line)
            assert ("never executed" not in partial) == read, plan
    else:
        searched = complaint_list._sqlite_search
        monkeypatch.setattr(complaint_list, "_sqlite_search",
                            lambda term, columns: searched(term, columns).where(text("complaint_search MATCH 'AND'")))
        assert found("PA-2026-00001") == [made[1]] and "fts5" not in caplog.text
        assert found("A-2026-00001") == 500 and "fts5: syntax error" in caplog.text    # no exact match: it reads
        monkeypatch.undo()
    assert found("PA-2026-00001") == [made[1]] and found("A-2026-0000") == made[::-1]


def test_a_search_in_part_reads_a_trigram_index(app, client, people):
    """Part of a number or of a name is found through a trigram index on both databases (a scan took up to
    570 ms on SQLite at 100,000 complaints): SQLite's FTS5 table complaint_search (pg_trgm's GIN indexes serve
    PostgreSQL: its planner takes them at scale, benchmarks/reads.py, not on a handful of rows)."""
    desk = Desk(client, people)
    number = desk.register(customer_name="欧阳娜娜", policy_number="PA-7788-0001")
    for who, term in (("compliance", "7788-0"), ("customer_service", "阳娜娜")):
        seen = sent_by(lambda: client.post("/api/v1/complaints/search", json={"q": term},
                                           headers=people[who].headers))
        found = client.post("/api/v1/complaints/search", json={"q": term}, headers=people[who].headers).json
        assert [c["number"] for c in found["items"]] == [number]
        [plan] = plans([s for s in seen if "FROM complaint" in s.statement and "LIMIT" in s.statement
                        and "ORDER BY" in s.statement])
        assert not re.search(r"SCAN complaint(?!_search)", plan) and "Seq Scan on complaint" not in plan, plan
        if db.engine.dialect.name == "sqlite":     # (PostgreSQL takes its pg_trgm indexes at scale, not here)
            assert "SCAN complaint_search VIRTUAL TABLE INDEX" in plan, plan


def test_the_overdue_filter_reads_the_open_tasks_by_due_time(app, client, people):
    """The complaint list's "overdue" filter takes the overdue open tasks from their partial index, a range by due
    time, with their complaint numbers (SQLite with statistics had turned to a skip-scan over every open task:
    160 ms at 100,000 complaints; PostgreSQL read every process instance: 40 ms)."""
    desk = Desk(client, people)
    number = desk.register(received_at=(datetime.now(timezone.utc) - timedelta(days=3)).isoformat())
    seen = sent_by(lambda: client.get("/api/v1/complaints?status=open&overdue=1",
                                      headers=people["compliance"].headers))
    listed = client.get("/api/v1/complaints?status=open&overdue=1", headers=people["compliance"].headers).json
    assert [c["number"] for c in listed["items"]] == [number]
    [page] = [s for s in seen if "LIMIT" in s.statement and "FROM complaint" in s.statement
              and "count" not in s.statement]
    statement = page.statement
    # The condition the partial index names, written out, and the complaint number from the task itself. Which
    # index a planner takes for a handful of rows is a toss-up; at 100,000 complaints benchmarks/reads.py shows it.
    assert "human_task.state = 'open' AND human_task.due_at <" in statement, statement
    assert "SELECT human_task.business_key" in statement and "process_instance" not in statement, statement
    [plan] = plans([page])
    assert "ANY(" not in plan and "SCAN human_task" not in plan, plan     # SQLite: no skip-scan, no full scan
