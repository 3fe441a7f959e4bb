"""Lean writes (issue 10, target 2): a completion reads what it changes with its lock and one more statement, and
writes each table it changes in one statement; who may work a new task is known without asking each time, and
still follows every change to the users."""
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm.exc import StaleDataError

from app.engine.upsert import upsert
from app.extensions import db
from app.models import AuditEvent, Deadline, Delivery, HumanTask, OutboxMessage, ProcessInstance, User
from tests.conftest import make_user
from tests.flow import FORM_DATA, Desk
from tests.sql_capture import statements_of


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def completion(desk, number, step):
    """The API call that completes the complaint's open task `step`, to be made."""
    task = desk.open_tasks(number)[step]
    db.session.remove()         # as a request in production starts: with a session of its own

    def call():
        r = desk.client.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": FORM_DATA[step]},
                             headers=desk.people[task["role"]].headers)
        assert r.status_code == 200, r.json
    return call


def test_a_completion_reads_once_and_writes_each_table_once(app, desk):
    """The investigation closes its task and its deadline and opens the analysis with its own: the tasks and the
    deadlines are each one INSERT … ON CONFLICT, read together in one statement after the lock, and no user is
    looked up to know that someone may work the new task (an earlier change asked already)."""
    warm = desk.register()
    desk.walk(warm, ["initial_review", "investigate"])
    number = desk.register()
    desk.complete(number, "initial_review")
    investigation = desk.task_id(number, "investigate")
    instance_id = db.session.get(HumanTask, investigation).instance_id
    was_open = set(db.session.execute(select(Deadline.id).where(Deadline.instance_id == instance_id,
                                                                Deadline.state == "open")).scalars())
    seen = statements_of(completion(desk, number, "investigate"))
    reads = [s for s in seen if s.startswith("SELECT")]
    assert len(reads) == 3 and reads[0].startswith("SELECT api_token") and "ON part.part = 1" in reads[2], reads
    for table in ("human_task", "deadline"):
        writes = [s for s in seen if s.startswith((f"INSERT INTO {table} ", f"UPDATE {table} "))]
        assert len(writes) == 1 and writes[0].startswith(f"INSERT INTO {table} ") and "ON CONFLICT" in writes[0]
    assert not [s for s in seen if s.replace('"', "").startswith("SELECT user.")], seen
    assert len(seen) <= 12, seen
    db.session.expire_all()
    assert db.session.execute(select(Deadline.state).where(Deadline.host_task_id == investigation)).scalars().all() \
        == ["met"]
    done = db.session.get(HumanTask, investigation)
    assert done.state == "completed" and done.completed_by_id and done.row_version == 2
    task = db.session.get(HumanTask, desk.task_id(number, "analyse_and_plan"))
    assert task.state == "open" and task.row_version == 1 and not task.unstaffed and task.due_at is not None
    now_open = set(db.session.execute(select(Deadline.id).where(Deadline.instance_id == instance_id,
                                                                Deadline.state == "open")).scalars())
    assert now_open - was_open, "no deadline set"


def test_a_message_writes_its_deliveries_in_one_statement(app, desk):
    number = desk.register()
    seen = statements_of(completion(desk, number, "initial_review"))
    assert len([s for s in seen if s.startswith("INSERT INTO delivery")]) == 1, seen
    channels = db.session.execute(select(Delivery.channel).join(OutboxMessage).where(
        OutboxMessage.business_key == number, OutboxMessage.template == "accepted")).scalars().all()
    assert sorted(channels) == ["email", "sms"]


def flagged(desk, handler="claims_specialist") -> HumanTask:
    """A new complaint whose claim `handler` stands aside, now waiting for its investigation: its task."""
    number = desk.register(claim_handler=handler)
    desk.complete(number, "initial_review")
    db.session.expire_all()
    return db.session.get(HumanTask, desk.task_id(number, "investigate"))


