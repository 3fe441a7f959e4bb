"""The customer's own page (/my/) over HTTP on every database backend: a link from a message opens it
with the portal's own cookie and leaves the address bar; bad, expired and tampered links and cookies
get a clear page and change nothing, and are rate-limited per address; the customer confirms the
result (same validation as customer service, recorded as the customer), answers the survey once,
withdraws, and asks for a review inside its window only; staff and customer sessions never open each
other's pages; every POST needs its CSRF token."""
import html
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import portal_links
from app.extensions import db
from app.engine.runtime import customer_may_answer
from app.portal.forms import customer_schema
from app.models import (AuditEvent, Complaint, Delivery, HumanTask, OutboxMessage, PortalLink, ProcessInstance,
                        SurveyResponse)
from app.timeutil import utcnow
from tests.flow import Desk
from tests.sql_capture import statements_of

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
TO_CONFIRMATION = ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer"]


class Phone:
    """One browser: its own cookies, each request in its own app context (as in production), the
    CSRF token read from the page the form is on."""

    def __init__(self, app, address="127.0.0.1"):
        self.app, self.client = app, app.test_client()
        self.environ = {"REMOTE_ADDR": address}

    def open(self, url, method="GET", **kwargs):
        with self.app.app_context():
            return self.client.open(url, method=method, environ_base=self.environ, **kwargs)

    def get(self, url, **kwargs):
        return self.open(url, **kwargs)

    def post(self, url, data=None, page=None, token=True, **kwargs):
        if "json" in kwargs:
            return self.open(url, method="POST", **kwargs)
        data = dict(data or {})
        if token:
            found = TOKEN.search(self.get(page or url).text)
            assert found, f"no csrf_token on {page or url}"
            data.setdefault("csrf_token", found.group(1))
        return self.open(url, method="POST", data=data, **kwargs)

    def cookie(self):
        return self.client.get_cookie("portal", path="/my")


def text(response) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def reason(response):
    found = re.search(r'data-testid="problem" data-reason="([^"]+)"', response.text)
    return found.group(1) if found else None


def fresh():
    db.session.rollback()
    db.session.expire_all()


@pytest.fixture
def desk(app, people):
    """Customer service and colleagues, over the API."""
    return Desk(Phone(app, "10.9.9.9"), people)


def complaint_of(number) -> Complaint:
    fresh()
    return db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()


def link_token(app, number, days=90, body=None) -> str:
    """The token of the newest message's link, valid for `days` from now; the message and link are
    written as the outbox does if there are none, and `body` replaces the message's text."""
    complaint = complaint_of(number)
    message = db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key == number)
                                 .order_by(OutboxMessage.id.desc()).limit(1)).scalar_one_or_none()
    if message is None:
        message = OutboxMessage(instance_id=complaint.instance_id, business_key=number, template="acknowledgement",
                                payload={}, status="queued")
        db.session.add(message)
    if body is not None:
        message.subject, message.body = "投诉登记回执", body
    if not message.key:
        message.key = uuid.uuid4().hex
    db.session.flush()
    link = db.session.execute(select(PortalLink).where(PortalLink.message_id == message.id)).scalar_one_or_none()
    if link is None:
        link = portal_links.record(db.session, portal_links.secret(app.config), complaint, message, days)
    link.expires_at = utcnow() + timedelta(days=days)
    db.session.commit()
    return portal_links.token_for(portal_links.secret(app.config), message.key)


def opened(app, number, **kwargs) -> Phone:
    phone = Phone(app)
    r = phone.get(f"/my/{link_token(app, number, **kwargs)}")
    assert r.status_code == 302 and r.location == "/my/", r.text
    return phone


def at_confirmation(desk) -> str:
    number = desk.register()
    desk.walk(number, TO_CONFIRMATION)
    return number


