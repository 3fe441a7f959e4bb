"""Contact data that is real (issue 12, item 7): phone numbers, e-mail addresses and identity documents are
checked at registration (app/contact_rules.py) with a clear message per field, in the API and the web form
alike, and stored in one form that a search by what a person types finds; migration 0020 gives old rows
their document type. And an address that no route matches gets a page in the user's language."""
import re

import pytest
from alembic.command import downgrade, upgrade
from sqlalchemy import select, text as sql

from app import contact_rules as rules
from app.config import ROOT
from app.extensions import db, migrate
from app.models import Complaint
from tests.flow import COMPLAINT, Desk
from tests.test_api_errors import assert_error, snapshot
from tests.test_web import Browser, as_, fresh, text

RESIDENT_ID = "110101199001061234"          # valid: check digit 4
RESIDENT_ID_X = "11010519491231002X"        # valid, ends in X


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def stored(number) -> Complaint:
    fresh()
    return db.session.execute(select(Complaint).where(Complaint.number == number)).scalar_one()


# ---- the rules ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("typed, kept", [
    ("13812345678", "13812345678"), ("138 1234 5678", "13812345678"), ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"), ("+8613812345678", "13812345678"), ("008613812345678", "13812345678"),
    ("19912345678", "19912345678"),
    ("010-12345678", "01012345678"), ("(010) 1234 5678", "01012345678"), ("0755 1234 5678", "075512345678"),
    ("+86 10 1234 5678", "01012345678"),
    ("+852 9123 4567", "+85291234567"), ("+44 7911 123456", "+447911123456"), ("+1 650-253-0000", "+16502530000"),
])
def test_valid_phone_numbers_are_stored_in_one_form(typed, kept):
    assert rules.phone_problem(typed) is None
    assert rules.stored_phone(typed) == kept


@pytest.mark.parametrize("typed", ["12345", "abc", "", "11012345678", "1381234567", "138123456789",
                                   "91234567",          # Hong Kong without +852: read as a mainland number
                                   "+44 12", "+999 1234 5678"])
def test_invalid_phone_numbers_are_refused(typed):
    assert rules.phone_problem(typed) == rules.NOT_A_PHONE
    assert rules.stored_phone(typed) is None


def test_a_service_number_does_not_reach_the_customer():
    assert rules.phone_problem("400 800 1234") == rules.NOT_A_PERSONAL_PHONE


@pytest.mark.parametrize("number, problem", [
    (RESIDENT_ID, None), (RESIDENT_ID_X, None), (RESIDENT_ID_X.lower(), None), ("110101 19900106 1234", None),
    ("110101199001011234", "check digit"), ("11010519491231002Y", "17 digits"), ("1101011990010612", "18 characters"),
    ("1101011990010612345", "18 characters"), ("110101199013011234", "birth date"), ("123", "18 characters"),
])
def test_the_resident_id_is_checked_with_its_check_digit(number, problem):
    found = rules.document_problem("resident_id", number)
    assert (found is None) if problem is None else (problem in found), found


def test_a_resident_id_is_stored_compact_with_a_capital_x():
    assert rules.compact_document("resident_id", " 11010519491231002x ") == RESIDENT_ID_X


@pytest.mark.parametrize("id_type, good, bad", [
    ("hk_macao_permit", ["H12345678", "m1234567890", "H 1234 5678"],
     ["12345678", "H1234567", "X12345678", "H123456789"]),
    ("taiwan_permit", ["12345678", "0812345601", "12345678AB"], ["1234567", "123456789", "1234-56"]),
    ("passport", ["E12345678", "G1234567", "123456789", "ab12345"], ["E12", "E1234567890123456789X", "E123/4567"]),
    ("other", ["军官证 第123号", "X"], []),
])
def test_each_document_type_has_its_rule(id_type, good, bad):
    for number in good:
        assert rules.document_problem(id_type, number) is None, number
    for number in bad:
        assert rules.document_problem(id_type, number), number


