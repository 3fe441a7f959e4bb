"""Withdrawal (撤诉): the customer, or customer service for them, withdraws the complaint at any stage
before it is closed. The diagram's interrupting message boundary on the called handling process ends
everything that day: open tasks cancelled, the outcome recorded, the customer told."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from app.errors import Conflict
from app.extensions import db
from app.models import AuditEvent, Complaint, Deadline, OutboxMessage, ProcessInstance
from app.scheduler import fire_due_timers
from tests.flow import Desk

SH = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
WITHDRAWN = "complaint_withdrawn"
# The steps that lead to a stage: the open task named by the key.
STAGES = {
    "initial_review": [],
    "investigate": ["initial_review"],
    "management_decision": ["initial_review", "investigate", ("analyse_and_plan", {"compensation_amount": 80000})],
    "customer_confirmation": ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"],
}


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def main_instance(number) -> ProcessInstance:
    complaint = db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()
    return db.session.get(ProcessInstance, complaint.instance_id)


def withdraw(app, number, reason="已与理赔部门协商解决", by="customer", actor="customer"):
    return app.extensions["runtime"].send_message(main_instance(number).id, WITHDRAWN,
                                                  {"reason": reason, "by": by}, actor)


def messages(number):
    return db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key == number)
                              .order_by(OutboxMessage.id)).scalars().all()


def actions(number, action):
    return db.session.execute(select(AuditEvent).where(AuditEvent.business_key == number,
                                                       AuditEvent.action == action)).scalars().all()


@pytest.mark.clause("C-7.2", "C-3.5.1")
@pytest.mark.parametrize("stage", list(STAGES))
def test_withdrawal_at_any_stage_cancels_the_open_work_and_closes_that_day(app, desk, stage):
    with time_machine.travel(T0, tick=False):
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, STAGES[stage])
        assert list(desk.open_tasks(number)) == [stage]
        open_ids = [t["id"] for t in desk.complaint(number)["current_tasks"]]
        # pages offer withdrawal from the row alone
        assert WITHDRAWN in main_instance(number).awaits.split(",")

        change = withdraw(app, number)

        assert change.created_tasks == [] and [m.template for m in change.messages] == ["withdrawn"]
        view = desk.complaint(number)
        c = view["complaint"]
        assert c["outcome"] == "withdrawn" and c["status"] == "closed"
        assert c["closed_at"] == "2026-11-25T02:00:00+00:00"          # the day it was withdrawn
        assert view["current_tasks"] == []
        assert {t["id"]: t["state"] for t in view["tasks"] if t["id"] in open_ids} == \
            {task_id: "cancelled" for task_id in open_ids}
        assert [a.task_id for a in actions(number, "task_cancelled")] == open_ids
        last = messages(number)[-1]
        assert last.template == "withdrawn" and last.payload == {"reason": "已与理赔部门协商解决"}
        inst = main_instance(number)
        assert inst.status == "completed" and inst.awaits == "" and inst.next_timer_at is None
        assert not db.session.execute(select(Deadline).where(Deadline.instance_id == inst.id,
                                                             Deadline.state == "open")).first()
        # The deadlines that were running end with their tasks: cancelled, neither met nor missed.
        ended = {d["element_id"]: d["state"] for d in view["deadlines"]}
        # (the regulator's clock was met by the result before the customer's confirmation)
        assert ended["decision_clock"] == ("met" if stage == "customer_confirmation" else "cancelled")
        assert all(state in ("met", "cancelled") for state in ended.values())
        assert len(actions(number, "deadline_cancelled")) == list(ended.values()).count("cancelled")
        received = actions(number, "message_received")
        assert [(a.actor, a.data) for a in received] == [("customer", {"message": WITHDRAWN})]

        # A second withdrawal (a double click, or customer service after the customer) changes nothing.
        before = (inst.row_version, len(messages(number)), len(actions(number, "message_received")))
        with pytest.raises(Conflict) as refused:
            withdraw(app, number)
        assert refused.value.code == "not_waiting" and WITHDRAWN in str(refused.value)
        inst = main_instance(number)
        assert (inst.row_version, len(messages(number)), len(actions(number, "message_received"))) == before


@pytest.mark.clause("C-7.2")
def test_withdrawal_also_ends_open_deadline_follow_ups(app, desk, people):
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.walk(number, STAGES["management_decision"])
        clock.move_to(datetime(2026, 12, 8, 10, 0, tzinfo=SH))         # both the 3- and 7-day deadlines passed
        assert fire_due_timers(app) == 1
        assert set(desk.open_tasks(number)) == {"management_decision", "resolution_overdue"}

        withdraw(app, number, reason="", by="customer_service", actor=people["customer_service"].user.username)

        view = desk.complaint(number)
        assert view["current_tasks"] == [] and view["complaint"]["outcome"] == "withdrawn"
        assert {t["element_id"]: t["state"] for t in view["tasks"]}["resolution_overdue"] == "cancelled"
        assert messages(number)[-1].payload == {"reason": ""}
        assert main_instance(number).status == "completed"
        assert actions(number, "message_received")[0].actor == "customer_service"
        assert fire_due_timers(app) == 0


@pytest.mark.clause("C-7.2")
def test_a_closed_complaint_cannot_be_withdrawn(app, desk):
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                       "customer_confirmation", "archive"])
    inst = main_instance(number)
    assert inst.status == "completed" and inst.awaits == ""
    with pytest.raises(Conflict) as refused:
        withdraw(app, number)
    assert refused.value.code == "not_waiting"
    assert desk.complaint(number)["complaint"]["outcome"] == "resolved"
    assert actions(number, "message_received") == []


def test_a_late_follow_up_does_not_bring_back_stale_values(app, desk):
    """The handling is a called process: when its last branch to end is a deadline follow-up from
    round 1, the data it carries back must not overwrite what the later rounds recorded."""
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(received_at=T0.isoformat())
        desk.complete(number, "initial_review")
        clock.move_to(datetime(2026, 12, 1, 10, 0, tzinfo=SH))
        assert fire_due_timers(app) == 1                               # round 1's investigation is overdue
        desk.walk(number, ["investigate", "analyse_and_plan", "feedback_to_customer",
                           ("customer_confirmation", {"satisfied": False, "dissatisfaction_reasons": "金额太低"}),
                           ("re_evaluation", {"needs_investigation": False}),
                           "analyse_and_plan", "feedback_to_customer", "customer_confirmation", "archive"])
        assert list(desk.open_tasks(number)) == ["investigation_overdue"]
        desk.complete(number, "investigation_overdue", investigation_overdue_cause="调查资料未到",
                      investigation_overdue_actions=["urge_handler"], investigation_overdue_due_date="2026-12-02")
        c = desk.complaint(number)["complaint"]
        assert main_instance(number).status == "completed"
        assert (c["rounds"], c["outcome"], c["satisfied"], c["status"]) == (2, "resolved", True, "closed")
