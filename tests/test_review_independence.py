"""A review (核查, R-REVIEW) is decided by someone who took no part in the complaint's handling (回避,
R-AVOID): whoever completed a task of the complaint's other instances may read the complaint but not
claim, complete or be given the review's task; another manager may."""
import pytest

from app.extensions import db
from app.models import HumanTask
from tests.flow import Desk

pytestmark = pytest.mark.clause("C-6.3", "C-7.3")
TO_RESULT = ["initial_review", "investigate", ("analyse_and_plan", {"compensation_amount": 80000}),
             "management_decision", "feedback_to_customer"]


def test_a_manager_who_decided_the_complaint_may_not_decide_its_review(app, client, people):
    desk = Desk(client, people)
    number = desk.register()
    desk.walk(number, TO_RESULT)                               # "management" approved the solution
    task = desk.request_review(number)
    assert task["element_id"] == "review_decision" and db.session.get(HumanTask, task["id"]).unstaffed is False

    refused = client.post(f"/api/v1/tasks/{task['id']}/claim", headers=people["management"].headers)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "excluded"
    assert "review" in refused.json["error"]["message"]
    given = client.post(f"/api/v1/tasks/{task['id']}/assign", json={"username": "management"},
                        headers=people["management_2"].headers)
    assert given.status_code == 403
    # Their queue does not offer it; another manager's does.
    def offered(who):
        r = client.get("/api/v1/tasks?queue=available", headers=people[who].headers)
        assert r.status_code == 200, r.json
        return [t["id"] for t in r.json["items"]]
    assert task["id"] not in offered("management") and task["id"] in offered("management_2")
    # They may still read the complaint they handled.
    assert client.get(f"/api/v1/complaints/{number}", headers=people["management"].headers).status_code == 200

    assert client.post(f"/api/v1/tasks/{task['id']}/claim", headers=people["management_2"].headers).status_code == 200
    done = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=people["management_2"].headers,
                       json={"data": {"review_result": "原处理合规，维持原决定", "decision_changed": False}})
    assert done.status_code == 200, done.json


def test_a_review_nobody_independent_may_work_is_flagged_for_the_supervisors(app, client, people):
    people["management_2"].user.active = False                 # the only other manager has left
    db.session.commit()
    desk = Desk(client, people)
    number = desk.register()
    desk.walk(number, TO_RESULT)                               # the only manager decided it
    r = client.post(f"/api/v1/complaints/{number}/review-request", json={"reason": "不服"},
                    headers=people["customer_service"].headers)
    assert r.status_code == 201 and db.session.get(HumanTask, r.json["tasks"][0]["id"]).unstaffed is True


def test_a_manager_who_only_asked_for_more_time_may_not_decide_the_review(app, client, people):
    desk = Desk(client, people)
    number = desk.register()
    r = client.post(f"/api/v1/complaints/{number}/actions/extension_requested", json={"data": {"reason": "案情复杂"}},
                    headers=people["management"].headers)
    assert r.status_code == 200, r.json
    desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"])
    r = client.post(f"/api/v1/complaints/{number}/review-request", json={"reason": "不服"},
                    headers=people["customer_service"].headers)
    [task] = r.json["tasks"]
    refused = client.post(f"/api/v1/tasks/{task['id']}/claim", headers=people["management"].headers)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "excluded"
    offered = client.get("/api/v1/tasks?queue=available", headers=people["management"].headers).json["items"]
    assert task["id"] not in [t["id"] for t in offered]
    assert client.post(f"/api/v1/tasks/{task['id']}/claim", headers=people["management_2"].headers).status_code == 200


def test_the_case_file_names_the_reviews_steps_and_deadlines(app, client, people):
    """The case file labels the steps and deadlines of every instance of the complaint from its own diagram and forms,
    the review's too, not only the main process's (a review's rows had shown review_decision, review_deadline)."""
    from tests.test_web import Browser, text
    desk = Desk(client, people)
    number = desk.register()
    desk.walk(number, TO_RESULT)
    desk.request_review(number)
    b = Browser(app).login("compliance")
    page = text(b.get(f"/complaints/{number}/case-file"))
    assert "核查决定" in page and "核查时限（30日）" in page
    assert "review_decision" not in page and "review_deadline" not in page
    b.get("/language/en?next=/")
    assert "Review decision" in text(b.get(f"/complaints/{number}/case-file"))


def test_a_handler_kept_off_the_review_is_told_that_rule_not_the_claims(app, client, people):
    """回避 has two rules; the page says the one that applies: a manager who decided the complaint may not work its
    review because they took part in the handling, not because they handled the original claim."""
    from tests.test_web import Browser, text
    desk = Desk(client, people)
    number = desk.register()
    desk.walk(number, TO_RESULT)                               # "management" approved the solution
    review = desk.request_review(number)
    b = Browser(app).login("management")
    page = b.get(f"/tasks/{review['id']}")
    assert page.status_code == 403 and "参与过此投诉的处理，不得办理其核查（回避）" in text(page), text(page)
    assert "原理赔案件" not in text(page)
    r = b.post(f"/tasks/{review['id']}/claim", {}, page="/", follow_redirects=True)
    assert "参与过此投诉的处理" in text(r) and "原理赔案件" not in text(r)
    # Said of someone else: a supervisor who would give them the review.
    name = people["management"].user.display_name
    other = Browser(app).login("management_2")
    r = other.post(f"/tasks/{review['id']}/assign", {"username": "management"}, page=f"/complaints/{number}",
                   follow_redirects=True)
    assert f"{name} 参与过此投诉的处理，不得办理其核查（回避）" in text(r), text(r)
