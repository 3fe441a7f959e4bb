"""The complaint list (app.complaint_list, /complaints, GET /api/v1/complaints): found by part of a number, by a
customer's name only from a request body, filtered by period, status, codes, step, overdue and handler, with
回避 on every path; saved filters; streamed exports with masked names, audited. The data paths run on both
backends (PostgreSQL reads the pg_trgm indexes); the page's own checks on SQLite."""
import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from openpyxl import load_workbook
from sqlalchemy import select

from app import complaint_list
from app.jobs import list_export
from app.extensions import db
from app.models import AuditEvent, Complaint, SavedFilter
from tests.flow import Desk
from tests.sql_capture import statements_of
from tests.test_web import Browser, text

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)          # a Monday, 10:00 in Shanghai


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def desk(app, people, clock):
    return Desk(Browser(app), people)


def numbers(response) -> list:
    return [c["number"] for c in response.json["items"]]


def api(client, people, url, who="compliance"):
    r = client.get(url, headers=people[who].headers)
    assert r.status_code == 200, r.json
    return numbers(r)


def test_search_in_part_and_by_name_from_the_body_only(app, desk, client, people):
    first = desk.register(customer_name="欧阳娜娜", policy_number="PA-7788-0001")
    second = desk.register(customer_name="李四", claim_number="CL-9911-0002")
    assert api(client, people, f"/api/v1/complaints?q={first[-6:]}") == [first]
    assert api(client, people, "/api/v1/complaints?q=7788") == [first]            # policy in part
    assert api(client, people, "/api/v1/complaints?q=cl-9911") == [second]       # case does not matter
    assert api(client, people, "/api/v1/complaints?q=01") == []                  # two characters: exact only
    assert api(client, people, "/api/v1/complaints?q=%25%25%25") == []           # % is a character, no wildcard
    assert api(client, people, "/api/v1/complaints?q=欧阳") == []                 # a name never from a URL
    r = client.post("/api/v1/complaints/search", json={"q": "娜娜"}, headers=people["customer_service"].headers)
    assert numbers(r) == [first] and r.json["items"][0]["customer_name"] == "欧***"   # a list is masked
    # A reader who sees names masked cannot use the search to learn who complained.
    r = client.post("/api/v1/complaints/search", json={"q": "欧阳"}, headers=people["compliance"].headers)
    assert numbers(r) == []
    assert api(client, people, "/api/v1/complaints") == [second, first]          # newest first, no term needed
    third = desk.register(customer_name="王五", policy_number="PA-7788-00011")
    assert api(client, people, "/api/v1/complaints?q=PA-7788-0001") == [first]   # an exact match wins…
    assert api(client, people, "/api/v1/complaints?q=PA-7788-000") == [third, first]   # …else the partial ones


def test_a_term_is_found_where_it_occurs_with_every_character_literal(app, desk, client, people):
    """On both indexes (SQLite's FTS5 trigram table, PostgreSQL's pg_trgm): quotes, wildcards of LIKE or of
    FTS5 and spaces are characters; a changed number is found by its new value only."""
    odd = desk.register(customer_name="司马 相如", policy_number='PA_"9*9"%1', claim_number="CL 7 7 7")
    plain = desk.register(customer_name="司马光", policy_number="PAX9X9X1")
    for term, found in (('_"9*', [odd]), ('9*9"%', [odd]), ("L 7 7", [odd]), ("pa_", [odd]), ("9x9", [plain]),
                        ('"9"', []), ("a*9", [])):
        assert numbers(client.post(
            "/api/v1/complaints/search", json={"q": term}, headers=people["customer_service"].headers)) == found, term
    r = client.post("/api/v1/complaints/search", json={"q": "马 相"}, headers=people["customer_service"].headers)
    assert numbers(r) == [odd]                                                   # a name's part, with its space
    r = client.post("/api/v1/complaints/search", json={"q": "司马"}, headers=people["customer_service"].headers)
    assert numbers(r) == [plain, odd]                                            # two characters: scanned
    row = db.session.execute(select(Complaint).where(Complaint.number == plain)).scalar_one()
    row.policy_number = "PB-1234-5678"
    db.session.commit()
    assert api(client, people, "/api/v1/complaints?q=1234-56") == [plain]
    assert api(client, people, "/api/v1/complaints?q=9x9") == []


