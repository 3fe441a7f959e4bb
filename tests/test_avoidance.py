"""回避 is complete: whoever handled the original claim can neither read nor work the complaint, through
any path (API, web pages, case files, search, queues, snapshots); an excluded manager cannot assign,
release or decide its tasks; claim_handler names a real user; and a task nobody may work is flagged
to management."""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Complaint, HumanTask, InstanceSnapshot, ProcessInstance, User
from tests.flow import COMPLAINT, Desk
from tests.test_api_errors import assert_error, snapshot
from tests.test_migration import deploy_changed, safe_change
from tests.test_web import Browser, as_, task_ids, text

pytestmark = pytest.mark.clause("C-2.1")


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


@pytest.fixture
def browser(app):
    return lambda: Browser(app)


def investigating(desk, handler="claims_specialist"):
    """A complaint about a claim `handler` handled, now waiting for its investigation."""
    number = desk.register(claim_handler=handler)
    desk.complete(number, "initial_review")
    return number, desk.task_id(number, "investigate")


def add_snapshot(number):
    inst = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()
    snap = InstanceSnapshot(instance_id=inst.id, version_id=inst.version_id, workflow_json=inst.workflow_json,
                            reason="test", created_by="test")
    db.session.add(snap)
    db.session.commit()
    return snap.id


def test_the_excluded_handler_cannot_read_the_complaint_through_the_api(desk, client, people):
    number, task_id = investigating(desk)
    snap_id = add_snapshot(number)
    excluded, other = people["claims_specialist"].headers, people["claims_specialist_2"].headers
    for path in (f"/complaints/{number}", f"/complaints/{number}/case-file", f"/complaints/{number}/path",
                 f"/complaints/{number}/snapshots", f"/complaints/{number}/snapshots/{snap_id}",
                 f"/tasks/{task_id}"):
        assert_error(client.get("/api/v1" + path, headers=excluded), 403, "excluded")
        assert client.get("/api/v1" + path, headers=other).status_code == 200, path
    # Searches leave the complaint out, by a non-personal key in the URL and by phone in the body.
    for headers, found in ((excluded, 0), (other, 1)):
        r = client.get(f"/api/v1/complaints?q={COMPLAINT['claim_number']}", headers=headers)
        assert r.json["total"] == found
        r = client.post("/api/v1/complaints/search", json={"q": COMPLAINT["phone"]}, headers=headers)
        assert r.json["total"] == found
    for queue in ("mine", "available"):
        assert client.get(f"/api/v1/tasks?queue={queue}", headers=excluded).json["total"] == 0


def test_the_excluded_handler_cannot_read_the_complaint_on_the_web(desk, browser):
    number, task_id = investigating(desk)
    b = as_(browser, "claims_specialist")
    for path in (f"/complaints/{number}", f"/complaints/{number}/case-file", f"/complaints/{number}/case-file.json",
                 f"/tasks/{task_id}"):
        r = b.get(path)
        assert r.status_code == 403 and "回避" in text(r), path
    assert number not in b.get("/complaints").text                        # the latest complaints
    assert number not in b.post("/complaints", {"q": COMPLAINT["phone"]}).text
    assert task_id not in task_ids(b.get("/"), "available")
    other = as_(browser, "claims_specialist_2")
    assert other.get(f"/complaints/{number}").status_code == 200
    assert number in other.post("/complaints", {"q": COMPLAINT["phone"]}).text


def test_an_excluded_manager_cannot_assign_release_or_decide(desk, client, people):
    number, task_id = investigating(desk, handler="management")
    boss, other_boss = people["management"].headers, people["management_2"].headers
    client.post(f"/api/v1/tasks/{task_id}/claim", headers=people["claims_specialist"].headers)
    before = snapshot()
    assert_error(client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "claims_specialist_2"},
                             headers=boss), 403, "excluded")
    assert_error(client.post(f"/api/v1/tasks/{task_id}/unclaim", headers=boss), 403, "excluded")
    assert snapshot() == before
    assert client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "claims_specialist_2"},
                       headers=other_boss).status_code == 200
    desk.complete(number, "investigate", who="claims_specialist_2")
    desk.complete(number, "analyse_and_plan", who="claims_specialist_2", compensation_amount=80000)
    decision = desk.task_id(number, "management_decision")
    assert client.get("/api/v1/tasks?queue=available", headers=boss).json["total"] == 0
    assert_error(client.post(f"/api/v1/tasks/{decision}/claim", headers=boss), 403, "excluded")
    assert_error(client.post(f"/api/v1/tasks/{decision}/complete", json={"data": {"approved": True}},
                             headers=boss), 403, "excluded")
    desk.complete(number, "management_decision", who="management_2")


