"""Forms that adapt (issue 12 item 3), on every backend: a field the schema asks for only under a condition
carries it (app.forms.conditions -> formrender.fields), is required beside the field when it applies and its
stale answer dropped when it does not (web and API alike); instructions in the page's language, with clause
codes for compliance only; and a handler's draft of a task's form, kept for its author until completion."""
import json
import re

import pytest
from sqlalchemy import func, select

from app.config import ROOT
from app.extensions import db
from app.forms import conditions, drop_inapplicable, validate
from app.errors import InvalidData
from app.models import AuditEvent, TaskDraft
from app.web import formrender
from tests.flow import FORM_DATA
from tests.test_web import Browser, flashes, fresh, open_task, text


def form(name):
    return json.loads((ROOT / "forms" / f"{name}.json").read_text(encoding="utf-8"))


def by_name(fields):
    return {f["name"]: f for f in fields}


@pytest.fixture
def zh(app):
    with app.test_request_context("/"):
        yield


@pytest.fixture
def web(app, people):
    return lambda username: Browser(app).login(username)


@pytest.fixture
def desk(app, people):
    from tests.flow import Desk
    return Desk(Browser(app), people)


def completed_data(task_id) -> dict:
    fresh()
    event = db.session.execute(select(AuditEvent).where(AuditEvent.task_id == task_id,
                                                        AuditEvent.action == "task_completed")).scalar_one()
    return event.data["form_data"]


def drafts_of(task_id) -> int:
    fresh()
    return db.session.execute(select(func.count()).select_from(TaskDraft).where(TaskDraft.task_id == task_id)) \
        .scalar_one()


# ---- conditions, read from the real forms ----------------------------------------------------------------
def test_the_real_forms_conditions(zh):
    assert conditions(form("initial_review")) == {
        "rejection_reason": [{"field": "decision", "values": ["reject"]}],
        "malicious_indicators": [{"field": "decision", "values": ["suspected_malicious"]}]}
    assert conditions(form("customer_confirmation")) == {
        "dissatisfaction_reasons": [{"field": "satisfied", "values": [False]}]}
    assert conditions(form("appraisal_overrun")) == {             # then and else
        "appraisal_ended_on": [{"field": "appraisal_has_ended", "values": [True]}],
        "appraisal_new_expected_end_on": [{"field": "appraisal_has_ended", "values": [True], "negate": True}]}
    for name, field in (("contact_customer", "told_customer"), ("malicious_review", "reason_for_customer"),
                        ("review_meeting", "training_focus"), ("follow_up_late_measure", "agreed_date"),
                        ("approve_extension", "extension_reason_for_customer"), ("carry_out_measure", "evidence")):
        assert field in conditions(form(name)), name
    review = by_name(formrender.fields(form("initial_review")))
    assert review["rejection_reason"]["when"] == [{"field": "decision", "values": ["reject"]}]
    assert json.loads(review["rejection_reason"]["show_when"]) == review["rejection_reason"]["when"]
    assert review["rejection_reason"]["when_text"] == "仅当“审核结论”为“不予受理”时适用。"
    assert review["decision"]["when"] == [] and review["decision"]["show_when"] == ""
    satisfied = by_name(formrender.fields(form("customer_confirmation")))["dissatisfaction_reasons"]
    assert satisfied["when"] == [{"field": "satisfied", "values": ["false"]}]          # as the form posts it


def test_dependent_required_and_shapes_not_read_are_always_shown():
    schema = {"type": "object", "required": ["a"], "properties": {k: {"type": "string"} for k in "abcdefg"},
              "dependentRequired": {"b": ["c"]},
              "allOf": [{"if": {"properties": {"a": {"enum": ["x", "y"]}}, "required": ["a"]},
                         "then": {"required": ["d"]}},
                        {"if": {"properties": {"a": {"pattern": "^z"}}, "required": ["a"]},       # not read
                         "then": {"required": ["e"]}},
                        {"if": {"properties": {"a": {"const": "q"}}, "required": ["a"]},
                         "then": {"required": ["f"]}},
                        {"anyOf": [{"required": ["f"]}, {"required": ["g"]}]}]}                  # f: always too
    assert conditions(schema) == {"c": [{"field": "b", "filled": True}],
                                  "d": [{"field": "a", "values": ["x", "y"]}]}
    # c without b is an answer given alone (dependentRequired only asks for it with b): kept, never dropped
    assert drop_inapplicable(schema, {"a": "x", "c": "1", "d": "2", "e": "3"}) == {"a": "x", "c": "1", "d": "2",
                                                                                   "e": "3"}
    assert drop_inapplicable(schema, {"a": "q", "b": "1", "c": "1", "d": "2"}) == {"a": "q", "b": "1", "c": "1"}


