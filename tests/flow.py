"""Drive complaints through the JSON API the way handlers do, with valid form data per step."""
from datetime import datetime, timedelta, timezone

from app.config import Config

# Valid data for each user task's form; a test overrides what its path needs.
# The lane names the diagrams may use: one per role that holds tasks.
LANES = {spec["lane"] for spec in Config.ROLES.values() if spec["lane"]}

FORM_DATA = {
    "initial_review": {"decision": "accept", "risk_level": "low", "review_notes": "材料齐全，符合受理条件"},
    "investigate": {"findings": "理赔审核超过约定时效", "evidence": "理赔系统记录", "customer_contacted": True},
    "analyse_and_plan": {"cause_code": "process_backlog", "cause": "审核积压", "responsible_party": "company",
                         "policy_basis": "条款第5条",
                         "solution": "加快赔付并致歉", "compensation_amount": 1000},
    "management_decision": {"approved": True, "decision_comments": "同意方案"},
    "feedback_to_customer": {"feedback_channel": "phone", "feedback_summary": "已电话告知客户方案"},
    "customer_confirmation": {"satisfied": True, "customer_feedback": "客户表示满意"},
    "re_evaluation": {"evaluation": "需重新核算赔付金额", "needs_investigation": False},
    "archive": {"archive_summary": "已结案，材料完整", "records_complete": True},
    "malicious_review": {"malicious_confirmed": False, "review_comments": "不属于恶意投诉"},
    "initial_review_overdue": {"initial_review_overdue_cause": "人手不足",
                               "initial_review_overdue_actions": ["urge_handler"],
                               "initial_review_overdue_due_date": "2026-12-01"},
    "investigation_overdue": {"investigation_overdue_cause": "调查资料未到", "investigation_overdue_actions": ["urge_handler"],
                              "investigation_overdue_due_date": "2026-12-01"},
    "resolution_overdue": {"resolution_overdue_cause": "方案待复核", "resolution_overdue_actions": ["urge_handler"],
                           "resolution_overdue_due_date": "2026-12-01"},
    "initial_review_overdue_again": {"initial_review_overdue_again_cause": "经办人休假",
                                     "initial_review_overdue_again_actions": ["reassign"],
                                     "initial_review_overdue_again_due_date": "2026-12-02"},
    "investigation_overdue_again": {"investigation_overdue_again_cause": "调查资料仍未到",
                                    "investigation_overdue_again_actions": ["urge_handler"],
                                    "investigation_overdue_again_due_date": "2026-12-02"},
    "resolution_overdue_again": {"resolution_overdue_again_cause": "方案仍待复核",
                                 "resolution_overdue_again_actions": ["urge_handler"],
                                 "resolution_overdue_again_due_date": "2026-12-02"},
    "confirmation_follow_up": {"confirmation_follow_up_reached": True, "confirmation_follow_up_method": "phone",
                               "confirmation_follow_up_notes": "已提醒客户确认，并告知再过5个工作日未答复视为接受"},
    "re_evaluation_overdue": {"re_evaluation_overdue_cause": "专员外出", "re_evaluation_overdue_measures": "督促当日完成"},
    "malicious_review_overdue": {"malicious_review_overdue_cause": "材料待核实",
                                 "malicious_review_overdue_measures": "督促尽快审核"},
    "decision_overdue": {"decision_overdue_cause": "外部鉴定未返回", "decision_overdue_measures": "督促并告知客户",
                         "customer_told_of_delay": True},
    "archive_overdue": {"archive_overdue_cause": "证据未收齐", "archive_overdue_measures": "督促补齐后归档"},
}

COMPLAINT = {
    "channel": "hotline", "customer_name": "张三", "phone": "13812345678", "email": "zhangsan@example.com",
    "id_type": "resident_id", "id_number": "110101199001061234", "policy_number": "PA-2026-0001",
    "claim_number": "CL-2026-0001", "category": "claim_delay", "product_line": "health", "description": "理赔申请提交一个月仍未赔付",
}


class Desk:
    """The handlers of one test: who works which role, and the calls they make."""

    def __init__(self, client, people):
        self.client, self.people = client, people

    def register(self, **overrides):
        body = {**COMPLAINT, "received_at": datetime.now(timezone.utc).isoformat(), **overrides}
        r = self.client.post("/api/v1/complaints", json=body, headers=self.people["customer_service"].headers)
        assert r.status_code == 201, r.json
        return r.json["number"]

    def complaint(self, number, who="compliance"):
        r = self.client.get(f"/api/v1/complaints/{number}", headers=self.people[who].headers)
        assert r.status_code == 200, r.json
        return r.json

    def open_tasks(self, number):
        return {t["element_id"]: t for t in self.complaint(number)["current_tasks"]}

    def task_id(self, number, element_id):
        tasks = self.open_tasks(number)
        assert element_id in tasks, f"{element_id} not open; open: {sorted(tasks)}"
        return tasks[element_id]["id"]

    def complete(self, number, element_id, who=None, expect=200, **changes):
        task = self.open_tasks(number)[element_id]
        who = who or task["role"]
        data = {**FORM_DATA.get(element_id, {}), **changes}
        r = self.client.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": data},
                             headers=self.people[who].headers)
        assert r.status_code == expect, r.json
        return r.json

    def walk(self, number, steps):
        for step in steps:
            element_id, changes = (step, {}) if isinstance(step, str) else step
            self.complete(number, element_id, **changes)

    def request_review(self, number, reason="赔付金额有误") -> dict:
        """The customer's request for a review (核查) of the decision, taken by customer service; the review's
        first task."""
        r = self.client.post(f"/api/v1/complaints/{number}/review-request", json={"reason": reason},
                             headers=self.people["customer_service"].headers)
        assert r.status_code == 201, r.json
        [task] = r.json["tasks"]
        return task

    def outbox(self, number):
        return [template for template, _payload in self.messages(number)]

    def messages(self, number):
        """(template, payload) of the messages written for the customer, oldest first."""
        from app.extensions import db
        from app.models import OutboxMessage
        from sqlalchemy import select
        return [(m.template, m.payload) for m in db.session.execute(select(OutboxMessage).where(
            OutboxMessage.business_key == number).order_by(OutboxMessage.id)).scalars()]


HAPPY_PATH = ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
              "customer_confirmation", "archive"]


def reviews_at_two_speeds_and_one_overdue(desk, clock):
    """Three complaints registered now: reviews done after 2 h and 6 h (median 4 h), one left
    overdue at 26 h; the clock ends at 26 h."""
    now = datetime.now(timezone.utc).isoformat()
    slow, fast = desk.register(received_at=now), desk.register(received_at=now)
    desk.register(received_at=now)
    clock.shift(timedelta(hours=2))
    desk.complete(fast, "initial_review")
    clock.shift(timedelta(hours=4))
    desk.complete(slow, "initial_review")
    clock.shift(timedelta(hours=20))
    return slow, fast


def complaint_row(number):
    """The complaint row as the database holds it now (the session's cache expired first)."""
    from app.extensions import db
    from app.models import Complaint
    from sqlalchemy import select
    db.session.expire_all()
    return db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()
