"""The audit trail: one hash chain per complaint, sealed from time to time. Verification names the
first bad row of every chain that was altered, cut or reordered, and shows a chain deleted whole, a
seal removed, swapped or forged; appends to different complaints never wait on each other."""
import threading

import pytest
from flask_migrate import upgrade
from sqlalchemy import JSON, column, insert, select, table, text
from sqlalchemy.orm import Session

from app import audit, create_app
from app.audit_verify import verify
from app.config import ROOT, TestConfig
from app.extensions import db
from app.models import AuditChain, AuditEvent, AuditSeal
from app.timeutil import UTCDateTime, utcnow
from tests.conftest import _drop_postgres_db, _postgres_test_db
from tests.flow import FORM_DATA, HAPPY_PATH, Desk
from tests.sql_capture import sent_by


@pytest.fixture
def two(client, people):
    desk = Desk(client, people)
    first, second = desk.register(), desk.register()
    desk.walk(first, HAPPY_PATH[:2])
    return first, second


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["audit", *args])


def chain_rows(number):
    """The chain's rows, detached from the session (the tests change the table under them)."""
    rows = db.session.execute(select(AuditEvent).where(AuditEvent.chain == number)
                              .order_by(AuditEvent.seq)).scalars().all()
    db.session.expunge_all()
    return rows


def sql(statement, **params):
    db.session.execute(text(statement), params)
    db.session.commit()


def key(app):
    return audit.seal_key(app.config)


@pytest.mark.clause("C-2.1", "C-3.5.1")
def test_each_complaint_has_its_own_chain_and_an_altered_row_is_named(app, two):
    first, second = two
    rows = chain_rows(first)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1)) and rows[0].prev_hash == audit.GENESIS
    assert all(r.business_key == first for r in rows) and chain_rows(second)
    ok = cli(app, "verify")
    assert ok.exit_code == 0 and "intact" in ok.output

    victim = rows[4]
    sql("UPDATE audit_event SET actor = 'someone_else' WHERE id = :id", id=victim.id)
    broken = cli(app, "verify")
    assert broken.exit_code == 1 and f"BROKEN at audit row {victim.id} (chain {first}: it was altered" in broken.output
    # Per complaint: the other complaint's case file is intact.
    assert cli(app, "verify", "--complaint", second).exit_code == 0
    assert cli(app, "verify", "--complaint", first).exit_code == 1
    empty = cli(app, "verify", "--complaint", " ")             # an empty variable in a script is no complaint
    assert empty.exit_code == 2 and "an empty complaint number" in empty.output


def test_a_removed_or_reordered_row_is_named_by_the_row_after_it(app, two):
    first, _ = two
    rows = chain_rows(first)
    sql("DELETE FROM audit_event WHERE id = :id", id=rows[3].id)
    removed = cli(app, "verify")
    assert removed.exit_code == 1 and f"BROKEN at audit row {rows[4].id} (chain {first}: a row before it is missing" \
        in removed.output

    sql("UPDATE audit_event SET seq = -1 WHERE id = :id", id=rows[5].id)      # swap two rows' places
    sql("UPDATE audit_event SET seq = :s WHERE id = :id", s=rows[5].seq, id=rows[6].id)
    sql("UPDATE audit_event SET seq = :s WHERE id = :id", s=rows[6].seq, id=rows[5].id)
    report = verify(db.session, key(app), chain=first)
    assert not report.intact and report.findings[0].row_id == rows[4].id


def test_a_chain_cut_short_shows_at_its_head(app, two):
    first, _ = two
    rows = chain_rows(first)
    sql("DELETE FROM audit_event WHERE id = :id", id=rows[-1].id)
    report = verify(db.session, key(app), chain=first)
    assert [f.what for f in report.findings] == [f"chain {first}"]
    assert f"its head names row {rows[-1].seq}, its last row is {rows[-2].seq}" in report.findings[0].reason


def test_a_chain_deleted_whole_after_a_seal_shows(app, two):
    first, second = two
    sealed = cli(app, "seal")
    assert sealed.exit_code == 0 and "sealed" in sealed.output
    assert cli(app, "seal").output.strip() == "nothing to seal"
    sql("DELETE FROM audit_event WHERE chain = :c", c=second)
    sql("DELETE FROM audit_chain WHERE chain = :c", c=second)
    broken = cli(app, "verify")
    assert broken.exit_code == 1 and f"BROKEN at chain {second} (seal 1 fixed its row" in broken.output
    assert cli(app, "verify", "--complaint", first).exit_code == 0


