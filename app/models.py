"""Database tables. Lists and queues read the flat tables (human_task, complaint, deadline);
only a change to one instance deserializes its workflow."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import (JSON, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint,
                        event, false, inspect, or_, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .timeutil import UTCDateTime, utcnow


class User(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(256))
    roles_csv: Mapped[str] = mapped_column("roles", String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the user is told (app.notifications, migration 0023): their work address, whether a digest goes
    # there each working morning, when they last looked at their notifications and when the last digest went.
    email: Mapped[Optional[str]] = mapped_column(String(254))
    digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    notifications_seen_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    digest_sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # User administration (app/accounts.py, migration 0026): the TOTP second factor's secret once confirmed
    # and the last time step used (a code is good once), when the password was last set, and whether it
    # must be changed at the next login (after an administrator set it).
    totp_secret: Mapped[Optional[str]] = mapped_column(String(64))
    totp_last_counter: Mapped[Optional[int]] = mapped_column(Integer)
    password_changed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Single sign-on (app/sso.py, migration 0027): the OpenID Connect provider's issuer and the user's stable
    # subject there, set at the first SSO login (both or neither). Such a user's password hash is unusable.
    sso_issuer: Mapped[Optional[str]] = mapped_column(String(255))
    sso_subject: Mapped[Optional[str]] = mapped_column(String(255))
    # Counts the changes to what the user may work (roles, active; migration 0032): the runtime reads the count
    # of users and the sum of this with each change's lock, to know whether who may work a role changed.
    access_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (Index("ix_user_sso_identity", "sso_issuer", "sso_subject", unique=True),)

    @property
    def roles(self) -> set[str]:
        return {r for r in self.roles_csv.split(",") if r}

    @roles.setter
    def roles(self, value):
        self.roles_csv = ",".join(sorted(set(value)))

    @staticmethod
    def holding(role: str):
        """The SQL condition: `role` is one of the comma-separated codes of roles_csv (a whole code)."""
        csv = User.roles_csv
        return or_(csv == role, csv.startswith(role + ","), csv.endswith("," + role), csv.contains(f",{role},"))

    def set_password(self, password: str):
        self.password_hash = generate_password_hash(password)
        self.password_changed_at = utcnow()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


@event.listens_for(User.roles_csv, "set")
@event.listens_for(User.active, "set")
def _count_access_change(user, value, old, _initiator):
    """A change of a stored user's roles or activity counts in their access_version (in the same UPDATE)."""
    if old is not value and old != value and inspect(user).persistent:
        user.access_version = User.access_version + 1


class PasswordReset(db.Model):
    """A one-time link an administrator made for a user to set a new password (only its hash is kept)."""
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship()


class ApiToken(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256; the token itself is shown once
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship()


class ProcessVersion(db.Model):
    """One deployed, immutable version of a process: its BPMN, its spec (stored once) and its forms."""
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200), default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    bpmn_files: Mapped[dict] = mapped_column(JSON)        # file name -> XML text
    spec_json: Mapped[str] = mapped_column(Text)
    subprocess_specs_json: Mapped[str] = mapped_column(Text)
    forms: Mapped[dict] = mapped_column(JSON)             # form name -> JSON Schema
    messages: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")   # "<template>.<lang>" -> Jinja text
    # name -> {title, title_en, terms}: the controlled vocabularies deployed with it (app/vocab.py)
    vocabularies: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    lanes: Mapped[dict] = mapped_column(JSON)             # element id -> lane name, for checks and views
    deployed_by: Mapped[str] = mapped_column(String(64), default="system")
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("process_id", "version"),
                      Index("ix_process_version_hash", "process_id", "content_hash"))


class ProcessInstance(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(100))
    business_key: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")   # running | completed | error
    workflow_json: Mapped[str] = mapped_column(Text)                     # without the spec
    next_timer_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    error: Mapped[Optional[str]] = mapped_column(Text)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The names of the messages the workflow waits for now (comma-separated), e.g. a withdrawal the
    # customer may send: pages offer the action without loading the workflow.
    awaits: Mapped[str] = mapped_column(String(400), default="", server_default="")
    version: Mapped[ProcessVersion] = relationship()
    # A concurrent write to the same instance fails instead of overwriting.
    __mapper_args__ = {"version_id_col": row_version}
    # The running instances of a process and their complaints (the queues' review filter, the statistics),
    # from the index alone.
    __table_args__ = (Index("ix_process_instance_process_status", "process_id", "status", "business_key"),)


