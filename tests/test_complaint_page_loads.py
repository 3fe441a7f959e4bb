"""A read page loads no workflow (design: a request deserializes at most the one instance it changes; the
complaint page changes none): the complaint page of a complaint several dissatisfied rounds deep reads its
marks on the diagram from element_visit, human_task and deadline rows, for every kind of reader. Every
SpiffWorkflow deserialization goes through the serializer's from_dict (the engine's workflow.load and
deserialize_json alike), which the test counts while still calling it. SQLite only: what is counted does
not depend on the database."""
import json
import re

import pytest

from app.engine import workflow
from tests.flow import HAPPY_PATH, Desk
from tests.sql_capture import statements_of
from tests.test_web import as_, browser, text  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

ROUNDS = 2
ROUND = ["analyse_and_plan", "feedback_to_customer",
         ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "利息计算有误"}),
         ("re_evaluation", {"needs_investigation": False})]


@pytest.fixture
def loads(monkeypatch):
    """The deserializations since the fixture was set up (a list of 1 per call; the real one runs)."""
    seen = []
    real = workflow.serializer.from_dict

    def counted(*args, **kwargs):
        seen.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(workflow.serializer, "from_dict", counted)
    return seen


def diagram_data(response) -> dict:
    found = re.search(r'<script type="application/json" id="diagram-data">(.*?)</script>', response.text, re.S)
    return json.loads(found.group(1))


def test_the_complaint_page_of_a_many_round_complaint_loads_no_workflow(app, people, browser, loads, backend):
    desk = Desk(app.test_client(), people)
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate"])
    for _ in range(ROUNDS):
        desk.walk(number, ROUND)
    assert loads, "the walk itself loads the workflow: the counter must see it"
    readers = {who: as_(browser, who) for who in ("compliance", "management", "claims_specialist",
                                                 "customer_service")}
    del loads[:]
    for who, b in readers.items():
        r = b.get(f"/complaints/{number}")
        assert r.status_code == 200, who
        assert loads == [], (who, len(loads))
    marks = diagram_data(r)["marks"]
    assert marks["current"] == ["analyse_and_plan", "resolve"]
    assert marks["counts"]["re_evaluation"] == ROUNDS and marks["counts"]["start_round"] == ROUNDS + 1
    assert diagram_data(r)["focus"] == ["analyse_and_plan"]        # where the diagram opens
    # Its case file and a task page read no workflow either; the case file says in words what it shows.
    case_file = readers["compliance"].get(f"/complaints/{number}/case-file")
    assert case_file.status_code == 200
    assert "`" not in text(case_file) and "<code>flask audit verify --complaint " in case_file.text
    assert "<td>queued</td>" not in case_file.text and "complaint_handling · " not in text(case_file)
    task_id = desk.task_id(number, "analyse_and_plan")
    assert readers["claims_specialist"].get(f"/tasks/{task_id}").status_code == 200
    assert loads == []


def test_a_closed_complaint_opens_on_the_end_it_reached_and_loads_no_workflow(app, people, browser, loads, backend):
    desk = Desk(app.test_client(), people)
    number = desk.register()
    desk.walk(number, HAPPY_PATH)
    b = as_(browser, "compliance")
    del loads[:]
    r = b.get(f"/complaints/{number}")
    assert loads == []
    data = diagram_data(r)
    assert data["marks"]["current"] == [] and data["focus"] == ["complaint_finished"]
    assert data["labels"]["focus"] == "结束处" and data["labels"]["whole"] == "全图"


def test_the_complaint_page_reads_no_workflow_text_and_no_version_content_once_warm(app, people, browser, backend):
    """The page reads the complaint's rows, not the instance's workflow (some 20 KB) nor its version's BPMN, spec
    and forms (some 250 KB): those are parsed once per version and kept. The case file page likewise."""
    desk = Desk(app.test_client(), people)
    number = desk.register()
    desk.walk(number, ["initial_review"])
    b = as_(browser, "claims_specialist")
    paths = (f"/complaints/{number}", f"/complaints/{number}/case-file")
    for path in paths:
        assert b.get(path).status_code == 200                     # the first view fills the caches
    pages = {}
    sent = statements_of(lambda: pages.update((path, b.get(path)) for path in paths))
    for path, r in pages.items():
        assert r.status_code == 200, path
        assert "case-file" in path or 'data-testid="complaint-diagram"' in r.text
    read = " ".join(s for s in sent if s.lstrip().upper().startswith("SELECT"))
    assert sent and "FROM complaint" in read
    for column in ("workflow_json", "bpmn_files", "spec_json", "subprocess_specs_json", "process_version.forms"):
        assert column not in read, column
