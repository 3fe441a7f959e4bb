"""Customer messages: the templates in processes/messages/ render in both languages, say what the
complainant must be told, are checked against the diagrams' notify_customer calls, run in a sandbox,
and deploy with the process version."""
import shutil
import time
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import select

from app import messages
from app.config import ROOT
from app.engine.registry import deploy, load_processes, load_with_upload
from app.errors import ProcessError
from app.extensions import db
from app.messages import MessageError, render
from app.models import ProcessInstance
from app.portal_links import url as portal_url
from tests.flow import LANES

LINK = portal_url("https://kf.example.cn", "0123456789abcdef" * 3)      # as long as a real link
STANDARD = {"complaint_number": "TS-20261201-000123", "portal_url": LINK, "company": "保险公司",
            "hotline": "95500", "received_at": "2026-12-01T07:00:00+00:00"}
UNTIL = "2026-12-31T15:59:59+00:00"            # end of 31 Dec in Beijing
# The fields each diagram call passes, with realistic values.
FIELDS = {
    "acknowledgement": {"review_due": "2026-12-02T07:00:00+00:00"},
    "not_accepted": {"reason": "投诉事项不属于保险理赔范围。", "review_until": UNTIL},
    "malicious_closed": {"reason": "同一事项已重复投诉二十次且内容不实。", "review_until": UNTIL},
    "result": {"solution": "补发理赔款并书面致歉。", "compensation_amount": 1234.5,
               "next_steps": "款项将在3个工作日内转入您的账户。", "review_until": UNTIL},
    "satisfaction_survey": {"survey": "satisfaction_survey"},
    "withdrawn": {"reason": "已与理赔人员协商解决。"},
    "review_received": {"review_due": "2027-01-10T15:59:59+00:00"},
    "review_result": {"result": "原处理过程与时限符合规定，处理结果维持。", "changed": False},
}
DECISIONS = ("not_accepted", "malicious_closed", "result")


@pytest.fixture(scope="module")
def templates():
    found, problems = messages.load(ROOT / "processes")
    assert problems == []
    return found


def message(templates, name, language="zh", **changes):
    return render(templates, name, language, {**STANDARD, **FIELDS[name], **changes})


def text_of(rendered):
    return "\n".join((rendered.subject, rendered.sms, rendered.body))


# ---- the real templates --------------------------------------------------------------------------
@pytest.mark.clause("C-3.4.1", "C-5.1", "C-7.2")
@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_template_renders_with_real_and_with_none_values(templates, name, language):
    for fields in (FIELDS[name], dict.fromkeys(FIELDS[name])):
        rendered = render(templates, name, language, {**STANDARD, **fields})
        assert rendered.subject and rendered.sms and rendered.body
        assert "\n" not in rendered.subject + rendered.sms
        assert STANDARD["complaint_number"] in rendered.subject
        assert STANDARD["complaint_number"] in rendered.sms and rendered.sms.endswith(LINK)
        assert LINK in rendered.body and STANDARD["hotline"] in rendered.body
        for leftover in ("None", "{{", "{%", "\n\n\n", "—"):
            assert leftover not in text_of(rendered), (name, language, leftover)
        # A short text message: about 120 characters with the link in Chinese.
        assert len(rendered.sms) - len(LINK) <= (60 if language == "zh" else 120)


def test_acknowledgement_says_registered_not_accepted(templates):
    zh, en = message(templates, "acknowledgement"), message(templates, "acknowledgement", "en")
    assert "登记" in zh.subject and "登记" in zh.sms and "受理" not in text_of(zh)
    assert "received" in en.subject and "accept" not in text_of(en).lower()
    assert "2026年12月2日 15:00" in zh.body and "2 Dec 2026, 15:00" in en.body    # the initial review's due time
    assert "2026年12月1日 15:00" in zh.body                                      # received, in Beijing time


