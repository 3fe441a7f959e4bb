"""Evidence files and internal notes (issue 12 item 2): attached to a complaint or a task's case, checked by
content (not by name), stored by SHA-256 with the hash in the audit chain, downloadable only by the roles
that may see them (and never under 回避), every bad upload refused with a clear message and nothing kept;
a form's file field (contentMediaType) takes them; notes are audit events shown in the timeline."""
import hashlib
import io
import stat

import pytest
from sqlalchemy import func, select

from app import evidence
from app.evidence.store import store_of
from app.extensions import db
from app.models import AuditEvent, EvidenceFile
from tests.flow import Desk
from tests.test_web import Browser, flashes, fresh, text

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde" + b"\x00" * 32
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120
WINDOWS_PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 60
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(autouse=True)
def own_store(app, tmp_path):
    """Each test its own evidence directory, so what one stores cannot show in another."""
    app.config["EVIDENCE_DIR"] = str(tmp_path / "evidence")
    evidence.init_app(app)


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def login(app, who):
    return Browser(app).login(who)


def attach(browser, number, *files, description=""):
    page = f"/complaints/{number}"
    return browser.post(f"{page}/evidence", {"files": [(io.BytesIO(c), n) for n, c in files],
                                             "description": description}, page=page)


def stored():
    fresh()
    return db.session.execute(select(EvidenceFile).order_by(EvidenceFile.id)).scalars().all()


def events(action):
    fresh()
    return db.session.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).scalars().all()


def blobs(app):
    root = store_of(app).root
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_file_is_stored_by_its_hash_recorded_in_the_chain_and_downloaded_as_attached(app, desk):
    number = desk.register()
    cs = login(app, "customer_service")
    r = attach(cs, number, ("张三 维修发票.pdf", PDF), ("现场照片", PNG), description="发票与现场照片")
    assert r.status_code == 302 and r.location.endswith(f"/complaints/{number}#evidence")
    rows = stored()
    assert [(f.filename, f.media_type, f.size, f.case_key) for f in rows] == [
        ("张三 维修发票.pdf", "application/pdf", len(PDF), number), ("现场照片", "image/png", len(PNG), number)]
    assert rows[0].sha256 == hashlib.sha256(PDF).hexdigest()
    # the content lives under its hash; the audit chain of the complaint holds the hash
    assert store_of(app).get(rows[0].sha256) == PDF
    attached = events("evidence_attached")
    assert [(e.business_key, e.data["sha256"], e.data["file_id"]) for e in attached] == [
        (number, rows[0].sha256, rows[0].id), (number, rows[1].sha256, rows[1].id)]
    assert "张三" not in str(attached[0].data)       # the file name (personal data) stays out of the audit trail
    page = text(cs.get(f"/complaints/{number}"))
    assert "张三 维修发票.pdf" in page and "发票与现场照片" in page and "证据已附加" in page

    r = cs.get(f"/evidence/{rows[0].id}")
    assert r.status_code == 200 and r.data == PDF and r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"].startswith("attachment;") and "no-store" in r.headers["Cache-Control"]
    # a name without an extension gets the one of its content's type
    assert ".png" in cs.get(f"/evidence/{rows[1].id}").headers["Content-Disposition"]
    assert [e.data["file_id"] for e in events("evidence_viewed")] == [rows[0].id, rows[1].id]


BAD_UPLOADS = [
    ("empty.pdf", b"", "是空的"),
    ("bill.pdf", ELF, "是程序"),
    ("photo.jpg", WINDOWS_PROGRAM, "是程序"),
    ("records.zip", ZIP, "不接受的类型"),
    ("big.pdf", PDF + b"0" * 3000, "太大"),
]


def test_each_bad_upload_is_refused_with_a_clear_message_and_nothing_kept(app, desk):
    app.config["EVIDENCE_MAX_BYTES"] = 2048
    number = desk.register()
    cs = login(app, "customer_service")
    for name, content, says in BAD_UPLOADS:
        before = audit_actions()
        r = attach(cs, number, (name, content))
        page = cs.get(r.location)
        assert any(says in m and name in m and "未保存" in m for m in flashes(page)), (name, flashes(page))
        assert stored() == [] and blobs(app) == [] and audit_actions() == before, name


