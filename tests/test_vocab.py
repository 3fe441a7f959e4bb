"""Coded data (issue 11, item 1): the controlled vocabularies beside the diagrams, checked and deployed with
them; coded intake fields and form fields; labels in zh and en; a retired code; the free-text categories
of before mapped by migration 0017, and the rest listed and mapped by `flask vocab`."""
import re

from alembic.command import downgrade, upgrade
from sqlalchemy import select, text as sql

from app import create_app, vocab
from app.config import ROOT, TestConfig
from app.engine.registry import deploy
from app.extensions import db, migrate
from app.models import AuditEvent, Complaint, ProcessVersion
from app.web import formrender
from tests.flow import COMPLAINT, HAPPY_PATH, Desk
from tests.test_processes import check, copy, edit, line_of  # noqa: F401  (copy: a fixture)
from tests.test_web import Browser, as_, fresh, snapshot, task_ids, text

CATEGORY = "vocabularies/category.toml"


def retire_claim_delay(root):
    edit(root / "processes" / CATEGORY, 'code = "claim_delay"\n', 'code = "claim_delay"\nretired = 2026-12-01\n')


def deploy_from(root):
    bundles, problems = check(root)
    assert problems == [], [str(p) for p in problems]
    deploy(db.session, bundles, "owner")
    db.session.commit()


# ---- the files -------------------------------------------------------------------------------------------
def test_the_vocabularies_load_and_the_category_top_level_follows_the_regulators_classes():
    found, problems = vocab.load(ROOT / "processes")
    assert problems == [] and set(found) == {"category", "product_line", "cause", "responsible_party"}
    category = vocab.Vocabulary("category", found["category"])
    top = {c: t.zh for c, t in category.terms.items() if t.parent is None}
    assert {"理赔纠纷", "销售纠纷", "承保纠纷", "退保纠纷", "保全纠纷"} <= set(top.values())
    assert category.label("claim_delay") == "理赔纠纷 › 理赔时效"
    assert category.label("claim_delay", "en") == "Claims disputes › Claim settlement too slow"
    assert "claims" not in category.offered() and "claim_delay" in category.offered()    # a group is not offered
    assert "regulatory reporting template" in (ROOT / "processes" / CATEGORY).read_text(encoding="utf-8").lower()


def test_check_names_file_code_and_line_of_each_problem(copy):
    path = copy / "processes" / CATEGORY
    edit(path, 'code = "claim_amount"\nparent = "claims"\nzh = "理赔金额争议"\nen = "Dispute over the amount paid"\n',
         'code = "claim_amount"\nparent = "clams"\nzh = "理赔金额争议"\n')
    edit(path, 'code = "claim_denial"\nparent = "claims"\nzh = "拒赔争议"', 'code = "claim_denial"\nparent = "claims"\n'
         'retierd = 2026-01-01\nzh = "理赔时效"')
    edit(path, 'code = "sales_other"', 'code = "sales_misleading"')
    bundles, problems = check(copy)
    assert bundles == []                                         # nothing is deployed while a file has a problem
    shown = [str(p) for p in problems]
    line = line_of(path, 'code = "claim_amount"')
    assert f"{CATEGORY}:{line}: [claim_amount] en: the English label is missing or longer than 100 characters" in shown
    assert f"{CATEGORY}:{line}: [claim_amount] parent 'clams' is not a code of this vocabulary" in shown
    denial = line_of(path, 'code = "claim_denial"')
    assert any(s.startswith(f"{CATEGORY}:{denial}: [claim_denial] unknown key 'retierd'") for s in shown)
    assert any(s.startswith(f"{CATEGORY}:{denial}: [claim_denial] label '理赔时效' is also the label of 'claim_delay'")
               for s in shown)
    assert any("[sales_misleading] code 'sales_misleading' is written twice" in s for s in shown)


def test_check_reports_toml_errors_bad_dates_and_unknown_vocabularies_in_forms(copy):
    (copy / "processes" / "vocabularies" / "cause.toml").write_text('title = "原因"\ntitle_en = "Cause"\n[[term]\n',
                                                                     encoding="utf-8")
    edit(copy / "processes" / "vocabularies" / "responsible_party.toml", 'code = "shared"\n',
         'code = "shared"\nretired = "soon"\n')
    bundles, problems = check(copy)
    shown = [str(p) for p in problems]
    assert bundles == []
    assert any(re.match(r"vocabularies/cause\.toml:3: \[-\] not valid TOML", s) for s in shown), shown
    assert any("[shared] retired = 'soon': write the date it was retired on" in s for s in shown), shown
    # cause.toml is unreadable, so the form that codes by it names the vocabulary it misses.
    assert any(s.startswith("forms/analyse_and_plan.json:?: [cause_code] x-vocabulary 'cause' is not a vocabulary")
               for s in shown), shown


