"""Hostile input is answered with a 4xx and changes nothing (issue 7, item 2): NaN and ±Infinity, deep
nesting, NUL characters and lone surrogates, in JSON bodies, form posts, query strings and paths. An
attacker's 2,408 malformed requests gave 92 500s; on PostgreSQL NUL is refused by the database itself,
so each case runs on both backends."""
import re

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from sqlalchemy import func, select

from app.errors import InvalidData
from app.extensions import db
from app.models import Complaint, HumanTask
from app.timeutil import utcnow
from app.web.errorpages import unmatched
from tests.flow import COMPLAINT, FORM_DATA, Desk
from tests.test_api_errors import assert_error, snapshot
from tests.test_web import Browser, open_task
from tests.test_web import snapshot as web_snapshot      # leaves out the personal_data_viewed of page views

NUL, SURROGATE = "a\x00b", "a\ud800b"
DEEP = 100_000


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def raw_post(client, url, text, person):
    """A body sent as written (json= would refuse NaN itself)."""
    return client.post(url, data=text.encode("utf-8"), content_type="application/json",
                       headers=person.headers)


def at_plan(desk):
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate"])
    return number, desk.task_id(number, "analyse_and_plan")


def plan_json(amount: str) -> str:
    fields = ", ".join(f'"{k}": "{v}"' for k, v in FORM_DATA["analyse_and_plan"].items() if k != "compensation_amount")
    return '{"data": {' + fields + f', "compensation_amount": {amount}' + "}}"


def complaint_count():
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(Complaint)).scalar_one()


# ---- numbers -------------------------------------------------------------------------------------------
def test_a_non_finite_compensation_is_400_and_does_not_skip_the_management_decision(desk, client, people):
    number, plan = at_plan(desk)
    before = snapshot()
    for amount in ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000]:
        r = raw_post(client, f"/api/v1/tasks/{plan}/complete", plan_json(amount), people["claims_specialist"])
        assert_error(r, 400, "malformed_body")
        assert snapshot() == before, amount
    # The step is still open; a real amount above 50,000 goes to management as the diagram says.
    desk.complete(number, "analyse_and_plan", compensation_amount=60000)
    assert "management_decision" in desk.open_tasks(number)


def test_nan_passed_straight_to_the_runtime_is_refused_on_the_field(app, desk, people):
    """The JSON boundary is not the only way in: the runtime validates every completion."""
    number, plan = at_plan(desk)
    before = snapshot()
    data = {**FORM_DATA["analyse_and_plan"], "compensation_amount": float("nan")}
    with pytest.raises(InvalidData) as err:
        app.extensions["runtime"].complete(plan, people["claims_specialist"].user, data)
    assert err.value.fields == {"compensation_amount": "must be a finite number"}
    db.session.rollback()
    assert snapshot() == before


def test_a_non_finite_number_in_a_registration_is_400(client, people):
    before = snapshot()
    for constant in ["NaN", "Infinity", "-Infinity"]:
        body = (f'{{"channel": "hotline", "customer_name": "张三", "phone": "13812345678", "policy_number": "P-1", '
                f'"category": "claim_delay", "description": "x", "received_at": "{utcnow().isoformat()}", '
                f'"rounds": {constant}}}')
        r = raw_post(client, "/api/v1/complaints", body, people["customer_service"])
        assert_error(r, 400, "malformed_body")
        assert "number JSON allows" in r.json["error"]["message"]
    assert snapshot() == before and complaint_count() == 0


# ---- nesting -------------------------------------------------------------------------------------------
def test_deep_nesting_is_400(desk, client, people):
    number = desk.register()
    task = desk.task_id(number, "initial_review")
    before = snapshot()
    for depth in (DEEP, 33):
        body = '{"data": {"review_notes": ' + "[" * depth + "]" * depth + "}}"
        r = raw_post(client, f"/api/v1/tasks/{task}/complete", body, people["customer_service"])
        assert_error(r, 400, "malformed_body")
        assert "deeper than 32" in r.json["error"]["message"]
    r = raw_post(client, "/api/v1/complaints", "[" * DEEP + "]" * DEEP, people["customer_service"])
    assert_error(r, 400, "malformed_body")
    assert snapshot() == before


