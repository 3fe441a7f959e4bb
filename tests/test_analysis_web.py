"""The analysis page over HTTP (Flask's test client, CSRF on): who may open it, filters, bad input shown
again with a message in Chinese and in English (never a 500), the complaints behind a bar without personal
data, the CSV and Excel exports streamed (opened again with openpyxl; 20,000 complaints in one export),
and the stored report of a quarterly review — on SQLite and PostgreSQL."""
import csv
import io
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert

from app import analysis
from app.extensions import db
from app.models import Complaint
from tests.test_analysis import Q3, at, complaint, instance_of, many
from tests.test_web import Browser, text

ANALYSTS = ("management", "compliance", "training", "head_office", "process_owner")
Q3_ARGS = "quarter=2026Q3"


def as_(app, role) -> Browser:
    return Browser(app).login(role)


def download(browser, path):
    """A streamed download, read whole inside the request's own app context (as Browser.open gives each
    request one, but kept open until the last chunk: the stream reads the database as it goes)."""
    with browser.app.app_context():
        r = browser.client.get(path)
        r.streamed = r.is_streamed          # before reading it: a read response holds its body as a list
        r.body = r.get_data()
    return r


@pytest.fixture
def seeded(app, people):
    many(3, date(2026, 7, 2), channel="website", category="claim_amount")
    many(2, date(2026, 8, 2), channel="hotline", category="claim_delay")
    complaint(at(date(2026, 8, 3)), category="service_attitude", product_line="motor")
    db.session.commit()


@pytest.mark.parametrize("role", ANALYSTS)
def test_the_roles_that_act_on_the_analysis_open_it(app, people, seeded, role):
    r = as_(app, role).get(f"/analysis?{Q3_ARGS}")
    assert r.status_code == 200
    assert 'data-testid="table-by_category"' in r.text and "理赔纠纷 › 理赔金额争议" in r.text
    assert "vendor/echarts/echarts.common.min.js" in r.text and 'id="analysis-charts"' in r.text


@pytest.mark.parametrize("role", ("customer_service", "claims_specialist"))
def test_handlers_may_not_open_it(app, people, role):
    b = as_(app, role)
    for path in ("/analysis", "/analysis/complaints", "/analysis/export.csv", "/analysis/complaints.xlsx"):
        assert b.get(path).status_code == 403, path


def test_the_default_is_the_current_quarter_and_filters_narrow_it(app, people, seeded):
    b = as_(app, "management")
    assert b.get("/analysis").status_code == 200
    page = text(b.get(f"/analysis?{Q3_ARGS}&channel=website"))
    assert "Period: 2026-07-01" in page or "期间：2026-07-01" in page
    figures = text(b.get(f"/analysis?{Q3_ARGS}&channel=website"))
    assert "收到的投诉 3" in figures and "筛选条件： 投诉渠道 = 官方网站" in figures
    assert "收到的投诉 6" in text(b.get("/analysis?from=2026-07-01&to=2026-09-30"))
    assert "收到的投诉 5" in text(b.get(f"/analysis?{Q3_ARGS}&category=claims"))


@pytest.mark.parametrize("query, zh, en", [
    ("from=2026-09-30&to=2026-07-01", "期间的开始日期（2026-09-30）晚于结束日期（2026-07-01）", "The period starts (2026-09-30) after it ends"),
    ("quarter=2026Q7", "“2026Q7”不是季度", "“2026Q7” is not a quarter"),
    ("from=2020-01-01&to=2026-01-01", "最多可分析 1099 天", "at most 1099 days"),
    ("from=2026-13-01&to=2026-12-31", "“2026-13-01”不是日期", "“2026-13-01” is not a date"),
    ("from=2026-07-01", "请填写期间的两个日期", "Give both dates of the period"),
    (f"{Q3_ARGS}&category=made_up", "“made_up”不是此筛选项的值", "“made_up” is not a value of this filter"),
    (f"{Q3_ARGS}&channel=fax", "“fax”不是此筛选项的值", "“fax” is not a value of this filter"),
])
def test_bad_input_is_shown_again_with_a_message_in_the_pages_language(app, people, query, zh, en):
    b = as_(app, "compliance")
    for path in ("/analysis", "/analysis/complaints", "/analysis/export.csv", "/analysis/complaints.xlsx"):
        r = b.get(f"{path}?{query}")
        assert r.status_code == 422, (path, r.status_code)
        assert zh in text(r), text(r)
    r = b.get(f"/analysis?{query}&lang=en")
    assert r.status_code == 422 and en in text(r), text(r)
    assert 'data-testid="analysis-filters"' in r.text            # the form is there to correct it


