"""State changes of process instances. Each verb is one transaction:
lock the instance row -> load -> act -> run the engine -> write back the workflow, the human tasks,
the deadlines, the business record and the audit trail -> commit. A failure anywhere rolls back the
whole change; a concurrent change to the same instance waits (row lock) or fails with a conflict
(row version), and never overwrites."""
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

from SpiffWorkflow import TaskState
from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy import and_, bindparam, event, func, insert, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, aliased, scoped_session
from sqlalchemy.orm.exc import StaleDataError

from .. import audit
from ..extensions import disjoint
from ..errors import AppError, Conflict, Forbidden, InvalidData, NotFound, ProcessError
from ..forms import validate
from ..models import (AuditChain, CalendarDay, Deadline, ElementVisit, HumanTask, InstanceSnapshot, OutboxMessage,
                      ProcessInstance, ProcessVersion, User)
from ..timeutil import utcnow
from . import workflow
from .calendar import WorkCalendar
from .registry import latest_version
from .scripting import HELPER_NAMES, InputRejected, make_script_engine
from .upsert import upsert

MISSING = object()
USER_ROLE_KEY = "x-user-role"  # a form field that names a user with this role (see _check_user_fields)
CUSTOMER = "customer"          # the actor of what a customer does on their own page
# What changes whenever an admin sets or removes a calendar override (the first two), and whenever a user is added
# or their roles or activity change (the last two: models.User.access_version): read with each change's lock.
STAMPS = (select(func.count(CalendarDay.day)).scalar_subquery(),
          select(func.max(CalendarDay.set_at)).scalar_subquery(),
          select(func.count(User.id)).scalar_subquery(),
          select(func.coalesce(func.sum(User.access_version), 0)).scalar_subquery())


# What held for every deadline and task a change writes when OPEN_ROWS read it (upsert's `read_as`; no IN, whose
# expanding parameter an executemany cannot take).
DEADLINE_OPEN_STATES = ("open", "missed")
DEADLINE_OPEN = or_(*(Deadline.state == state for state in DEADLINE_OPEN_STATES))
TASK_OPEN = HumanTask.state == "open"


def _open_rows():
    """An instance's open and missed deadlines and the open tasks of every instance with its business key (or of
    it alone, without one), side by side in one statement (extensions.disjoint), built once."""
    instances = select(ProcessInstance.id).where(or_(ProcessInstance.business_key == bindparam("business_key"),
                                                     ProcessInstance.id == bindparam("instance_id")))
    deadline = aliased(Deadline, select(Deadline).where(
        Deadline.instance_id == bindparam("instance_id"), DEADLINE_OPEN).subquery())
    task = aliased(HumanTask, select(HumanTask).where(HumanTask.instance_id.in_(instances), TASK_OPEN).subquery())
    return select(deadline, task).select_from(disjoint(deadline, task))


OPEN_ROWS = _open_rows()

# session.info keys
_EXCLUSIONS = "runtime_exclusions"           # instance id -> excluded(), until the next write
_UNEXPIRED = "runtime_unexpired"             # a change committed without expiring what it loaded
_STAMPS = "runtime_stamps"                   # STAMPS as read with this transaction's instance lock
_RECORDS = "runtime_records"                 # instance id -> its business record, read with its lock
_FIRED_FIRST = "runtime_fired_first"         # this verb fired what was due in a change of its own: _step fires in place


class _DueFirst(Exception):
    """_step, before acting on an instance whose timers fell due (the scheduler's next pass has not come): the verb
    fires them in a change of their own, committed as that pass would have, and runs again on what they left."""

    def __init__(self, instance_id):
        super().__init__(instance_id)
        self.instance_id = instance_id


@event.listens_for(Session, "after_flush")
@event.listens_for(Session, "after_transaction_end")
def _forget_exclusions(session, *_):
    session.info.pop(_EXCLUSIONS, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_stamps(session, transaction):
    if transaction.parent is None:
        session.info.pop(_STAMPS, None)
        session.info.pop(_RECORDS, None)


class VersionInfo(NamedTuple):
    key: str                  # content hash: names the restored spec in the engine's cache
    spec_json: str
    subprocess_specs_json: str
    forms: dict


@dataclass
class Change:
    """What one transaction did, for the caller to report."""
    instance: ProcessInstance
    created_tasks: list = field(default_factory=list)
    changed_data: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)        # OutboxMessage rows this change wrote
    deadlines: list = field(default_factory=list)       # the instance's open and missed Deadline rows after it
    record: Any = None      # its business record (Runtime.record), if read with the lock or by a record sync
    # Every human task of the instances with its business key that was open before it or that it opened
    # (the objects: those it closed show their new state).
    open_tasks: list = field(default_factory=list)
    # Writes that need the ids the change's flush gives (e.g. a message's deliveries, in one statement with its
    # id): each (session) -> None, added by a record sync and run once the change is flushed.
    after_flush: list = field(default_factory=list)