def test_filters_period_status_codes_step_overdue_and_handler(app, desk, client, people, clock):
    late_evening = desk.register(received_at="2026-12-01T15:30:00+00:00")     # 23:30 on 1 December in Shanghai
    next_morning = desk.register(received_at="2026-12-01T16:30:00+00:00", channel="website",
                                 category="sales_misleading")                   # 00:30 on 2 December
    today = desk.register()
    desk.complete(today, "initial_review")                                     # by customer service
    base = "/api/v1/complaints?"
    assert api(client, people, base + "from=2026-12-02&to=2026-12-02") == [next_morning]
    assert api(client, people, base + "to=2026-12-01") == [late_evening]
    assert api(client, people, base + "category=claims") == [today, late_evening]     # a group holds its codes
    assert api(client, people, base + "channel=website") == [next_morning]
    assert api(client, people, base + "step=investigate") == [today]
    page = Browser(app).login("compliance").get("/complaints").text               # the steps complaints wait at
    offered = re.search(r'data-testid="filter-step">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="(\w+)"', offered) == ["initial_review", "initial_review_overdue", "investigate"]
    assert api(client, people, base + "handler=customer_service") == [today]
    assert api(client, people, base + "handler=nobody") == []
    assert api(client, people, base + "status=closed") == []
    # The two received on 1 and 2 December missed their initial review (24 hours) at registration.
    assert set(api(client, people, base + "overdue=1&status=open")) == {late_evening, next_morning}
    clock.move_to(T0 + timedelta(days=5))
    assert today in api(client, people, base + "overdue=1")


def test_bad_filters_are_named_and_the_page_keeps_them(app, desk, client, people, backend):
    for query, field in (("from=2026-13-01", "from"), ("from=2026-12-05&to=2026-12-01", "from"),
                         ("status=lost", "status"), ("category=nonsense", "category"), ("page=0", "page"),
                         ("per_page=1000", "per_page"), ("overdue=maybe", "overdue")):
        r = client.get(f"/api/v1/complaints?{query}", headers=people["compliance"].headers)
        assert r.status_code == 400 and field in r.json["error"]["fields"], (query, r.json)
    b = Browser(app).login("compliance")
    r = b.get("/complaints?from=2026-13-01&channel=website")
    assert r.status_code == 422 and "“2026-13-01”不是日期" in text(r)
    assert 'value="2026-13-01"' in r.text and '<option value="website" selected>' in r.text


def test_avoidance_keeps_a_complaint_out_of_every_list(app, desk, client, people):
    mine = desk.register(claim_handler="claims_specialist")
    other = desk.register()
    assert api(client, people, "/api/v1/complaints", who="claims_specialist") == [other]
    r = client.post("/api/v1/complaints/search", json={"q": mine}, headers=people["claims_specialist"].headers)
    assert numbers(r) == []
    b = Browser(app).login("claims_specialist")
    assert mine not in b.get("/complaints").text and mine not in b.get(f"/complaints?q={mine[-6:]}").text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_page_finds_pages_and_counts_past_the_cap(app, desk, backend, monkeypatch):
    made = [desk.register() for _ in range(3)]
    b = Browser(app).login("compliance")
    r = b.get(f"/complaints?q={made[1]}")
    assert r.status_code == 302 and r.location.endswith(f"/complaints/{made[1]}")    # one exact hit: opened
    cs = Browser(app).login("customer_service")
    r = cs.post("/complaints", {"q": "张三"})                                         # a name, in the body
    assert r.status_code == 200 and "找到 3 件投诉" in text(r)
    assert r.text.count('<td data-label="客户">张三</td>') == 3                       # customer service sees it
    assert "找到 0 件投诉" in text(b.post("/complaints", {"q": "张三"}))               # compliance finds no names
    assert b.get("/complaints?page=²").status_code == 200                              # no number: page 1
    app.config["WEB_PER_PAGE"] = 2
    r = b.get("/complaints?status=open&page=2")
    assert [made[0]] == [n for n in made if n in r.text] and "第 2 页，共 2 页" in text(r)
    monkeypatch.setattr(complaint_list, "COUNT_CAP", 2)
    assert "超过 2 件投诉" in text(b.get("/complaints?status=open"))


def test_a_page_that_ends_the_list_is_counted_by_its_rows_and_one_past_the_end_is_the_last(
        app, desk, client, people, monkeypatch):
    made = [desk.register() for _ in range(3)]

    def listed(url):
        got = []
        sent = statements_of(lambda: got.append(client.get(url, headers=people["compliance"].headers)))
        counted = sum(1 for s in sent if s.upper().startswith("SELECT COUNT("))
        found = got[0].json
        return numbers(got[0]), (found["total"], found["capped"], found["page"], found["pages"]), counted

    assert listed(f"/api/v1/complaints?q={made[1]}") == ([made[1]], (1, False, 1, 1), 0)     # less than a page
    assert listed("/api/v1/complaints?q=NO-SUCH") == ([], (0, False, 1, 1), 0)
    assert listed("/api/v1/complaints?per_page=2") == (made[:0:-1], (3, False, 1, 2), 1)      # full: counted
    assert listed("/api/v1/complaints?per_page=2&page=2") == ([made[0]], (3, False, 2, 2), 0)
    assert listed("/api/v1/complaints?per_page=2&page=9") == ([made[0]], (3, False, 2, 2), 1)  # past the end
    assert listed("/api/v1/complaints?per_page=3") == (made[::-1], (3, False, 1, 1), 1)
    monkeypatch.setattr(complaint_list, "COUNT_CAP", 2)
    assert listed("/api/v1/complaints?per_page=4") == (made[::-1], (2, True, 1, 1), 1)          # past the cap
    assert listed("/api/v1/complaints?per_page=1&page=2") == ([made[1]], (2, True, 2, 2), 1)
    assert listed("/api/v1/complaints?per_page=1&page=3") == ([made[1]], (2, True, 2, 2), 1)   # past the cap


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_saved_filters_are_the_users_own_and_never_hold_a_term(app, desk, people, backend):
    desk.register()
    b = Browser(app).login("management")
    r = b.post("/complaints/saved?status=open&channel=hotline&q=张三", {"name": "热线未结"}, page="/complaints")
    assert r.status_code == 302
    saved = db.session.execute(select(SavedFilter)).scalar_one()
    assert saved.args == {"status": "open", "channel": "hotline"}                   # the term is not a filter
    page = b.get("/complaints").text
    assert "热线未结" in page and "status=open" in page
    b.post("/complaints/saved?status=closed", {"name": "热线未结"}, page="/complaints")   # same name: replaced
    assert db.session.execute(select(SavedFilter.args)).scalar_one() == {"status": "closed"}
    assert "请至少选择一个筛选条件再保存" in text(b.post("/complaints/saved", {"name": "x"}, page="/complaints",
                                                      follow_redirects=True))
    other = Browser(app).login("compliance")
    r = other.post(f"/complaints/saved/{saved.id}/delete", page="/complaints", follow_redirects=True)
    assert "没有这个已保存的筛选" in text(r) and db.session.get(SavedFilter, saved.id) is not None
    b.post(f"/complaints/saved/{saved.id}/delete", page="/complaints")
    assert db.session.execute(select(SavedFilter)).first() is None