def test_the_cli_check_prints_the_problems(copy):
    edit(copy / "processes" / CATEGORY, 'zh = "服务态度"', 'zh = ""')
    app = create_app(TestConfig, PROCESSES_DIR=copy / "processes", FORMS_DIR=copy / "forms")
    result = app.test_cli_runner().invoke(args=["processes", "check"])
    assert result.exit_code == 1
    assert re.search(r"vocabularies/category\.toml:\d+: \[service_attitude\] zh: the Simplified Chinese label",
                     result.output)


def test_a_vocabulary_is_part_of_every_versions_content_and_its_forms(copy):
    before, _ = check(copy)
    edit(copy / "processes" / "vocabularies" / "product_line.toml", 'zh = "农业保险"', 'zh = "农业保险（含林业）"')
    after, _ = check(copy)
    assert {b.process_id: b.content_hash for b in before} != {b.process_id: b.content_hash for b in after}
    [main] = [b for b in after if b.process_id == "complaint_handling"]
    cause = main.forms["analyse_and_plan"]["properties"]["cause_code"]
    assert {"const": "process_backlog", "title": "流程与制度 › 审核积压、人手不足",
            "x-title-en": "Process and rules › Backlog, too few staff"} in cause["oneOf"]
    assert [e["const"] for e in cause["x-retired"]] == ["process", "staff", "external"]     # groups: not offered


# ---- deployed: registration, labels, a retired code --------------------------------------------------------
def test_the_api_takes_and_returns_codes_and_refuses_a_bad_one(app, client, people):
    desk = Desk(client, people)
    number = desk.register()
    body = desk.complaint(number)["complaint"]
    assert (body["category"], body["product_line"], body["cause_code"]) == ("claim_delay", "health", None)
    desk.walk(number, HAPPY_PATH[:3])
    body = desk.complaint(number)["complaint"]
    assert (body["cause_code"], body["responsible_party"]) == ("process_backlog", "company")
    before = db.session.execute(select(Complaint.id)).scalars().all()
    r = client.post("/api/v1/complaints", json={**COMPLAINT, "category": "理赔时效", "product_line": "claims",
                                                "received_at": "2026-11-30T08:00:00+08:00"},
                    headers=people["customer_service"].headers)
    assert r.status_code == 422
    fields = r.json["error"]["fields"]
    assert fields["category"].startswith("'理赔时效' is not a code of the category vocabulary; use one of: claim_delay")
    assert "product_line" in fields
    r = client.post("/api/v1/complaints", json={**COMPLAINT, "category": "claims",
                                                "received_at": "2026-11-30T08:00:00+08:00"},
                    headers=people["customer_service"].headers)
    assert r.status_code == 422 and "is a group; use one of its sub-categories: claim_delay" in \
        r.json["error"]["fields"]["category"]
    assert db.session.execute(select(Complaint.id)).scalars().all() == before
    document = client.get("/api/v1/openapi.json", headers=people["training"].headers).json
    intake = document["components"]["schemas"]["ComplaintIn"]
    assert "claim_delay" in intake["properties"]["category"]["enum"] and "claims" not in \
        intake["properties"]["category"]["enum"]
    assert "product_line" in intake["required"]
    assert "cause_code" in document["components"]["schemas"]["ComplaintViewOut"]["properties"]


def test_the_register_page_offers_labels_and_keeps_the_input_on_a_bad_code(app, people):
    b = as_(lambda: Browser(app), "customer_service")
    page = b.get("/complaints/new")
    assert '<option value="claim_delay">理赔纠纷 › 理赔时效</option>' in page.text
    assert '<option value="claims"' not in page.text                               # a group is not offered
    before = snapshot()
    form = {"channel": "hotline", "customer_name": "张三", "phone": "13812345678", "policy_number": "PA-1",
            "category": "made_up", "product_line": "motor", "description": "未赔付", "received_at": "2026-11-30T10:00"}
    r = b.post("/complaints/new", form)
    assert r.status_code == 422
    assert re.search(r'data-testid="error-category">请从选项中选择一项。<', r.text), text(r)
    assert 'value="张三"' in r.text and '<option value="motor" selected>' in r.text and ">未赔付</textarea>" in r.text
    assert snapshot() == before
    en = b.get("/complaints/new?lang=en")
    assert '<option value="claim_delay">Claims disputes › Claim settlement too slow</option>' in en.text