def test_validate_requires_the_field_that_applies_and_drops_the_one_that_does_not():
    schema = form("initial_review")
    base = FORM_DATA["initial_review"]
    with pytest.raises(InvalidData) as refused:
        validate(schema, {**base, "decision": "reject"})
    assert set(refused.value.fields) == {"rejection_reason"}
    with pytest.raises(InvalidData) as refused:
        validate(schema, {**base, "decision": "reject", "rejection_reason": ""})
    assert set(refused.value.fields) == {"rejection_reason"}
    kept = {**base, "decision": "accept", "rejection_reason": "旧的原因", "malicious_indicators": "x"}
    assert validate(schema, kept) == base and "rejection_reason" in kept           # a copy: the input is untouched
    assert validate(form("customer_confirmation"), {**FORM_DATA["customer_confirmation"],
                                                    "dissatisfaction_reasons": "旧"}) == \
        FORM_DATA["customer_confirmation"]


# ---- the task form --------------------------------------------------------------------------------------
def test_a_rejection_without_reason_is_422_beside_the_field(web, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    b = web("customer_service")
    page = b.get(f"/tasks/{review.id}").get_data(as_text=True)
    assert re.search(r'data-testid="field-rejection_reason"\s+data-show-when="\[\{&#34;field&#34;: &#34;decision&#34;'
                     r', &#34;values&#34;: \[&#34;reject&#34;\]\}\]"', page)
    assert 'data-testid="when-rejection_reason">仅当“审核结论”为“不予受理”时适用。<' in page
    assert 'data-testid="field-decision">' in page                    # unconditional: no condition
    r = b.post(f"/tasks/{review.id}", {**FORM_DATA["initial_review"], "decision": "reject"})
    assert r.status_code == 422
    assert re.search(r'data-testid="error-rejection_reason">此项为必填项。<', r.text), text(r)
    assert open_task(number, "initial_review").state == "open"


def test_an_acceptance_with_a_stale_rejection_reason_is_accepted_without_it(web, desk, client, people):
    number = desk.register()
    review = open_task(number, "initial_review")
    r = web("customer_service").post(f"/tasks/{review.id}", {**FORM_DATA["initial_review"],
                                                              "rejection_reason": "之前写的原因"})
    assert r.status_code == 302
    assert completed_data(review.id) == FORM_DATA["initial_review"]
    second = desk.register()                        # the JSON API keeps the same data for the same input
    task = open_task(second, "initial_review")
    r = client.post(f"/api/v1/tasks/{task.id}/complete", headers=people["customer_service"].headers,
                    json={"data": {**FORM_DATA["initial_review"], "malicious_indicators": "旧"}})
    assert r.status_code == 200, r.json
    assert completed_data(task.id) == FORM_DATA["initial_review"]


# ---- instructions -----------------------------------------------------------------------------------------
def test_instructions_in_english_without_codes_for_a_handler_with_codes_for_compliance(web, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    b = web("customer_service")
    page = b.get(f"/tasks/{review.id}").get_data(as_text=True)
    intro = re.search(r'data-testid="task-intro">(.*?)</p>', page, re.S).group(1)
    assert intro.startswith("请在收到投诉后 24 小时内") and "C-3.2" not in page
    b.get("/language/en?next=/")
    page = b.get(f"/tasks/{review.id}").get_data(as_text=True)
    intro = re.search(r'data-testid="task-intro">(.*?)</p>', page, re.S).group(1)
    assert intro.startswith("Within 24 hours of receipt, decide") and "C-3.2" not in page
    page = web("compliance").get(f"/tasks/{review.id}").get_data(as_text=True)
    assert re.findall(r'data-testid="clause-code">([^<]+)<', page) == ["C-3.2.1", "C-3.2.3"]
    assert "请在收到投诉后 24 小时内" in page


def test_instructions_helper():
    schema = form("initial_review")
    assert formrender.instructions(schema, "zh", {"claims_specialist"})["codes"] == []
    assert formrender.instructions(schema, "en", {"process_owner"}) == {
        "text": schema["x-description-en"].replace("[C-3.2.1][C-3.2.3] ", ""), "codes": ["C-3.2.1", "C-3.2.3"]}
    assert formrender.describe({"description": "[R-PAUSE][C-6.3] 外部鉴定"}, "zh") == "外部鉴定"
    assert formrender.describe({"description": "见 [C-1] 条"}, "zh") == "见 [C-1] 条"       # only leading codes


# ---- drafts -----------------------------------------------------------------------------------------------
DRAFT = {"decision": "reject", "risk_level": "medium", "review_notes": "还需核对保单", "rejection_reason": "超出时效"}


def test_a_draft_is_saved_shown_again_to_its_author_only_and_goes_with_completion(web, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    url = f"/tasks/{review.id}"
    author = web("customer_service")
    before = review.row_version, review.assignee_id
    r = author.post(url, {**DRAFT, "_save_draft": "1"})
    assert r.status_code == 302 and r.location.endswith(url)
    fresh()
    assert (open_task(number, "initial_review").row_version, open_task(number, "initial_review").assignee_id) \
        == before                                                   # the workflow and the task are untouched
    page = author.get(url)
    assert "草稿已保存，尚未提交。再次打开此任务时会显示草稿内容。" in flashes(page)
    body = page.get_data(as_text=True)
    assert 'data-testid="draft-note">草稿保存于' in body
    assert re.search(r'value="reject" checked[^>]*data-testid="input-decision-reject"', body)
    assert ">还需核对保单</textarea>" in body and ">超出时效</textarea>" in body
    r = author.post(url, {**DRAFT, "review_notes": "第二稿", "_save_draft": "1"})
    assert r.status_code == 302 and drafts_of(review.id) == 1 and ">第二稿</textarea>" in author.get(url).text
    compliance = web("compliance").get(url).get_data(as_text=True)
    assert "第二稿" not in compliance and 'data-testid="draft-note"' not in compliance
    r = author.post(url, {**FORM_DATA["initial_review"]})
    assert r.status_code == 302
    assert drafts_of(review.id) == 0                               # dropped with the completion
    assert "第二稿" not in author.get(url).text


def test_a_draft_is_not_kept_for_a_task_that_closed_while_it_was_saved(app, desk, people):
    """A draft saved while a change closes its task (here: the task as the page read it was open, and is
    completed when the draft is written) is refused, not kept: the change deleted the drafts it knew of, and
    one kept now would never go."""
    from app.errors import Conflict
    from app.models import HumanTask, User
    from app.web.tasks import drafts
    number = desk.register()
    shown = open_task(number, "initial_review")                    # the task as the page read it: open
    author = db.session.get(User, people["customer_service"].user.id)
    db.session.execute(HumanTask.__table__.update().where(HumanTask.id == shown.id).values(state="completed"))
    with pytest.raises(Conflict):
        drafts.save(db.session, shown, author, {"review_notes": "写了一半"})
    db.session.rollback()
    assert drafts_of(shown.id) == 0
    db.session.execute(HumanTask.__table__.update().where(HumanTask.id == shown.id).values(state="open"))
    db.session.commit()
    drafts.save(db.session, db.session.get(HumanTask, shown.id), author, {"review_notes": "写了一半"})
    db.session.commit()
    assert drafts_of(shown.id) == 1 and db.session.get(HumanTask, shown.id).has_draft


def test_a_draft_is_private_to_its_author(app, web, desk):
    from tests.conftest import make_user
    with app.app_context():
        make_user("customer_service_2", "customer_service")
    number = desk.register()
    url = f"/tasks/{open_task(number, 'initial_review').id}"
    assert web("customer_service").post(url, {**DRAFT, "_save_draft": "1"}).status_code == 302
    page = web("customer_service_2").get(url).get_data(as_text=True)
    assert "超出时效" not in page and 'data-testid="draft-note"' not in page


def test_a_draft_needs_the_rights_to_work_the_task_and_clean_input(web, desk):
    number = desk.register()
    review = open_task(number, "initial_review")
    url = f"/tasks/{review.id}"
    r = web("claims_specialist").post(url, {**DRAFT, "_save_draft": "1"}, page="/")
    assert r.status_code == 403
    r = web("compliance").post(url, {**DRAFT, "_save_draft": "1"})
    assert r.status_code == 403
    author = web("customer_service")
    r = author.post(url, {**DRAFT, "review_notes": "a\x00b", "_save_draft": "1"})
    assert r.status_code == 422 and 'data-testid="error-review_notes">' in r.text
    assert drafts_of(review.id) == 0


def test_a_task_held_by_another_refuses_their_draft(app, web, desk):
    from tests.conftest import make_user
    with app.app_context():
        make_user("customer_service_2", "customer_service")
    number = desk.register()
    url = f"/tasks/{open_task(number, 'initial_review').id}"
    holder = web("customer_service")
    holder.post(f"{url}/claim", {}, page=url)
    assert open_task(number, "initial_review").assignee_id is not None
    r = web("customer_service_2").post(url, {**DRAFT, "_save_draft": "1"}, page="/")
    assert r.status_code == 302 and drafts_of(open_task(number, "initial_review").id) == 0


# ---- the customer portal draws the same conditions ------------------------------------------------------------
def test_the_portal_form_adapts_the_same_way(app, desk):
    from tests.test_portal import at_confirmation, customer_events, opened, task_row
    number = at_confirmation(desk)
    phone = opened(app, number)
    task_id = task_row(number, "customer_confirmation").id
    page = phone.get(f"/my/answer/{task_id}").text
    assert 'src="/static/forms.js"' in page
    assert re.search(r'data-testid="field-dissatisfaction_reasons" data-show-when="\[\{&#34;field&#34;: '
                     r'&#34;satisfied&#34;, &#34;values&#34;: \[&#34;false&#34;\]\}\]"', page)
    r = phone.post(f"/my/answer/{task_id}", {"satisfied": "true", "customer_feedback": "满意",
                                             "dissatisfaction_reasons": "先前写的"})
    assert r.status_code == 200 and "先前写的" not in r.text
    [event] = customer_events(number, "task_completed")
    assert event.data["form_data"] == {"satisfied": True, "customer_feedback": "满意"}