def task_row(number, element_id) -> HumanTask:
    fresh()
    return db.session.execute(select(HumanTask).join(ProcessInstance, HumanTask.instance_id == ProcessInstance.id)
                              .where(ProcessInstance.business_key == number, HumanTask.element_id == element_id)
                              .order_by(HumanTask.created_at.desc()).limit(1)).scalar_one()


def customer_events(number, action=None):
    fresh()
    query = select(AuditEvent).where(AuditEvent.business_key == number, AuditEvent.actor == "customer")
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.execute(query).scalars())


# ---- coming in ---------------------------------------------------------------------------------------------
def test_a_link_opens_the_page_with_its_own_cookie_and_leaves_the_address_bar(app, desk):
    number = desk.register()
    token = link_token(app, number, body="尊敬的张三：您的投诉已登记。联系电话 13812345678。查看进展：{{portal_link}}")
    phone = Phone(app)
    r = phone.get(f"/my/{token}")
    assert r.status_code == 302 and r.location == "/my/"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("portal="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/my" in cookie
    assert token not in cookie
    fresh()
    assert db.session.execute(select(PortalLink.last_used_at)).scalar() is not None

    page = phone.get("/my/")
    body = text(page)
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert number in body and "已登记" in body
    assert "张*" in body and "138****5678" in body
    assert "张三" not in page.text and "13812345678" not in page.text and token not in page.text
    assert "{{portal_link}}" not in page.text and "本页面" in body
    assert 'data-testid="message-subject">投诉登记回执' in page.text


def test_what_became_of_each_message_is_said_in_plain_words(app, desk):
    number = desk.register(phone="13900001111", email=None)
    token = link_token(app, number)
    fresh()
    message = db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key == number)
                                 .order_by(OutboxMessage.id.desc()).limit(1)).scalar_one()
    message.status = "failed"
    db.session.execute(Delivery.__table__.delete().where(Delivery.message_id == message.id))
    db.session.add_all([Delivery(message_id=message.id, channel="sms", status="failed", last_error="HTTP 500"),
                        Delivery(message_id=message.id, channel="none", status="failed", last_error="no channel")])
    db.session.commit()
    phone = Phone(app)
    phone.get(f"/my/{token}")
    page = phone.get("/my/")
    assert 'data-testid="message-status" data-status="failed"' in page.text
    assert "短信: 未能送达，我们会与您联系" in text(page)
    assert "none" not in text(page) and "HTTP 500" not in page.text


def test_the_page_speaks_the_customers_language_and_switches(app, desk):
    number = desk.register(language="en")
    phone = opened(app, number)
    assert "Complaint number" in text(phone.get("/my/"))
    r = phone.get("/my/language/zh")
    assert r.status_code == 302 and r.location == "/my/"
    assert "投诉编号" in text(phone.get("/my/"))
    phone.get("/my/language/en")
    assert "Complaint received" in text(phone.get("/my/"))


@pytest.mark.parametrize("how", ["unknown", "tampered", "expired"])
def test_a_bad_link_gets_a_clear_page_and_changes_nothing(app, desk, how):
    number = desk.register(language="en" if how == "expired" else "zh")
    token = link_token(app, number, days=-1 if how == "expired" else 90)
    url = {"unknown": "/my/" + "a" * 48, "tampered": f"/my/{token[:-1]}{'0' if token[-1] != '0' else '1'}",
           "expired": f"/my/{token}"}[how]
    phone = Phone(app)
    r = phone.get(url)
    assert r.status_code == (410 if how == "expired" else 404)
    assert reason(r) == ("expired_link" if how == "expired" else "unknown_link")
    assert "95500" in text(r)
    if how == "expired":
        assert "This link has expired" in text(r)             # in the complaint's language
    else:
        assert "此链接无法使用" in text(r)
    assert not any(c.startswith("portal=") for c in r.headers.getlist("Set-Cookie"))
    assert phone.cookie() is None
    fresh()
    assert db.session.execute(select(PortalLink.last_used_at)).scalar() is None
    assert phone.get("/my/").status_code == 403


