"""JSON Schema -> form fields and posted strings -> typed data (app.web.formrender), on the real forms."""
import json

import pytest
from werkzeug.datastructures import MultiDict

from app.config import ROOT
from app.forms import field_errors
from app.web import formrender


def form(name):
    return json.loads((ROOT / "forms" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def zh(app):
    with app.test_request_context("/"):
        yield


@pytest.fixture
def en(app):
    with app.test_request_context("/"):
        from flask import session
        session["lang"] = "en"
        yield


def by_name(fields):
    return {f["name"]: f for f in fields}


def test_every_real_form_renders_every_property(zh):
    for path in sorted((ROOT / "forms").glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        fields = formrender.fields(schema)
        assert [f["name"] for f in fields] == list(schema["properties"])
        assert schema.get("x-title-en"), path.name
        for f in fields:
            assert f["label"] and f["widget"] in {"text", "textarea", "number", "select", "radio", "checkboxes",
                                                  "yesno", "confirm", "date", "datetime", "file", "files"}
            assert schema["properties"][f["name"]].get("x-title-en"), (path.name, f["name"])


def test_widgets_required_marks_bounds_and_options(zh):
    fields = by_name(formrender.fields(form("initial_review")))
    assert fields["decision"]["widget"] == "radio" and fields["decision"]["required"]
    assert fields["decision"]["options"] == [("accept", "受理"), ("reject", "不予受理"),
                                             ("suspected_malicious", "疑似恶意投诉")]
    assert fields["review_notes"]["widget"] == "textarea" and fields["review_notes"]["maxlength"] == 4000
    assert not fields["rejection_reason"]["required"] and fields["rejection_reason"]["help"]
    plan = by_name(formrender.fields(form("analyse_and_plan")))
    assert plan["compensation_amount"]["widget"] == "number"
    assert (plan["compensation_amount"]["min"], plan["compensation_amount"]["max"]) == (0, 100000000)
    feedback = by_name(formrender.fields(form("feedback_to_customer")))
    assert feedback["feedback_channel"]["widget"] == "select"            # five options
    overdue = by_name(formrender.fields(form("initial_review_overdue")))
    assert overdue["initial_review_overdue_actions"]["widget"] == "checkboxes"
    assert overdue["initial_review_overdue_due_date"]["widget"] == "date"
    assert by_name(formrender.fields(form("investigate")))["customer_contacted"]["widget"] == "yesno"
    assert by_name(formrender.fields(form("archive")))["records_complete"]["widget"] == "confirm"
    evidence = by_name(formrender.fields(form("investigate")))["evidence_files"]      # contentMediaType: files
    assert (evidence["widget"], evidence["accept"], evidence["kept"], evidence["required"]) == ("files", "*/*", [], False)


def test_english_labels_keep_the_chinese_title(en):
    fields = by_name(formrender.fields(form("initial_review"), lang="en"))
    assert (fields["decision"]["label"], fields["decision"]["label_alt"]) == ("Review decision", "审核结论")
    assert fields["decision"]["options"][2] == ("suspected_malicious", "Suspected malicious · 疑似恶意投诉")
    assert formrender.titles(form("initial_review"), "en") == ("Initial review", "初步审核")


def test_defaults_are_shown_and_input_wins_over_them(zh):
    schema = {"type": "object", "properties": {
        "n": {"type": "integer", "default": 3}, "ok": {"type": "boolean", "default": True},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "default": ["b"]}}}
    fields = by_name(formrender.fields(schema))
    assert (fields["n"]["value"], fields["ok"]["value"], fields["tags"]["value"]) == ("3", "true", ["b"])
    fields = by_name(formrender.fields(schema, raw={"n": "7", "tags": []}))
    assert (fields["n"]["value"], fields["tags"]["value"]) == ("7", [])


def test_coerce_types_omits_empty_optionals_and_keeps_bad_text():
    schema = {"type": "object", "properties": {
        "i": {"type": "integer"}, "x": {"type": "number"}, "b": {"type": "boolean"}, "s": {"type": "string"},
        "t": {"type": "string", "x-widget": "textarea"}, "d": {"type": "string", "format": "date"},
        "dt": {"type": "string", "format": "date-time"},
        "a": {"type": "array", "items": {"type": "string", "enum": ["p", "q"]}}}}
    posted = MultiDict([("i", "42"), ("x", "2.5"), ("b", "false"), ("s", "  hi  "), ("t", "a\r\nb"),
                        ("d", "2026-12-01"), ("dt", "2026-11-25T14:30"), ("a", "p"), ("a", "q"),
                        ("csrf_token", "ignored"), ("extra", "ignored")])
    data, raw = formrender.coerce(schema, posted)
    assert data == {"i": 42, "x": 2.5, "b": False, "s": "hi", "t": "a\nb", "d": "2026-12-01",
                    "dt": "2026-11-25T14:30:00+08:00", "a": ["p", "q"]}
    assert raw["a"] == ["p", "q"] and raw["s"] == "  hi  "
    data, _ = formrender.coerce(schema, MultiDict([("i", "4.5"), ("x", "abc"), ("s", "   "), ("t", ""), ("b", "")]))
    assert data == {"i": "4.5", "x": "abc"}                # the validator reports these; blanks are omitted


def test_explain_translates_schema_errors(zh):
    schema = form("archive")
    data, _ = formrender.coerce(schema, MultiDict([("archive_summary", "")]))
    errors = formrender.explain(schema, field_errors(schema, data))
    assert errors == {"archive_summary": "此项为必填项。", "records_complete": "必须确认此项。"}
    errors = formrender.explain(schema, field_errors(schema, {"archive_summary": "好", "records_complete": False}))
    assert errors == {"records_complete": "必须确认此项。"}
    schema = form("initial_review")
    errors = formrender.explain(schema, field_errors(schema, {"decision": "reject", "risk_level": "low",
                                                            "review_notes": "x" * 4001}))
    assert errors == {"review_notes": "最多 4000 个字符。", "rejection_reason": "此项为必填项。"}


def test_display_of_submitted_values(zh):
    schema = form("initial_review_overdue")
    rows = formrender.describe_data(schema, {"initial_review_overdue_actions": ["urge_handler", "other"],
                                             "initial_review_overdue_cause": "人手不足"}, "zh")
    assert rows == [("initial_review_overdue_cause", "超时原因", "人手不足"),
                    ("initial_review_overdue_actions", "跟进措施", "督促经办人、其他")]
    assert formrender.display({"type": "boolean"}, True, "zh") == "是"
