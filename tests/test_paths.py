"""Every path of the procedure, walked through the JSON API on the real diagram."""
import pytest

from tests.flow import HAPPY_PATH, Desk


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


@pytest.mark.clause("C-3.1.2", "C-3.1.3", "C-3.2.1", "C-3.2.2", "C-3.2.3", "C-3.3.1", "C-3.3.2", "C-3.3.3", "C-3.4.1", "C-3.4.2", "C-3.4.3", "C-3.5.1", "C-5.1", "C-7.2")
def test_happy_path_archives_and_records_everything(desk):
    number = desk.register()
    assert number.startswith("TS-") and len(number) == len("TS-20261125-000001")
    assert list(desk.open_tasks(number)) == ["initial_review"]
    desk.walk(number, HAPPY_PATH)
    view = desk.complaint(number)
    c = view["complaint"]
    assert c["status"] == "closed" and c["outcome"] == "resolved" and c["satisfied"] is True
    assert c["rounds"] == 1 and c["accepted_at"]
    assert view["current_tasks"] == []
    assert [t["element_id"] for t in view["tasks"]] == HAPPY_PATH
    assert all(t["state"] == "completed" for t in view["tasks"])
    assert {d["element_id"]: d["state"] for d in view["deadlines"]} == {
        "initial_review_deadline": "met", "investigation_deadline": "met", "resolution_deadline": "met",
        "decision_clock": "met", "confirmation_deadline": "met", "archive_deadline": "met"}
    assert c["decision_clock"] == "met" and c["decision_due_at"] > c["received_at"]
    assert desk.outbox(number) == ["acknowledgement", "accepted", "result", "satisfaction_survey"]
    completed = [e for e in view["history"] if e["action"] == "task_completed"]
    assert [e["element_id"] for e in completed] == HAPPY_PATH
    assert completed[0]["actor"] == "customer_service"
    assert completed[0]["data"]["form_data"]["decision"] == "accept"


@pytest.mark.clause("C-3.3.4", "C-6.3")
def test_management_decision_can_send_back_then_approve(desk):
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate", ("analyse_and_plan", {"compensation_amount": 80000})])
    assert list(desk.open_tasks(number)) == ["management_decision"]
    desk.complete(number, "management_decision", approved=False, decision_comments="补充依据后再报")
    assert list(desk.open_tasks(number)) == ["analyse_and_plan"]
    desk.complete(number, "analyse_and_plan", compensation_amount=60000)
    desk.complete(number, "management_decision")
    assert list(desk.open_tasks(number)) == ["feedback_to_customer"]


@pytest.mark.clause("C-3.3.4", "C-3.2.3")
def test_high_risk_needs_management_even_for_small_amounts(desk):
    number = desk.register()
    desk.walk(number, [("initial_review", {"risk_level": "high"}), "investigate", "analyse_and_plan"])
    assert list(desk.open_tasks(number)) == ["management_decision"]


@pytest.mark.clause("C-3.4.2", "C-3.4.3", "C-4.4")
def test_dissatisfied_customer_loops_through_re_evaluation_any_number_of_rounds(desk):
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                       ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "金额太低"})])
    assert list(desk.open_tasks(number)) == ["re_evaluation"]
    # Round 2 goes back through investigation; round 3 straight to a new solution.
    desk.complete(number, "re_evaluation", needs_investigation=True)
    assert list(desk.open_tasks(number)) == ["investigate"]
    desk.walk(number, ["investigate", "analyse_and_plan", "feedback_to_customer",
                       ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "仍不满意"}),
                       ("re_evaluation", {"needs_investigation": False})])
    assert list(desk.open_tasks(number)) == ["analyse_and_plan"]
    desk.walk(number, ["analyse_and_plan", "feedback_to_customer", "customer_confirmation", "archive"])
    c = desk.complaint(number)["complaint"]
    assert c["status"] == "closed" and c["rounds"] == 3 and c["satisfied"] is True
    history = desk.complaint(number)["history"]
    reasons = [e["data"]["form_data"].get("dissatisfaction_reasons") for e in history
               if e["element_id"] == "customer_confirmation" and e["action"] == "task_completed"]
    assert reasons == ["金额太低", "仍不满意", None]
    assert desk.outbox(number) == ["acknowledgement", "accepted", "result", "reopened", "result", "reopened",
                                   "result", "satisfaction_survey"]
    # Each round tells the customer by when the (new) solution comes; a new round repeats what they said.
    sent = [payload for template, payload in desk.messages(number) if template in ("accepted", "reopened")]
    assert [p.get("reason") for p in sent] == [None, "金额太低", "仍不满意"]
    assert all(p["result_due"] for p in sent)