class Runtime:
    def __init__(self, session, lane_roles: dict, supervisor_roles=frozenset()):
        self.session = session
        self.lane_roles = lane_roles                   # lane name -> role code
        self.supervisor_roles = set(supervisor_roles)
        self.record_syncs: list[Callable] = []         # called inside the transaction after each change
        # effect kind -> handler(session, instance, effect, actor): what a diagram's helpers ask for beyond
        # customer messages and deadlines (e.g. attach_analysis, track_measure), written in the same change.
        self.effect_handlers: dict[str, Callable] = {}
        # More checks of a completed task's form data than its JSON Schema can say, each
        # (session, schema, data, instance) -> raises InvalidData: e.g. that a file field names a file of the case.
        self.form_checks: list[Callable] = []
        # (model, key column): the business record an instance's business key names (e.g. the complaint by
        # its number), read afresh with the instance's lock for the record syncs (Change.record): change it
        # in a record sync, not before calling a verb (the lock's fresh read would drop that change).
        self.record: Optional[tuple] = None
        # (session, instance id) -> {username: reason} of the users who must stay out of that instance
        # entirely (回避, app/avoidance.py, which also decides the reads): they may not claim, complete,
        # be given, release or assign its tasks.
        self.exclusions: Callable = lambda session, instance_id, facts=None: {}
        # (instance, its record) -> the facts `exclusions` reads (app.avoidance.facts_of), taken from the row the
        # instance's lock read, so that a check made under the lock needs no query of its own.
        self.exclusion_facts: Optional[Callable] = None
        self._specs: dict[int, VersionInfo] = {}
        self._start_messages: dict[int, frozenset] = {}     # version id -> messages that start it
        self._calendar, self._calendar_stamp = None, None
        self._holders: tuple = (None, {})        # (users' part of STAMPS, {role: usernames who may hold it})

    # ---- verbs -------------------------------------------------------------------------------------
    def start(self, process_id, data, actor: str, business_key=None, on_created=None) -> Change:
        """Start an instance; `on_created(instance)` runs once it has an id, before its tasks are
        written, e.g. to link the business record that the exclusion rules read."""
        version = latest_version(self.session, process_id)
        if version is None:
            raise NotFound(f"process {process_id!r} is not deployed")
        self._check_data_keys(data)
        return self._start(version, data, actor, business_key, on_created)

    def start_on_message(self, name, payload: dict, actor: str, business_key=None) -> Optional[Change]:
        """Start the latest deployed process whose start event catches the message `name`, with
        `payload` in that event's messageVariable; None when no deployed process starts on it."""
        version = self._started_by(name)
        if version is None:
            return None
        return self._start(version, {}, actor, business_key, message=(name, dict(payload or {})))

    def _start(self, version, data, actor, business_key, on_created=None, message=None) -> Change:
        effects = []
        with self._transaction():
            try:
                wf = workflow.start(*self._version(version.id)[:3], data, make_script_engine(effects, self.calendar()))
                if message and not workflow.send_message(wf, *message):
                    raise ProcessError(f"the process {version.process_id} did not catch the message {message[0]!r}")
            except SpiffWorkflowException as exc:
                raise engine_error("the process could not start", exc) from exc
            inst = ProcessInstance(version_id=version.id, process_id=version.process_id, business_key=business_key,
                                   workflow_json="")
            self.session.add(inst)
            self.session.flush()
            if on_created:
                on_created(inst)
            started = {"process_id": version.process_id, "version": version.version}
            audit.record(self.session, actor, "instance_started", instance_id=inst.id, business_key=business_key,
                         data={**started, "message": message[0]} if message else started)
            return self._write_back(inst, wf, actor, effects, frozenset(), initial_data=data)

    def complete(self, task_id, user: User, data, schema_check=True) -> Change:
        """Complete the task as `user`, claiming it if nobody holds it. Whether they may (their role, 回避) is
        checked on the task as its lock read it: the runtime reads nothing before the lock."""
        def take(inst, row):
            self._check_may_work(user, row, self._facts(inst))
            self._check_open(row)
            if row.assignee_id is None:
                row.assignee, row.claimed_at = user, utcnow()
            elif row.assignee_id != user.id:
                raise Forbidden(f"this task is assigned to {row.assignee.username}", code="not_assignee")
            row.completed_by = user
        return self._complete(task_id, data, user.username, take, schema_check)

    def complete_for_customer(self, task_id, data) -> Change:
        """The customer answers a task on their own page, as a handler would (same form check, same
        audit event), claimed or not. Only a task whose form has `x-customer` may be answered so."""
        row = self._task_row(task_id)
        if not customer_may_answer(self.form_schema(row)):
            raise Forbidden("the customer cannot complete this task", code="not_for_customer")

        def take(_inst, row):
            self._check_open(row)
            row.completed_by_customer = True
        return self._complete(row.id, data, CUSTOMER, take)

    def _complete(self, task_id, data, actor, take, schema_check=True) -> Change:
        """Complete the human task `task_id`: `take(instance, task)` checks that it is open and may be done so,
        and records who does it."""
        return self._after_due_timers(lambda: self._complete_once(task_id, data, actor, take, schema_check))

    def _complete_once(self, task_id, data, actor, take, schema_check) -> Change:
        with self._transaction():
            inst, row = self._lock(self._instance_of(task_id), task_id=task_id)  # a racing claim or completion waits
            take(inst, row)
            if row.form and schema_check:
                schema = self._version(inst.version_id).forms[row.form]
                data = validate(schema, data)       # without the answers of fields that do not apply
                self._check_user_fields(schema, data)
                for form_check in self.form_checks:
                    form_check(self.session, schema, data, inst)
            self._check_data_keys(data)
            audit.record(self.session, actor, "task_completed", instance_id=inst.id,
                         business_key=inst.business_key, task_id=row.id, element_id=row.element_id,
                         data={"name": row.name, "form_data": data})

            def run(wf):
                task = workflow.find_task(wf, row.id)
                if task is None or task.state != TaskState.READY:
                    raise Conflict("this task is no longer open in the workflow", code="task_not_ready")
                workflow.run_human_task(wf, task, data)
            return self._step(inst, actor, "the process failed after this step", run)

    def send_message(self, instance_id, name, payload: dict, actor, check=None, also_waiting=False) -> Change:
        """Deliver the message `name` (e.g. a withdrawal) to a running instance; the diagram decides
        what it does. Conflict when the instance does not wait for it (any more). `check(instance)`
        runs once the instance is locked and may refuse by raising; with `also_waiting`, every other
        running instance of the same business key that waits for the message gets it too, in the
        same transaction. Returns the change of the instance named."""
        return self._after_due_timers(
            lambda: self._send_message_once(instance_id, name, payload, actor, check, also_waiting))

    def _send_message_once(self, instance_id, name, payload, actor, check, also_waiting) -> Change:
        with self._transaction():
            inst = self._lock(instance_id)
            if check is not None:
                check(inst)
            # Every instance is locked before any is changed (a change writes the complaint row, which a
            # side task's completion holding its own instance also writes: locking late could deadlock).
            others = [self._lock(other_id) for other_id in self._waiting_for(inst.business_key, name, inst.id)] \
                if also_waiting and inst.business_key else []
            change = self._deliver(inst, name, payload, actor, required=True)
            for other in others:
                self._deliver(other, name, payload, actor, required=False)
            return change

    def _deliver(self, inst, name, payload, actor, required) -> Optional[Change]:
        not_waiting = Conflict(f"the process does not wait for the message {name!r} (any more)", code="not_waiting")
        if inst.status != "running":
            if required:
                raise not_waiting
            return None
        audit.record(self.session, actor, "message_received", instance_id=inst.id,
                     business_key=inst.business_key, data={"message": name})

        def deliver(wf):
            if not workflow.send_message(wf, name, dict(payload or {})) and required:
                raise not_waiting
        return self._step(inst, actor, f"the process failed after the message {name!r}", deliver)

    def _waiting_for(self, business_key, name, besides) -> list[int]:
        """The running instances of `business_key` (but `besides`) whose diagram waits for `name`."""
        rows = self.session.execute(select(ProcessInstance.id, ProcessInstance.awaits).where(
            ProcessInstance.business_key == business_key, ProcessInstance.status == "running",
            ProcessInstance.id != besides, ProcessInstance.awaits.contains(name)).order_by(ProcessInstance.id))
        return [row.id for row in rows if name in (row.awaits or "").split(",")]

    def fire_timers(self, instance_id, actor="scheduler") -> Optional[Change]:
        """Fire the due timers of one instance; None when another scheduler got there first."""
        with self._transaction():
            inst = self._lock(instance_id, skip_locked=True)
            now = utcnow()
            if inst is None or inst.status != "running" or inst.next_timer_at is None or inst.next_timer_at > now:
                return None
            return self._step(inst, actor, "timer handling failed", None)     # _step fires what is due

    def recompute_deadlines(self, instance_id, actor) -> Optional[Change]:
        """Evaluate the instance's provisional deadlines again, e.g. once the holiday calendar for
        their year is published or an admin entered overrides."""
        return self._after_due_timers(lambda: self._recompute_once(instance_id, actor))

    def _recompute_once(self, instance_id, actor) -> Optional[Change]:
        with self._transaction():
            inst = self._lock(instance_id)
            timer_ids = self.session.execute(select(Deadline.timer_task_id).where(
                Deadline.instance_id == instance_id, Deadline.state == "open", Deadline.provisional)).scalars().all()
            if inst.status != "running" or not timer_ids:
                return None
            return self._step(inst, actor, "recomputing deadlines failed",
                              lambda wf: workflow.reset_timers(wf, timer_ids))

    def migrate(self, instance_id, version: ProcessVersion, actor, dry_run=False) -> list:
        """Move a running instance onto `version`; returns the reasons it cannot ([] = it moved, or on a
        dry run would). The pre-migration workflow is kept as a snapshot; deadlines keep their due times."""
        with self._transaction():
            inst = self._lock(instance_id)
            if inst.process_id != version.process_id:
                return [f"it runs the process {inst.process_id}, not {version.process_id}"]
            if inst.status != "running":
                return [f"it is {inst.status}"]
            if inst.version_id == version.id:
                return [f"it already runs on version {version.version}"]
            old_json, old_version = inst.workflow_json, self.session.get(ProcessVersion, inst.version_id)
            target = self._version(version.id)
            effects = []
            wf = self._load(inst, effects)
            before = workflow.completed_ids(wf)
            try:
                reasons = workflow.migrate(wf, *workflow.specs(*target[:3]))
            except SpiffWorkflowException as exc:
                raise engine_error("the migration failed", exc) from exc
            if reasons or dry_run:
                return reasons
            self.session.add(InstanceSnapshot(instance_id=inst.id, version_id=old_version.id, workflow_json=old_json,
                                              reason=f"before migration to version {version.version}",
                                              created_by=actor))
            inst.version_id = version.id
            audit.record(self.session, actor, "instance_migrated", instance_id=inst.id,
                         business_key=inst.business_key,
                         data={"process_id": version.process_id, "from_version": old_version.version,
                               "to_version": version.version})
            self._write_back(inst, wf, actor, effects, before)
            return []

    def preview_migration(self, instance_id, key, spec_json, subprocess_specs_json) -> list:
        """Would this instance move onto a spec that is not deployed yet (e.g. an upload being checked)?
        The reasons it could not ([] = it could); the instance is loaded as for a change, migrated in
        memory only, and nothing is locked or written."""
        inst = self.session.get(ProcessInstance, instance_id)
        wf = self._load(inst, [])
        try:
            return workflow.migrate(wf, *workflow.specs(key, spec_json, subprocess_specs_json))
        except Exception as exc:      # noqa: BLE001  (whatever fails is this instance's reason)
            return [f"the check failed: {exc}"]

    def provisional_instance_ids(self) -> list[int]:
        return list(self.session.execute(select(Deadline.instance_id).where(
            Deadline.state == "open", Deadline.provisional).distinct().order_by(Deadline.instance_id)).scalars())

    def due_instance_ids(self, limit=100) -> list[int]:
        return list(self.session.execute(
            select(ProcessInstance.id).where(ProcessInstance.status == "running",
                                             ProcessInstance.next_timer_at <= utcnow())
            .order_by(ProcessInstance.next_timer_at).limit(limit)).scalars())

    def claim(self, task_id, user: User):
        row = self._task_row(task_id)
        self._check_may_work(user, row)
        with self._transaction():
            row = self._lock_task(task_id)
            self._check_open(row)
            if row.assignee_id == user.id:
                return row
            if row.assignee_id is not None:
                raise Conflict(f"already claimed by {row.assignee.username}", code="already_claimed")
            row.assignee, row.claimed_at, row.unstaffed = user, utcnow(), False
            audit.record(self.session, user.username, "task_claimed", instance_id=row.instance_id,
                         business_key=row.business_key, task_id=row.id, element_id=row.element_id)
        return row

    def unclaim(self, task_id, user: User):
        row = self._task_row(task_id)
        with self._transaction():
            row = self._lock_task(task_id)
            self._check_open(row)
            if row.assignee_id != user.id and not self.is_supervisor(user):
                raise Forbidden("only the assignee or a supervisor can release this task")
            self._check_rules(user, row)
            previous = row.assignee.username if row.assignee else None
            row.assignee, row.claimed_at = None, None
            audit.record(self.session, user.username, "task_unclaimed", instance_id=row.instance_id,
                         business_key=row.business_key, task_id=row.id, element_id=row.element_id,
                         data={"previous_assignee": previous})
        return row

    def assign(self, task_id, supervisor: User, assignee: User):
        if not self.is_supervisor(supervisor):
            raise Forbidden("only a supervisor can assign tasks")
        row = self._task_row(task_id)
        self._check_rules(supervisor, row)
        if not assignee.active:
            raise Forbidden(f"{assignee.username}'s account is disabled", code="assignee_inactive")
        if row.role not in assignee.roles:
            raise Forbidden(f"{assignee.username} does not have the role {row.role}", code="assignee_lacks_role")
        self._check_rules(assignee, row)
        with self._transaction():
            row = self._lock_task(task_id)
            self._check_open(row)
            previous = row.assignee.username if row.assignee else None
            row.assignee, row.claimed_at, row.unstaffed = assignee, utcnow(), False
            audit.record(self.session, supervisor.username, "task_assigned", instance_id=row.instance_id,
                         business_key=row.business_key, task_id=row.id, element_id=row.element_id,
                         data={"assignee": assignee.username, "previous_assignee": previous})
        return row

    def mark_error(self, instance_id, message):
        """Stop retrying an instance whose diagram failed; it stays visible with its error."""
        with self._transaction():
            inst = self._lock(instance_id)
            inst.status, inst.error, inst.next_timer_at = "error", message, None
            audit.record(self.session, "scheduler", "instance_error", instance_id=inst.id,
                         business_key=inst.business_key, data={"error": message})

    def is_supervisor(self, user: User) -> bool:
        return bool(user.roles & self.supervisor_roles)

    # ---- transaction plumbing ----------------------------------------------------------------------
    @contextmanager
    def _transaction(self):
        """Commit what the block did, or roll all of it back; a lost race becomes a 409. Nothing is
        flushed before the end (one batch of writes, not one per query), and what was written stays
        loaded after the commit, so the caller's response reads it without loading it again."""
        session = self.session() if isinstance(self.session, scoped_session) else self.session
        if session.info.pop(_UNEXPIRED, False):
            session.expire_all()     # what an earlier change left loaded is read afresh in this one
        try:
            with session.no_autoflush:
                yield
            session.expire_on_commit = False
            try:
                session.commit()
            finally:
                session.expire_on_commit = True
            session.info[_UNEXPIRED] = True
        except Exception as exc:
            session.rollback()
            if isinstance(exc, StaleDataError) or (isinstance(exc, OperationalError)
                                                   and any(w in str(exc).lower() for w in ("locked", "deadlock"))):
                raise Conflict("someone else changed this complaint at the same moment; reload and retry",
                               code="concurrent_change") from exc
            raise

    def _task_row(self, task_id) -> HumanTask:
        row = self.session.get(HumanTask, str(task_id))
        if row is None:
            raise NotFound(f"no task {task_id}")
        return row

    def _lock(self, instance_id, skip_locked=False, task_id=None):
        """Lock and (re)load the instance row; the same statement reads STAMPS, so that a change knows whether the
        admins' calendar overrides or the users moved without a query of its own. With `task_id`, it
        also locks and reloads that human task of the instance, and returns (instance, task).
        The instance's audit chain's head is read (and on PostgreSQL locked) with it where that costs no statement
        of its own, so that the change's audit rows need no claim of their own: on SQLite always; on PostgreSQL
        with `task_id` and without `skip_locked` (an instance whose chain has no row yet, or a task not found,
        costs a second statement)."""
        sqlite = self.session.get_bind().dialect.name == "sqlite"
        if sqlite:
            self._take_write_lock()
        stmt = select(ProcessInstance, *STAMPS).where(ProcessInstance.id == instance_id)
        locked = [ProcessInstance]
        if self.record is not None:
            model, key = self.record
            stmt = stmt.add_columns(model).outerjoin(model, key == ProcessInstance.business_key)
        if task_id is not None:
            stmt = stmt.add_columns(HumanTask).join(HumanTask, and_(HumanTask.instance_id == ProcessInstance.id,
                                                                    HumanTask.id == str(task_id)))
            locked.append(HumanTask)
        if sqlite or (task_id is not None and not skip_locked):
            row, head = self._read_with_chain(stmt, locked, outer=sqlite)
        else:
            row, head = self._read_locked(stmt, locked, skip_locked), None
        if row is None:
            if skip_locked:
                return None
            if task_id is not None:
                raise NotFound(f"no task {task_id}")
            raise NotFound(f"no process instance {instance_id}")
        inst, rest = row[0], list(row[1 + len(STAMPS):])
        self.session.info[_STAMPS] = tuple(row[1:1 + len(STAMPS)])
        if head is not None and head[0] == audit.chain_of(inst.business_key, inst.id):
            audit.adopt_head(self.session, *head)
        if self.record is not None:
            self.session.info.setdefault(_RECORDS, {})[inst.id] = rest.pop(0)
        return (inst, rest[0]) if task_id is not None else inst

    def _take_write_lock(self):
        """SQLite has no row locks: a change begins its transaction with the database's write lock (BEGIN
        IMMEDIATE), so that a concurrent change to this instance waits here and then reads what that one wrote
        (as FOR UPDATE does on PostgreSQL; SKIP LOCKED has no meaning there: a second scheduler waits its turn,
        then sees it fired). A transaction that already wrote holds the lock."""
        connection = self.session.connection()
        if not connection.connection.dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _read_locked(self, stmt, locked, skip_locked=False):
        return self.session.execute(stmt.with_for_update(of=locked, skip_locked=skip_locked)
                                    .execution_options(populate_existing=True)).one_or_none()

    def _read_with_chain(self, stmt, locked, outer=False) -> tuple:
        """(the lock's row, (chain, seq, hash) of its audit chain's head) with the head locked and read in the
        same statement, after the rows (PostgreSQL locks in the order of FOR UPDATE OF: a change that holds the
        task and waits for the chain cannot be waiting on this one). An instance whose chain has no row yet is
        read without it: (row, None); on PostgreSQL with a second statement, as it cannot lock the nullable side
        of an outer join (`outer` for SQLite, whose write lock is the database's)."""
        chain = audit.chain_sql(ProcessInstance.business_key, ProcessInstance.id)
        with_head = stmt.add_columns(AuditChain.chain, AuditChain.seq, AuditChain.hash) \
            .join(AuditChain, AuditChain.chain == chain, isouter=outer)
        row = self._read_locked(with_head, locked if outer else [*locked, AuditChain])
        if row is None:
            return (None, None) if outer else (self._read_locked(stmt, locked), None)
        head = tuple(row[-3:])
        return row[:-3], (head if head[0] is not None else None)

    @staticmethod
    def _instance_of(task_id):
        """The id of the task's instance, as SQL: a lock by the task alone."""
        return select(HumanTask.instance_id).where(HumanTask.id == str(task_id)).scalar_subquery()

    def _facts(self, inst):
        """What `exclusions` reads of the instance, from the row its lock read (`exclusion_facts`); None (they are
        read by `exclusions` itself) when the lock read no business record."""
        records = self.session.info.get(_RECORDS, {})
        if self.exclusion_facts is None or inst.id not in records:
            return None
        return self.exclusion_facts(inst, records[inst.id])

    def _lock_task(self, task_id) -> HumanTask:
        stmt = (select(HumanTask).where(HumanTask.id == str(task_id)).with_for_update()
                .execution_options(populate_existing=True))
        return self.session.execute(stmt).scalar_one()

    def _check_may_work(self, user, row, facts=None):
        if row.role not in user.roles:
            raise Forbidden(f"this task belongs to the role {row.role}", code="wrong_role")
        self._check_rules(user, row, facts)

    def excluded(self, instance_id, facts=None) -> dict:
        """{username: reason} of everyone the exclusion rule (回避) keeps out of this instance; asked
        once per instance until the session writes something (e.g. a route's check and the runtime's
        own before a change). `facts`: the instance's (business key, process id, claim handler) when
        the caller read them already (app.avoidance.excluded_usernames)."""
        known = self.session.info.setdefault(_EXCLUSIONS, {})
        if instance_id not in known:
            known[instance_id] = self.exclusions(self.session, instance_id, facts=facts)
        return known[instance_id]

    def exclusion(self, user, row, facts=None) -> Optional[str]:
        """Why the exclusion rule (回避) keeps this user off this task, or None."""
        return self.excluded(row.instance_id, facts).get(user.username)

    def eligible_users(self, role, excluded: dict) -> list[User]:
        """The active users with `role` who are not among `excluded`: who may claim or be given a task
        of that role (one query on user)."""
        if role is None:
            return []
        users = self.session.execute(select(User).where(*_may_hold(role)).order_by(User.display_name)).scalars()
        return [u for u in users if role in u.roles and u.username not in excluded]

    def anyone_eligible(self, role, excluded: dict) -> bool:
        """Whether an active user with `role` who is not among `excluded` exists. Who holds a role is kept
        until a user is added or changes roles or activity (STAMPS), so that a change that opens a task
        usually asks nothing."""
        if role is None:
            return False
        stamp = self._stamps()[2:]
        holders = self._holders if self._holders[0] == stamp else (stamp, {})
        if role not in holders[1]:
            found = self.session.execute(select(User.username, User.roles_csv).where(*_may_hold(role)))
            holders[1][role] = frozenset(username for username, roles in found if role in roles.split(","))
        self._holders = holders
        return any(username not in excluded for username in holders[1][role])

    def _check_rules(self, user, row, facts=None):
        reason = self.exclusion(user, row, facts)
        if reason:
            raise Forbidden(reason, code="excluded", fields={"user": user.username})

    @staticmethod
    def _check_open(row):
        if row.state != "open":
            who = "the customer" if row.completed_by_customer else \
                row.completed_by.username if row.completed_by else None
            raise Conflict(f"this task is already {row.state}" + (f" by {who}" if who else ""),
                           code=f"task_{row.state}")

    def _check_user_fields(self, schema: dict, data: dict):
        """A form field marked `x-user-role` must name an active user with that role (e.g. the owner of
        an improvement measure, whose task is then assigned to them)."""
        wrong = {}
        for name, prop in (schema.get("properties") or {}).items():
            role, value = prop.get(USER_ROLE_KEY), data.get(name)
            if role and value and self.holder(value, role) is None:
                wrong[name] = f"{value} is not an active user with the role {role}"
        if wrong:
            raise InvalidData("these fields must name an active user with the role", fields=wrong)

    def holder(self, username, role) -> Optional[User]:
        """The user `username` if they may hold a task of `role` (active, with that role), else None."""
        user = self.session.execute(select(User).where(User.username == str(username), *_may_hold(role))) \
            .scalar_one_or_none()
        return user if user is not None and role in user.roles else None

    def user_choices(self, schema: Optional[dict]) -> Optional[dict]:
        """The form with each `x-user-role` field offered as a choice of the active users with that role
        (usernames, shown by display name); the form itself when it has none."""
        props = (schema or {}).get("properties") or {}
        roles = {name: p[USER_ROLE_KEY] for name, p in props.items() if p.get(USER_ROLE_KEY)}
        if not roles:
            return schema
        choices = {}
        for name, role in roles.items():
            users = self.eligible_users(role, {})
            choices[name] = {"x-widget": "select", **props[name], "enum": [u.username for u in users],
                             "x-enumNames": [f"{u.display_name} ({u.username})" for u in users]}
        return {**schema, "properties": {**props, **choices}}

    @staticmethod
    def _check_data_keys(data):
        clash = set(HELPER_NAMES) & set(data or {})
        if clash:
            raise InvalidData("these field names are reserved for process helpers",
                              fields={k: "reserved field name" for k in sorted(clash)})

    def _version(self, version_id) -> VersionInfo:
        """What the engine needs of a version; versions are immutable, so cached for good."""
        if version_id not in self._specs:
            v = self.session.get(ProcessVersion, version_id)
            self._specs[version_id] = VersionInfo(v.content_hash, v.spec_json, v.subprocess_specs_json, v.forms)
        return self._specs[version_id]

    def _started_by(self, name) -> Optional[ProcessVersion]:
        """The newest of the latest deployed versions whose process starts on the message `name`;
        what starts a version is read from its spec once (versions are immutable)."""
        newest = select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("version")) \
            .group_by(ProcessVersion.process_id).subquery()
        ids = self.session.execute(select(ProcessVersion.id).join(newest, and_(
            ProcessVersion.process_id == newest.c.process_id, ProcessVersion.version == newest.c.version))
            .order_by(ProcessVersion.id.desc())).scalars()
        for version_id in ids:
            if version_id not in self._start_messages:
                spec, _ = workflow.specs(*self._version(version_id)[:3])
                self._start_messages[version_id] = workflow.start_messages(spec)
            if name in self._start_messages[version_id]:
                return self.session.get(ProcessVersion, version_id)
        return None

    def form_schema(self, row: HumanTask, version_id=None) -> Optional[dict]:
        """The task's form as its instance's version deployed it; `version_id` when the caller read it
        with the task (else one indexed read of that column, never the instance's workflow)."""
        if not row.form:
            return None
        if version_id is None:
            version_id = self.session.execute(select(ProcessInstance.version_id)
                                              .where(ProcessInstance.id == row.instance_id)).scalar_one()
        return self.user_choices(self._version(version_id).forms.get(row.form))

    def _after_due_timers(self, verb):
        """Run `verb` (a change); if its instance's timers fell due first (_DueFirst), fire them in a change of
        their own, then run it again."""
        try:
            return verb()
        except _DueFirst as due:
            self.fire_timers(due.instance_id)
        self.session.info[_FIRED_FIRST] = True
        try:
            return verb()
        finally:
            self.session.info.pop(_FIRED_FIRST, None)

    def _step(self, inst, actor, failure, act) -> Change:
        """Load the instance, fire the timers that fell due, act on its workflow (`act(wf)`; None: nothing but the
        firing), fire the timers that are due then, run the engine, and write everything back."""
        # What happened, in order: timers that fell due before this change (the scheduler's next pass has not come
        # yet) fire first, so that e.g. a decision or a message after the regulator's limit ran out meets a clock
        # already missed, and a task its deadline closed is no longer open. They fire in a change of their own
        # (_after_due_timers), which stays when this one is then refused; if they are due again, here.
        due = act is not None and inst.next_timer_at is not None and inst.next_timer_at <= utcnow()
        if due and not self.session.info.get(_FIRED_FIRST):
            raise _DueFirst(inst.id)
        effects = []
        wf = self._load(inst, effects)
        before = workflow.completed_ids(wf)
        try:
            if due:
                workflow.fire_due_timers(wf)
            if act is not None:
                act(wf)
            # And one this change set that is due already (e.g. a complaint registered late); without `act`, what
            # is due (the scheduler's firing).
            workflow.fire_due_timers(wf)
        except SpiffWorkflowException as exc:
            raise engine_error(failure, exc) from exc
        return self._write_back(inst, wf, actor, effects, before)

    def _load(self, inst, effects):
        return workflow.load(inst.workflow_json, *self._version(inst.version_id)[:3],
                             make_script_engine(effects, self.calendar()))

    def calendar(self) -> WorkCalendar:
        """The working-day calendar with the admins' overrides; rebuilt only when they change (the stamp
        read with this transaction's instance lock, else one small query)."""
        stamp = self._stamps()[:2]
        if self._calendar is None or stamp != self._calendar_stamp:
            days = self.session.execute(select(CalendarDay.day, CalendarDay.working)).all()
            self._calendar = WorkCalendar(extra_holidays={d for d, working in days if not working},
                                          extra_workdays={d for d, working in days if working})
            self._calendar_stamp = stamp
        return self._calendar

    def _stamps(self) -> tuple:
        """STAMPS as this transaction's instance lock read them, else read now (one small query) for the rest of
        the transaction."""
        if _STAMPS not in self.session.info:
            self.session.info[_STAMPS] = tuple(self.session.execute(select(*STAMPS)).one())
        return self.session.info[_STAMPS]

    # ---- write back --------------------------------------------------------------------------------
    def _write_back(self, inst, wf, actor, effects, before, initial_data=None) -> Change:
        """`before`: the ids of the tasks that were completed before this change."""
        now = utcnow()
        change = Change(instance=inst, record=self.session.info.get(_RECORDS, {}).get(inst.id))
        inst.updated_at = now
        if wf.is_completed():
            inst.status, inst.completed_at = "completed", now
        inst.awaits = fit(workflow.awaited_messages(wf), ProcessInstance.awaits.type.length)
        provisional = {e["due_at"] for e in effects if e["kind"] == "provisional_due"}
        done = workflow.newly_completed(wf, before)
        deadlines, change.open_tasks = self._open_rows(inst)
        deadlines = self._sync_deadlines(inst, wf, deadlines, actor, now, done, provisional)
        change.deadlines = deadlines
        dues = [d.due_at for d in deadlines if d.state == "open"]
        inst.next_timer_at = min(dues) if dues else None
        self._sync_tasks(inst, wf, deadlines, actor, now, change)
        visits = [{"instance_id": inst.id, "process_id": process_id, "element_id": element_id, "task_id": task_id,
                   "at": now} for process_id, element_id, task_id in workflow.visited_elements(done)]
        if visits:
            self.session.execute(insert(ElementVisit), visits)     # append-only: one statement, no ORM rows
        for effect in (e for e in effects if e["kind"] == "notify_customer"):
            message = OutboxMessage(instance_id=inst.id, business_key=inst.business_key,
                                    template=effect["template"], payload=effect["fields"])
            self.session.add(message)
            change.messages.append(message)
            audit.record(self.session, actor, "customer_message_queued", instance_id=inst.id,
                         business_key=inst.business_key, data={"template": effect["template"]})
        for effect in effects:
            handler = self.effect_handlers.get(effect["kind"])
            if handler is not None:
                handler(self.session, inst, effect, actor)
        change.changed_data = dict(initial_data or {})
        change.changed_data.update(changed_data(done))
        # Last: everything above reads the tasks this change finished, which compaction drops.
        inst.workflow_json = workflow.dump(workflow.compact(wf))
        for sync in self.record_syncs:
            sync(self.session, inst, change)
        # The instance's tasks in one statement (new and changed), not the flush's INSERT and UPDATE.
        mine = [row for row in change.open_tasks if row.instance_id == inst.id]
        upsert(self.session, mine, read_as=TASK_OPEN)
        self.session.flush()
        for write in change.after_flush:
            write(self.session)
        return change

    def _open_rows(self, inst) -> tuple[list, list]:
        """(the instance's open and missed deadlines, the open tasks of every instance with its business key) in
        one statement (OPEN_ROWS)."""
        rows = self.session.execute(OPEN_ROWS, {"instance_id": inst.id, "business_key": inst.business_key}).all()
        return [r[0] for r in rows if r[0] is not None], [r[1] for r in rows if r[1] is not None]

    def _sync_deadlines(self, inst, wf, read, actor, now, done, provisional) -> list[Deadline]:
        """Deadline rows follow the timer tasks: open while waiting, met when their task finished
        first, missed when they fired. A provisional row whose timer was evaluated again to the same
        time, now on a published (or pinned) calendar, is confirmed. `read`: the instance's open and
        missed rows. Writes them (one statement) and returns those that still bind a task (open or missed)."""
        rows = {d.timer_task_id: d for d in read}
        waiting = {t.id: t for t in workflow.waiting_timers(wf)}
        confirmed = wf.script_engine.confirmed_dues() - provisional

        def log(action, row, **extra):
            audit.record(self.session, actor, action, instance_id=inst.id, business_key=inst.business_key,
                         element_id=row.element_id,
                         data={"deadline": row.name, "due_at": row.due_at.isoformat(), "task": row.host_element_id,
                               **extra})

        rearmed = self._rearmed_timers(wf, rows, waiting)
        for timer_id, row in list(rows.items()):
            if row.state != "open":
                continue
            timer = waiting.get(timer_id) or rearmed.get(timer_id)
            if timer is None:
                row.state, row.closed_at = workflow.deadline_outcome(wf, timer_id, row.host_task_id), now
                log(f"deadline_{row.state}", row)
                continue
            if timer.id != timer_id:                  # the same deadline, waiting again after a loop
                del rows[timer_id]
                row.timer_task_id, rows[timer.id] = timer.id, row
            if timer.due_at is not None and timer.due_at != row.due_at:
                was = row.due_at
                row.due_at, row.provisional = timer.due_at, timer.due_at in provisional
                log("deadline_recomputed", row, was=was.isoformat(), provisional=row.provisional)
            elif row.provisional and timer.due_at in confirmed:
                row.provisional = False
                log("deadline_confirmed", row, provisional=False)
        # New timers; a timer set and already due within this change (e.g. a complaint registered late)
        # is recorded as set and missed at once.
        new = [(t, "open") for t in waiting.values()] + [(t, "missed") for t in workflow.fired_timers(done)]
        new = [(t, state) for t, state in new if t.id not in rows and t.due_at is not None]
        if any(state == "missed" for _, state in new):      # never a second row for a timer already closed
            closed = set(self.session.execute(select(Deadline.timer_task_id).where(
                Deadline.instance_id == inst.id, Deadline.timer_task_id.in_([t.id for t, _ in new]))).scalars())
            new = [(t, state) for t, state in new if t.id not in closed]
        for timer, state in new:
            row = Deadline(instance_id=inst.id, timer_task_id=timer.id, element_id=timer.element_id,
                           name=timer.name, host_task_id=timer.host_id, host_element_id=timer.host_element_id,
                           due_at=timer.due_at, provisional=timer.due_at in provisional, state=state,
                           created_at=now, closed_at=now if state == "missed" else None)
            rows[timer.id] = row
            log("deadline_set", row, provisional=row.provisional)
            if state == "missed":
                log("deadline_missed", row)
        written = upsert(self.session, list(rows.values()), key="timer_task_id", read_as=DEADLINE_OPEN)
        return [r for r in written if r.state in DEADLINE_OPEN_STATES]

    @staticmethod
    def _rearmed_timers(wf, rows, waiting) -> dict:
        """{old timer id: new timer} for a deadline bound to no task (e.g. the regulator's clock at its
        event gateway) whose timer was left by another event and is waiting again at the same element
        within this change: the diagram looped back to it (e.g. an approved extension moved it). It is
        the same deadline, moved, not one met and another set."""
        known = set(rows)
        fresh = {}
        for timer in waiting.values():
            if timer.id not in known and timer.host_id is None:
                fresh.setdefault(timer.element_id, timer)
        return {timer_id: fresh[row.element_id] for timer_id, row in rows.items()
                if row.state == "open" and row.host_task_id is None and timer_id not in waiting
                and row.element_id in fresh and not workflow.timer_fired(wf, timer_id)}

    def _sync_tasks(self, inst, wf, deadlines, actor, now, change):
        """`change.open_tasks`: the open tasks of every instance with this business key (the record syncs show
        them all), of which this instance's are synced here; the new ones join them, written with them (not
        added to the session: _write_back writes them in one statement)."""
        rows = {r.id: r for r in change.open_tasks if r.instance_id == inst.id}
        ready = workflow.ready_human_tasks(wf)
        ready_ids = {t.id for t in ready}
        for task_id, row in rows.items():
            if task_id in ready_ids:
                continue
            outcome = workflow.task_outcome(wf, task_id)
            row.state = "completed" if outcome == "completed" else "cancelled"
            row.completed_at = now
            if row.state == "cancelled":
                audit.record(self.session, actor, "task_cancelled", instance_id=inst.id,
                             business_key=inst.business_key, task_id=row.id, element_id=row.element_id)

        def due_for(scope_ids):
            # A missed deadline still binds: the task stays overdue until it is done, unless a deadline
            # set on the same task since replaces it (e.g. the completion date management set).
            binding = [d for d in deadlines if d.host_task_id in scope_ids]
            dues = [d.due_at for d in binding if not superseded(d, binding)]
            return min(dues) if dues else None

        for task in ready:
            row = rows.get(task.id)
            if row is not None:     # still open; a migration may have renamed or moved it
                row.due_at = due_for(task.scope_ids)
                row.element_id, row.name, row.lane = task.element_id, task.name, task.lane
                row.role = self.lane_roles.get(task.lane)
                continue
            drawn = workflow.task_properties(wf, task.id)
            row = HumanTask(id=task.id, instance_id=inst.id, business_key=inst.business_key, state="open",
                            element_id=task.element_id, name=task.name, lane=task.lane,
                            role=self.lane_roles.get(task.lane), form=task.element_id if task.has_form else None,
                            due_at=due_for(task.scope_ids), created_at=now,
                            subject=drawn.get(workflow.SUBJECT, "")[:HumanTask.subject.type.length] or None)
            change.created_tasks.append(row)
            change.open_tasks.append(row)
            audit.record(self.session, actor, "task_created", instance_id=inst.id, business_key=inst.business_key,
                         task_id=row.id, element_id=row.element_id, data={"name": row.name, "role": row.role})
            self._flag_if_unstaffed(inst, row, actor)
            if drawn.get(workflow.ASSIGNEE):
                self._assign_as_drawn(inst, row, drawn[workflow.ASSIGNEE], actor, now)

    def _assign_as_drawn(self, inst, row, username, actor, now):
        """A task whose diagram names its user (its `assignee` property, e.g. an improvement measure's
        owner) goes to that user if they may hold it; else it stays in its role's queue for a supervisor
        to assign, and the audit trail says why."""
        user = self.holder(username, row.role)
        reason = self.exclusion(user, row) if user is not None else \
            f"{username} is not an active user with the role {row.role}"
        where = dict(instance_id=inst.id, business_key=inst.business_key, task_id=row.id, element_id=row.element_id)
        if reason:
            audit.record(self.session, actor, "task_assignee_unavailable", **where,
                         data={"assignee": username, "reason": reason})
            return
        row.assignee, row.claimed_at, row.unstaffed = user, now, False
        audit.record(self.session, actor, "task_assigned", **where, data={"assignee": username, "by": "diagram"})

    def _flag_if_unstaffed(self, inst, row, actor):
        """A task nobody may work (no active user with its role, or all of them excluded) is flagged
        for the supervisors and written to the audit trail."""
        excluded = self.excluded(inst.id)
        if self.anyone_eligible(row.role, excluded):
            return
        row.unstaffed = True
        audit.record(self.session, actor, "task_unstaffed", instance_id=inst.id, business_key=inst.business_key,
                     task_id=row.id, element_id=row.element_id,
                     data={"name": row.name, "role": row.role, "excluded": sorted(excluded)})


