"""The S3-compatible evidence store (app/evidence/s3store.py, issue 12 item 2) against a real S3 server on
127.0.0.1 — moto in server mode, reached by boto3 over HTTP — through the real pages and API: a file goes to
the bucket under its hash (checksum sent, encrypted as configured, written once however often it is
attached), comes back the same in a download and the case-file export, a changed or missing object is
refused, and a store that cannot be reached (this one, or the directory store that cannot write) gives a
clear error and keeps nothing. The store is independent of the database: SQLite only."""
import base64
import hashlib
import io
import json
import socket
import time
import uuid
import zipfile

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select

from app import evidence
from app.evidence.s3store import S3Store
from app.extensions import db
from app.models import AuditEvent, EvidenceFile
from tests.flow import Desk
from tests.test_web import Browser, flashes, fresh

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n"
SHA = hashlib.sha256(PDF).hexdigest()


@pytest.fixture(scope="module")
def s3_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Credentials the way production gives them (the environment), and nothing of this machine's own."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "evidence-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "evidence-test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bucket(app, s3_url, aws_env):
    """A versioned bucket of its own (versions show how often an object was written) and the app using it."""
    name = f"evidence-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    use_s3(app, EVIDENCE_S3_BUCKET=name, EVIDENCE_S3_ENDPOINT_URL=s3_url)
    return name, s3


def use_s3(app, **settings):
    app.config.update({"EVIDENCE_STORE": "app.evidence.s3store:S3Store", "EVIDENCE_S3_REGION": "us-east-1",
                       "EVIDENCE_S3_PREFIX": "evidence/", "EVIDENCE_S3_SSE": "AES256", **settings})
    evidence.init_app(app)


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def attach(app, number, name, content):
    cs = Browser(app).login("customer_service")
    page = f"/complaints/{number}"
    return flashes(cs.get(cs.post(f"{page}/evidence", {"files": [(io.BytesIO(content), name)]}, page=page).location))


def api_upload(client, person, number, name, content):
    return client.post(f"/api/v1/complaints/{number}/evidence", headers=person.headers,
                       data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


def rows():
    fresh()
    return db.session.execute(select(EvidenceFile).order_by(EvidenceFile.id)).scalars().all()


def attached_events():
    fresh()
    return db.session.execute(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "evidence_attached")).scalar_one()


def versions(s3, name):
    return [(v["Key"], v["IsLatest"]) for v in s3.list_object_versions(Bucket=name).get("Versions", [])]


def download(app, file_id, who="management"):
    browser = Browser(app).login(who)
    r = browser.get(f"/evidence/{file_id}", headers={"Referer": "/"})
    if r.status_code == 200:
        return r
    assert r.status_code == 302, r.status_code            # refused: back to the page, with the reason
    return flashes(browser.get(r.location))


def test_a_file_goes_to_the_bucket_under_its_hash_and_comes_back_the_same(app, desk, people, client, bucket):
    assert client.get("/readyz").json["checks"]["evidence"] == "ok"          # the bucket answers
    name, s3 = bucket
    number = desk.register()
    assert any("已附加 1 个文件" in m for m in attach(app, number, "发票.pdf", PDF))
    head = s3.head_object(Bucket=name, Key=f"evidence/{SHA}", ChecksumMode="ENABLED")
    # the SHA-256 went with the bytes (the server checks them against it), and the object is encrypted
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(PDF).digest()).decode()
    assert head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == len(PDF)
    [row] = rows()
    assert download(app, row.id).data == PDF
    r = client.get(f"/api/v1/evidence/{row.id}", headers=people["management"].headers)
    assert r.status_code == 200 and r.data == PDF
    with zipfile.ZipFile(io.BytesIO(Browser(app).login("management").get(
            f"/complaints/{number}/case-file.zip").data)) as archive:
        assert archive.read(f"evidence/{row.id}-file-1.pdf") == PDF
        assert json.loads(archive.read("case-file.json"))["evidence"][0]["sha256"] == SHA
    # the same content attached to another complaint (by the API) is stored once: one version of one object
    r = api_upload(client, people["customer_service"], desk.register(), "copy.pdf", PDF)
    assert r.status_code == 201 and r.json["sha256"] == SHA
    assert versions(s3, name) == [(f"evidence/{SHA}", True)] and len(rows()) == 2