@pytest.mark.clause("C-3.2.1", "C-3.5.1", "C-7.2")
def test_not_accepted_records_reason_notifies_customer_and_archives(desk):
    number = desk.register()
    desk.complete(number, "initial_review", decision="reject", rejection_reason="不属于理赔投诉范围")
    assert list(desk.open_tasks(number)) == ["archive"]
    desk.complete(number, "archive")
    c = desk.complaint(number)["complaint"]
    assert c["status"] == "closed" and c["outcome"] == "not_accepted" and c["rounds"] == 0
    assert desk.outbox(number) == ["acknowledgement", "not_accepted"]


@pytest.mark.clause("C-7.4")
def test_suspected_malicious_confirmed_by_management_is_closed(desk):
    number = desk.register()
    desk.complete(number, "initial_review", decision="suspected_malicious", malicious_indicators="重复投诉并索要额外费用")
    assert list(desk.open_tasks(number)) == ["malicious_review"]
    desk.complete(number, "malicious_review", malicious_confirmed=True, measures="依公司规定记录并告知",
                  reason_for_customer="同一事项已处理完毕，本次投诉未提出新的事实和理由", review_comments="内部：多次索要额外费用")
    desk.complete(number, "archive")
    c = desk.complaint(number)["complaint"]
    assert c["outcome"] == "malicious" and c["status"] == "closed"
    assert desk.outbox(number) == ["acknowledgement", "malicious_closed"]
    # The customer is given the reason written for them; the internal review comments stay inside.
    closing = dict(desk.messages(number))["malicious_closed"]
    assert closing["reason"] == "同一事项已处理完毕，本次投诉未提出新的事实和理由"
    assert "内部" not in str(closing)


@pytest.mark.clause("C-7.4")
def test_suspected_malicious_cleared_continues_as_normal(desk):
    number = desk.register()
    desk.complete(number, "initial_review", decision="suspected_malicious", malicious_indicators="措辞激烈")
    desk.complete(number, "malicious_review", malicious_confirmed=False)
    assert list(desk.open_tasks(number)) == ["investigate"]
    desk.walk(number, HAPPY_PATH[1:])
    assert desk.complaint(number)["complaint"]["outcome"] == "resolved"


@pytest.mark.clause("C-6.1", "C-6.2", "C-2.4")
def test_each_step_is_offered_to_its_lane_role(desk, client, people):
    number = desk.register()
    desk.complete(number, "initial_review")
    task = desk.open_tasks(number)["investigate"]
    assert task["role"] == "claims_specialist" and task["assignee"] is None
    available = client.get("/api/v1/tasks?queue=available", headers=people["claims_specialist"].headers).json
    assert [t["id"] for t in available["items"]] == [task["id"]]
    assert available["items"][0]["complaint"]["customer_name"] == "张*"
    assert client.get("/api/v1/tasks?queue=available", headers=people["customer_service"].headers).json["total"] == 0


@pytest.mark.clause("C-3.1.3")
def test_find_complaints_by_number_phone_policy_or_claim(desk, client, people):
    first = desk.register()
    second = desk.register(phone="13900000000", policy_number="PA-OTHER", claim_number="CL-OTHER")
    headers = people["claims_specialist"].headers
    for q, expected in [(first, [first]), ("PA-OTHER", [second]), ("CL-2026-0001", [first]), ("nothing", [])]:
        found = client.get("/api/v1/complaints", query_string={"q": q}, headers=headers).json
        assert [c["number"] for c in found["items"]] == expected
    # A phone is searched from the body (POST), so it never sits in a URL.
    for q, expected in [("13812345678", [first]), ("13900000000", [second]), ("PA-OTHER", [second])]:
        found = client.post("/api/v1/complaints/search", json={"q": q}, headers=headers).json
        assert [c["number"] for c in found["items"]] == expected
    item = client.get("/api/v1/complaints", query_string={"q": first}, headers=headers).json["items"][0]
    assert item["phone"] == "138****5678" and item["customer_name"] == "张*"
    listed = client.get("/api/v1/complaints", headers=headers).json            # no term: the list, newest first
    assert [c["number"] for c in listed["items"]] == [second, first] and listed["total"] == 2