@pytest.mark.parametrize("name", DECISIONS)
def test_decision_messages_carry_the_remedies_and_the_review_deadline(templates, name):
    zh, en = message(templates, name), message(templates, name, "en")
    for word in ("核查", "30日内", "调解", "仲裁", "诉讼", "2026年12月31日 23:59", STANDARD["hotline"]):
        assert word in zh.body, word
    for word in ("review", "30 days", "Mediation", "Arbitration", "Litigation", "31 Dec 2026, 23:59"):
        assert word in en.body, word
    assert "30日内" in message(templates, name, review_until=None).body


def test_the_decision_reasons_and_the_result_reach_the_customer(templates):
    assert FIELDS["not_accepted"]["reason"] in message(templates, "not_accepted").body
    assert FIELDS["malicious_closed"]["reason"] in message(templates, "malicious_closed").body
    result = message(templates, "result").body
    for value in ("补发理赔款", "¥1,234.50", "3个工作日内"):
        assert value in result
    assert "不涉及赔付" in message(templates, "result", compensation_amount=None).body
    assert "No payment" in message(templates, "result", "en", compensation_amount=0).body
    assert "¥1,234.50" in message(templates, "result", "en").body


def test_withdrawal_and_review_messages(templates):
    assert FIELDS["withdrawn"]["reason"] in message(templates, "withdrawn").body
    assert "撤回原因" not in message(templates, "withdrawn", reason="").body
    received = message(templates, "review_received")
    assert "2027年1月10日" in received.sms and "2027年1月10日 23:59" in received.body
    kept, changed = message(templates, "review_result"), message(templates, "review_result", changed=True)
    assert "维持不变" in kept.body and "调整" in changed.body and "调整" not in kept.body
    unknown = message(templates, "review_result", changed=None).body
    assert "维持不变" not in unknown and "调整" not in unknown
    for word in ("调解", "仲裁", "诉讼", FIELDS["review_result"]["result"]):
        assert word in kept.body


def test_filters_write_beijing_time_the_language_s_way(templates):
    env = messages.environment({"t.zh": "{{ when|datetime }} {{ when|date }} {{ amount|money }}",
                                "t.en": "{{ when|datetime }} {{ when|date }} {{ amount|money }}"})
    context = {"when": "2026-12-31T16:30:00+00:00", "amount": 1234}
    assert env.get_template("t.zh.txt").render(context) == "2027年1月1日 00:30 2027年1月1日 ¥1,234.00"
    assert env.get_template("t.en.txt").render(context) == "1 Jan 2027, 00:30 1 Jan 2027 ¥1,234.00"
    assert env.get_template("t.en.txt").render(when="2026-12-01", amount="0.5") == "1 Dec 2026 1 Dec 2026 ¥0.50"
    with pytest.raises(ValueError, match="without a time zone"):
        env.get_template("t.zh.txt").render(when="2026-12-01T10:00:00", amount=1)


def test_missing_language_falls_back_to_chinese_and_errors_name_the_template(templates):
    assert message(templates, "result", "fr").body == message(templates, "result").body
    with pytest.raises(MessageError, match="no message template 'nothing'"):
        render(templates, "nothing", "zh", STANDARD)
    with pytest.raises(MessageError, match="partial"):
        render(templates, "_remedies", "zh", STANDARD)
    undefined = r"\(messages/result\.zh\.txt:10\): UndefinedError: 'solution' is undefined"
    with pytest.raises(MessageError, match=undefined) as exc:
        render(templates, "result", "zh", STANDARD)
    assert isinstance(exc.value, ProcessError) and exc.value.line == 10


def test_each_template_compiles_once_per_set_of_templates(templates):
    first = messages.environment(templates).get_template("result.zh.txt")
    assert messages.environment(dict(templates)).get_template("result.zh.txt") is first
    edited = {**templates, "result.zh": templates["result.zh"].replace("处理方案", "解决方案")}
    assert messages.environment(edited).get_template("result.zh.txt") is not first
    assert "解决方案" in message(edited, "result").body and "解决方案" not in message(templates, "result").body