def audit_actions():
    fresh()
    return db.session.execute(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action.notin_(["personal_data_viewed"]))).scalar_one()


def test_a_duplicate_is_refused_and_the_good_files_of_the_same_upload_are_kept(app, desk):
    number = desk.register()
    cs = login(app, "customer_service")
    attach(cs, number, ("invoice.pdf", PDF))
    r = attach(cs, number, ("invoice-again.pdf", PDF), ("empty.txt", b""), ("photo.png", PNG))
    messages = flashes(cs.get(r.location))
    assert any("invoice-again.pdf" in m and "已附加在此案件" in m for m in messages), messages
    assert any("empty.txt" in m for m in messages) and any("已附加 1 个文件" in m for m in messages), messages
    assert [f.filename for f in stored()] == ["invoice.pdf", "photo.png"]
    assert len(events("evidence_attached")) == 2
    # the same content in another complaint is that complaint's evidence too (stored once)
    other = desk.register()
    attach(cs, other, ("invoice.pdf", PDF))
    assert [f.case_key for f in stored()].count(other) == 1 and len(blobs(app)) == 2


def test_a_body_beyond_the_upload_limit_is_refused_before_it_is_read(app, desk):
    app.config["EVIDENCE_MAX_BYTES"] = 1024
    number = desk.register()
    cs = login(app, "customer_service")
    r = attach(cs, number, ("huge.pdf", PDF + b"0" * (2 * 1024 * 1024)))
    assert r.status_code == 413 and "过大" in text(r)
    assert stored() == [] and blobs(app) == []


def test_the_virus_scanner_hook_refuses_malware_and_what_it_cannot_check(app, desk, tmp_path):
    scanner = tmp_path / "scan.sh"      # a real scanner process: ClamAV's exit codes (0 clean, 1 found, 2 error)
    scanner.write_text("#!/bin/sh\nif grep -q EICAR-STANDARD-ANTIVIRUS-TEST-FILE; then exit 1; fi\n"
                       "[ -e \"$1\" ] && exit 2\nexit 0\n")
    scanner.chmod(scanner.stat().st_mode | stat.S_IEXEC)
    app.config["EVIDENCE_SCAN_COMMAND"] = str(scanner)
    number = desk.register()
    cs = login(app, "customer_service")
    messages = flashes(cs.get(attach(cs, number, ("eicar.txt", EICAR)).location))
    assert any("病毒扫描发现" in m and "eicar.txt" in m for m in messages), messages
    app.config["EVIDENCE_SCAN_COMMAND"] = f"{scanner} {scanner}"       # the scanner fails: refused, not let through
    messages = flashes(cs.get(attach(cs, number, ("bill.pdf", PDF)).location))
    assert any("无法进行病毒检查" in m for m in messages), messages
    app.config["EVIDENCE_SCAN_COMMAND"] = str(tmp_path / "no-such-scanner")
    assert any("无法进行病毒检查" in m for m in flashes(cs.get(attach(cs, number, ("bill.pdf", PDF)).location)))
    assert stored() == []
    app.config["EVIDENCE_SCAN_COMMAND"] = str(scanner)
    attach(cs, number, ("bill.pdf", PDF))
    assert [f.filename for f in stored()] == ["bill.pdf"]


def test_who_may_see_and_open_evidence(app, desk):
    number = desk.register(claim_handler="claims_specialist")
    cs = login(app, "customer_service")
    attach(cs, number, ("张三身份证.png", PNG))
    file_id = stored()[0].id
    # a role that does not see personal data sees the file masked, but may open it (and is audited)
    mgmt = login(app, "management")
    page = text(mgmt.get(f"/complaints/{number}"))
    assert "张三身份证" not in page and "文件 1 (.png)" in page
    assert mgmt.get(f"/evidence/{file_id}").status_code == 200
    # training reads complaints to learn from them: it sees that a file exists, not its content
    training = login(app, "training")
    assert "文件 1 (.png)" in text(training.get(f"/complaints/{number}"))
    assert training.get(f"/evidence/{file_id}").status_code == 403
    # 回避: the handler of the original claim opens nothing of this complaint
    assert login(app, "claims_specialist").get(f"/evidence/{file_id}").status_code == 403
    # roles that read no complaints
    for who in ("measure_owner", "process_owner"):
        assert login(app, who).get(f"/evidence/{file_id}").status_code == 403
    assert login(app, "compliance").get(f"/evidence/{file_id}").status_code == 200
    assert Browser(app).get(f"/evidence/{file_id}").status_code == 302          # not logged in: to the login page
    # uploading needs a handler role and a readable complaint
    assert attach(login(app, "compliance"), number, ("x.pdf", PDF)).status_code == 403
    assert attach(login(app, "claims_specialist"), number, ("x.pdf", PDF)).status_code == 403
    assert len(stored()) == 1