def test_the_steps_a_complaint_waits_at_read_in_the_pages_language(app, desk, monkeypatch):
    """The list's "Now" column and the export's say the waiting steps in the page's language (the complaint row keeps
    the diagram's names); a background export carries the same labels in its params."""
    number = desk.register()
    desk.complete(number, "initial_review")
    b = Browser(app).login("management")
    row = re.compile(rf'data-complaint="{number}".*?data-label="[^"]*">([^<]*)</td>\s*</tr>', re.S)
    assert row.search(b.get("/complaints").text).group(1) == "调查取证"
    b.get("/language/en?next=/complaints")
    assert row.search(b.get("/complaints").text).group(1) == "Investigation"
    rows = list(csv.reader(io.StringIO(b.get("/complaints/export.csv").data.decode("utf-8-sig"))))
    assert rows[1][0] == number and rows[1][7] == "Investigation", rows
    assert list_export.steps_text("调查取证、审批延期", {"names": {"调查取证": "Investigation"}, "joiner": ", "}) \
        == "Investigation, 审批延期"                                    # a name no step waits at: as stored
    assert list_export.steps_text("调查取证", None) == "调查取证"          # a job queued before the labels were
    # Every user task of every process is labelled, not only where complaints wait now: a background export reads
    # its rows later, when a complaint may have moved on (or into a review).
    from flask_babel import force_locale
    from app.web.complaints.listing import _step_labels
    with app.test_request_context(), force_locale("en"):
        names = _step_labels()["names"]
    assert names["核查决定"] == "Review decision" and names["客户确认"] == "Customer confirmation", names


def test_export_streams_every_row_masked_and_is_audited(app, desk, people):
    made = [desk.register(customer_name="=HYPERLINK(\"x\")"), desk.register(channel="website")]
    b = Browser(app).login("management")
    r = b.get("/complaints/export.csv?status=open")
    assert r.status_code == 200 and "complaints-" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["投诉", "收到时间", "客户"]
    assert [row[0] for row in rows[1:]] == made[::-1] and rows[2][2].startswith("'=*")  # masked, newest first,
    #                                                                                  and never a formula
    assert "13812345678" not in r.data.decode("utf-8-sig")                         # no phone at all
    r = b.post("/complaints/export.xlsx", {"q": made[0][-6:]}, page="/complaints")   # a term: from the body
    sheet = load_workbook(io.BytesIO(r.data)).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == [made[0]]
    events = db.session.execute(select(AuditEvent).where(AuditEvent.action == "complaints_exported")
                                .order_by(AuditEvent.id)).scalars().all()
    assert [(e.actor, e.data["format"], e.data["term"]) for e in events] == [("management", "csv", False),
                                                                           ("management", "xlsx", True)]
    assert made[0][-6:] not in str(events[1].data)                                 # the term is never kept
    r = b.get("/complaints/export.csv?status=lost&endpoint=x&_scheme=https")           # odd arguments: no 500
    assert r.status_code == 302 and "endpoint" not in r.location
    assert Browser(app).login("claims_specialist").get("/complaints/export.csv").status_code == 403
    # Named by the Beijing time it was made (02:30 there is still 18:30 of the day before in UTC).
    with time_machine.travel(datetime(2026, 12, 3, 2, 30, tzinfo=timezone(timedelta(hours=8))), tick=False):
        r = Browser(app).login("management").get("/complaints/export.csv?status=open")
        assert r.headers["Content-Disposition"] == "attachment; filename=complaints-20261203-0230.csv"