# ---- the check, on small diagrams ----------------------------------------------------------------
def diagram(*scripts):
    """A process (start -> one script task per script -> end); each element on its own line."""
    ids = ["start"] + [f"send_{i}" for i in range(len(scripts))] + ["end"]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" '
             'targetNamespace="http://bpmn.io/schema/bpmn">',
             '<bpmn:process id="messages_test" name="消息测试" isExecutable="true">',
             '<bpmn:startEvent id="start" />']
    lines += [f'<bpmn:scriptTask id="send_{i}" name="发送"><bpmn:script>{escape(s)}</bpmn:script></bpmn:scriptTask>'
              for i, s in enumerate(scripts)]
    lines += ['<bpmn:endEvent id="end" />']
    lines += [f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}" />' for i, (a, b) in
              enumerate(zip(ids, ids[1:]))]
    lines += ["</bpmn:process>", "</bpmn:definitions>"]
    return "\n".join(lines) + "\n"


def template(body="{{ complaint_number }}", sms="{{ portal_url }}"):
    return ("{% block subject %}Subject {{ complaint_number }}{% endblock %}\n"
            f"{{% block sms %}}{sms}{{% endblock %}}\n"
            f"{{% block body %}}\n{body}\n{{% endblock %}}\n")


@pytest.fixture
def root(tmp_path):
    (tmp_path / "processes" / "messages").mkdir(parents=True)
    (tmp_path / "forms").mkdir()
    return tmp_path


def setup(root, scripts, files):
    (root / "processes" / "test.bpmn").write_text(diagram(*scripts), encoding="utf-8")
    for name, text in files.items():
        (root / "processes" / "messages" / name).write_text(text, encoding="utf-8")
    return load_processes(root / "processes", root / "forms", LANES)


def script_line(root, needle):
    lines = (root / "processes" / "test.bpmn").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def both(text):
    return {"hello.zh.txt": text, "hello.en.txt": text}


def test_a_good_diagram_deploys_its_templates_and_their_partials_only(root):
    files = {**both(template("{% include '_p.zh.txt' %}\n{{ name }}")), "_p.zh.txt": "{{ hotline }}",
             "other.zh.txt": "{% broken", "_unused.zh.txt": "x"}
    [bundle], problems = setup(root, ["notify_customer('hello', name='x')",
                                      "x = 1\nnotify_customer(template='hello', name=x)"], files)
    assert problems == []
    assert sorted(bundle.messages) == ["_p.zh", "hello.en", "hello.zh"]


def test_a_missing_template_and_a_missing_english_file_are_reported_on_the_call(root):
    bundles, problems = setup(root, ["notify_customer('nothing')", "notify_customer('hello')"],
                              {"hello.zh.txt": template()})
    assert bundles == []
    assert [(p.file, p.element_id, p.line, p.message) for p in problems] == [
        ("test.bpmn", "send_0", script_line(root, "nothing"), "notify_customer('nothing'): messages/nothing.zh.txt "
                                                             "is missing"),
        ("test.bpmn", "send_0", script_line(root, "nothing"), "notify_customer('nothing'): messages/nothing.en.txt "
                                                             "is missing"),
        ("test.bpmn", "send_1", script_line(root, "'hello'"), "notify_customer('hello'): messages/hello.en.txt "
                                                             "is missing")]


def test_an_unknown_variable_is_reported_with_its_file_and_line(root):
    text = template("Dear customer,\n\n{{ solution }} {{ amount|money }}")
    _, problems = setup(root, ["notify_customer('hello', solution='s', amount=1)", "notify_customer('hello', "
                                                                                    "solution='s')"], both(text))
    assert {(p.file, p.line) for p in problems} == {("messages/hello.zh.txt", 6), ("messages/hello.en.txt", 6)}
    assert "'amount' is not available to message 'hello'" in problems[0].message
    # In a partial: reported on the partial's line.
    files = {**both(template("{% include '_p.zh.txt' %}")), "_p.zh.txt": "line one\n{{ secret }}"}
    _, problems = setup(root, ["notify_customer('hello')"], files)
    assert [(p.file, p.line) for p in problems] == [("messages/_p.zh.txt", 2)]