def test_seals_chain_and_a_swapped_removed_or_forged_seal_shows(app, two, client, people):
    first, second = two
    audit.seal(db.session, key(app))
    Desk(client, people).walk(first, HAPPY_PATH[2:3])          # the first complaint's chain grows
    later = audit.seal(db.session, key(app))
    assert later.heads == 1 and later.prev_hash == db.session.get(AuditSeal, 1).hash
    assert verify(db.session, key(app)).intact and verify(db.session, key(app)).seals == 2

    # Swap the two seals' contents (ids stay): the chain of seals no longer links.
    columns = "at, prev_hash, hash, signature, heads"
    one, two_ = (db.session.execute(text(f"SELECT {columns} FROM audit_seal WHERE id = :i"), {"i": i}).one()
                 for i in (1, 2))
    for target, values in ((1, two_), (2, one)):
        sql("UPDATE audit_seal SET at = :at, prev_hash = :p, hash = :h, signature = :s, heads = :n WHERE id = :i",
            at=values[0], p=values[1], h=values[2], s=values[3], n=values[4], i=target)
    swapped = verify(db.session, key(app))
    assert "seal 1" in [f.what for f in swapped.findings]
    for target, values in ((1, one), (2, two_)):
        sql("UPDATE audit_seal SET at = :at, prev_hash = :p, hash = :h, signature = :s, heads = :n WHERE id = :i",
            at=values[0], p=values[1], h=values[2], s=values[3], n=values[4], i=target)
    assert verify(db.session, key(app)).intact

    # A seal rebuilt by someone without the key: its hash is right, its signature is not.
    sql("UPDATE audit_seal SET signature = :s WHERE id = 2", s=audit.sign(b"not-the-key", later.hash))
    forged = verify(db.session, key(app))
    assert [(f.what, f.reason.split(" (")[0]) for f in forged.findings] == [("seal 2", "its signature does not match")]

    sql("DELETE FROM audit_seal_head WHERE seal_id = 1")
    sql("DELETE FROM audit_seal WHERE id = 1")                   # a removed seal
    assert "seal 2" in [f.what for f in verify(db.session, key(app)).findings]


def test_a_change_locks_only_its_own_complaints_chain(app, two, client, people):
    """The statements of a completion touch the audit chain of that complaint only: no row that every
    transaction updates. On PostgreSQL, an append to one complaint goes through while another
    complaint's chain is locked by an open transaction."""
    first, second = two
    seen = [s.parameters for s in sent_by(lambda: Desk(client, people).walk(first, HAPPY_PATH[2:3]))
            if "audit_chain" in s.statement and not s.executemany]
    named = {v for p in seen for v in (p.values() if isinstance(p, dict) else p) if isinstance(v, str)}
    assert first in named and second not in named and audit.SYSTEM not in named

    if db.engine.dialect.name != "postgresql":
        return            # SQLite has one writer at a time by design
    holder = db.engine.connect()
    tx = holder.begin()
    holder.execute(text("UPDATE audit_chain SET sealed = false WHERE chain = :c"), {"c": second})   # holds its lock
    errors = []

    def append_other():
        with app.app_context():
            try:
                db.session.execute(text("SET lock_timeout = '2s'"))
                audit.record(db.session, "tester", "probe", business_key=first)
                db.session.commit()
            except Exception as exc:      # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()
    worker = threading.Thread(target=append_other)
    worker.start()
    worker.join(10)
    tx.rollback()
    holder.close()
    assert not errors and chain_rows(first)[-1].action == "probe"


def test_a_rolled_back_change_leaves_no_audit_row(app):
    audit.record(db.session, "tester", "never_written")
    db.session.rollback()
    db.session.commit()
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "never_written")).first() is None