def _may_hold(role) -> tuple:
    """The users who may hold a task of `role`: active, and `role` among their roles (the LIKE only narrows
    the rows: the caller checks the role among the comma-separated ones)."""
    return User.active.is_(True), User.roles_csv.contains(role)


def engine_error(what, exc) -> AppError:
    """Name the diagram element that failed, so a process owner can find it in the modeler. A value a
    helper refused as a person's input (scripting.InputRejected) is invalid data, not a broken diagram."""
    spec = getattr(exc, "task_spec", None)
    where = f" at {spec.bpmn_id} ({spec.bpmn_name})" if getattr(spec, "bpmn_id", None) else ""
    fields = {"element_id": spec.bpmn_id} if where else {}
    rejected = _rejected_input(exc)
    if rejected is not None:
        return InvalidData(f"the procedure cannot use this input{where}: {rejected}", fields=fields,
                           code="rejected_by_procedure")
    return ProcessError(f"{what}{where}: {exc}", fields=fields)


def _rejected_input(exc) -> Optional[InputRejected]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, InputRejected):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "exception", None) or exc.__cause__ or exc.__context__
    return None


def customer_may_answer(schema: Optional[dict]) -> bool:
    """Whether a task with this form may be completed by the customer on their own page."""
    return bool(schema and schema.get("x-customer"))


