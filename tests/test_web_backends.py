"""The web UI's database paths on every backend: a complaint carried from registration to investigation
through the HTML routes (register, the queue page, claim, the task forms, the complaint page) on SQLite and
PostgreSQL. The rest of the web UI's tests (test_web.py) and the browser tests check the pages on SQLite only;
this walk keeps the pages' own queries (the queue rows, the task and complaint pages) running on PostgreSQL."""
import re

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Complaint
from app.timeutil import BUSINESS_TZ, utcnow
from tests.test_web import as_, browser, flashes, fresh, open_task, task_ids, text  # noqa: F401 (browser: fixture)


# ---- the whole way from registration to investigation through the pages ---------------------------------
def test_register_claim_and_complete_through_the_pages(browser, people):
    cs = as_(browser, "customer_service")
    received = utcnow().astimezone(BUSINESS_TZ).strftime("%Y-%m-%dT%H:%M")
    r = cs.post("/complaints/new", {
        "channel": "mobile_app", "customer_name": "王五", "phone": "139 0000 1111", "email": "wang@example.com",
        "id_number": "", "policy_number": "PA-9", "claim_number": "CL-9", "claim_handler": "claims_specialist_2",
        "category": "claim_delay", "product_line": "health", "description": "理赔迟迟未到账",
        "received_at": received})
    assert r.status_code == 302
    number = r.location.rsplit("/", 1)[1]
    r = cs.get(r.location)
    assert re.search(rf'data-testid="complaint-number">{number}<', r.text)
    assert "登记成功" in text(r) and "banner-new" in r.text
    assert re.search(r'href="/complaints/new" data-testid="register-next"', r.text)     # register the next one
    assert "登记下一件" in text(r) and "登记下一件" not in text(cs.get(f"/complaints/{number}"))   # only right after
    fresh()
    complaint = db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()
    assert complaint.channel == "mobile_app" and complaint.id_number is None
    assert complaint.claim_handler == "claims_specialist_2"
    assert complaint.received_at.astimezone(BUSINESS_TZ).strftime("%Y-%m-%dT%H:%M") == received   # Beijing time

    review = open_task(number, "initial_review")
    assert review.id in task_ids(cs.get("/"), "available")
    cs.post(f"/tasks/{review.id}/claim", page="/")
    r = cs.post(f"/tasks/{review.id}", {"decision": "accept", "risk_level": "low", "review_notes": "符合受理条件"})
    assert r.status_code == 302 and r.location == "/"
    assert any("下一步：调查取证" in m for m in flashes(cs.get("/")))

    specialist = as_(browser, "claims_specialist")
    investigate = open_task(number, "investigate")
    assert investigate.id in task_ids(specialist.get("/"), "available")
    assert investigate.id not in task_ids(as_(browser, "claims_specialist_2").get("/"), "available")   # 回避
    specialist.post(f"/tasks/{investigate.id}/claim", page="/")
    r = specialist.get(f"/tasks/{investigate.id}")
    assert 'type="radio" id="f-customer_contacted-1" name="customer_contacted" value="true"' in r.text
    r = specialist.post(f"/tasks/{investigate.id}", {"findings": "审核积压", "evidence": "",
                                                     "customer_contacted": "true"})
    assert r.status_code == 302
    fresh()
    event = db.session.execute(select(AuditEvent).where(AuditEvent.task_id == investigate.id,
                                                        AuditEvent.action == "task_completed")).scalar_one()
    assert event.data["form_data"] == {"findings": "审核积压", "customer_contacted": True}
    plan = open_task(number, "analyse_and_plan")
    assert plan.id in task_ids(specialist.get("/"), "available")
    r = specialist.get(f"/complaints/{number}")
    assert "分析原因并制定方案" in text(r)
