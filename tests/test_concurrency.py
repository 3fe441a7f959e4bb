"""Concurrent changes and failures inside a change: one winner, nothing half-written."""
import threading

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent
from tests.flow import FORM_DATA, Desk
from tests.test_api_errors import snapshot


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def run_together(app, calls):
    """Run each call in its own thread and request context, all released at once."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(i, call):
        client = app.test_client()
        barrier.wait()
        results[i] = call(client)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return results


def test_two_handlers_completing_the_same_task_one_wins(app, desk, people):
    number = desk.register()
    desk.complete(number, "initial_review")
    task_id = desk.task_id(number, "investigate")
    bodies = [{"data": {**FORM_DATA["investigate"], "findings": f"handler {i}"}} for i in (1, 2)]
    users = [people["claims_specialist"], people["claims_specialist_2"]]
    responses = run_together(app, [
        (lambda c, b=b, u=u: c.post(f"/api/v1/tasks/{task_id}/complete", json=b, headers=u.headers))
        for b, u in zip(bodies, users)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.json for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json["error"]["code"] in ("task_completed", "concurrent_change")
    db.session.expire_all()
    # The workflow is consistent: exactly one completion, one next step.
    done = db.session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "task_completed", AuditEvent.task_id == task_id)).scalar_one()
    assert done == 1
    assert list(desk.open_tasks(number)) == ["analyse_and_plan"]
    desk.walk(number, ["analyse_and_plan", "feedback_to_customer", "customer_confirmation", "archive"])
    assert desk.complaint(number)["complaint"]["status"] == "closed"


@pytest.mark.clause("C-3.1.3")
def test_concurrent_registrations_get_unique_consecutive_numbers(app, people):
    from tests.flow import COMPLAINT
    from app.timeutil import utcnow
    body = {**COMPLAINT, "received_at": utcnow().isoformat()}
    headers = people["customer_service"].headers
    responses = run_together(app, [lambda c: c.post("/api/v1/complaints", json=body, headers=headers)] * 6)
    assert all(r.status_code == 201 for r in responses), [r.json for r in responses]
    numbers = sorted(r.json["number"] for r in responses)
    assert len(set(numbers)) == 6
    assert [int(n[-6:]) for n in numbers] == [1, 2, 3, 4, 5, 6]
    # Six concurrent transactions left six unbroken audit chains.
    from app.audit import seal_key
    from app.audit_verify import verify
    report = verify(db.session, seal_key(app.config))
    assert report.intact and report.chains >= 6 and report.rows > 6 * 4


def test_failure_after_the_engine_step_leaves_the_previous_state(app, desk, people, client):
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    runtime = app.extensions["runtime"]

    def explode(session, inst, change):
        raise RuntimeError("disk full")

    before = snapshot()
    runtime.record_syncs.append(explode)
    try:
        r = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": FORM_DATA["initial_review"]},
                        headers=people["customer_service"].headers)
        assert r.status_code == 500 and r.json["error"]["code"] == "internal_error"
    finally:
        runtime.record_syncs.remove(explode)
    assert snapshot() == before
    # Nothing was lost: the same task completes normally afterwards.
    desk.complete(number, "initial_review")
    assert list(desk.open_tasks(number)) == ["investigate"]


def test_an_engine_failure_after_the_step_rolls_back_and_reports(app, desk, people):
    from app.errors import ProcessError
    number = desk.register()
    task_id = desk.task_id(number, "initial_review")
    before = snapshot()
    # Without a decision the review_outcome gateway has no flow to take: the engine fails after the
    # task itself ran. (Form validation would refuse this; it is bypassed to reach the engine.)
    with pytest.raises(ProcessError) as err:
        app.extensions["runtime"].complete(task_id, people["customer_service"].user,
                                           {"risk_level": "low", "review_notes": "x"}, schema_check=False)
    assert "review_outcome" in str(err.value.message)
    assert snapshot() == before
    desk.complete(number, "initial_review")
    assert list(desk.open_tasks(number)) == ["investigate"]


def test_two_handlers_claiming_at_once_one_gets_the_task(app, desk, people):
    number = desk.register()
    desk.complete(number, "initial_review")
    task_id = desk.task_id(number, "investigate")
    users = [people["claims_specialist"], people["claims_specialist_2"]]
    for _ in range(3):      # repeat: a lost update would show up as two 200s
        responses = run_together(app, [
            (lambda c, u=u: c.post(f"/api/v1/tasks/{task_id}/claim", headers=u.headers)) for u in users])
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 409], [r.json for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json["task"]["assignee"]
        db.session.expire_all()
        assert desk.open_tasks(number)["investigate"]["assignee"] == winner
        app.test_client().post(f"/api/v1/tasks/{task_id}/unclaim", headers=people["management"].headers)