def test_syntax_errors_missing_blocks_and_missing_partials_are_reported_with_their_line(root):
    files = {"hello.zh.txt": template("ok\n{% if complaint_number %}\nno end"),
             "hello.en.txt": "{% block subject %}s{% endblock %}\n{% include '_gone.en.txt' %}\n"}
    _, problems = setup(root, ["notify_customer('hello')"], files)
    found = {(p.file, p.line): p.message for p in problems}
    assert "template syntax error" in found[("messages/hello.zh.txt", 7)]
    assert found[("messages/hello.en.txt", 2)] == "included messages/_gone.en.txt is missing"
    assert found[("messages/hello.en.txt", 1)] == "the template has no {% block sms %}, {% block body %}"


def test_a_template_that_fails_with_none_values_is_reported(root):
    _, problems = setup(root, ["notify_customer('hello', amount=12)"], both(template("{{ amount + 1 }}")))
    assert problems and all("rendering failed with the fields None" in p.message and "TypeError" in p.message
                            and p.line == 4 for p in problems)


def test_calls_that_cannot_be_checked_are_reported(root):
    scripts = ["name = 'hello'\nnotify_customer(name)", "notify_customer('hello', **fields)",
               "notify_customer('hello', survey=name)"]
    bundles, problems = setup(root, scripts, both(template()))
    assert bundles == []
    assert [(p.element_id, p.line) for p in problems] == [
        ("send_0", script_line(root, "name = 'hello'") + 1), ("send_1", script_line(root, "**fields")),
        ("send_2", script_line(root, "survey=name"))]
    assert "must be written as a literal text" in problems[0].message
    assert "keyword arguments" in problems[1].message and "survey=" in problems[2].message


@pytest.mark.clause("C-5.1")
def test_a_survey_form_is_checked_and_deployed_with_the_version(root):
    _, problems = setup(root, ["notify_customer('hello', survey='nope')"], both(template()))
    [problem] = problems
    assert problem.element_id == "send_0" and "survey form nope.json is missing in forms/" in problem.message
    (root / "forms" / "nope.json").write_text('{"type": "array"}', encoding="utf-8")
    assert '"type": "object"' in setup(root, ["notify_customer('hello', survey='nope')"], {})[1][0].message
    shutil.copy(ROOT / "forms" / "satisfaction_survey.json", root / "forms")
    [bundle], problems = setup(root, ["notify_customer('hello', survey='satisfaction_survey')"], {})
    assert problems == [] and list(bundle.forms) == ["satisfaction_survey"]


@pytest.mark.clause("C-5.1")
def test_the_satisfaction_survey_form_rates_five_things_and_takes_a_comment():
    import json
    schema = json.loads((ROOT / "forms" / "satisfaction_survey.json").read_text(encoding="utf-8"))
    rated = [k for k, p in schema["properties"].items() if p.get("enum") == [1, 2, 3, 4, 5]]
    assert rated == ["overall", "speed", "communication", "fairness", "recommend"] == schema["required"]
    assert schema["properties"]["comment"]["x-widget"] == "textarea"
    assert all(p["x-title-en"] and p["title"] for p in schema["properties"].values())


def test_bad_files_in_the_messages_folder_are_reported(root):
    (root / "processes" / "messages" / "bad.zh.txt").write_bytes("第一行\n第二行".encode("utf-8") + b"\xff\n")
    (root / "processes" / "messages" / "nolanguage.txt").write_text("x", encoding="utf-8")
    _, problems = setup(root, [], {})
    assert {(p.file, p.line) for p in problems} == {("messages/bad.zh.txt", 2), ("messages/nolanguage.txt", None)}