def test_email_syntax_only():
    assert rules.email_problem("zhang.san@Example.COM") is None
    assert rules.stored_email("zhang.san@Example.COM") == "zhang.san@example.com"
    for bad in ("nope", "a@b", "a..b@example.com", "张三@example.com"):
        assert rules.email_problem(bad).startswith("Not a valid email address."), bad


# ---- the API ------------------------------------------------------------------------------------------------------
def test_the_api_stores_the_normalised_forms(desk):
    number = desk.register(phone="+86 138-1234-5678", email="Zhang@Example.com", id_type="resident_id",
                           id_number=RESIDENT_ID_X.lower())
    row = stored(number)
    assert (row.phone, row.email, row.id_type, row.id_number) == \
        ("13812345678", "Zhang@example.com", "resident_id", RESIDENT_ID_X)
    abroad = stored(desk.register(phone="+852 9123 4567", id_type="hk_macao_permit", id_number="h 1234 5678"))
    assert (abroad.phone, abroad.id_type, abroad.id_number) == ("+85291234567", "hk_macao_permit", "H12345678")
    assert desk.complaint(abroad.number, "customer_service")["complaint"]["phone"] == "+85291234567"
    assert desk.complaint(abroad.number)["complaint"]["id_type"] == "hk_macao_permit"     # not personal data
    assert desk.complaint(abroad.number)["complaint"]["phone"] == "+85*****4567"        # masked for others


def test_a_document_type_without_a_number_is_dropped(desk):
    row = stored(desk.register(id_type="passport", id_number=None))
    assert (row.id_type, row.id_number) == (None, None)
    row = stored(desk.register(id_type="passport", id_number=" "))
    assert (row.id_type, row.id_number) == (None, None)