def test_a_changed_or_missing_stored_file_is_not_handed_out(app, desk):
    number = desk.register()
    cs = login(app, "customer_service")
    attach(cs, number, ("bill.pdf", PDF))
    row = stored()[0]
    path = store_of(app)._path(row.sha256)
    path.write_bytes(PDF.replace(b"Catalog", b"Catalox"))
    r = cs.get(f"/evidence/{row.id}", headers={"Referer": f"/complaints/{number}"})
    assert r.status_code == 302
    assert any("哈希不符" in m for m in flashes(cs.get(r.location)))
    path.unlink()
    assert cs.get(f"/evidence/{row.id}").status_code == 302
    assert events("evidence_viewed") == []


def test_a_task_form_file_field_takes_evidence_and_keeps_it_across_a_refused_submit(app, desk, people, client):
    number = desk.register()
    desk.complete(number, "initial_review")
    task_id = desk.task_id(number, "investigate")
    specialist = login(app, "claims_specialist")
    page = f"/tasks/{task_id}"
    assert 'name="evidence_files__upload"' in specialist.get(page).get_data(as_text=True)
    # a good file and a missing required field: the file is kept (shown, and sent again as its hash)
    r = specialist.post(page, {"evidence_files__upload": [(io.BytesIO(PDF), "保单.pdf"), (io.BytesIO(ELF), "x.pdf")],
                               "customer_contacted": "true"})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    sha = hashlib.sha256(PDF).hexdigest()
    assert f'name="evidence_files" value="{sha}"' in body and "已附加：文件 1 (.pdf)" in text(r)
    assert "“x.pdf” 是程序" in text(r)        # the refused one, beside the field
    r = specialist.post(page, {"evidence_files": sha, "findings": "理赔延误属实", "customer_contacted": "true"})
    assert r.status_code == 302, text(r)
    done = events("task_completed")[-1]
    assert done.data["form_data"]["evidence_files"] == [sha]
    assert [(f.task_id, f.field) for f in stored()] == [(task_id, "evidence_files")]


def test_a_file_field_must_name_a_file_of_the_same_case(app, desk, client, people):
    number, other = desk.register(), desk.register()
    for n in (number, other):
        desk.complete(n, "initial_review")
    attach(login(app, "customer_service"), other, ("bill.pdf", PDF))
    sha = hashlib.sha256(PDF).hexdigest()
    task_id = desk.task_id(number, "investigate")
    headers = people["claims_specialist"].headers
    for value in ([sha], ["not-a-hash"], "a-string"):
        r = client.post(f"/api/v1/tasks/{task_id}/complete", headers=headers,
                        json={"data": {"findings": "x", "customer_contacted": True, "evidence_files": value}})
        assert r.status_code == 422 and "evidence_files" in r.json["error"]["fields"], r.json
    r = client.post(f"/api/v1/tasks/{task_id}/complete", headers=headers,
                    json={"data": {"findings": "x", "customer_contacted": True, "evidence_files": []}})
    assert r.status_code == 200, r.json


