"""Personal data lives in one place: the complaint row. Workflows, snapshots, audit rows and outbox
payloads carry none of it; every view that shows it is masked by role and audited; a phone or ID
number is searched from the request body, never the URL; and migration 0009 moves it out of the
workflows stored before."""
import json

import pytest
from alembic.command import downgrade, upgrade
from sqlalchemy import select, text

from app.config import ROOT
from app.engine.registry import deploy
from app.extensions import db, migrate
from app.models import AuditEvent, Complaint, InstanceSnapshot, OutboxMessage, ProcessInstance
from tests.flow import COMPLAINT, HAPPY_PATH, Desk
from tests.test_api_errors import assert_error

pytestmark = pytest.mark.clause("C-7.1")
PERSONAL_VALUES = [COMPLAINT[k] for k in ("customer_name", "phone", "email", "id_number")]


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def stored_elsewhere() -> str:
    """Everything stored outside the complaint row that could hold personal data, as one text."""
    db.session.expire_all()
    parts = [i.workflow_json for i in db.session.execute(select(ProcessInstance)).scalars()]
    parts += [s.workflow_json for s in db.session.execute(select(InstanceSnapshot)).scalars()]
    parts += [json.dumps(e.data, ensure_ascii=False) for e in db.session.execute(select(AuditEvent)).scalars()]
    parts += [json.dumps(m.payload, ensure_ascii=False) for m in db.session.execute(select(OutboxMessage)).scalars()]
    return "\n".join(parts)


def test_a_whole_complaint_leaves_personal_data_only_on_the_complaint_row(desk, client, people, caplog):
    caplog.set_level("DEBUG")
    number = desk.register()
    desk.walk(number, HAPPY_PATH)
    client.post("/api/v1/complaints/search", json={"q": COMPLAINT["phone"]}, headers=people["compliance"].headers)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert desk.outbox(number)                                   # messages were written
    stored = stored_elsewhere()
    for value in PERSONAL_VALUES:
        assert value not in stored and value not in logged
    record = db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()
    assert [record.customer_name, record.phone, record.email, record.id_number] == PERSONAL_VALUES


def test_a_snapshot_shows_no_personal_data_even_from_an_old_workflow(desk, client, people):
    number = desk.register()
    inst = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()
    old = json.loads(inst.workflow_json)
    for task in old["tasks"].values():                           # as workflows were written before 0009
        task["data"].update({"phone": COMPLAINT["phone"], "id_number": COMPLAINT["id_number"]})
    snap = InstanceSnapshot(instance_id=inst.id, version_id=inst.version_id, workflow_json=json.dumps(old),
                            reason="test", created_by="test")
    db.session.add(snap)
    db.session.commit()
    for who in ("compliance", "customer_service", "process_owner"):
        r = client.get(f"/api/v1/complaints/{number}/snapshots/{snap.id}", headers=people[who].headers)
        assert r.status_code == 200
        assert COMPLAINT["phone"] not in r.text and COMPLAINT["id_number"] not in r.text


def test_search_by_phone_or_id_number_comes_from_the_body_and_is_masked(desk, client, people):
    number = desk.register()
    headers = people["claims_specialist"].headers
    for q in (COMPLAINT["phone"], COMPLAINT["id_number"]):
        r = client.post("/api/v1/complaints/search", json={"q": q}, headers=headers)
        assert r.status_code == 200 and [c["number"] for c in r.json["items"]] == [number]
        assert r.json["items"][0]["phone"] == "138****5678"
        # In a URL a personal identifier finds nothing: it is never looked up from there.
        assert client.get(f"/api/v1/complaints?q={q}", headers=headers).json["total"] == 0
    assert client.get(f"/api/v1/complaints?q={COMPLAINT['policy_number']}", headers=headers).json["total"] == 1
    assert_error(client.post("/api/v1/complaints/search", json={"q": " "}, headers=headers), 400, "bad_query")


def test_migration_0009_moves_personal_data_out_of_stored_workflows(app, desk, bundles):
    number = desk.register()
    inst = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)).scalar_one()
    old = json.loads(inst.workflow_json)
    for task in old["tasks"].values():
        task["data"].update({k: COMPLAINT[k] for k in ("customer_name", "phone", "email", "id_number")})
    inst_id, old_json = inst.id, json.dumps(old, ensure_ascii=False)
    db.session.execute(text("UPDATE process_instance SET workflow_json = :j WHERE id = :i"),
                       {"j": old_json, "i": inst_id})
    db.session.add(InstanceSnapshot(instance_id=inst_id, version_id=inst.version_id, workflow_json=old_json,
                                    reason="test", created_by="test"))
    db.session.commit()
    db.session.remove()
    config = migrate.get_config(directory=str(ROOT / "migrations"))
    downgrade(config, "0008")
    upgrade(config, "head")
    stored = stored_elsewhere()
    for value in PERSONAL_VALUES:
        assert value not in stored
    # Everything else in the workflow is as it was: the complaint goes on (its version lost its message
    # templates going below 0012; the app's start deploys them again in a newer version, which it borrows).
    assert json.loads(db.session.get(ProcessInstance, inst_id).workflow_json)["tasks"].keys() == old["tasks"].keys()
    deploy(db.session, bundles, "test")
    db.session.commit()
    desk.complete(number, "initial_review")


def test_migration_0011_keeps_a_free_text_claim_handler_as_outside_the_system(app, desk, people):
    number = desk.register()
    db.session.execute(text("UPDATE complaint SET claim_handler = 'Spec_H ' WHERE number = :n"), {"n": number})
    known = desk.register(claim_handler="claims_specialist")
    db.session.commit()
    db.session.remove()
    config = migrate.get_config(directory=str(ROOT / "migrations"))
    downgrade(config, "0010")
    upgrade(config, "head")
    rows = {c.number: (c.claim_handler, c.claim_handler_external)
            for c in db.session.execute(select(Complaint)).scalars()}
    assert rows == {number: (None, "Spec_H "), known: ("claims_specialist", None)}


def test_a_database_error_does_not_carry_the_values_into_a_log(app, desk):
    """hide_parameters: the message of a failed statement (logged with its traceback) names no value."""
    from sqlalchemy.exc import IntegrityError
    number = desk.register()
    db.session.add(Complaint(number=number, channel="hotline", customer_name=COMPLAINT["customer_name"],
                             phone=COMPLAINT["phone"], id_number=COMPLAINT["id_number"], category="x",
                             description="x", received_at=db.session.execute(
                                 select(Complaint.received_at)).scalar_one()))
    with pytest.raises(IntegrityError) as err:
        db.session.commit()
    db.session.rollback()
    assert COMPLAINT["phone"] not in str(err.value) and COMPLAINT["id_number"] not in str(err.value)