class InstanceSnapshot(db.Model):
    """An instance's workflow as it was before a migration, kept so the change can be inspected."""
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    workflow_json: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


OPEN_SQL = "state = 'open'"                                   # the partial indexes' conditions
UNCLAIMED_SQL = "state = 'open' AND assignee_id IS NULL"      # an open task nobody holds


class HumanTask(db.Model):
    """One row per user task that became READY; the queues read only this table and complaint."""
    id: Mapped[str] = mapped_column(String(36), primary_key=True)    # SpiffWorkflow task id
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    business_key: Mapped[Optional[str]] = mapped_column(String(64))
    element_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    lane: Mapped[Optional[str]] = mapped_column(String(100))
    role: Mapped[Optional[str]] = mapped_column(String(64))
    form: Mapped[Optional[str]] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="open")      # open | completed | cancelled
    assignee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id"))
    due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id"))
    # Answered by the customer on their own page (completed_by_id stays empty).
    completed_by_customer: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    assignee: Mapped[Optional[User]] = relationship(foreign_keys=[assignee_id])
    completed_by: Mapped[Optional[User]] = relationship(foreign_keys=[completed_by_id])
    row_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # No active user with the task's role may work it (e.g. everyone left is excluded by 回避):
    # flagged to management, who must find someone.
    unstaffed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # What this one is about, in a line, from the diagram (the user task's `subject` property), e.g. which
    # improvement measure: shown in the queues beside the step (migration 0019).
    subject: Mapped[Optional[str]] = mapped_column(String(200))
    # Someone keeps a draft of its form (app.web.tasks.drafts): the change that closes it deletes the drafts.
    # Set without a new row_version: a saved draft does not make the form its author sees stale.
    has_draft: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Two claims racing on SQLite (which has no row locks) must not both succeed.
    __mapper_args__ = {"version_id_col": row_version}
    __table_args__ = (
        # A role's open tasks, held or not, in the queue's order: per-role counts (metrics), the team page's role
        # filter, and the role queue on SQLite (whose planner takes it over the partial index below).
        Index("ix_human_task_role_queue", "state", "role", "assignee_id", "due_at", "created_at", "instance_id", "id"),
        # The role queue's page and count: only the unclaimed open tasks, in the page's order within a role
        # (the index above cannot give that order: `assignee_id IS NULL` is no equality to PostgreSQL, so
        # it sorted every unclaimed task of the role for each page), and the steps they wait at (the page's
        # step filter, queues.open_steps). The query must name the condition literally (queues.OPEN) for the
        # databases to take a partial index.
        Index("ix_human_task_unclaimed", "role", "due_at", "created_at", "instance_id", "id", "element_id",
              postgresql_where=text(UNCLAIMED_SQL), sqlite_where=text(UNCLAIMED_SQL)),
        # Open tasks by due time, with their complaint's number: the complaint list's "overdue" filter (a range of
        # the index, not every open task).
        Index("ix_human_task_open_due", "due_at", "business_key",
              postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)),
        # "My tasks" and its count (which must not take the role queue's index instead: it would read every
        # open task).
        Index("ix_human_task_assignee_queue", "state", "assignee_id", "due_at", "instance_id"),
        # An instance's tasks; with who completed them, for the queues' review filter (回避).
        Index("ix_human_task_instance", "instance_id", "state", "completed_by_id"),
        # Where complaints wait now, and how many of them are overdue (app.stats), from the index alone.
        Index("ix_human_task_element", "state", "element_id", "due_at", "instance_id"),
        # Time spent per element over a period (app.stats), from the index alone.
        Index("ix_human_task_completed", "state", "completed_at", "element_id", "instance_id", "created_at"),
        Index("ix_human_task_unstaffed", "unstaffed", "state"),       # the management's flag
        # The complaint list's "handled by" filter: the tasks a user completed (app.complaint_list).
        Index("ix_human_task_completed_by", "completed_by_id", "instance_id"),
    )