def test_a_bar_leads_to_the_complaints_behind_it_without_personal_data(app, people, seeded):
    b = as_(app, "training")
    page = b.get(f"/analysis?{Q3_ARGS}")
    link = next(line for line in page.text.split('data-testid="drill-link"')[0].splitlines()[::-1] if "href=" in line)
    assert "/analysis/complaints?" in link
    r = b.get("/analysis/complaints?from=2026-07-01&to=2026-09-30&category=claim_amount")
    assert r.status_code == 200 and r.text.count('data-testid="drilldown-row"') == 3
    assert "3 条投诉" in text(r) or "3 complaints" in text(r)
    assert "客户" not in text(r) and "139" not in text(r).replace("TA-", "")      # no name, no phone
    r = b.get("/analysis/complaints?from=2026-07-01&to=2026-09-30&product_line=_uncoded")
    assert r.text.count('data-testid="drilldown-row"') == 0
    # A process owner analyses but opens no complaint: the numbers are shown, not linked to a page it may not open.
    r = as_(app, "process_owner").get("/analysis/complaints?from=2026-07-01&to=2026-09-30&category=claim_amount")
    assert r.text.count('data-testid="complaint-number"') == 3 and 'data-testid="complaint-link"' not in r.text
    assert b.get("/analysis/complaints?from=2026-07-01&to=2026-09-30&category=claim_amount").text.count(
        'data-testid="complaint-link"') == 3                                    # training reads complaints


def test_the_tables_export_as_csv_with_a_bom_and_as_excel(app, people, seeded):
    b = as_(app, "management")
    r = download(b, f"/analysis/export.csv?{Q3_ARGS}")
    assert r.status_code == 200 and r.streamed and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == "attachment; filename=analysis-2026Q3.csv"
    body = r.body
    assert body.startswith("\ufeff".encode("utf-8"))
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert ["按投诉类别统计的投诉"] in rows
    assert ["理赔纠纷 › 理赔金额争议", "3", "0", "+3", "0"] in rows
    r = download(b, f"/analysis/export.xlsx?{Q3_ARGS}&lang=en")
    assert r.status_code == 200 and r.streamed
    assert r.headers["Content-Disposition"] == "attachment; filename=analysis-2026Q3.xlsx"
    book = load_workbook(io.BytesIO(r.body), read_only=True)
    assert book.sheetnames[:3] == ["Key figures", "Complaints received over time", "Complaints by Category"], book.sheetnames
    sheet = book["Complaints by Category"]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["Category", "Complaints", "Previous period", "Change", "Same period last year"]
    assert ["Claims disputes › Dispute over the amount paid", 3, 0, "+3", 0] in cells


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)     # the server-side cursor's backend
def test_twenty_thousand_complaints_export_streamed(app, people, backend):
    start = at(date(2026, 7, 1))
    db.session.execute(insert(Complaint), [
        {"number": f"TB-{i:06d}", "channel": "hotline", "customer_name": f"客户{i}", "phone": f"138{i:08d}",
         "category": "claim_delay", "product_line": "health", "description": "seeded", "status": "open", "rounds": 0,
         "received_at": start + timedelta(minutes=i), "created_at": start, "updated_at": start, "language": "zh"}
        for i in range(20_000)])
    db.session.commit()
    b = as_(app, "compliance")
    r = download(b, "/analysis/complaints.xlsx?quarter=2026Q3&category=claim_delay")
    assert r.status_code == 200 and r.streamed
    assert r.headers["Content-Disposition"] == "attachment; filename=analysis-complaints-2026Q3.xlsx"
    sheet = load_workbook(io.BytesIO(r.body), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 20_001 and rows[0][:3] == ("投诉", "收到时间", "投诉类别")
    assert rows[1][0] == "TB-019999" and rows[1][1] == datetime(2026, 7, 15, 7, 19)      # newest first, Beijing time
    assert rows[-1][2] == "理赔纠纷 › 理赔时效"
    r = download(b, "/analysis/complaints.csv?from=2026-07-01&to=2026-08-31")
    assert r.headers["Content-Disposition"] == "attachment; filename=analysis-complaints-2026-07-01_2026-08-31.csv"
    assert r.streamed and r.body.decode("utf-8-sig").count("\r\n") == 20_001


def test_a_stored_report_is_shown_as_it_was_and_exported(app, people, seeded):
    inst = instance_of(db.session.get(Complaint, 1) or complaint(at(date(2026, 7, 5))), "quarterly_review")
    report = analysis.attach(db.session, inst.id, *Q3, "scheduler")
    db.session.commit()
    many(4, date(2026, 7, 20))                 # after it was stored: the report does not change
    db.session.commit()
    b = as_(app, "head_office")
    r = b.get(f"/analysis/reports/{report.id}")
    assert r.status_code == 200 and "已保存的分析 2026Q3" in text(r) and "收到的投诉 6" in text(r)
    assert 'data-testid="analysis-filters"' not in r.text
    r = download(b, f"/analysis/reports/{report.id}/export.csv")
    assert r.streamed and r.headers["Content-Disposition"] == f"attachment; filename=analysis-report-{report.id}-2026Q3.csv"
    assert b.get("/analysis/reports/999999").status_code == 404