@pytest.mark.parametrize("change, field, message", [
    ({"phone": "12345"}, "phone", "not a valid phone number: a mainland mobile (11 digits)"),
    ({"phone": "4008001234"}, "phone", "service number"),
    ({"email": "a@b"}, "email", "Not a valid email address. The part after the @-sign"),
    ({"id_type": None}, "id_type", "id_type is required when id_number is given"),
    ({"id_type": "driving_licence"}, "id_type", "Must be one of"),
    ({"id_number": "110101199001011234"}, "id_number", "the check digit (the last character) does not match"),
    ({"id_number": "123"}, "id_number", "it has 18 characters"),
    ({"id_type": "passport", "id_number": "E1"}, "id_number", "5 to 20 letters and digits"),
    ({"id_type": "taiwan_permit", "id_number": "E12345678"}, "id_number", "Taiwan permit"),
    ({"id_type": "hk_macao_permit", "id_number": "12345678"}, "id_number", "H or M and 8 or 10 digits"),
])
def test_the_api_says_what_is_wrong_per_field(client, people, change, field, message):
    before = snapshot()
    body = {**COMPLAINT, "received_at": "2026-11-25T09:00:00+08:00", **change}
    r = client.post("/api/v1/complaints", json=body, headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", fields=[field])
    assert message in r.json["error"]["fields"][field]
    assert snapshot() == before


def test_every_field_is_reported_at_once(client, people):
    body = {**COMPLAINT, "received_at": "2026-11-25T09:00:00+08:00", "phone": "123", "email": "x", "id_type": None,
            "id_number": "110101199001011234"}
    r = client.post("/api/v1/complaints", json=body, headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", fields=["phone", "email", "id_type"])


def test_the_document_names_the_document_types(client, people):
    schema = client.get("/api/v1/openapi.json", headers=people["training"].headers).json["components"]["schemas"]
    intake = schema["ComplaintIn"]["properties"]
    assert intake["id_type"]["enum"] == [*rules.ID_TYPES, None]
    assert intake["email"]["format"] == "email" and "E.164" in intake["phone"]["description"]


# ---- search ------------------------------------------------------------------------------------------------------
def test_a_phone_or_id_number_is_found_however_it_is_typed(desk, client, people):
    number = desk.register(phone="13812345678", id_number=RESIDENT_ID_X)
    for q in ("13812345678", "138 1234 5678", "+86 138-1234-5678", "008613812345678",
              RESIDENT_ID_X, RESIDENT_ID_X.lower(), "110105 19491231 002x"):
        r = client.post("/api/v1/complaints/search", json={"q": q}, headers=people["customer_service"].headers)
        assert [c["number"] for c in r.json["items"]] == [number], q
    b = as_(lambda: Browser(client.application), "claims_specialist")
    r = b.post("/complaints", {"q": "+86 138 1234 5678"})
    assert number in r.text and "找到 1 件投诉" in text(r)


# ---- the web form ------------------------------------------------------------------------------------------------
FORM = {"channel": "hotline", "customer_name": "李四", "policy_number": "PA-7", "category": "claim_delay",
        "product_line": "health", "description": "投诉内容", "received_at": "2026-11-25T09:00",
        "email": "li@example.com"}


def test_the_form_has_the_document_type_beside_the_number(app, people):
    page = as_(lambda: Browser(app), "customer_service").get("/complaints/new").text
    select_ = re.search(r'<select id="f-id_type".*?</select>', page, re.S).group(0)
    assert '<option value="resident_id" selected>居民身份证</option>' in select_
    assert "港澳居民来往内地通行证（回乡证）" in select_ and "台湾居民来往大陆通行证（台胞证）" in select_
    assert page.index('name="id_type"') < page.index('name="id_number"')
    assert "境外号码请以 + 和国家或地区代码开头" in page


@pytest.mark.parametrize("lang, phone_message, id_message", [
    ("zh", "电话号码无效。", "此居民身份证号码的校验码（最后一位）不符：请检查是否输入有误。"),
    ("en", "Not a valid phone number.",
     "The check digit (the last character) of this resident ID number does not match: check it for a typing error."),
])
def test_the_form_explains_each_field_in_the_users_language_and_keeps_the_input(app, people, lang, phone_message,
                                                                               id_message):
    b = as_(lambda: Browser(app), "customer_service")
    b.get(f"/complaints/new?lang={lang}")
    before = snapshot()
    r = b.post("/complaints/new", {**FORM, "phone": "12345", "id_type": "resident_id",
                                   "id_number": "110101199001011234"}, page="/complaints/new")
    assert r.status_code == 422
    assert re.search(rf'data-testid="error-phone">{re.escape(phone_message)}<', r.text)
    assert re.search(rf'data-testid="error-id_number">{re.escape(id_message)}<', r.text)
    assert 'value="李四"' in r.text and 'value="110101199001011234"' in r.text and 'value="12345"' in r.text
    assert 'value="li@example.com"' in r.text and ">投诉内容</textarea>" in r.text
    assert snapshot() == before


@pytest.mark.parametrize("form, field, message", [
    ({"id_type": "", "id_number": RESIDENT_ID}, "id_type", "请选择此证件号码的证件类型。"),
    ({"id_type": "hk_macao_permit", "id_number": "12345678"}, "id_number",
     "港澳居民来往内地通行证号码为 H 或 M 加 8 位或 10 位数字。"),
    ({"id_type": "taiwan_permit", "id_number": "1234"}, "id_number",
     "台湾居民来往大陆通行证号码为 8 位数字（旧版证件为 10 位字母和数字）。"),
    ({"id_type": "passport", "id_number": "E1"}, "id_number", "护照号码为 5 至 20 位字母和数字。"),
    ({"id_number": "1234"}, "id_number", "居民身份证号码为 18 位。"),
    ({"phone": "400 800 1234"}, "phone", "服务号码（如 400、800）联系不到客户本人：请填写客户的手机或固定电话。"),
    ({"email": "a@b"}, "email", "电子邮件地址无效。"),
])
def test_the_form_message_per_document_problem(app, people, form, field, message):
    b = as_(lambda: Browser(app), "customer_service")
    r = b.post("/complaints/new", {**FORM, "phone": "13812345678", "id_type": "resident_id", **form},
               page="/complaints/new")
    assert r.status_code == 422
    assert re.search(rf'data-testid="error-{field}">{re.escape(message)}<', r.text), text(r)


def test_the_form_registers_a_landline_and_a_passport(app, people):
    b = as_(lambda: Browser(app), "customer_service")
    r = b.post("/complaints/new", {**FORM, "phone": "0755 1234 5678", "id_type": "passport", "id_number": "e1234 5678"},
               page="/complaints/new")
    assert r.status_code == 302, text(r)
    row = stored(r.location.rsplit("/", 1)[1])
    assert (row.phone, row.id_type, row.id_number) == ("075512345678", "passport", "E12345678")


# ---- migration 0020 ----------------------------------------------------------------------------------------------
def test_migration_0020_types_old_documents_and_normalises_old_phones(app, desk):
    numbers = [desk.register() for _ in range(4)]
    old = {numbers[0]: ("+86 138-1234-5678", RESIDENT_ID_X.lower()), numbers[1]: ("12345", "123"),
           numbers[2]: ("010 1234 5678", None), numbers[3]: ("+852 9123 4567", "H12345678")}
    db.session.remove()
    config = migrate.get_config(directory=str(ROOT / "migrations"))
    downgrade(config, "0019")
    for number, (phone, id_number) in old.items():     # as registered before 0020: no id_type, as typed
        db.session.execute(sql("UPDATE complaint SET phone = :p, id_number = :i WHERE number = :n"),
                           {"p": phone, "i": id_number, "n": number})
    db.session.commit()
    db.session.remove()
    upgrade(config, "head")
    rows = {c.number: (c.phone, c.id_type, c.id_number) for c in db.session.execute(select(Complaint)).scalars()}
    assert rows == {numbers[0]: ("13812345678", "resident_id", RESIDENT_ID_X),
                    numbers[1]: ("12345", "other", "123"),              # invalid old data stays readable
                    numbers[2]: ("01012345678", None, None),
                    numbers[3]: ("+85291234567", "other", "H12345678")}


# ---- an address no route matches ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lang, title, message", [("zh", "未找到", "此页面不存在。"),
                                                  ("en", "Not found", "This page does not exist.")])