def test_notes_are_audited_shown_in_the_timeline_and_the_case_file(app, desk):
    number = desk.register()
    mgmt = login(app, "management")
    page = f"/complaints/{number}"
    r = mgmt.post(f"{page}/notes", {"text": "客户来电情绪激动，\n建议优先处理。"}, page=page)
    assert r.status_code == 302 and r.location.endswith("#notes")
    shown = mgmt.get(page)
    assert "已添加备注。" in flashes(shown) and "建议优先处理" in text(shown) and "内部备注" in text(shown)
    note = events("note_added")[0]
    assert (note.actor, note.business_key, note.data["text"]) == ("management", number, "客户来电情绪激动，\n建议优先处理。")
    assert login(app, "compliance").post(f"{page}/notes", {"text": "已核对"}, page=page).status_code == 302
    case_file = mgmt.get(f"{page}/case-file.json").json
    assert [e["data"]["text"] for e in case_file["audit"] if e["action"] == "note_added"] == [
        "客户来电情绪激动，\n建议优先处理。", "已核对"]
    # bad notes: a clear message, nothing saved
    for bad, says in (("   ", "请先写备注"), ("长" * 2001, "最多 2000 个字符")):
        r = mgmt.post(f"{page}/notes", {"text": bad}, page=page)
        assert any(says in m for m in flashes(mgmt.get(r.location))), bad
    assert len(events("note_added")) == 2
    assert login(app, "measure_owner").post(f"{page}/notes", {"text": "x"}, page="/").status_code == 403


def test_the_case_file_lists_the_evidence_with_hashes(app, desk):
    number = desk.register()
    attach(login(app, "customer_service"), number, ("bill.pdf", PDF))
    mgmt = login(app, "management")
    record = mgmt.get(f"/complaints/{number}/case-file.json").json
    assert [(f["media_type"], f["sha256"], f["size"]) for f in record["evidence"]] == [
        ("application/pdf", hashlib.sha256(PDF).hexdigest(), len(PDF))]
    assert record["evidence"][0]["name"] == "file-1.pdf"          # masked for management (no personal data role)
    cs = login(app, "customer_service")
    assert cs.get(f"/complaints/{number}/case-file.json").json["evidence"][0]["name"] == "bill.pdf"
    page = cs.get(f"/complaints/{number}/case-file")
    assert "bill.pdf" in text(page) and f'href="/evidence/{stored()[0].id}"' in page.get_data(as_text=True)


def test_the_case_file_export_holds_its_record_and_its_files(app, desk):
    import json
    import zipfile
    number = desk.register()
    attach(login(app, "customer_service"), number, ("bill.pdf", PDF), ("photo", PNG))
    mgmt = login(app, "management")
    r = mgmt.get(f"/complaints/{number}/case-file.zip")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    first, second = (f.id for f in stored())
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        names = archive.namelist()
        record = json.loads(archive.read("case-file.json"))
        assert names == ["case-file.json", f"evidence/{first}-file-1.pdf", f"evidence/{second}-file-2.png"]
        assert archive.read(names[1]) == PDF and archive.read(names[2]) == PNG
    assert [f["sha256"] for f in record["evidence"]] == [hashlib.sha256(c).hexdigest() for c in (PDF, PNG)]
    assert len(events("evidence_viewed")) == 2          # every file handed out is recorded
    assert login(app, "training").get(f"/complaints/{number}/case-file.zip").status_code == 403


# ---- the API ---------------------------------------------------------------------------------------------
def api_upload(client, person, number, name, content, **form):
    return client.post(f"/api/v1/complaints/{number}/evidence", headers=person.headers,
                       data={"file": (io.BytesIO(content), name), **form}, content_type="multipart/form-data")


def test_the_api_uploads_lists_downloads_and_refuses_like_the_pages(app, desk, client, people):
    number = desk.register()
    cs, mgmt = people["customer_service"], people["management"]
    r = api_upload(client, cs, number, "发票.pdf", PDF, description="发票")
    assert r.status_code == 201, r.json
    entry = r.json
    assert (entry["name"], entry["media_type"], entry["sha256"], entry["description"]) == (
        "发票.pdf", "application/pdf", hashlib.sha256(PDF).hexdigest(), "发票")
    assert client.get(f"/api/v1/complaints/{number}/evidence", headers=mgmt.headers).json["items"][0]["name"] == \
        "file-1.pdf"                                           # masked for a role without personal data
    r = client.get(f"/api/v1/evidence/{entry['id']}", headers=mgmt.headers)
    assert r.status_code == 200 and r.data == PDF and len(events("evidence_viewed")) == 1
    assert client.get(f"/api/v1/evidence/{entry['id']}", headers=people["training"].headers).status_code == 403
    for name, content, status, code in (("again.pdf", PDF, 409, "evidence_duplicate"),
                                        ("x.pdf", ELF, 422, "evidence_program"), ("e.pdf", b"", 422, "evidence_empty"),
                                        ("a.zip", ZIP, 422, "evidence_type")):
        r = api_upload(client, cs, number, name, content)
        assert (r.status_code, r.json["error"]["code"], list(r.json["error"]["fields"])) == (status, code, ["file"])
    r = api_upload(client, cs, number, "long.png", PNG, description="说" * 501)     # not cut to 500: refused
    assert (r.status_code, r.json["error"]["code"], list(r.json["error"]["fields"])) == (
        422, "evidence_description", ["description"])
    r = client.post(f"/api/v1/complaints/{number}/evidence", headers=cs.headers, data={"description": "x"},
                    content_type="multipart/form-data")
    assert r.status_code == 422 and r.json["error"]["fields"] == {"file": "required"}
    assert len(stored()) == 1
    # a note
    r = client.post(f"/api/v1/complaints/{number}/notes", headers=mgmt.headers, json={"text": "请加急"})
    assert r.status_code == 201 and r.json["text"] == "请加急" and r.json["actor"] == "management"
    assert client.post(f"/api/v1/complaints/{number}/notes", headers=mgmt.headers, json={"text": ""}).status_code == 422


