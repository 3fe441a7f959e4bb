"""The complaint page links a task (current or finished) only where its reader may open the task's page:
its own role's tasks, every task for compliance and management, none that 回避 closes to them (e.g. the
review of a complaint they handled). Any other task is shown by its name, without a link that would
answer 403 (此任务属于其他角色)."""
import html
import re

import pytest

from tests.flow import Desk
from tests.test_web import as_, browser  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PAST_INVESTIGATION = ["initial_review", "investigate", "analyse_and_plan"]
TO_RESULT = ["initial_review", "investigate", ("analyse_and_plan", {"compensation_amount": 80000}),
             "management_decision", "feedback_to_customer"]
READERS = ("customer_service", "claims_specialist", "management", "head_office", "training", "compliance")
# The step names the page shows, by element id: each must be on it, as a link or as plain text.
STEPS = {"investigate": "调查取证", "analyse_and_plan": "分析原因并制定方案"}


def task_links(page) -> list[str]:
    return re.findall(r'href="/tasks/([^"/?#]+)"', page)


def finished_item(page, task_id) -> str:
    found = re.search(rf'<li data-testid="finished-task" data-task-id="{task_id}">(.*?)</li>', page, re.S)
    assert found, f"finished task {task_id} is not listed"
    return found.group(1)


def current_row(page, task_id) -> str:
    found = re.search(rf'<tr data-testid="current-task" data-task-id="{task_id}".*?</tr>', page, re.S)
    assert found, f"current task {task_id} is not listed"
    return found.group(0)


def assert_every_link_opens(b, number, who) -> str:
    page = b.get(f"/complaints/{number}")
    assert page.status_code == 200, who
    text = page.get_data(as_text=True)
    for task_id in task_links(text):
        r = b.get(f"/tasks/{task_id}")
        assert r.status_code == 200, (who, task_id, r.status_code)
    return text


def task_ids_by_step(number):
    from sqlalchemy import select
    from app.complaints import instances_of
    from app.extensions import db
    from app.models import Complaint, HumanTask
    found = db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()
    rows = db.session.execute(select(HumanTask).where(HumanTask.instance_id.in_(instances_of(found)))).scalars()
    return {t.element_id: (t.id, t.role, t.state) for t in rows}


def test_the_complaint_page_links_only_the_tasks_its_reader_may_open(app, people, browser, backend):
    desk = Desk(app.test_client(), people)
    number = desk.register()
    desk.walk(number, PAST_INVESTIGATION)
    tasks = task_ids_by_step(number)
    opened = {}
    for who in READERS:
        b = as_(browser, who)
        page = assert_every_link_opens(b, number, who)
        opened[who] = set(task_links(page))
        for element_id, (task_id, role, state) in tasks.items():
            may_open = role == who or who in ("management", "compliance")
            assert (task_id in opened[who]) == may_open, (who, element_id)
            shown = finished_item(page, task_id) if state != "open" else current_row(page, task_id)
            if element_id in STEPS:
                assert STEPS[element_id] in html.unescape(shown), (who, element_id)
    # The claims specialist's finished steps are named for customer service, not linked.
    page = as_(browser, "customer_service").get(f"/complaints/{number}").get_data(as_text=True)
    for element_id in STEPS:
        item = finished_item(page, tasks[element_id][0])
        assert "<a " not in item and STEPS[element_id] in item
    assert opened["customer_service"] and opened["claims_specialist"]
    assert not opened["training"] and not opened["head_office"]


def test_a_review_closed_to_its_reader_by_avoidance_is_not_linked(app, client, people, browser, backend):
    desk = Desk(client, people)
    number = desk.register()
    desk.walk(number, TO_RESULT)                                # "management" decided the complaint
    review = desk.request_review(number)
    for who, may_open in (("management", False), ("management_2", True), ("compliance", True)):
        b = as_(browser, who)
        page = assert_every_link_opens(b, number, who)
        assert (review["id"] in task_links(page)) == may_open, who
        assert 'data-testid="task-name"' in current_row(page, review["id"]) or may_open


def test_deciding_the_links_reads_the_instances_once(app, client, people, browser, backend):
    """What 回避 needs to decide the links comes from the complaint and the instance rows the page reads for its
    forms: the page reads process_instance once, however many tasks and instances it shows (the review rule's
    own lookup of who took part aside, which only a reader who may otherwise open the review's task needs)."""
    from tests.sql_capture import statements_of
    desk = Desk(client, people)
    number = desk.register()
    desk.walk(number, TO_RESULT)
    desk.request_review(number)
    for who in ("customer_service", "claims_specialist", "management_2", "compliance"):
        b = as_(browser, who)
        assert b.get(f"/complaints/{number}").status_code == 200            # warm: forms and diagrams cached
        sent = statements_of(lambda: b.get(f"/complaints/{number}"))
        instances = [s for s in sent if s.startswith("SELECT process_instance.")     # the complaint's instances
                     and ("WHERE process_instance.business_key = " in s or "WHERE process_instance.id IN" in s)]
        assert len(instances) == 1, (who, "\n".join(instances))