class Deadline(db.Model):
    """A timer boundary event of an instance: open while waiting, met when its task finished first,
    missed when it fired."""
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    timer_task_id: Mapped[str] = mapped_column(String(36), unique=True)
    element_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    host_task_id: Mapped[Optional[str]] = mapped_column(String(36))
    host_element_id: Mapped[Optional[str]] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="open")       # open | met | missed
    # Computed without an official holiday calendar for its year; recomputed once one exists.
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class CalendarDay(db.Model):
    """An admin's override of the official holiday calendar: a holiday or a (make-up) working day."""
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Complaint(db.Model):
    """The business record, kept in step with its workflow in the same transaction."""
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    instance_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    customer_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    email: Mapped[Optional[str]] = mapped_column(String(254))
    id_number: Mapped[Optional[str]] = mapped_column(String(32))
    # The kind of identity document id_number is (app/contact_rules.py ID_TYPES); NULL only on rows
    # without an ID number.
    id_type: Mapped[Optional[str]] = mapped_column(String(20))
    policy_number: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    claim_number: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    # Who handled the original claim: they may not handle the complaint about it (回避). The username
    # of an existing user; a handler outside the system is kept as free text that excludes nobody.
    claim_handler: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    claim_handler_external: Mapped[Optional[str]] = mapped_column(String(100))
    # Coded data (processes/vocabularies/, app/vocab.py): these columns hold codes of a vocabulary (column ->
    # vocabulary), each indexed with the received time so an analysis groups and drills down by it.
    # `category` may still hold a free-text value registered before coded categories (migration 0017
    # mapped the known ones; `flask vocab unmapped` lists the rest), which `category_legacy` keeps once mapped.
    coded_columns = {"category": "category", "product_line": "product_line", "cause_code": "cause",
                     "responsible_party": "responsible_party"}
    category: Mapped[str] = mapped_column(String(64))
    category_legacy: Mapped[Optional[str]] = mapped_column(String(64))
    product_line: Mapped[Optional[str]] = mapped_column(String(64))
    cause_code: Mapped[Optional[str]] = mapped_column(String(64))          # set by the analysis (C-3.3.2)
    responsible_party: Mapped[Optional[str]] = mapped_column(String(64))   # likewise
    description: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    registered_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id"))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)   # open | closed
    current_step: Mapped[str] = mapped_column(String(400), default="")
    outcome: Mapped[Optional[str]] = mapped_column(String(32))
    satisfied: Mapped[Optional[bool]] = mapped_column(Boolean)
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    risk_level: Mapped[Optional[str]] = mapped_column(String(16))
    accepted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # When the decision was told to the customer, and until when they may ask for a review (核查):
    # both set by the diagram (decided_at / review_until in the task data).
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    review_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The regulator's clock (监管时限, R-DECIDE), kept by the diagram: a decision is due by decision_due_at
    # (the due time of its timer, also after a recompute), the queues warn decision_warning_days before,
    # and decision_clock says where it stands (running | paused | met | missed, as the diagram sets it; stopped: the
    # complaint closed, withdrawn, while it ran, see stop_clock).
    decision_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    decision_warning_days: Mapped[Optional[int]] = mapped_column(Integer)
    decision_clock: Mapped[Optional[str]] = mapped_column(String(16))
    # How the customer is told: the language of their messages and page, and the channels they refused.
    language: Mapped[str] = mapped_column(String(8), default="zh", server_default="zh")
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The search by a personal identifier (phone or ID number) reads every column it matches by index.
    # The complaint list finds a number, policy or claim number and a customer's name in part
    # (app.complaint_list): on PostgreSQL through pg_trgm GIN indexes (migration 0024); on SQLite through the
    # FTS5 trigram table complaint_search, kept by triggers (migration 0030; no model: see on_backend). A
    # migration that rebuilds this table on SQLite (batch_alter_table) drops those triggers: it must create them
    # again (tests/test_migrations.py checks they are there and the index agrees with the table).
    partly_searched = ("number", "customer_name", "policy_number", "claim_number")
    CLOCK_RUNNING = ("running", "paused")      # the regulator's clock before it was met or missed

    def stop_clock(self):
        """A closed complaint's clock that was neither met nor missed stopped with it (a withdrawal ends the
        handling and its clock; a breach before stays on record as missed): it is no longer running, nor overdue
        in a list or an analysis."""
        if self.status == "closed" and self.decision_clock in self.CLOCK_RUNNING:
            self.decision_clock = "stopped"
    __table_args__ = (Index("ix_complaint_id_number", "id_number"),
                      *(Index(f"ix_complaint_{column}", column, "received_at") for column in coded_columns),
                      *(Index(f"ix_complaint_{column}_trgm", column, postgresql_using="gin",
                              postgresql_ops={column: "gin_trgm_ops"}).ddl_if(dialect="postgresql")
                        for column in partly_searched))


