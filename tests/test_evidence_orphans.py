"""`flask evidence orphans`: the contents in the evidence store that no evidence_file row names (a row that
failed after its content was stored leaves one behind), older than the grace period, in the directory store and
in an S3 bucket (moto's server on 127.0.0.1, as tests/test_evidence_s3.py). Nothing is deleted. The store is
independent of the database: SQLite only."""
import hashlib
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from app import evidence
from app.evidence import orphans
from app.evidence.store import FileStore, store_of
from app.extensions import db
from app.timeutil import utcnow
from tests.flow import Desk
from tests.test_evidence_s3 import PDF, SHA, attach, aws_env, bucket, s3_url, use_s3  # noqa: F401  (fixtures)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

LETTER = b"%PDF-1.4\n% a letter whose row was never written\n%%EOF\n"
LETTER_SHA = hashlib.sha256(LETTER).hexdigest()
RECORDING = b"RIFF....WAVEfmt a recording stored a minute ago"
RECORDING_SHA = hashlib.sha256(RECORDING).hexdigest()


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def listed(app, *args) -> list[str]:
    result = app.test_cli_runner().invoke(args=["evidence", "orphans", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_the_directory_store_lists_contents_no_file_names(app, desk, tmp_path):
    app.config["EVIDENCE_DIR"] = str(tmp_path / "evidence")
    evidence.init_app(app)
    store = store_of(app)
    assert isinstance(store, FileStore) and listed(app) == ["0 content(s) no evidence file names, 0 bytes"]
    attach(app, desk.register(), "发票.pdf", PDF)                       # named by its row: never listed
    store.put(LETTER_SHA, LETTER)                                       # its row failed: an orphan
    store.put(RECORDING_SHA, RECORDING)
    two_hours_ago = time.time() - 2 * 3600
    for sha in (SHA, LETTER_SHA):
        os.utime(tmp_path / "evidence" / sha[:2] / sha[2:], (two_hours_ago, two_hours_ago))
    half = tmp_path / "evidence" / LETTER_SHA[:2] / ".upload-half-written"        # a killed upload's file
    half.write_bytes(b"x")
    os.utime(half, (two_hours_ago, two_hours_ago))
    stored_at = datetime.fromtimestamp(two_hours_ago, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    assert listed(app) == [f"{LETTER_SHA}\t{len(LETTER)}\t{stored_at}Z",   # the recording may still get its row
                           f"{LETTER_SHA[:2]}/.upload-half-written\t1\t{stored_at}Z",
                           f"1 content(s) no evidence file names, {len(LETTER):,} bytes; 1 unfinished upload(s)"]
    checked = app.test_cli_runner().invoke(args=["evidence", "orphans", "--check"])
    assert checked.exit_code == 2 and checked.output.splitlines() == listed(app)
    assert [c.sha256 for c in orphans.unreferenced(db.session, store, utcnow(), timedelta(0))] == [
        LETTER_SHA, RECORDING_SHA]
    assert len(listed(app, "--older-than-hours", "0")) == 4           # two contents, the upload, the total
    assert {c.sha256 for c in store.contents()} == {SHA, LETTER_SHA, RECORDING_SHA}       # nothing deleted
    half.unlink()
    store.put(LETTER_SHA, LETTER)                    # stored again (a retry of the failed upload): its grace again
    assert listed(app, "--check") == ["0 content(s) no evidence file names, 0 bytes"]
    for wrong in ("nan", "-1", "1e9"):
        result = app.test_cli_runner().invoke(args=["evidence", "orphans", "--older-than-hours", wrong])
        assert result.exit_code == 2 and "--older-than-hours" in result.output


def test_a_backup_of_every_content_takes_the_orphans_and_passes_over_a_file_gone_meanwhile(app, desk, tmp_path):
    app.config["EVIDENCE_DIR"] = str(tmp_path / "evidence")
    evidence.init_app(app)
    attach(app, desk.register(), "发票.pdf", PDF)
    store_of(app).put(LETTER_SHA, LETTER)
    gone = "f" * 64                                     # deleted between the folder's listing and its stat
    (tmp_path / "evidence" / "ff").mkdir()
    (tmp_path / "evidence" / "ff" / gone[2:]).symlink_to(tmp_path / "nowhere")
    made = app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "backup"), "--all-evidence"])
    assert made.exit_code == 0, made.output
    assert "2 evidence files (all)" in made.output
    assert {p.name for p in (tmp_path / "backup" / "evidence").glob("*/*")} == {SHA[2:], LETTER_SHA[2:]}


def test_an_s3_bucket_lists_the_objects_no_file_names(app, desk, bucket):
    name, s3 = bucket
    attach(app, desk.register(), "发票.pdf", PDF)
    store_of(app).put(LETTER_SHA, LETTER)
    s3.put_object(Bucket=name, Key="evidence/not-a-hash.txt", Body=b"x")        # not a content of the store
    s3.put_object(Bucket=name, Key=f"elsewhere/{'0' * 64}", Body=b"x")           # outside the prefix
    assert listed(app) == ["0 content(s) no evidence file names, 0 bytes"]       # stored just now
    lines = listed(app, "--older-than-hours", "0")
    assert [line.split("\t")[:2] for line in lines[:-1]] == [[LETTER_SHA, str(len(LETTER))]]
    assert lines[-1] == f"1 content(s) no evidence file names, {len(LETTER):,} bytes"
    assert {c.sha256 for c in store_of(app).contents()} == {SHA, LETTER_SHA}


def test_a_store_that_cannot_be_listed_says_so(app, aws_env):
    use_s3(app, EVIDENCE_S3_BUCKET="no-such-bucket", EVIDENCE_S3_ENDPOINT_URL="http://127.0.0.1:9",
           EVIDENCE_S3_MAX_ATTEMPTS=1, EVIDENCE_S3_TIMEOUT_SECONDS=1)
    result = app.test_cli_runner().invoke(args=["evidence", "orphans"])
    assert result.exit_code == 1 and result.output.startswith("Error: the evidence store is unavailable")