def fit(names, length) -> str:
    """`names` comma-separated, as many as fit in `length` characters."""
    out = ""
    for name in names:
        joined = f"{out},{name}" if out else name
        if len(joined) > length:
            break
        out = joined
    return out


def changed_data(done) -> dict:
    """The task-data values set by `done`, the tasks this change completed: each task's delta against
    its parent, so a branch that only carries old values (e.g. a fired timer) changes nothing. A call
    activity is left out: it carries back the data of whichever branch of the called process ended
    last (e.g. a late deadline follow-up, with stale values); its steps' own values were taken as
    they completed."""
    out = {}
    for task in done:
        if workflow.is_call_activity(task.task_spec):
            continue
        parent = task.parent.data if task.parent is not None else {}
        for key, value in task.data.items():
            if parent.get(key, MISSING) != value:
                out[key] = value
    # wf.data is deliberately not read: at the end it holds whichever branch finished last, and a
    # late deadline follow-up would carry stale values.
    return out


def superseded(deadline, binding) -> bool:
    """Whether a missed deadline no longer binds its task: another deadline was set on the same task
    when or after it was missed (the diagram gave the task a new date, e.g. after an escalation)."""
    if deadline.state != "missed" or deadline.closed_at is None:
        return False
    return any(other is not deadline and other.host_task_id == deadline.host_task_id
               and other.created_at is not None and other.created_at >= deadline.closed_at for other in binding)