def test_nesting_within_the_bound_reaches_validation(desk, client, people):
    number = desk.register()
    task = desk.task_id(number, "initial_review")
    body = '{"data": {"review_notes": ' + "[" * 30 + "]" * 30 + "}}"
    r = raw_post(client, f"/api/v1/tasks/{task}/complete", body, people["customer_service"])
    assert_error(r, 422, "invalid_data", ["review_notes"])


# ---- NUL and lone surrogates in JSON bodies ---------------------------------------------------------------
def test_bad_text_in_a_task_completion_is_422_on_the_field(desk, client, people):
    number = desk.register()
    task = desk.task_id(number, "initial_review")
    before = snapshot()
    for bad in (NUL, SURROGATE):
        data = {**FORM_DATA["initial_review"], "review_notes": bad}
        r = raw_post(client, f"/api/v1/tasks/{task}/complete", _dumps({"data": data}), people["customer_service"])
        assert_error(r, 422, "invalid_data", ["data.review_notes"])
    assert snapshot() == before


def test_bad_text_in_a_registration_is_422_on_the_field(client, people):
    before = snapshot()
    for bad in (NUL, SURROGATE):
        for field in ("description", "customer_name", "phone", "policy_number", "claim_number", "received_at"):
            body = {**COMPLAINT, "received_at": utcnow().isoformat(), field: bad}
            r = raw_post(client, "/api/v1/complaints", _dumps(body), people["customer_service"])
            assert_error(r, 422, "invalid_data", [field])
    assert snapshot() == before and complaint_count() == 0


def test_bad_text_in_a_key_or_a_list_names_its_place(desk, client, people):
    number = desk.register()
    task = desk.task_id(number, "initial_review")
    r = raw_post(client, f"/api/v1/tasks/{task}/complete",
                 _dumps({"data": {"tags": ["ok", NUL], SURROGATE: 1}}), people["customer_service"])
    assert_error(r, 422, "invalid_data", ["data.tags.1", "data.?"])


def test_bad_text_in_other_bodies_is_422(desk, client, people):
    number = desk.register()
    task = desk.task_id(number, "initial_review")
    before = snapshot()
    for url, key in (("/api/v1/complaints/search", "q"), (f"/api/v1/tasks/{task}/assign", "username")):
        for bad in (NUL, SURROGATE):
            r = raw_post(client, url, _dumps({key: bad}), people["management"])
            assert_error(r, 422, "invalid_data", [key])
    assert snapshot() == before


def test_a_body_that_is_not_utf8_or_holds_a_raw_control_character_is_400(client, people):
    for raw in (b'{"description": "\xff"}', b'{"description": "\xed\xa0\x80"}', b'{"description": "a\x00b"}'):
        r = client.post("/api/v1/complaints", data=raw, content_type="application/json",
                        headers=people["customer_service"].headers)
        assert_error(r, 400, "malformed_body")
    assert complaint_count() == 0


def _dumps(value) -> str:
    """As an attacker writes it: NUL and the surrogate as JSON escapes (\\u0000, \\ud800)."""
    import json
    return json.dumps(value)


# ---- query strings and path segments ------------------------------------------------------------------------
QUERIES = ["a%00b", "a%ED%A0%80b", "a%FFb"]


def test_bad_query_strings_are_400(client, people):
    for q in QUERIES:
        for url in (f"/api/v1/complaints?q={q}", f"/api/v1/tasks?queue={q}", f"/api/v1/tasks?{q}=1"):
            assert_error(client.get(url, headers=people["management"].headers), 400, "bad_query")


def test_bad_path_segments_are_404(client, people):
    for segment in QUERIES:
        for route in ("/api/v1/complaints/{}", "/api/v1/complaints/{}/case-file", "/api/v1/tasks/{}",
                      "/api/v1/tasks/{}/claim", "/api/v1/processes/{}/stats"):
            url = route.format(segment)
            method = client.post if url.endswith("/claim") else client.get
            assert_error(method(url, headers=people["management"].headers), 404, "not_found")