def test_the_migration_checks_the_old_chain_and_chains_every_row_again(backend, tmp_path):
    """0015 on a database with rows of the old global chain: verification passes afterwards, and the
    first row of the system chain says what the old chain was."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else _postgres_test_db("_audit0015")
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url)
    try:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"), revision="0014")
            prev = audit.GENESIS
            for i, (actor, number) in enumerate([("a", "TS-1"), ("b", None), ("c", "TS-1"), ("d", "TS-2")]):
                at = utcnow()
                row = {"at": at, "actor": actor, "action": "x", "instance_id": i, "business_key": number,
                       "task_id": None, "element_id": None, "data": {"i": i}}
                row["hash"] = _old_hash(prev, row)
                db.session.execute(insert(OLD_EVENT).values(**row, prev_hash=prev))
                prev = row["hash"]
            db.session.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
            db.session.commit()
            upgrade(directory=str(ROOT / "migrations"))
            report = verify(db.session, audit.seal_key(app.config))
            assert report.intact and report.rows == 5 and report.chains == 4
            assert [r.seq for r in chain_rows("TS-1")] == [1, 2]
            note = db.session.execute(select(AuditEvent).where(AuditEvent.action == "audit_rechained")).scalar_one()
            assert note.chain == audit.SYSTEM and note.data["legacy_chain_intact"] is True
            assert note.data["rows"] == 4 and note.data["legacy_last_hash"] == prev
            assert db.session.get(AuditChain, "TS-1").seq == 2
            db.session.remove()
            db.engine.dispose()
    finally:
        if backend == "postgresql":
            _drop_postgres_db(url)


OLD_EVENT = table("audit_event", column("at", UTCDateTime), column("actor"), column("action"), column("instance_id"),
                  column("business_key"), column("task_id"), column("element_id"), column("data", JSON),
                  column("prev_hash"), column("hash"))


def _old_hash(prev, row):
    import hashlib
    import json
    body = json.dumps([prev, row["at"].isoformat(), row["actor"], row["action"], row["instance_id"],
                       row["business_key"], row["task_id"], row["element_id"], row["data"]],
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def statements_of_a_completion(client, people, number) -> list[tuple[str, int]]:
    """(statement, rows it writes or 1) of each statement a completion of the complaint's step
    analyse_and_plan sends over the API."""
    step = HAPPY_PATH[2]
    task = Desk(client, people).open_tasks(number)[step]
    answers = []
    seen = sent_by(lambda: answers.append(client.post(f"/api/v1/tasks/{task['id']}/complete",
                                                      json={"data": FORM_DATA[step]},
                                                      headers=people[task["role"]].headers)))
    assert answers[0].status_code == 200, answers[0].json
    return [(s.line, s.rows) for s in seen]


def test_a_completion_writes_its_audit_rows_and_visits_in_one_statement_each(app, two, client, people):
    """Lean writes: the audit events and the element visits of a change are batched, never a row-by-row
    flush (the path of this step passes several elements and writes several events)."""
    seen = statements_of_a_completion(client, people, two[0])
    audit_inserts = [n for s, n in seen if s.startswith("INSERT INTO audit_event")]
    visit_inserts = [n for s, n in seen if s.startswith("INSERT INTO element_visit")]
    assert len(audit_inserts) == 1 and audit_inserts[0] >= 2
    assert len(visit_inserts) == 1 and visit_inserts[0] >= 2


def test_a_completion_claims_its_chain_with_its_lock(app, two, client, people):
    """Lean writes: the statement that locks the instance also locks and reads its complaint's chain (on SQLite
    under the write lock its transaction began with; on PostgreSQL a FOR UPDATE of the chain's row after the
    instance's and the task's),
    so the change's audit rows need only the head's move besides their insert. Nothing is read before the lock (the
    user's role and 回避 are checked on the task it read), and a change looks for no drafts of its tasks when none
    has any."""
    statements = [statement for statement, _ in statements_of_a_completion(client, people, two[0])]
    on_chain = [s for s in statements if "audit_chain" in s]
    assert len(on_chain) == 2, on_chain
    lock, move = on_chain
    assert lock.startswith("SELECT process_instance.id")
    if db.engine.dialect.name == "sqlite":
        assert "LEFT OUTER JOIN audit_chain" in lock
        assert statements[1] == "BEGIN IMMEDIATE"       # the database's write lock, before the lock's read
    else:
        assert lock.endswith("FOR UPDATE OF process_instance, human_task, audit_chain")
        statements.insert(1, "BEGIN")                    # sent by the driver, unseen here
    assert move.startswith("UPDATE audit_chain SET seq")
    assert statements.index(lock) == 2          # after the token's lookup: the task is checked as the lock read it
    assert not [s for s in statements if "task_draft" in s]
    assert not verify(db.session, key(app)).findings


def test_a_full_view_claims_its_chain_without_writing_it_twice(app, two, client, people):
    """A read that writes one audit row (a full view of personal data) locks its chain's head and then moves it
    once: on PostgreSQL the lock is a FOR UPDATE, which writes no row version of its own (an UPDATE would, one
    more dead row per view); on SQLite an UPDATE, which takes the database's write lock before the head is read."""
    seen = sent_by(lambda: client.get(f"/api/v1/complaints/{two[0]}", headers=people["customer_service"].headers))
    on_chain = [s.line for s in seen if "audit_chain" in s.statement]
    assert len(on_chain) == 2, on_chain
    claim, move = on_chain
    if db.engine.dialect.name == "sqlite":
        assert claim.startswith("UPDATE audit_chain SET seq=audit_chain.seq ") and "RETURNING" in claim, claim
    else:
        assert claim.startswith("SELECT audit_chain.chain") and claim.endswith("FOR UPDATE"), claim
    assert move.startswith("UPDATE audit_chain SET seq=") and "RETURNING" not in move, move
    assert not verify(db.session, key(app), chain=two[0]).findings


def waits_on_a_lock(worker) -> bool:
    """Whether a backend of this test's PostgreSQL database comes to wait on a lock while `worker` runs (polled
    for up to 10 s, not slept for)."""
    for _ in range(1000):
        waiting = db.session.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND wait_event_type = 'Lock'")).scalar_one()
        db.session.rollback()
        if waiting:
            return True
        worker.join(0.01)
    return False


def behind_an_open_append(app, chain, action, work):
    """Append `action` to `chain` in a transaction of its own and leave it open; run `work()` on a thread (in the
    app's context) until it waits on a lock; then commit the append and let `work` finish."""
    holder = db.engine.connect()
    appender = Session(bind=holder)
    audit.record(appender, "tester", action, business_key=chain)
    audit.flush(appender)                   # claims the chain (or inserts its head) and appends

    def run():
        with app.app_context():
            try:
                work()
            finally:
                db.session.remove()
    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert waits_on_a_lock(worker), "the work did not wait for the open append"
    finally:
        appender.commit()
        appender.close()
        holder.close()
    worker.join(30)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_completion_waits_for_an_append_to_its_chain_and_goes_on_from_it(app, two, client, people):
    """An append to the complaint's chain (here a probe event of another, open transaction) holds the chain's lock:
    a completion of one of the complaint's tasks waits for it at its lock, then chains its rows after that event,
    reading the head as the append left it."""
    first, _ = two
    step = HAPPY_PATH[2]
    task = Desk(client, people).open_tasks(first)[step]
    results = []
    behind_an_open_append(app, first, "probe", lambda: results.append(app.test_client().post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": FORM_DATA[step]}, headers=people[task["role"]].headers)))
    assert results and results[0].status_code == 200, results and results[0].json
    rows = chain_rows(first)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    probe = next(i for i, r in enumerate(rows) if r.action == "probe")
    assert rows[probe + 1].action == "task_completed" and rows[probe + 1].prev_hash == rows[probe].hash
    assert not verify(db.session, key(app)).findings


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_transactions_starting_the_same_chain_chain_one_after_the_other(app):
    """A new chain's head is inserted with its first rows. A second transaction appending to the same new chain
    meanwhile finds no head to claim, waits on the first one's insert, then chains after its rows."""
    done = []

    def second():
        audit.record(db.session, "tester", "second", business_key="NEW-CHAIN-1")
        db.session.commit()
        done.append(True)
    behind_an_open_append(app, "NEW-CHAIN-1", "first", second)     # the head inserted with "first", not committed
    assert done
    assert [(r.seq, r.action) for r in chain_rows("NEW-CHAIN-1")] == [(1, "first"), (2, "second")]
    assert not verify(db.session, key(app), chain="NEW-CHAIN-1").findings


def test_a_change_that_writes_no_audit_row_leaves_its_chain_sealed(app, two):
    """The lock's claim of the chain changes nothing: a change that ends without an audit row (a timer pass with
    nothing due, a migration's dry run) leaves a sealed chain sealed, and the next seal has nothing to do."""
    from app.models import Complaint
    from app.scheduler import seal_audit_trail
    first, _ = two
    assert seal_audit_trail(app) is not None
    instance_id = db.session.execute(select(Complaint.instance_id).where(Complaint.number == first)).scalar_one()
    assert app.extensions["runtime"].fire_timers(instance_id) is None         # nothing due yet
    assert db.session.get(AuditChain, first).sealed
    assert seal_audit_trail(app) is None


def test_the_scheduler_seals_what_grew(app, two):
    from app.scheduler import seal_audit_trail
    sealed = seal_audit_trail(app)
    assert sealed is not None and sealed.heads >= 2
    assert seal_audit_trail(app) is None            # nothing grew since
