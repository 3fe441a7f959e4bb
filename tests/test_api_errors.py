"""Bad input gets one clear error shape and changes nothing."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiToken, AuditEvent, Complaint, HumanTask, ProcessInstance
from app.timeutil import utcnow
from tests.flow import COMPLAINT, FORM_DATA, Desk


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def snapshot():
    """Everything a failed request must leave untouched."""
    db.session.expire_all()
    insts = db.session.execute(select(ProcessInstance.id, ProcessInstance.workflow_json,
                                      ProcessInstance.row_version)).all()
    tasks = db.session.execute(select(HumanTask.id, HumanTask.state, HumanTask.assignee_id)
                               .order_by(HumanTask.id)).all()
    audit_rows = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    complaints = db.session.execute(select(Complaint.number, Complaint.current_step, Complaint.status)).all()
    return insts, tasks, audit_rows, complaints


def assert_error(response, status, code=None, fields=()):
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert set(error) == {"code", "message", "fields", "request_id"} and error["message"]
    if code:
        assert error["code"] == code
    for name in fields:
        assert name in error["fields"], error


@pytest.mark.parametrize("bad, field", [
    ({"risk_level": 3}, "risk_level"),                                   # wrong type
    ({"review_notes": None}, "review_notes"),                            # wrong type (null)
    ({"decision": "maybe"}, "decision"),                                  # enum out of range
    ({"review_notes": "很" * 5001}, "review_notes"),                     # too long
    ({"decision": "reject"}, "rejection_reason"),                        # conditionally required
    ({"surprise": "x"}, "surprise"),                                      # unknown field
])
def test_invalid_form_data_is_refused_per_field_and_changes_nothing(desk, client, people, bad, field):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    before = snapshot()
    data = {**FORM_DATA["initial_review"], **bad}
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data},
                    headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", [field])
    assert snapshot() == before


def test_a_refused_value_is_not_sent_back(desk, client, people):
    """A 422 names the field and the rule, never the value: an answer may hold personal data."""
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    secret = "客户身份证 110105194912310021 电话 13800138000 "
    data = {**FORM_DATA["initial_review"], "review_notes": secret * 200, "decision": secret, "risk_level": [secret]}
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data},
                    headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", ["review_notes", "decision", "risk_level"])
    assert "110105194912310021" not in r.get_data(as_text=True) and "13800138000" not in r.get_data(as_text=True)
    fields = r.json["error"]["fields"]
    assert fields["review_notes"] == "the value is too long" and fields["decision"].startswith("the value is not one of")
    assert fields["risk_level"] == "the value is not of type 'string'"


def test_form_messages_never_quote_the_value_and_spaces_count_as_empty_only_where_text_is_needed():
    from app.forms import field_errors
    schema = {"type": "object", "properties": {
        "digits": {"type": "string", "pattern": "^[0-9]*$"}, "notes": {"type": "string", "minLength": 1},
        "forbidden": False, "none": {"type": "array", "items": False}, "n": {"type": "integer", "minimum": 10}}}
    secret = "13800138000"
    errors = field_errors(schema, {"digits": "  ", "notes": " \t", "forbidden": secret, "none": [secret], "n": 1})
    assert secret not in str(errors)
    assert errors["notes"] == "may not be blank" and errors["n"] == "the value is less than the minimum of 10"
    assert errors["digits"] == "the value does not match '^[0-9]*$'"      # spaces are no digits: as typed


def test_missing_required_field(desk, client, people):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    before = snapshot()
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {"decision": "accept"}},
                    headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", ["risk_level", "review_notes"])
    assert r.json["error"]["fields"]["risk_level"] == "required"
    assert snapshot() == before


def test_task_of_another_role_is_forbidden(desk, client, people):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    before = snapshot()
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": FORM_DATA["initial_review"]},
                    headers=people["claims_specialist"].headers)
    assert_error(r, 403, "wrong_role")
    r = client.post(f"/api/v1/tasks/{task_id}/claim", headers=people["claims_specialist"].headers)
    assert_error(r, 403, "wrong_role")
    r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": FORM_DATA["initial_review"]},
                    headers=people["compliance"].headers)
    assert_error(r, 403)
    assert snapshot() == before


def test_task_claimed_by_someone_else_cannot_be_completed_or_claimed(desk, client, people):
    number = desk.register()
    desk.complete(number, "initial_review")
    task_id = desk.task_id(number, "investigate")
    r = client.post(f"/api/v1/tasks/{task_id}/claim", headers=people["claims_specialist"].headers)
    assert r.status_code == 200 and r.json["task"]["assignee"] == "claims_specialist"
    before = snapshot()
    other = people["claims_specialist_2"].headers
    assert_error(client.post(f"/api/v1/tasks/{task_id}/claim", headers=other), 409, "already_claimed")
    assert_error(client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": FORM_DATA["investigate"]},
                             headers=other), 403, "not_assignee")
    assert_error(client.post(f"/api/v1/tasks/{task_id}/unclaim", headers=other), 403)
    assert snapshot() == before


def test_completed_task_and_double_submission_get_409(desk, client, people):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    headers = people["customer_service"].headers
    first = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": FORM_DATA["initial_review"]},
                        headers=headers)
    assert first.status_code == 200
    before = snapshot()
    again = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": FORM_DATA["initial_review"]},
                        headers=headers)
    assert_error(again, 409, "task_completed")
    assert "customer_service" in again.json["error"]["message"]
    assert_error(client.post(f"/api/v1/tasks/{task_id}/claim", headers=headers), 409, "task_completed")
    assert snapshot() == before


def test_unknown_complaint_and_task_are_404(client, people):
    headers = people["management"].headers
    assert_error(client.get("/api/v1/complaints/TS-20991231-999999", headers=headers), 404, "not_found")
    assert_error(client.get("/api/v1/tasks/00000000-0000-0000-0000-000000000000", headers=headers), 404)
    assert_error(client.post("/api/v1/tasks/nope/complete", json={"data": {}}, headers=headers), 404)
    assert_error(client.get("/api/v1/no-such-route", headers=headers), 404)


@pytest.mark.parametrize("kwargs", [
    {"data": "not json", "content_type": "application/json"},
    {"json": ["a", "list"]},
    {"json": {"data": "not an object"}},
    {"json": {}},
])
def test_malformed_body_is_400(desk, client, people, kwargs):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    before = snapshot()
    r = client.post(f"/api/v1/tasks/{task_id}/complete", headers=people["customer_service"].headers, **kwargs)
    assert_error(r, 400, "malformed_body")
    assert snapshot() == before


def test_invalid_complaint_registration_is_422_and_allocates_nothing(client, people):
    before = snapshot()
    bad = {**COMPLAINT, "channel": "fax", "phone": "abc", "email": "not-an-email", "received_at": "2026-11-25T09:00"}
    del bad["policy_number"]
    r = client.post("/api/v1/complaints", json=bad, headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", ["channel", "phone", "email", "received_at", "policy_number"])
    assert snapshot() == before


def test_only_customer_service_registers(client, people):
    body = {**COMPLAINT, "received_at": utcnow().isoformat()}
    r = client.post("/api/v1/complaints", json=body, headers=people["claims_specialist"].headers)
    assert_error(r, 403, "wrong_role")


def test_missing_invalid_and_expired_tokens_are_401(client, people):
    assert_error(client.get("/api/v1/tasks"), 401, "token_missing")
    assert_error(client.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"}), 401, "token_invalid")
    token = db.session.execute(select(ApiToken).where(ApiToken.user_id == people["management"].user.id)).scalar_one()
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert_error(client.get("/api/v1/tasks", headers=people["management"].headers), 401, "token_expired")


def test_supervisor_reassigns_only_to_a_colleague_with_the_role(desk, client, people):
    number = desk.register()
    desk.complete(number, "initial_review")
    task_id = desk.task_id(number, "investigate")
    client.post(f"/api/v1/tasks/{task_id}/claim", headers=people["claims_specialist"].headers)
    manager = people["management"].headers
    assert_error(client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "customer_service"},
                             headers=manager), 403, "assignee_lacks_role")
    assert_error(client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "claims_specialist_2"},
                             headers=people["claims_specialist"].headers), 403)
    assert_error(client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "ghost"}, headers=manager), 404)
    for bad in ({}, {"username": None}, {"username": ["claims_specialist_2"]}, {"username": 5}, {"username": ""},
                {"username": "claims_specialist_2", "extra": 1}):
        assert_error(client.post(f"/api/v1/tasks/{task_id}/assign", json=bad, headers=manager), 422, "invalid_data",
                     fields=[next(iter(set(bad) - {"username"}), "username")])
    people["claims_specialist_2"].user.active = False
    db.session.commit()
    assert_error(client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "claims_specialist_2"},
                             headers=manager), 403, "assignee_inactive")
    people["claims_specialist_2"].user.active = True
    db.session.commit()
    r = client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "claims_specialist_2"}, headers=manager)
    assert r.status_code == 200 and r.json["task"]["assignee"] == "claims_specialist_2"
    mine = client.get("/api/v1/tasks?queue=mine", headers=people["claims_specialist_2"].headers).json
    assert [t["id"] for t in mine["items"]] == [task_id]
    desk.complete(number, "investigate", who="claims_specialist_2")
    history = desk.complaint(number)["history"]
    assigned = [e for e in history if e["action"] == "task_assigned"][0]
    assert assigned["actor"] == "management" and assigned["data"]["previous_assignee"] == "claims_specialist"


def test_unclaim_returns_task_to_the_role_queue(desk, client, people):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    headers = people["customer_service"].headers
    client.post(f"/api/v1/tasks/{task_id}/claim", headers=headers)
    assert client.get("/api/v1/tasks?queue=available", headers=headers).json["total"] == 0
    r = client.post(f"/api/v1/tasks/{task_id}/unclaim", headers=headers)
    assert r.status_code == 200 and r.json["task"]["assignee"] is None
    assert client.get("/api/v1/tasks?queue=available", headers=headers).json["total"] == 1


@pytest.mark.clause("C-2.2", "C-7.1")
def test_personal_data_is_masked_for_roles_that_do_not_need_it(desk, client, people):
    number = desk.register()
    full = desk.complaint(number, who="customer_service")["complaint"]
    assert full["phone"] == "13812345678" and full["personal_data"] == "full"
    masked = desk.complaint(number, who="claims_specialist")["complaint"]
    assert masked["phone"] == "138****5678" and masked["id_number"] == "110***********1234"
    assert masked["email"] == "z***@example.com" and masked["personal_data"] == "masked"
    viewed = [e for e in desk.complaint(number)["history"] if e["action"] == "personal_data_viewed"]
    assert [e["actor"] for e in viewed] == ["customer_service", "customer_service"]  # registration + the view


@pytest.mark.clause("C-2.1")
def test_whoever_handled_the_original_claim_stands_aside(desk, client, people):
    """回避: the handler of the original claim cannot see, claim, complete or be given the complaint."""
    number = desk.register(claim_handler="claims_specialist")
    desk.complete(number, "initial_review")
    task_id = desk.task_id(number, "investigate")
    excluded = people["claims_specialist"].headers
    before = snapshot()
    assert client.get("/api/v1/tasks?queue=available", headers=excluded).json["total"] == 0
    assert_error(client.get(f"/api/v1/tasks/{task_id}", headers=excluded), 403, "excluded")
    assert_error(client.post(f"/api/v1/tasks/{task_id}/claim", headers=excluded), 403, "excluded")
    assert_error(client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": FORM_DATA["investigate"]},
                             headers=excluded), 403, "excluded")
    assert_error(client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "claims_specialist"},
                             headers=people["management"].headers), 403, "excluded")
    assert snapshot() == before
    other = people["claims_specialist_2"].headers
    assert client.get("/api/v1/tasks?queue=available", headers=other).json["total"] == 1
    desk.complete(number, "investigate", who="claims_specialist_2")


def test_an_oversized_body_is_refused_before_it_is_read(desk, client, people):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    before = snapshot()
    r = client.post(f"/api/v1/tasks/{task_id}/complete", data=b"x" * (6 * 1024 * 1024),
                    content_type="application/json", headers=people["customer_service"].headers)
    assert_error(r, 413)
    assert snapshot() == before