@pytest.mark.clause("C-3.5.1")
def test_case_file_has_decisions_deadlines_messages_versions_and_audit(desk, client, people):
    number = desk.register()
    desk.walk(number, HAPPY_PATH)
    r = client.get(f"/api/v1/complaints/{number}/case-file", headers=people["compliance"].headers)
    assert r.status_code == 200
    case = r.json
    assert case["complaint"]["number"] == number and case["complaint"]["phone"] == "138****5678"
    assert [d["element_id"] for d in case["decisions"]] == HAPPY_PATH
    assert case["decisions"][0]["completed_by"] == "customer_service"
    assert case["decisions"][0]["data"]["decision"] == "accept"
    assert {d["element_id"]: d["state"] for d in case["deadlines"]}["investigation_deadline"] == "met"
    assert [m["template"] for m in case["messages"]] == ["acknowledgement", "accepted", "result", "satisfaction_survey"]
    assert [v["version"] for v in case["process"]["versions"]] == [1]
    assert case["audit"][0]["action"] == "instance_started" and all(len(e["hash"]) == 64 for e in case["audit"])
    assert client.get("/api/v1/complaints/TS-X/case-file", headers=people["compliance"].headers).status_code == 404


def test_path_lists_every_element_passed_in_order_with_rounds(desk, client, people):
    number = desk.register()
    desk.walk(number, HAPPY_PATH[:4] + [("customer_confirmation", {"satisfied": False,
                                                                   "dissatisfaction_reasons": "不满意"})])
    desk.complete(number, "re_evaluation")
    path = client.get(f"/api/v1/complaints/{number}/path", headers=people["compliance"].headers).json
    elements = [v["element_id"] for v in path["visits"]]
    # The handling from initial review to archiving is a called process (complaint_case) with its own start.
    # The regulator's clock starts beside it and stops at the first decision (round 1's result).
    assert elements[:3] == ["complaint_received", "send_acknowledgement", "start_clock"]
    handling = [e for e in elements if e in ("case_started", "initial_review", "review_outcome")]
    assert handling[:3] == ["case_started", "initial_review", "review_outcome"]
    clock = [e for e in elements if e in ("start_decision_clock", "result_decided", "decision_made_received",
                                          "record_decision_in_time", "decision_clock_met")]
    assert clock == ["start_decision_clock", "result_decided", "decision_made_received", "record_decision_in_time",
                     "decision_clock_met"]
    assert elements.count("start_round") == 2 and elements.count("analyse_and_plan") == 1
    # Round 2 went from re-evaluation straight into a new solution (no investigation).
    assert elements[-7:] == ["re_evaluation", "round_merge", "start_round", "round_entry", "resolve_merge",
                             "resolution_started", "plan_merge"]
    assert {"send_acknowledgement": "complaint_handling", "investigate": "complaint_case",
            "analyse_and_plan": "complaint_resolution"} == {
        v["element_id"]: v["process"] for v in path["visits"]
        if v["element_id"] in ("send_acknowledgement", "analyse_and_plan", "investigate")}
    assert path["current"] == ["analyse_and_plan"] and path["missed_deadlines"] == []
    assert path["version"] == 1


def test_a_frozen_clock_never_records_a_step_twice(desk, client, people):
    import time_machine
    from datetime import datetime, timezone
    with time_machine.travel(datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc), tick=False):
        number = desk.register()
        desk.walk(number, HAPPY_PATH)
        path = client.get(f"/api/v1/complaints/{number}/path", headers=people["compliance"].headers).json
    elements = [v["element_id"] for v in path["visits"]]
    assert elements.count("start_round") == 1 and elements.count("initial_review") == 1
    assert len(elements) == len(set(elements))      # one round: every element once