def test_a_tampered_cookie_or_an_expired_link_behind_it_opens_nothing(app, desk):
    number = desk.register()
    phone = opened(app, number)
    good = phone.cookie().value
    phone.client.set_cookie("portal", good[:-2] + ("AA" if not good.endswith("AA") else "BB"), path="/my")
    r = phone.get("/my/")
    assert r.status_code == 403 and reason(r) == "no_access" and number not in r.text
    assert any(c.startswith("portal=;") for c in r.headers.getlist("Set-Cookie"))      # removed

    phone = opened(app, number)
    fresh()
    db.session.execute(PortalLink.__table__.update().values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    r = phone.get("/my/")
    assert r.status_code == 410 and reason(r) == "expired_link" and number not in r.text


def test_bad_links_are_limited_per_address(app, desk):
    number = desk.register()
    token = link_token(app, number)
    guesser = Phone(app, "10.1.1.1")
    for i in range(20):
        assert guesser.get(f"/my/{i:048x}").status_code == 404
    r = guesser.get(f"/my/{30:048x}")                    # the next guess is refused for a while
    assert r.status_code == 429 and reason(r) == "too_many" and int(r.headers["Retry-After"]) > 0
    assert guesser.cookie() is None
    # A real link still opens from that address: customers behind one address are not locked out.
    assert guesser.get(f"/my/{token}").status_code == 302
    assert Phone(app, "10.1.1.2").get(f"/my/{token}").status_code == 302


# ---- staff and customer stay apart -------------------------------------------------------------------------
def test_a_staff_session_does_not_open_the_portal_nor_a_portal_cookie_staff_pages(app, desk):
    number = desk.register()
    staff = Phone(app)
    r = staff.post("/login", {"username": "customer_service", "password": "pw-customer_service"})
    assert r.status_code == 302
    r = staff.get("/my/")
    assert r.status_code == 403 and reason(r) == "no_access" and number not in r.text
    assert "customer_service" not in r.text

    customer = opened(app, number)
    r = customer.get("/")
    assert r.status_code == 302 and "/login" in r.location
    assert customer.get(f"/complaints/{number}").status_code == 302
    assert customer.get(f"/api/v1/complaints/{number}").status_code == 401


def test_every_portal_post_needs_its_csrf_token(app, desk):
    number = at_confirmation(desk)
    phone = opened(app, number)
    task_id = task_row(number, "customer_confirmation").id
    for url, data in ((f"/my/answer/{task_id}", {"satisfied": "true", "customer_feedback": "好"}),
                      ("/my/withdraw", {"reason": "x"}), ("/my/leave", {})):
        r = phone.post(url, data, token=False)
        assert r.status_code == 400 and reason(r) == "form_expired", url
    assert task_row(number, "customer_confirmation").state == "open"
    assert customer_events(number) == []
    assert phone.get("/my/").status_code == 200


# ---- confirming the result --------------------------------------------------------------------------------
def test_the_customer_confirms_dissatisfied_with_reasons_and_missing_reasons_are_refused(app, desk):
    number = at_confirmation(desk)
    phone = opened(app, number)
    home = phone.get("/my/")
    assert 'data-status="waiting_for_you"' in home.text and "请确认处理结果" in text(home)
    task_id = task_row(number, "customer_confirmation").id
    form = phone.get(f"/my/answer/{task_id}")
    assert form.status_code == 200 and "请确认处理结果" in text(form)    # the form's x-customer wording
    assert "[C-3.4.2]" not in form.text                  # the staff's description is not the customer's

    r = phone.post(f"/my/answer/{task_id}", {"satisfied": "false", "customer_feedback": "赔付金额太低"})
    assert r.status_code == 422
    assert 'data-testid="error-dissatisfaction_reasons"' in r.text
    assert "赔付金额太低" in r.text and 'value="false" data-testid="input-satisfied-false" checked' in r.text
    assert task_row(number, "customer_confirmation").state == "open"

    r = phone.post(f"/my/answer/{task_id}", {"satisfied": "false", "customer_feedback": "赔付金额太低",
                                             "dissatisfaction_reasons": "未考虑医疗费用"}, page=f"/my/answer/{task_id}")
    assert r.status_code == 200 and 'data-what="answered"' in r.text and "未考虑医疗费用" in text(r)
    row = task_row(number, "customer_confirmation")
    assert row.state == "completed" and row.completed_by_customer and row.completed_by_id is None
    [event] = customer_events(number, "task_completed")
    assert event.task_id == task_id and event.data["form_data"]["satisfied"] is False
    assert "re_evaluation" in desk.open_tasks(number)
    assert 'data-status="being_handled"' in phone.get("/my/").text

    again = phone.post(f"/my/answer/{task_id}", {"satisfied": "true", "customer_feedback": "好"},
                       page="/my/")
    assert again.status_code == 409 and reason(again) == "already_recorded"
    assert len(customer_events(number, "task_completed")) == 1


def test_an_answer_recorded_by_customer_service_first_is_not_overwritten(app, desk):
    number = at_confirmation(desk)
    phone = opened(app, number)
    task_id = task_row(number, "customer_confirmation").id
    page = phone.get(f"/my/answer/{task_id}")
    desk.complete(number, "customer_confirmation")                     # by phone, through customer service
    r = phone.post(f"/my/answer/{task_id}", {"satisfied": "false", "customer_feedback": "x",
                                             "dissatisfaction_reasons": "y", "csrf_token":
                                             TOKEN.search(page.text).group(1)}, token=False)
    assert r.status_code == 409 and reason(r) == "already_recorded"
    row = task_row(number, "customer_confirmation")
    assert not row.completed_by_customer and customer_events(number) == []
    assert complaint_of(number).satisfied is True


def confirmed_satisfied(app, desk) -> tuple:
    """(the customer's browser, the complaint's number) once they confirmed its result as satisfied, so that the
    survey is offered."""
    number = at_confirmation(desk)
    phone = opened(app, number)
    task_id = task_row(number, "customer_confirmation").id
    r = phone.post(f"/my/answer/{task_id}", {"satisfied": "true", "customer_feedback": "处理及时"})
    assert r.status_code == 200
    return phone, number


def test_satisfied_then_the_survey_is_answered_once(app, desk):
    phone, number = confirmed_satisfied(app, desk)
    assert complaint_of(number).satisfied is True
    home = phone.get("/my/")
    assert 'data-testid="action-survey"' in home.text

    form = phone.get("/my/survey")
    assert 'type="radio" name="overall" value="5"' in form.text           # ratings to tap, not a drop-down
    r = phone.post("/my/survey", {"overall": "5"})
    assert r.status_code == 422 and 'data-testid="error-speed"' in r.text
    answers = {"overall": "5", "speed": "4", "communication": "4", "fairness": "5", "recommend": "5",
               "comment": "谢谢"}
    r = phone.post("/my/survey", answers)
    assert r.status_code == 200 and 'data-what="survey"' in r.text
    fresh()
    [response] = db.session.execute(select(SurveyResponse)).scalars()
    assert response.form == "satisfaction_survey" and response.answers["overall"] == 5
    assert response.answers["comment"] == "谢谢"
    [event] = customer_events(number, "survey_answered")
    assert event.data == {"form": "satisfaction_survey"}

    again = phone.post("/my/survey", answers, page="/my/")
    assert again.status_code == 409 and reason(again) == "survey_answered"
    assert db.session.execute(select(func.count(SurveyResponse.id))).scalar() == 1
    assert 'data-testid="action-survey"' not in phone.get("/my/").text
    # Reported later: the answers are in the complaint's case file, and the confirmation shows as the customer's.
    record = app.test_client().get(f"/api/v1/complaints/{number}/case-file", headers=desk.people["compliance"].headers)
    assert record.json["survey"]["answers"]["overall"] == 5
    [confirmation] = [d for d in record.json["decisions"] if d["element_id"] == "customer_confirmation"]
    assert confirmation["completed_by"] == "customer"


# ---- withdrawing -------------------------------------------------------------------------------------------
def test_the_customer_withdraws_the_complaint(app, desk):
    number = desk.register()
    phone = opened(app, number)
    assert 'data-testid="action-withdraw"' in phone.get("/my/").text
    confirm = phone.get("/my/withdraw")
    assert confirm.status_code == 200 and "结束" in text(confirm)
    r = phone.post("/my/withdraw", {"reason": "已与理赔员协商解决"})
    assert r.status_code == 200 and 'data-what="withdrawn"' in r.text
    complaint = complaint_of(number)
    assert complaint.status == "closed" and complaint.outcome == "withdrawn"
    assert desk.open_tasks(number) == {}
    assert customer_events(number)                       # the message, recorded as the customer's
    home = phone.get("/my/")
    assert 'data-status="withdrawn"' in home.text and 'data-testid="action-withdraw"' not in home.text
    again = phone.post("/my/withdraw", {"reason": ""}, page="/my/")
    assert again.status_code == 409 and reason(again) == "withdrawn"


def test_refused_input_gets_the_customers_own_page_in_their_language(app, desk):
    """NUL in a reason, a bad address, a body over the limit: the portal's page (not the staff's), in English for
    an English customer, and nothing changed."""
    number = desk.register(language="en")
    phone = opened(app, number)
    for r, why, status in ((phone.post("/my/withdraw", {"reason": "a\x00b"}), "bad_text", 422),
                           (phone.get("/my/?x=%00"), "bad_address", 400),
                           (phone.post("/my/withdraw", {"reason": "x" * (6 * 1024 * 1024)}), "too_large", 413)):
        assert r.status_code == status and reason(r) == why, (why, r.status_code)
        assert "Back to my work" not in text(r) and "返回我的工作" not in text(r), why          # not the staff's page
        assert ("Nothing was saved" in text(r)) == (why != "bad_address"), why
    fresh()
    assert complaint_of(number).status == "open"


# ---- asking for a review -----------------------------------------------------------------------------------
def set_review_until(number, delta):
    complaint = complaint_of(number)
    complaint.review_until = utcnow() + delta
    db.session.commit()


def review_instances(number) -> int:
    fresh()
    return db.session.execute(select(func.count(ProcessInstance.id)).where(
        ProcessInstance.business_key == number, ProcessInstance.process_id == "complaint_review")).scalar()


def test_a_review_is_asked_for_inside_its_window_once(app, desk):
    number = desk.register()
    set_review_until(number, timedelta(days=30))
    phone = opened(app, number)
    assert 'data-testid="action-review"' in phone.get("/my/").text
    r = phone.post("/my/review", {"reason": "  "})
    assert r.status_code == 422 and 'data-testid="error-reason"' in r.text
    assert review_instances(number) == 0
    r = phone.post("/my/review", {"reason": "赔付金额计算有误"})
    assert r.status_code == 200 and 'data-what="review"' in r.text
    assert review_instances(number) == 1
    assert len(customer_events(number, "review_requested")) == 1
    home = phone.get("/my/")
    assert 'data-testid="review-requested"' in home.text and 'data-testid="action-review"' not in home.text
    again = phone.post("/my/review", {"reason": "再次申请"}, page="/my/")
    assert again.status_code == 409 and reason(again) == "review_requested"
    assert review_instances(number) == 1


def test_after_the_window_a_review_is_refused_with_the_date(app, desk):
    number = desk.register()
    set_review_until(number, timedelta(days=30))
    phone = opened(app, number)
    page = phone.get("/my/review")
    set_review_until(number, -timedelta(minutes=1))
    home = phone.get("/my/")
    assert 'data-testid="action-review"' not in home.text and 'data-testid="review-ended"' in home.text
    r = phone.post("/my/review", {"reason": "迟到的申请", "csrf_token": TOKEN.search(page.text).group(1)},
                   token=False)
    assert r.status_code == 409 and reason(r) == "review_ended" and "核查" in text(r)
    assert review_instances(number) == 0 and customer_events(number) == []


def test_nothing_personal_in_what_the_customer_left_in_the_audit_trail(app, desk):
    number = at_confirmation(desk)
    phone = opened(app, number)
    task_id = task_row(number, "customer_confirmation").id
    phone.post(f"/my/answer/{task_id}", {"satisfied": "true", "customer_feedback": "好"})
    for event in customer_events(number):
        dumped = str(event.data)
        assert "张三" not in dumped and "13812345678" not in dumped and "zhangsan" not in dumped


def test_a_forms_customer_wording_replaces_the_staffs():
    schema = {"title": "客户确认", "x-title-en": "Customer confirmation", "description": "[C-3.4.2] 请客户确认",
              "type": "object", "required": ["satisfied"],
              "properties": {"satisfied": {"type": "boolean", "title": "客户是否满意",
                                           "x-title-en": "Is the customer satisfied?"},
                             "note": {"type": "string", "title": "备注"}},
              "x-customer": {"title": "请确认处理结果", "properties": {"satisfied": {"title": "您满意吗？"}}}}
    shown = customer_schema(schema)
    assert shown["title"] == "请确认处理结果" and "x-title-en" not in shown and "description" not in shown
    assert shown["properties"]["satisfied"] == {"type": "boolean", "title": "您满意吗？"}
    assert shown["properties"]["note"] == schema["properties"]["note"] and shown["required"] == ["satisfied"]
    # A choice's names go in pairs too: the customer's Chinese names drop the staff's English ones.
    rated = {"type": "object", "properties": {"score": {"type": "integer", "enum": [1, 2], "x-enumNames": ["差", "好"],
                                                        "x-enumNames-en": ["Poor", "Good"]}},
             "x-customer": {"properties": {"score": {"x-enumNames": ["不满意", "满意"]}}}}
    assert customer_schema(rated)["properties"]["score"] == {"type": "integer", "enum": [1, 2],
                                                            "x-enumNames": ["不满意", "满意"]}
    survey = {"title": "满意度调查", "description": "写给客户的说明", "x-customer": True}
    assert customer_schema(survey) is survey and customer_may_answer(survey) and not customer_may_answer({"title": "x"})


def test_access_logs_never_hold_a_link_token(caplog):
    import logging

    from app.portal import logfilter
    token = "3f9a" * 12
    logfilter.install()
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info('%s - - [%s] "%s" %s', "127.0.0.1", "now", f"GET /my/{token} HTTP/1.1", 302)
    with caplog.at_level(logging.INFO, logger="gunicorn.access"):
        logging.getLogger("gunicorn.access").info("%(r)s %(s)s", {"r": f"GET /my/{token}?x=1 HTTP/1.1", "s": "302"})
    assert token not in caplog.text and caplog.text.count("/my/<link>") == 2
    with caplog.at_level(logging.INFO, logger="werkzeug"):          # a staff member's password reset link
        logging.getLogger("werkzeug").info('"%s" %s', f"POST /password/reset/{token}-x_Y HTTP/1.1", 302)
    assert token not in caplog.text and "POST /password/reset/<token> HTTP/1.1" in caplog.text


def test_the_customers_pages_read_no_workflow(app, desk):
    """The customer's page, its answer form and its withdrawal read what they show from the complaint's rows: the
    instances' versions and what they wait for, never a workflow (some 20 KB each)."""
    number = at_confirmation(desk)
    phone = opened(app, number)
    task = task_row(number, "customer_confirmation")
    answers = {}
    sent = statements_of(lambda: answers.update((page, phone.get(page).status_code) for page in
                                                ("/my/", f"/my/answer/{task.id}", "/my/withdraw")))
    assert set(answers.values()) == {200}, answers
    assert any("FROM process_instance" in s for s in sent)
    assert not [s for s in sent if "workflow_json" in s]