class ElementVisit(db.Model):
    """Each diagram element an instance passed through, in order: the path it actually took
    (gateways and scripts included, every round), without reading the workflow."""
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    process_id: Mapped[str] = mapped_column(String(100))     # the (called) process the element belongs to
    element_id: Mapped[str] = mapped_column(String(100))
    task_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_element_visit_instance", "instance_id", "id"),)


class ComplaintCounter(db.Model):
    """Per-day sequence for complaint numbers; incremented under a row lock."""
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class OutboxMessage(db.Model):
    """A message to the customer written by the process (notify_customer in a script), rendered from
    the version's template in the customer's language when it is written; one Delivery per channel."""
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    business_key: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    template: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)     # the fields the diagram passed; no personal data
    # queued | sent | failed | not_sent (written before delivery existed); the summary of its deliveries
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    # Idempotency key: the e-mail Message-ID and the SMS gateway's request id; also derives the portal link.
    key: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    language: Mapped[Optional[str]] = mapped_column(String(8))
    subject: Mapped[Optional[str]] = mapped_column(Text)
    body: Mapped[Optional[str]] = mapped_column(Text)
    sms_text: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class Delivery(db.Model):
    """One message on one channel (email | sms): at-least-once, retried with back-off, claimed by one
    dispatcher at a time (status "sending" with a lease)."""
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="queued")   # queued | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(String(500))       # the provider's answer; no personal data
    provider_ref: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    message: Mapped[OutboxMessage] = relationship()
    __table_args__ = (Index("ix_delivery_due", "status", "next_attempt_at"),)


class PortalLink(db.Model):
    """A customer's link to their complaint's page: only the token's hash is stored."""
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), index=True)
    message_id: Mapped[Optional[int]] = mapped_column(ForeignKey("outbox_message.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Set with the objects, so that a change writes its message, link and deliveries in its one flush.
    complaint: Mapped["Complaint"] = relationship()
    message: Mapped[Optional[OutboxMessage]] = relationship()


class SurveyResponse(db.Model):
    """The customer's answers to the satisfaction survey (C-5.1), one per complaint."""
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), unique=True)
    form: Mapped[str] = mapped_column(String(100))
    answers: Mapped[dict] = mapped_column(JSON)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(db.Model):
    """Append-only, one hash chain per case file: `chain` is the complaint number (`instance:<id>` for an
    instance without one, `system` for what concerns no complaint). Each row carries its position in
    the chain and the hash of the row before it, so an altered, removed or reordered row shows; the
    seals (AuditSeal) show a chain removed whole. Changes to different complaints never wait on
    each other's audit rows."""
    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[str] = mapped_column(String(80))
    seq: Mapped[int] = mapped_column(Integer)                 # 1, 2, ... within the chain
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))            # username, or "system"/"scheduler"
    action: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    business_key: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    task_id: Mapped[Optional[str]] = mapped_column(String(36))
    element_id: Mapped[Optional[str]] = mapped_column(String(100))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (UniqueConstraint("chain", "seq"),    # two appends can never fork a chain
                      # A complaint's actions sent by hand (the queues' review filter, 回避).
                      Index("ix_audit_event_business_key_action", "business_key", "action"))


class AuditChain(db.Model):
    """The head of one chain: locked by an append to that chain only, so appends to different
    complaints go on side by side. `sealed` is cleared by every append and set by the next seal."""
    chain: Mapped[str] = mapped_column(String(80), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0", index=True)


class AuditSeal(db.Model):
    """A checkpoint over all chains: the heads of the chains that grew since the seal before, chained
    to that seal and signed (HMAC) with a key the database does not hold. A chain deleted whole, cut
    short or rewritten after a seal, or a seal removed or swapped, shows on verification."""
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))
    heads: Mapped[int] = mapped_column(Integer)              # how many AuditSealHead rows it covers