def test_excluded_people_are_not_offered_claim_buttons_or_reassignment(desk, browser):
    number, task_id = investigating(desk)
    page = as_(browser, "management").get(f"/complaints/{number}").text
    offered = page[page.index('data-testid="assign-select"'):].split("</select>")[0]
    assert 'value="claims_specialist_2"' in offered and 'value="claims_specialist"' not in offered
    assert 'data-testid="claim-button"' not in as_(browser, "claims_specialist").get("/").text


@pytest.mark.parametrize("handler", ["Spec_H ", "nobody-like-this", "CLAIMS_SPECIALIST"])
def test_claim_handler_must_name_an_existing_user(client, people, handler):
    before = snapshot()
    r = client.post("/api/v1/complaints", json={**COMPLAINT, "received_at": "2026-11-30T08:00:00+08:00",
                                                "claim_handler": handler},
                    headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", fields=["claim_handler"])
    assert "claim_handler_external" in r.json["error"]["fields"]["claim_handler"]
    assert snapshot() == before


def test_a_handler_outside_the_system_is_recorded_and_excludes_nobody(desk, client, people):
    number = desk.register(claim_handler=" claims_specialist ", claim_handler_external="某公估公司 李四")
    record = db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()
    assert record.claim_handler == "claims_specialist"          # surrounding spaces do not defeat the rule
    assert record.claim_handler_external == "某公估公司 李四"
    outside = desk.register(claim_handler_external="某公估公司 李四")
    desk.complete(outside, "initial_review")
    assert client.get(f"/api/v1/complaints/{outside}", headers=people["claims_specialist"].headers).status_code == 200


def test_a_task_nobody_may_work_is_flagged_to_management(desk, client, people, browser):
    other = db.session.get(User, people["claims_specialist_2"].user.id)
    other.active = False
    db.session.commit()
    number, task_id = investigating(desk)                        # the only active specialist stands aside
    flagged = db.session.get(HumanTask, task_id)
    assert flagged.unstaffed
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "task_unstaffed")).scalar_one()
    assert event.task_id == task_id and event.data["excluded"] == ["claims_specialist"]
    r = client.get("/api/v1/tasks?queue=unstaffed", headers=people["management"].headers)
    assert [t["id"] for t in r.json["items"]] == [task_id]
    assert_error(client.get("/api/v1/tasks?queue=unstaffed", headers=people["claims_specialist"].headers),
                 403, "wrong_role")
    home = as_(browser, "management").get("/")
    assert 'data-testid="count-unstaffed">1<' in home.text and task_id in task_ids(home, "unstaffed")
    assert 'data-testid="nav-unstaffed"' not in as_(browser, "customer_service").get("/").text
    # Someone gets the role back and is given the task: the flag goes.
    other = db.session.get(User, people["claims_specialist_2"].user.id)
    other.active = True
    db.session.commit()
    client.post(f"/api/v1/tasks/{task_id}/assign", json={"username": "claims_specialist_2"},
                headers=people["management"].headers)
    db.session.expire_all()
    assert not db.session.get(HumanTask, task_id).unstaffed
    assert client.get("/api/v1/tasks?queue=unstaffed", headers=people["management"].headers).json["total"] == 0


def test_a_staffed_task_is_not_flagged(desk):
    number, task_id = investigating(desk)
    assert not db.session.get(HumanTask, task_id).unstaffed
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "task_unstaffed")).first() is None


def test_a_process_owner_who_handled_the_claim_does_not_see_it_in_migrations(desk, client, people, browser,
                                                                              tmp_path):
    """Only people with a handler role can be named (a process owner cannot), and the migration pages
    leave out what the current user must stand aside from all the same."""
    assert_error(client.post("/api/v1/complaints", json={**COMPLAINT, "received_at": "2026-11-30T08:00:00+08:00",
                                                        "claim_handler": "process_owner"},
                             headers=people["customer_service"].headers), 422, "invalid_data", ["claim_handler"])
    number, other = desk.register(), desk.register()
    db.session.execute(Complaint.__table__.update().where(Complaint.number == number)
                       .values(claim_handler="process_owner"))
    db.session.commit()
    deploy_changed(tmp_path, safe_change)
    page = as_(browser, "process_owner").get("/procedure/complaint_handling/migrate")
    assert page.status_code == 200 and other in page.text and number not in page.text