def test_a_retired_code_is_no_longer_offered_and_old_complaints_keep_its_label(app, client, people, copy):
    desk = Desk(client, people)
    old = desk.register(category="claim_delay")
    retire_claim_delay(copy)
    deploy_from(copy)
    r = client.post("/api/v1/complaints", json={**COMPLAINT, "received_at": "2026-11-30T08:00:00+08:00"},
                    headers=people["customer_service"].headers)
    assert r.status_code == 422 and r.json["error"]["fields"]["category"].startswith(
        "'claim_delay' is retired (since 2026-12-01) and is not used for new input")
    assert desk.complaint(old)["complaint"]["category"] == "claim_delay"
    b = as_(lambda: Browser(app), "customer_service")
    assert '<option value="claim_delay"' not in b.get("/complaints/new").text
    assert "理赔纠纷 › 理赔时效（已停用）" in text(b.get(f"/complaints/{old}"))
    form = {"channel": "hotline", "customer_name": "张三", "phone": "13812345678", "policy_number": "PA-1",
            "category": "claim_delay", "product_line": "motor", "description": "未赔付",
            "received_at": "2026-11-30T10:00"}
    r = b.post("/complaints/new", form)
    assert r.status_code == 422 and "此项已停用，不再用于新投诉，请选择现行选项。" in text(r)
    # The old complaint goes on: its forms' choices come from its version, and the queue still filters by it.
    assert task_ids(b.get("/?category=claim_delay"), "available")
    desk.walk(old, HAPPY_PATH)


def test_the_queue_filters_by_code_and_shows_labels_in_both_languages(app, people):
    desk = Desk(app.test_client(), people)
    delay, attitude = desk.register(category="claim_delay"), desk.register(category="service_attitude")
    b = as_(lambda: Browser(app), "customer_service")
    home = b.get("/")
    assert '<option value="service_attitude">服务质量 › 服务态度</option>' in home.text
    assert "服务质量 › 服务态度" in text(home) and "理赔纠纷 › 理赔时效" in text(home)
    filtered = b.get("/?category=service_attitude")
    assert len(task_ids(filtered, "available")) == 1 and attitude in filtered.text and delay not in \
        re.search(r'data-testid="queue-available">(.*?)</table>', filtered.text, re.S).group(1)
    assert "Service quality › Attitude of staff" in text(b.get("/?lang=en"))


def test_form_labels_of_coded_fields_in_zh_and_en():
    prop = {"type": "string", "oneOf": [{"const": "a", "title": "甲", "x-title-en": "A"}],
            "x-retired": [{"const": "b", "title": "乙", "x-title-en": "B"}]}
    assert formrender.widget(prop) == "radio"
    assert formrender.options(prop, "zh") == [("a", "甲")] and formrender.options(prop, "en") == [("a", "A")]
    assert formrender.display(prop, "b", "en") == "B" and formrender.display(prop, "b", "zh") == "乙"
    assert formrender.explain({"properties": {"x": prop}}, {"x": "'c' is not valid under any of the given schemas"}) \
        == {"x": "Choose one of the options."}


