"""The API's lists are read as plain rows and dumped by app/api/rows.py: each must give exactly what its
marshmallow schema gives for the same record (the schemas are the OpenAPI contract)."""
import pytest
from sqlalchemy import select

from app.api.complaints import DEADLINE_ROW, HISTORY_ROW, SUMMARY, SUMMARY_ROW, TASK_ROW
from app.api.rows import RowDump
from app.api.schemas import AuditOut, ComplaintOut, DeadlineOut, QueueComplaintOut, TaskOut
from app.api.tasks import QUEUE_COMPLAINT_ROW
from app.extensions import db
from app.models import AuditEvent, Complaint, Deadline, HumanTask
from tests.flow import Desk


def dumped_both_ways(row_dump, schema, model, condition):
    """(the rows' dumps, the schema's dumps of the ORM objects) of the records matching `condition`."""
    db.session.expire_all()
    order = model.__table__.primary_key.columns.values()
    rows = db.session.execute(select(*row_dump.columns).where(condition).order_by(*order)).all()
    objects = db.session.execute(select(model).where(condition).order_by(*order)).scalars().all()
    assert rows, "nothing to compare"
    return row_dump.many(rows), schema.dump(objects, many=True)


def test_every_list_dumps_its_rows_as_its_schema_does(client, people):
    desk = Desk(client, people)
    number, untouched = desk.register(), desk.register()
    desk.complete(number, "initial_review")
    investigate = desk.task_id(number, "investigate")
    assert client.post(f"/api/v1/tasks/{investigate}/claim",
                       headers=people["claims_specialist"].headers).status_code == 200
    tasks, expected = dumped_both_ways(TASK_ROW, TaskOut(), HumanTask,
                                       HumanTask.business_key.in_((number, untouched)))
    assert tasks == expected
    # What the computed columns stand for is there: a holder, a completer, a form, a deadline.
    assert {t["assignee"] for t in tasks} >= {"claims_specialist", None}
    assert {t["completed_by"] for t in tasks} == {"customer_service", None}
    assert all(t["has_form"] is True for t in tasks) and any(t["due_at"] for t in tasks)
    complaint = Complaint.number == number
    deadlines, expected = dumped_both_ways(DEADLINE_ROW, DeadlineOut(), Deadline,
                                           Deadline.instance_id.in_(select(Complaint.instance_id).where(complaint)))
    assert deadlines == expected and {d["state"] for d in deadlines} >= {"met", "open"}
    assert all(type(d["provisional"]) is bool for d in deadlines)     # not 0/1 from SQLite
    history, expected = dumped_both_ways(HISTORY_ROW, AuditOut(), AuditEvent, AuditEvent.business_key == number)
    assert history == expected and any(h["data"] for h in history)
    for row_dump, schema in ((SUMMARY_ROW, ComplaintOut(only=SUMMARY)), (QUEUE_COMPLAINT_ROW, QueueComplaintOut())):
        rows, expected = dumped_both_ways(row_dump, schema, Complaint, complaint)
        assert rows == expected and rows[0]["received_at"]


def test_a_computed_field_must_be_given_its_column():
    with pytest.raises(TypeError, match="assignee is computed"):
        RowDump(TaskOut(), HumanTask, computed={"complaint_number": HumanTask.business_key})
    with pytest.raises(TypeError, match="no field"):
        RowDump(AuditOut(), AuditEvent, computed={"nonsense": AuditEvent.id})