# ---- the sandbox ---------------------------------------------------------------------------------
ESCAPES = ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}",
           "{{ complaint_number|attr('__class__') }}", "{{ complaint_number['__class__'] }}",
           "{{ '{0.__class__}'.format(complaint_number) }}",
           "{{ lipsum.__globals__['os'] }}", "{{ complaint_number.__class__.__base__.__subclasses__() }}"]


@pytest.mark.parametrize("body", ESCAPES)
def test_templates_cannot_reach_python_internals(body):
    templates = {"evil.zh": template(body), "evil.en": template(body)}
    with pytest.raises(MessageError) as exc:
        render(templates, "evil", "zh", STANDARD)
    assert "evil.zh.txt" in str(exc.value) and "<class" not in str(exc.value)
    call = messages.Call("evil", frozenset(), "test.bpmn", "send_0", 3)
    problems = messages.check(templates, [call])
    assert problems and all(p.file.startswith("messages/evil.") for p in problems)


@pytest.mark.parametrize("body", ["{{ 9 ** 999999999 }}", "{{ (9 ** 99) ** 99 }}", "{{ complaint_number * 10 ** 9 }}",
                                  "{{ (2 ** 4000) * (2 ** 4000) }}", "{{ [1, 2] * 100000 }}"])
def test_templates_cannot_build_huge_values(body):
    started = time.perf_counter()
    with pytest.raises(MessageError, match="not allowed in a message"):
        render({"big.zh": template(body)}, "big", "zh", STANDARD)
    assert time.perf_counter() - started < 1


# ---- versions ------------------------------------------------------------------------------------
def test_a_template_edit_is_a_new_version_and_running_complaints_keep_theirs(app, client, people, tmp_path):
    from tests.flow import Desk
    shutil.copytree(ROOT / "processes", tmp_path / "processes")
    shutil.copytree(ROOT / "forms", tmp_path / "forms")
    desk = Desk(client, people)
    old = desk.register()
    path = tmp_path / "processes" / "messages" / "acknowledgement.zh.txt"
    edited = path.read_text(encoding="utf-8").replace("感谢您的信任与耐心。", "感谢您的耐心等待。")
    path.write_text(edited, encoding="utf-8")
    bundles, problems = load_processes(tmp_path / "processes", tmp_path / "forms", LANES)
    assert problems == []
    changed = {process_id: (version, new) for process_id, version, new in deploy(db.session, bundles, "owner")}
    assert changed["complaint_handling"] == (2, True)
    assert all(not new for process_id, (_, new) in changed.items() if process_id != "complaint_handling")
    new = desk.register()

    def acknowledgement(number):
        instance = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number)
                                      .where(ProcessInstance.process_id == "complaint_handling")).scalar_one()
        rendered = render(instance.version.messages, "acknowledgement", "zh",
                          {**STANDARD, **FIELDS["acknowledgement"], "complaint_number": number})
        return instance.version.version, rendered.body
    assert acknowledgement(old)[0] == 1 and "感谢您的信任与耐心。" in acknowledgement(old)[1]
    assert acknowledgement(new)[0] == 2 and "感谢您的耐心等待。" in acknowledgement(new)[1]
    # The same content again is no new version.
    assert deploy(db.session, bundles, "owner")[0][1:] == (2, False)


def test_an_upload_is_checked_with_the_templates_beside_it():
    source = (ROOT / "processes" / "complaint_handling.bpmn").read_text(encoding="utf-8")
    bundles, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "complaint_handling.bpmn",
                                         source.encode("utf-8"))
    assert problems == []
    handling = next(b for b in bundles if b.process_id == "complaint_handling")
    assert {"acknowledgement.zh", "result.en", "_remedies.zh"} <= set(handling.messages)
    broken = source.replace("notify_customer('acknowledgement'", "notify_customer('acknowledgment'", 1)
    _, problems = load_with_upload(ROOT / "processes", ROOT / "forms", LANES, "complaint_handling.bpmn",
                                   broken.encode("utf-8"))
    assert any("messages/acknowledgment.zh.txt is missing" in p.message for p in problems)