def test_who_may_work_a_task_follows_every_change_to_the_users(app, desk, people):
    """The runtime keeps who holds a role between changes; a user deactivated or back, a role taken, a user added:
    the next task of that role is (or is no longer) flagged as nobody's, with no request in between to refresh it."""
    def other():
        return db.session.get(User, people["claims_specialist_2"].user.id)
    assert not flagged(desk).unstaffed            # claims_specialist_2 may work it: kept from now on
    other().active = False
    db.session.commit()
    task = flagged(desk)
    assert task.unstaffed
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "task_unstaffed",
                                                        AuditEvent.task_id == task.id)).scalar_one()
    assert event.data["excluded"] == ["claims_specialist"]
    other().active = True
    db.session.commit()
    assert not flagged(desk).unstaffed
    other().roles = {"management"}
    db.session.commit()
    assert flagged(desk).unstaffed
    make_user("claims_specialist_3", "claims_specialist")
    assert not flagged(desk).unstaffed


def test_a_users_access_version_counts_changes_to_roles_and_activity_only(app, people):
    user = db.session.get(User, people["claims_specialist_2"].user.id)
    start = user.access_version
    user.roles = user.roles                       # the same roles: no change
    user.display_name = "改名"
    db.session.commit()
    assert user.access_version == start
    user.roles = {"claims_specialist", "management"}
    db.session.commit()
    user.active = False
    db.session.commit()
    assert user.access_version == start + 2


# ---- the upsert itself ----------------------------------------------------------------------------
def open_task(desk, number, step) -> HumanTask:
    db.session.expire_all()
    return db.session.get(HumanTask, desk.task_id(number, step))


def test_an_upsert_of_a_row_changed_meanwhile_is_refused(app, desk):
    """As the flush's UPDATE … WHERE row_version = …: a row another transaction changed since it was read is not
    overwritten."""
    number = desk.register()
    task = open_task(desk, number, "initial_review")
    with db.engine.connect() as other:
        other.execute(text("UPDATE human_task SET row_version = row_version + 1, subject = 'meanwhile' WHERE id = :id"),
                      {"id": task.id})
        other.commit()
    task.subject = "mine"
    with pytest.raises(StaleDataError):
        upsert(db.session, [task])
    db.session.rollback()
    assert open_task(desk, number, "initial_review").subject == "meanwhile"


def test_an_upsert_leaves_its_objects_as_a_flush_would(app, desk, people):
    """A new object becomes persistent with the key the database gave it, a changed one clean with its next row
    version, a relationship set is written as its foreign key, an unchanged object is not written; nothing is left
    for the flush, and nothing to load."""
    number = desk.register()
    task = open_task(desk, number, "initial_review")
    new = Deadline(instance_id=task.instance_id, timer_task_id="t-new", element_id="e", name="n",
                   due_at=task.created_at)
    assert upsert(db.session, [new], key="timer_task_id") == [new]
    assert new.id and new.state == "open" and new.provisional is False and new.closed_at is None
    assert statements_of(lambda: (new.id, new.closed_at, new.created_at)) == []
    assert statements_of(lambda: upsert(db.session, [new])) == []
    specialist = db.session.get(User, people["claims_specialist"].user.id)
    task.assignee = specialist
    version = task.row_version
    assert len(statements_of(lambda: upsert(db.session, [task]))) == 1
    assert task.assignee_id == specialist.id and task.row_version == version + 1
    assert not db.session.is_modified(task) and not db.session.is_modified(new)
    assert statements_of(db.session.flush) == []
    db.session.commit()
    db.session.expire_all()
    assert open_task(desk, number, "initial_review").assignee_id == specialist.id
    assert db.session.get(Deadline, new.id).timer_task_id == "t-new"


def instance_deadlines(desk, number) -> list[Deadline]:
    task = open_task(desk, number, "initial_review")
    return db.session.execute(select(Deadline).where(Deadline.instance_id == task.instance_id)
                              .order_by(Deadline.id)).scalars().all()