class AuditSealHead(db.Model):
    """One chain's head as a seal fixed it."""
    seal_id: Mapped[int] = mapped_column(ForeignKey("audit_seal.id"), primary_key=True)
    chain: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class LoginAttempt(db.Model):
    """Failed logins counted per key (an IP address or a username) and fixed time window, in the
    database so that every worker and host shares the count."""
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class ElementDayStat(db.Model):
    """One finished UTC day for the per-element statistics (app.stats): per process version and
    element, how many human tasks finished that day and a histogram of the hours they took ({bucket:
    count}). Written from human_task the first time a read needs the day, never changed afterwards (a
    day that is over gains no finished task). A row with element_id "" marks the day as summarized
    for that version, also when nothing finished."""
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    element_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    completed: Mapped[int] = mapped_column(Integer)
    histogram: Mapped[dict] = mapped_column(JSON)


class AnalysisReport(db.Model):
    """An analysis of a period as it was computed and stored (app.analysis): the quarterly review attaches
    one to its instance, and the analysis page shows it again as it was."""
    id: Mapped[int] = mapped_column(primary_key=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)                        # inclusive; business dates
    label: Mapped[str] = mapped_column(String(32))                        # e.g. "2026Q4"
    instance_id: Mapped[Optional[int]] = mapped_column(ForeignKey("process_instance.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON)                              # the computed analysis


class ImprovementMeasure(db.Model):
    """One improvement measure decided by a quarterly review (C-5.3, C-5.4): its owner, due date, state and
    evidence; the next analyses show its category before (its review's period) and after."""
    id: Mapped[int] = mapped_column(primary_key=True)
    review_instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)                      # the review period it came from
    period_end: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[Optional[str]] = mapped_column(String(64))           # a code of the `category` vocabulary
    cause_code: Mapped[Optional[str]] = mapped_column(String(64))
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id"))
    due_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="open")        # open | done | dropped
    escalated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    evidence: Mapped[str] = mapped_column(Text, default="", server_default="")
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Its number within its review (the diagram's measure['no']), what its owner did and the day they
    # finished it (migration 0019).
    seq: Mapped[Optional[int]] = mapped_column(Integer)
    actions_taken: Mapped[str] = mapped_column(Text, default="", server_default="")
    completed_on: Mapped[Optional[date]] = mapped_column(Date)
    __table_args__ = (UniqueConstraint("review_instance_id", "seq", name="uq_improvement_measure_review_instance_id_seq"),)


# The analysis (app.analysis) reads the complaints received in a period by their dimensions and phone (from
# this index alone: the counts per dimension, the repeat complainants), those closed in it (outcomes,
# handling time, survey) and the deadlines closed in it by these (migration 0018).
Index("ix_complaint_analysis", Complaint.received_at, Complaint.channel, Complaint.category, Complaint.product_line,
      Complaint.cause_code, Complaint.responsible_party, Complaint.phone)
Index("ix_complaint_closed_at", Complaint.closed_at)
Index("ix_deadline_closed_at", Deadline.closed_at, Deadline.state, Deadline.element_id)


class PeriodicStart(db.Model):
    """An instance a calendar job started for a period (e.g. the quarterly review of 2026Q4): one per
    process and period, so a repeated cron firing, a second scheduler or a person asking again cannot
    start a second one."""
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(64))                       # its label, e.g. "2026Q4"
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)                        # inclusive; business dates
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("process_id", "period", name="uq_periodic_start_process_id_period"),)


class TaskDraft(db.Model):
    """A handler's unsent input to an open task's form (the raw form values; file fields by the hashes of the
    files already attached), one per task and author, read by its author only; dropped in the transaction
    that completes or withdraws the task (app.web.tasks.drafts)."""
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("human_task.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    data: Mapped[dict] = mapped_column(JSON)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("task_id", "user_id", name="uq_task_draft_task_id_user_id"),)


class EvidenceFile(db.Model):
    """A file attached to a case (a complaint's number, else the instance's audit chain, app.audit.chain_of):
    its content lives in the evidence store under its SHA-256 (app/evidence/), which the audit chain records
    too. A case holds a content once (uq): attaching it again is refused, not stored twice."""
    id: Mapped[int] = mapped_column(primary_key=True)
    case_key: Mapped[str] = mapped_column(String(100))
    task_id: Mapped[Optional[str]] = mapped_column(String(36))           # the task it was given with, if any
    field: Mapped[Optional[str]] = mapped_column(String(100))            # the form field it answers, if any
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))                 # from the content, not the name
    filename: Mapped[str] = mapped_column(String(255))                   # as uploaded; may be personal data
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[User] = relationship()
    __table_args__ = (UniqueConstraint("case_key", "sha256", name="uq_evidence_file_case_key_sha256"),
                      Index("ix_evidence_file_case_key_uploaded_at", "case_key", "uploaded_at"))