def test_undecodable_bytes_in_the_raw_path_are_404(client, people):
    """What a real server passes on for /api/v1/complaints/%ED%A0%80 (PEP 3333: bytes as latin-1)."""
    r = client.get("/", environ_overrides={"PATH_INFO": "/api/v1/complaints/\xed\xa0\x80"},
                   headers=people["management"].headers)
    assert_error(r, 404, "not_found")


def test_numbers_too_large_for_the_database_are_not_a_500(desk, client, people):
    number = desk.register()
    r = client.get(f"/api/v1/complaints/{number}/snapshots/{10 ** 20}", headers=people["management"].headers)
    assert_error(r, 404, "not_found")
    r = client.get(f"/api/v1/tasks?page={10 ** 20}", headers=people["management"].headers)
    assert r.status_code == 200 and r.json["page"] == 100_000 and r.json["items"] == []


# ---- the web UI -------------------------------------------------------------------------------------------------
@pytest.fixture
def web(app, people):
    return lambda username: Browser(app).login(username)


def test_bad_query_strings_and_paths_get_the_web_error_pages(web):
    b = web("compliance")
    for url in ("/complaints?q=a%00b", "/complaints?q=%ED%A0%80", "/?step=%00"):
        r = b.get(url)
        assert r.status_code == 400, url
        assert 'data-testid="error-page" data-code="400"' in r.text and "网址中包含不允许的字符。" in r.text
    for url in ("/complaints/a%00b", "/tasks/a%ED%A0%80", "/procedure/a%00/v1"):
        r = b.get(url)
        assert r.status_code == 404 and 'data-code="404"' in r.text, url
    assert web("customer_service").get(f"/?pm={10 ** 20}&pa={10 ** 20}").status_code == 200


def test_a_non_finite_number_typed_in_a_form_is_422_on_the_field(web, desk):
    number, _plan = at_plan(desk)
    plan = open_task(number, "analyse_and_plan")
    b = web("claims_specialist")
    before = web_snapshot()
    for value in ("nan", "NaN", "inf", "-Infinity", "1e999"):
        r = b.post(f"/tasks/{plan.id}", {**FORM_DATA["analyse_and_plan"], "compensation_amount": value})
        assert r.status_code == 422, value
        assert re.search(r'data-testid="error-compensation_amount">请输入数字。<', r.text), value
        assert web_snapshot() == before
    assert "management_decision" not in desk.open_tasks(number)