def test_the_api_attaches_to_a_task_for_its_form_file_field(app, desk, client, people):
    number = desk.register()
    desk.complete(number, "initial_review")
    task_id = desk.task_id(number, "investigate")
    specialist = people["claims_specialist"]
    r = client.post(f"/api/v1/tasks/{task_id}/evidence", headers=specialist.headers, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(PNG), "现场.png"), "field": "evidence_files"})
    assert r.status_code == 201, r.json
    assert (r.json["task_id"], r.json["field"], r.json["name"]) == (task_id, "evidence_files", "file-1.png")
    r = client.post(f"/api/v1/tasks/{task_id}/complete", headers=specialist.headers, json={"data": {
        "findings": "属实", "customer_contacted": True, "evidence_files": [hashlib.sha256(PNG).hexdigest()]}})
    assert r.status_code == 200, r.json
    # another role's task takes no files
    r = client.post(f"/api/v1/tasks/{task_id}/evidence", headers=people["customer_service"].headers,
                    content_type="multipart/form-data", data={"file": (io.BytesIO(PDF), "x.pdf")})
    assert r.status_code == 403 and len(stored()) == 1


# ---- review mends ------------------------------------------------------------------------------------------
def test_a_text_file_named_like_a_script_goes_out_as_text(app, desk):
    number = desk.register()
    cs = login(app, "customer_service")
    attach(cs, number, ("invoice.bat", b"@echo off\r\ndel /q *\r\n"), ("scan.JPEG", PNG))
    rows = {f.filename: f for f in stored()}
    assert rows["invoice.bat"].media_type == "text/plain"
    header = cs.get(f"/evidence/{rows['invoice.bat'].id}").headers["Content-Disposition"]
    assert "invoice.bat.txt" in header
    assert "scan.JPEG.png" in cs.get(f"/evidence/{rows['scan.JPEG'].id}").headers["Content-Disposition"]
    # a role without personal data gets no original name at all
    assert "invoice" not in login(app, "management").get(f"/evidence/{rows['invoice.bat'].id}") \
        .headers["Content-Disposition"]


def test_no_files_for_a_closed_complaint_or_a_task_that_is_not_open(app, desk, client, people):
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate", "analyse_and_plan", "feedback_to_customer",
                       "customer_confirmation", "archive"])
    cs = login(app, "customer_service")
    messages = flashes(cs.get(attach(cs, number, ("late.pdf", PDF)).location))
    assert any("已结案" in m for m in messages) and stored() == []
    r = api_upload(client, people["customer_service"], number, "late.pdf", PDF)
    assert r.status_code == 409 and r.json["error"]["code"] == "complaint_closed"
    other = desk.register()
    desk.complete(other, "initial_review")
    task_id = desk.task_id(other, "investigate")
    client.post(f"/api/v1/tasks/{task_id}/claim", headers=people["claims_specialist_2"].headers)
    r = client.post(f"/api/v1/tasks/{task_id}/evidence", headers=people["claims_specialist"].headers,
                    content_type="multipart/form-data", data={"file": (io.BytesIO(PDF), "x.pdf")})
    assert r.status_code == 409 and r.json["error"]["code"] == "task_not_open" and stored() == []