# ---- migration 0017 and `flask vocab` -------------------------------------------------------------------------
def test_migration_maps_known_free_text_and_the_cli_lists_and_maps_the_rest(app, client, people):
    desk = Desk(client, people)
    numbers = [desk.register() for _ in range(4)]
    analysed = numbers[0]
    desk.walk(analysed, HAPPY_PATH[:3])
    for number, value in zip(numbers, ("理赔时效", "理赔时效问题", " 服务态度 ", "保单贷款利率")):
        db.session.execute(sql("UPDATE complaint SET category = :v WHERE number = :n"), {"v": value, "n": number})
    db.session.commit()
    db.session.remove()
    config = migrate.get_config(directory=str(ROOT / "migrations"))
    downgrade(config, "0016")
    upgrade(config, "head")
    rows = {c.number: (c.category, c.category_legacy) for c in db.session.execute(select(Complaint)).scalars()}
    assert rows == {numbers[0]: ("claim_delay", "理赔时效"), numbers[1]: ("claim_delay", "理赔时效问题"),
                    numbers[2]: ("service_attitude", " 服务态度 "), numbers[3]: ("保单贷款利率", None)}
    # The analysis's responsible party (a code all along) is copied from the audit trail.
    assert db.session.execute(select(Complaint.responsible_party).where(Complaint.number == analysed)).scalar() \
        == "company"
    db.session.remove()

    runner = app.test_cli_runner()
    listed = runner.invoke(args=["vocab", "unmapped"])
    assert listed.exit_code == 0
    assert f"category: '保单贷款利率': 1 complaint(s), e.g. {numbers[3]}" in listed.output
    assert "1 value(s) to map" in listed.output
    b = as_(lambda: Browser(app), "compliance")
    assert "保单贷款利率（未编码）" in text(b.get(f"/complaints/{numbers[3]}"))      # kept visible, marked
    refused = runner.invoke(args=["vocab", "map", "保单贷款利率", "claims"])
    assert refused.exit_code == 1 and "is a group" in refused.output
    refused = runner.invoke(args=["vocab", "map", "claim_delay", "policy_service"])     # a code in force: coded
    assert refused.exit_code == 1 and "'claim_delay' is a code of category in force" in refused.output
    fresh()
    assert db.session.execute(select(Complaint.category).where(Complaint.number == numbers[0])).scalar() \
        == "claim_delay"
    dry = runner.invoke(args=["vocab", "map", "保单贷款利率", "policy_service", "--dry-run"])
    assert dry.exit_code == 0 and "1 complaint(s) would be given the code (dry run: nothing changed)" in dry.output
    fresh()
    assert db.session.execute(select(Complaint.category).where(Complaint.number == numbers[3])).scalar() \
        == "保单贷款利率"
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "vocabulary_value_mapped")).first() is None
    refused = runner.invoke(args=["vocab", "map", "claim_delay", "policy_service", "--dry-run"])    # checked alike
    assert refused.exit_code == 1 and "is a code of category in force" in refused.output
    mapped = runner.invoke(args=["vocab", "map", "保单贷款利率", "policy_service", "--by", "owner"])
    assert mapped.exit_code == 0 and "1 complaint(s)" in mapped.output
    fresh()
    row = db.session.execute(select(Complaint).where(Complaint.number == numbers[3])).scalar_one()
    assert (row.category, row.category_legacy) == ("policy_service", "保单贷款利率")
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "vocabulary_value_mapped")).scalar_one()
    assert event.actor == "owner" and event.data["to"] == "policy_service"
    assert "every coded value is a code" in runner.invoke(args=["vocab", "unmapped"]).output
    listing = runner.invoke(args=["vocab", "list", "category"]).output
    assert re.search(r"claims\s+理赔纠纷 / Claims disputes\s+\[group\]", listing)


def test_the_vocabularies_are_kept_with_each_deployed_version(app):
    version = db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == "complaint_handling")
                                 ).scalars().first()
    stored = vocab.of_version(version.vocabularies)
    assert set(stored) == {"category", "product_line", "cause", "responsible_party"}
    assert not any(name.startswith("vocabularies") for name in version.forms)     # forms hold forms only
    assert stored["responsible_party"].offered()[:1] == ["company"]


def test_the_api_lists_the_vocabularies_in_force_with_codes_and_both_labels(app, client, people):
    r = client.get("/api/v1/vocabularies", headers=people["claims_specialist"].headers)
    assert r.status_code == 200, r.json
    found = r.json["vocabularies"]
    assert set(found) == {"category", "product_line", "cause", "responsible_party"}
    terms = {t["code"]: t for t in found["category"]["terms"]}
    assert terms["claims"]["group"] and not terms["claims"]["offered"]
    delay = terms["claim_delay"]
    assert (delay["parent"], delay["offered"], delay["retired"]) == ("claims", True, None)
    assert delay["label_zh"] == "理赔纠纷 › 理赔时效" and delay["label_en"].startswith("Claims disputes › ")
    # The codes offered are exactly those registration accepts.
    bad = client.post("/api/v1/complaints", json={**COMPLAINT, "category": "claims"},
                      headers=people["customer_service"].headers)
    assert bad.status_code == 422 and "claim_delay" in bad.json["error"]["fields"]["category"]
    assert client.get("/api/v1/vocabularies").status_code == 401