def test_an_upsert_writes_each_row_only_the_columns_changed_on_it(app, desk):
    """Two deadlines changed in different columns: each row takes its own change, and a column changed meanwhile by
    another transaction on the first is not overwritten with the value this session read."""
    number = desk.register()
    first, second = instance_deadlines(desk, number)[:2]
    with db.engine.connect() as other:
        other.execute(text("UPDATE deadline SET name = 'meanwhile' WHERE id = :id"), {"id": first.id})
        other.commit()
    first.provisional = not first.provisional
    second.name = "renamed"
    assert len(statements_of(lambda: upsert(db.session, [first, second], key="timer_task_id"))) == 2
    db.session.commit()
    db.session.expire_all()
    assert [(d.name, d.provisional) for d in instance_deadlines(desk, number)[:2]] == \
        [("meanwhile", first.provisional), ("renamed", second.provisional)]


def test_an_upsert_refuses_a_new_row_that_exists_or_a_row_no_longer_as_read(app, desk):
    number = desk.register()
    existing = instance_deadlines(desk, number)[0]
    twin = Deadline(instance_id=existing.instance_id, timer_task_id=existing.timer_task_id, element_id="e", name="n",
                    due_at=existing.due_at)
    with pytest.raises(StaleDataError):
        upsert(db.session, [twin], key="timer_task_id")
    db.session.rollback()
    existing = instance_deadlines(desk, number)[0]
    with db.engine.connect() as other:
        other.execute(text("UPDATE deadline SET state = 'met' WHERE id = :id"), {"id": existing.id})
        other.commit()
    existing.name = "late"
    with pytest.raises(StaleDataError):
        upsert(db.session, [existing], key="timer_task_id", read_as=Deadline.state == "open")
    db.session.rollback()
    assert instance_deadlines(desk, number)[0].name != "late"


def test_a_rollback_takes_back_what_an_upsert_made_persistent(app, desk):
    number = desk.register()
    task = open_task(desk, number, "initial_review")
    new = Deadline(instance_id=task.instance_id, timer_task_id="t-rolled-back", element_id="e", name="n",
                   due_at=task.created_at)
    upsert(db.session, [new], key="timer_task_id")
    assert new in db.session
    db.session.rollback()
    assert new not in db.session
    again = Deadline(instance_id=task.instance_id, timer_task_id="t-again", element_id="e", name="n",
                     due_at=task.created_at)
    upsert(db.session, [again], key="timer_task_id")
    db.session.commit()
    assert again in db.session and db.session.get(Deadline, again.id) is again


# ---- reads ------------------------------------------------------------------------------------------
def test_the_complaint_json_reads_its_lists_in_one_statement_in_their_order(app, desk, people):
    """The complaint's tasks, deadlines and history come from one statement (besides the token and the complaint;
    a full view of personal data writes its audit row besides), each list in its own order."""
    number = desk.register()
    desk.walk(number, ["initial_review", "investigate"])
    headers = people["customer_service"].headers
    db.session.remove()
    answers = []
    seen = statements_of(lambda: answers.append(desk.client.get(f"/api/v1/complaints/{number}", headers=headers)))
    body = answers[0].json
    assert answers[0].status_code == 200 and body["complaint"]["personal_data"] == "full"
    reads = [s for s in seen if s.startswith("SELECT") and "FROM audit_chain" not in s]   # not the audit row's lock
    assert len(reads) == 3, seen
    instances = select(ProcessInstance.id).where(ProcessInstance.business_key == number)
    tasks = db.session.execute(select(HumanTask.id).where(HumanTask.instance_id.in_(instances))
                               .order_by(HumanTask.created_at, HumanTask.instance_id, HumanTask.id)).scalars().all()
    assert [t["id"] for t in body["tasks"]] == tasks and len(tasks) == 3
    assert [t["id"] for t in body["current_tasks"]] == tasks[-1:]
    deadlines = db.session.execute(select(Deadline.name).where(Deadline.instance_id.in_(instances))
                                   .order_by(Deadline.created_at, Deadline.id)).scalars().all()
    assert [d["name"] for d in body["deadlines"]] == deadlines and len(deadlines) >= 3
    history = db.session.execute(select(AuditEvent.action).where(AuditEvent.business_key == number)
                                 .order_by(AuditEvent.id)).scalars().all()
    assert [h["action"] for h in body["history"]] == history[:len(body["history"])] and len(body["history"]) > 10