def test_a_changed_or_missing_object_is_refused(app, desk, people, client, bucket):
    name, s3 = bucket
    number = desk.register()
    attach(app, number, "bill.pdf", PDF)
    [row] = rows()
    s3.put_object(Bucket=name, Key=f"evidence/{SHA}", Body=PDF.replace(b"Catalog", b"Catalox"))
    assert any("哈希不符" in m for m in download(app, row.id))
    r = client.get(f"/api/v1/evidence/{row.id}", headers=people["management"].headers)
    assert r.status_code == 409 and r.json["error"]["code"] == "evidence_corrupt"
    assert Browser(app).login("management").get(f"/complaints/{number}/case-file.zip").status_code == 409
    s3.delete_object(Bucket=name, Key=f"evidence/{SHA}")
    r = client.get(f"/api/v1/evidence/{row.id}", headers=people["management"].headers)
    assert r.status_code == 409 and r.json["error"]["code"] == "evidence_missing"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_store_that_cannot_be_reached_stores_nothing_and_says_so(app, desk, people, client, bucket):
    name, s3 = bucket
    number = desk.register()
    attach(app, number, "first.pdf", PDF)
    [row] = rows()
    use_s3(app, EVIDENCE_S3_BUCKET=name, EVIDENCE_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
           EVIDENCE_S3_MAX_ATTEMPTS=1, EVIDENCE_S3_TIMEOUT_SECONDS=2)
    other = PDF + b"%another\n"
    messages = attach(app, number, "second.pdf", other)
    assert any("second.pdf" in m and "证据存储不可用" in m and "未保存" in m for m in messages), messages
    r = api_upload(client, people["customer_service"], number, "second.pdf", other)
    assert r.status_code == 503 and r.json["error"]["code"] == "evidence_store_unavailable"
    assert "nothing was stored" in r.json["error"]["message"]
    assert [f.filename for f in rows()] == ["first.pdf"] and attached_events() == 1
    # reading fails as clearly: the page says the store is unavailable, the API and the export answer 503
    assert any("证据存储不可用" in m for m in download(app, row.id))
    assert client.get(f"/api/v1/evidence/{row.id}", headers=people["management"].headers).status_code == 503
    r = Browser(app).login("management").get(f"/complaints/{number}/case-file.zip")
    assert r.status_code == 503 and "证据存储不可用" in r.get_data(as_text=True)
    assert versions(s3, name) == [(f"evidence/{SHA}", True)]
    started = time.monotonic()
    r = client.get("/readyz")        # one attempt, a short wait: a probe must not hang on the store's retries
    assert r.status_code == 503 and r.json["failed"] == ["evidence"] and time.monotonic() - started < 10
    with pytest.raises(ValueError, match="EVIDENCE_S3_BUCKET"):
        S3Store({})                 # a store without a bucket stops the app at its start, not at the first upload


def test_a_directory_store_that_cannot_write_stores_nothing_and_says_so(app, desk, people, client, tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    app.config.update(EVIDENCE_STORE="app.evidence.store:FileStore", EVIDENCE_DIR=str(tmp_path / "not-a-directory"))
    evidence.init_app(app)
    number = desk.register()
    assert any("证据存储不可用" in m and "未保存" in m for m in attach(app, number, "bill.pdf", PDF))
    r = api_upload(client, people["customer_service"], number, "bill.pdf", PDF)
    assert r.status_code == 503 and r.json["error"]["code"] == "evidence_store_unavailable"
    assert rows() == [] and attached_events() == 0