class SavedFilter(db.Model):
    """A list of complaints a user asks for again (the complaint list's filters: period, status, codes,
    step, overdue, handler) under a name of their own; never a search term, which may be personal data."""
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    name: Mapped[str] = mapped_column(String(80))
    args: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_saved_filter_user_id_name"),)


SQLITE_SEARCH_INDEX = "complaint_search"


def is_search_index(table_name: str) -> bool:
    """SQLite's FTS5 search index of complaints or one of its own tables (migration 0030): made and kept by the
    database (triggers on complaint), not a model; a new empty database has rows in two of them."""
    return table_name == SQLITE_SEARCH_INDEX or table_name.startswith(SQLITE_SEARCH_INDEX + "_")


def on_backend(dialect: str):
    """An alembic `include_object` that leaves out what exists only on another backend (an index made with
    ddl_if(dialect=...), such as complaint's pg_trgm ones) or only in a migration (SQLite's search index),
    so that models and database compare equal on each."""
    def include(obj, name, type_, reflected, compare_to):
        if type_ == "table" and reflected and compare_to is None and is_search_index(name):
            return False
        only_on = getattr(obj, "_ddl_if", None)
        return only_on is None or only_on.dialect in (None, dialect)
    return include


class SchedulerHeartbeat(db.Model):
    """The scheduler's sign of life (app/scheduler.py): one row per name, its time moved by the timer job at
    most once a minute; /readyz finds it stale after SCHEDULER_HEARTBEAT_MAX_SECONDS."""
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BackgroundJob(db.Model):
    """A long action worked in the background (app/jobs/): a bulk migration, a big export of the complaint list.
    Its items (BackgroundJobItem) say what became of each thing it covers, so its progress and its result list are
    queries, and a runner that takes it over skips what is done. A runner holds it by a lease (claimed_by,
    lease_until) renewed after every batch; once the lease has run out another runner takes the job over.
    `params` never holds personal data (an export's search term is resolved to complaint ids when it is asked for);
    the result file (an export's, a BackgroundJobFile) is kept until expires_at."""
    __tablename__ = "background_job"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    started_by: Mapped[str] = mapped_column(String(64))                  # a username
    params: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="queued")     # queued running done failed cancelled
    total: Mapped[int] = mapped_column(Integer, default=0)
    done_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    claimed_by: Mapped[Optional[str]] = mapped_column(String(100))       # host:pid of the runner holding it
    lease_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    takeovers: Mapped[int] = mapped_column(Integer, default=0)           # leases that ran out while held
    error: Mapped[Optional[str]] = mapped_column(String(500))
    result_file: Mapped[Optional[str]] = mapped_column(String(100))      # its BackgroundJobFile; None once deleted
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ix_background_job_state", "state", "lease_until"),
                      Index("ix_background_job_started_by", "started_by", "id"))


class BackgroundJobFile(db.Model):
    """A file of a job (app/jobs/files.py): what an item wrote (an export's slice) or its result (the export's CSV
    or Excel file). In the database, so that whichever web worker, on whichever host, answers the download hands
    out the file the scheduler wrote, and a file is written in the same transaction as the item or the job's end
    that it belongs to."""
    __tablename__ = "background_job_file"
    job_id: Mapped[int] = mapped_column(ForeignKey("background_job.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BackgroundJobItem(db.Model):
    """One thing a background job covers (a complaint to migrate, a slice of an export), written with the job;
    `outcome` stays empty until it is done, then says what became of it (done, already, refused, failed)."""
    __tablename__ = "background_job_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("background_job.id"))
    seq: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(100))                        # e.g. a process instance's id
    label: Mapped[Optional[str]] = mapped_column(String(100))            # what the result list shows (a number)
    data: Mapped[Optional[dict]] = mapped_column(JSON)
    outcome: Mapped[Optional[str]] = mapped_column(String(16))
    message: Mapped[Optional[str]] = mapped_column(String(1000))
    done_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_background_job_item_job_id_seq"),
                      Index("ix_background_job_item_pending", "job_id", "outcome", "seq"))
