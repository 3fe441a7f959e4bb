"""Reads never deserialize a workflow; a change loads exactly the one instance it changes."""
import pytest

from app.engine import workflow
from tests.flow import FORM_DATA, HAPPY_PATH, Desk


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


@pytest.fixture
def loads(monkeypatch):
    """Count workflow deserializations."""
    calls = []
    real = workflow.load

    def counting(*args, **kwargs):
        calls.append(args[0][:20])
        return real(*args, **kwargs)
    monkeypatch.setattr(workflow, "load", counting)
    return calls


def test_lists_and_views_never_load_a_workflow(desk, client, people, loads):
    numbers = [desk.register() for _ in range(3)]
    for number in numbers:
        desk.complete(number, "initial_review")
    loads.clear()
    cs = people["claims_specialist"].headers
    assert client.get("/api/v1/tasks?queue=available", headers=cs).json["total"] == 3
    assert client.get("/api/v1/tasks?queue=mine", headers=cs).status_code == 200
    task_id = desk.task_id(numbers[0], "investigate")
    assert client.get(f"/api/v1/tasks/{task_id}", headers=cs).status_code == 200
    for number in numbers:
        desk.complaint(number)
    assert loads == []


def test_a_completion_loads_only_its_own_instance(desk, loads):
    numbers = [desk.register() for _ in range(3)]
    loads.clear()
    desk.complete(numbers[1], "initial_review")
    assert len(loads) == 1


def test_task_view_has_form_schema_complaint_context_and_earlier_decisions(desk, client, people):
    number = desk.register()
    desk.walk(number, HAPPY_PATH[:4])
    desk.complete(number, "customer_confirmation", satisfied=False, dissatisfaction_reasons="赔付金额偏低")
    task_id = desk.task_id(number, "re_evaluation")
    view = client.get(f"/api/v1/tasks/{task_id}", headers=people["claims_specialist"].headers).json
    assert view["task"]["name"] == "重新评估" and view["task"]["role"] == "claims_specialist"
    assert view["form"]["properties"]["needs_investigation"]["type"] == "boolean"
    assert view["complaint"]["number"] == number and view["complaint"]["phone"] == "138****5678"
    decisions = {d["element_id"]: d["data"]["form_data"] for d in view["decisions"]}
    assert decisions["customer_confirmation"]["dissatisfaction_reasons"] == "赔付金额偏低"
    assert decisions["initial_review"] == FORM_DATA["initial_review"]
    # Compliance reviewers may read any task but not change it.
    assert client.get(f"/api/v1/tasks/{task_id}", headers=people["compliance"].headers).status_code == 200
    management = client.get(f"/api/v1/tasks/{task_id}", headers=people["management"].headers)
    assert management.status_code == 403