def test_an_unknown_address_gets_the_page_in_the_users_language(app, people, lang, title, message):
    b = as_(lambda: Browser(app), "customer_service")
    b.get(f"/?lang={lang}")
    r = b.get("/no/such/page")
    assert r.status_code == 404
    assert 'data-testid="error-page" data-code="404"' in r.text
    assert title in text(r) and message in text(r) and "Not Found" not in r.text
    anonymous = Browser(app).get("/no/such/page")
    assert anonymous.status_code == 404 and "此页面不存在。" in text(anonymous)


@pytest.mark.parametrize("lang, title", [("zh", "此页面不接受这种请求"), ("en", "This page does not take this request")])
def test_a_method_a_page_does_not_take_gets_the_page_in_the_users_language(app, people, lang, title):
    b = as_(lambda: Browser(app), "customer_service")
    b.get(f"/?lang={lang}")
    r = b.open("/complaints/new", method="PUT")
    assert r.status_code == 405 and title in text(r) and "Method Not Allowed" not in r.text
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_the_api_and_the_portal_keep_their_own_error_pages(client, people):
    r = client.get("/api/v1/no/such/thing", headers=people["compliance"].headers)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = client.put("/api/v1/complaints", headers=people["compliance"].headers)
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"
    r = client.get("/my/no/such/page")
    assert r.status_code == 404 and 'data-testid="problem" data-reason="unknown_link"' in r.text
    assert "此链接无法使用" in text(r) and "Not Found" not in r.text