def test_nul_in_a_task_form_is_422_on_the_field(web, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    b = web("customer_service")
    before = web_snapshot()
    for field in ("review_notes", "rejection_reason"):
        data = {**FORM_DATA["initial_review"], "decision": "reject", "rejection_reason": "材料不全", field: NUL}
        r = b.post(f"/tasks/{review.id}", data)
        assert r.status_code == 422
        assert re.search(rf'data-testid="error-{field}">此文本包含不允许的字符（如 NUL 空字符）。<', r.text), r.text
    assert web_snapshot() == before


def test_blank_or_overlong_intake_text_is_named_on_its_field_in_the_users_language(web):
    b = web("customer_service")
    form = {**COMPLAINT, "received_at": "2026-01-05T10:00", "customer_name": "   ", "description": " \t ",
            "policy_number": "P" * 65}
    r = b.post("/complaints/new", form)
    assert r.status_code == 422 and complaint_count() == 0
    for field, message in (("customer_name", "此项为必填项。"), ("description", "此项为必填项。"),
                           ("policy_number", "最多 64 个字符。")):
        assert re.search(rf'data-testid="error-{field}">{message}<', r.text), field


def test_blank_text_is_refused_where_text_is_required(desk, client, people):
    """Spaces only say nothing: refused in the intake and in a form's required text (JSON Schema counts spaces);
    the spaces around a name are dropped."""
    cs = people["customer_service"].headers
    r = client.post("/api/v1/complaints", json={**COMPLAINT, "customer_name": "   ", "description": " \t ",
                                                "policy_number": "  "}, headers=cs)
    assert_error(r, 422, "invalid_data", ["customer_name", "description", "policy_number"])
    assert r.json["error"]["fields"]["customer_name"] == "may not be blank" and complaint_count() == 0
    number = desk.register(customer_name="  张三 ")
    assert db.session.execute(select(Complaint.customer_name).where(Complaint.number == number)).scalar() == "张三"
    task = open_task(number, "initial_review")
    before = snapshot()
    r = client.post(f"/api/v1/tasks/{task.id}/complete", headers=cs, json={"data": {
        **FORM_DATA["initial_review"], "decision": "reject", "review_notes": "   ", "rejection_reason": "\n  "}})
    assert_error(r, 422, "invalid_data", ["review_notes", "rejection_reason"])
    assert snapshot() == before


def test_nul_in_the_register_form_is_422_on_the_field(web):
    b = web("customer_service")
    form = {**COMPLAINT, "received_at": "2026-01-05T10:00", "description": NUL}
    r = b.post("/complaints/new", form)
    assert r.status_code == 422
    assert re.search(r'data-testid="error-description">[^<]+<', r.text), r.text
    assert complaint_count() == 0


def test_a_body_over_the_limit_gets_the_app_page_in_the_users_language_with_the_limit_that_applies(app, web, desk):
    """The task form and the intake form read their fields themselves; a body over the limit is still the app's
    page (not werkzeug's English), titled as too large and naming the limit of this address: an upload's on the
    task page (it takes evidence files), MAX_CONTENT_LENGTH elsewhere."""
    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024, EVIDENCE_MAX_BYTES=1024 * 1024)
    number = desk.register()
    review = open_task(number, "initial_review")
    b = web("customer_service")
    before = web_snapshot()
    for url, upload in (("/complaints/new", False), (f"/tasks/{review.id}", True),
                        (f"/complaints/{number}/notes", False)):
        r = b.post(url, {**COMPLAINT, "description": "x" * (3 * 1024 * 1024)})
        assert r.status_code == 413 and 'data-code="413"' in r.text, url
        assert "内容过大" in r.text and ("每次上传最多 1 MB" if upload else "每次最多 1 MB") in r.text, url
        assert "Request Entity Too Large" not in r.text
    english = b.post("/complaints/new?lang=en", {"description": "x" * (2 * 1024 * 1024)})
    assert english.status_code == 413 and "at most 1 MB at once" in english.text
    # A 413 a view raised itself (the guard reads forms only) gets the same page; the API its own shape, for a JSON
    # body as for a form.
    with app.test_request_context(f"/complaints/{number}/notes", method="POST"):
        page, status = unmatched(RequestEntityTooLarge())
        assert status == 413 and "内容过大" in page and "每次最多 1 MB" in page
    for kwargs in ({"json": {"text": "x" * (2 * 1024 * 1024)}}, {"data": {"text": "x" * (2 * 1024 * 1024)}}):
        r = app.test_client().post(f"/api/v1/complaints/{number}/notes", headers=desk.people["management"].headers,
                                   **kwargs)
        assert r.status_code == 413 and r.json["error"]["code"] == "too_large", kwargs
    assert web_snapshot() == before and complaint_count() == 1


def test_nul_in_the_login_form_is_refused_not_a_500(app):
    before = web_snapshot()
    r = Browser(app).post("/login", {"username": NUL, "password": "x"})
    assert r.status_code == 422 and 'data-code="422"' in r.text
    assert web_snapshot() == before


def test_nul_in_the_assign_form_is_refused_not_a_500(web, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    b = web("management")
    before = web_snapshot()
    r = b.post(f"/tasks/{review.id}/assign", {"username": NUL}, page=f"/complaints/{number}")
    assert r.status_code == 422
    assert web_snapshot() == before
    db.session.expire_all()
    assert db.session.get(HumanTask, review.id).assignee_id is None
