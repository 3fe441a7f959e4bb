"""Delivery under faults, through the real SMTP server and SMS gateway of the `sink` fixture: a mail
server down for an hour, a gateway answering 500 / garbage / too slowly / 400, two dispatchers at
once, a dispatcher dying between sending and recording, and no personal data anywhere on the way.
The clock moves with time-machine; nothing sleeps."""
import logging
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, Delivery, HumanTask, OutboxMessage, ProcessInstance
from app.outbox import dispatch
from app.outbox.dispatch import Dispatcher
from app.outbox.email import SmtpMailer
from app.outbox.failures import PermanentFailure, TemporaryFailure
from app.outbox.sms import HttpJsonGateway
from tests.flow import COMPLAINT, Desk

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)      # a Monday, 09:00 in Shanghai


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def messages(numbers) -> list[OutboxMessage]:
    db.session.expire_all()
    return db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key.in_(numbers))
                              .order_by(OutboxMessage.id)).scalars().all()


def delivery(number, channel) -> Delivery:
    db.session.expire_all()
    return db.session.execute(select(Delivery).join(OutboxMessage, OutboxMessage.id == Delivery.message_id).where(
        OutboxMessage.business_key == number, OutboxMessage.template == "acknowledgement",
        Delivery.channel == channel)).scalar_one()


def run_for(dispatcher, clock, duration):
    """Dispatch for `duration` as a scheduler would, waking whenever a delivery falls due (the
    clock moves; nothing sleeps)."""
    end = datetime.now(timezone.utc) + duration
    while True:
        dispatcher.dispatch_due()
        due = db.session.execute(select(func.min(Delivery.next_attempt_at)).where(Delivery.status == "queued")
                                 ).scalar_one()
        db.session.rollback()
        if due is None or due > end:
            clock.move_to(end)
            return
        clock.move_to(max(due, datetime.now(timezone.utc)))


@pytest.mark.clause("C-7.2")
def test_a_mail_server_down_for_an_hour_delivers_every_message_once_when_it_is_back(outbox, desk, sink):
    with time_machine.travel(T0, tick=False) as clock:
        numbers = [desk.register(sms_opt_out=True) for _ in range(3)]
        sink.stop_smtp()
        dispatcher = Dispatcher(outbox)
        run_for(dispatcher, clock, timedelta(hours=1))
        waiting = delivery(numbers[0], "email")
        # Tried at 0, +1, +6 and +21 minutes (back-off 60 s, 300 s, 900 s), next at +81 minutes.
        assert (waiting.status, waiting.attempts) == ("queued", 4)
        assert "unreachable" in waiting.last_error and "Connection refused" in waiting.last_error
        assert waiting.next_attempt_at == T0 + timedelta(minutes=81)
        assert not sink.emails

        sink.start_smtp()
        run_for(dispatcher, clock, timedelta(hours=1))
    sent = Counter(m.message_id for m in sink.emails)
    assert len(sent) == len(messages(numbers)) and set(sent.values()) == {1}        # none lost, none twice
    assert all(m.status == "sent" for m in messages(numbers))
    assert {delivery(n, "email").attempts for n in numbers} == {5}


@pytest.mark.parametrize("answer, reason", [(500, "HTTP 500"), ("garbage", "answer without an id"),
                                            ("slow", "timed out")])
def test_a_gateway_failing_temporarily_is_retried_then_failed_with_its_answer(outbox, desk, sink, answer, reason):
    outbox.config.update(OUTBOX_MAX_ATTEMPTS=3, SMS_TIMEOUT_SECONDS=0.2)
    sink.sms_answer = answer
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register(email=None)
        dispatcher = Dispatcher(outbox)
        dispatcher.dispatch_due()
        first = delivery(number, "sms")
        assert (first.status, first.attempts) == ("queued", 1) and reason in first.last_error
        run_for(dispatcher, clock, timedelta(hours=1))
    failed = delivery(number, "sms")
    assert (failed.status, failed.attempts) == ("failed", 3) and reason in failed.last_error
    assert [m.status for m in messages([number]) if m.template == "acknowledgement"] == ["failed"]


def test_a_gateway_refusing_with_400_fails_at_once(outbox, desk, sink):
    sink.sms_answer = 400
    number = desk.register(email=None)
    Dispatcher(outbox).dispatch_due()
    refused = delivery(number, "sms")
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert refused.last_error.startswith("HTTP 400:") and "answer 400 as asked" in refused.last_error


@pytest.mark.clause("C-7.2")
def test_an_undeliverable_message_starts_a_call_by_customer_service(outbox, desk, sink):
    sink.sms_answer = 400
    number = desk.register(email=None)
    counts = Dispatcher(outbox).dispatch_due()
    assert counts.failed == 1 and counts.escalated == 1
    contact = db.session.execute(select(ProcessInstance).where(ProcessInstance.business_key == number,
                                                               ProcessInstance.process_id == "customer_contact")
                                 ).scalar_one()
    task = db.session.execute(select(HumanTask).where(HumanTask.instance_id == contact.id)).scalar_one()
    assert (task.element_id, task.role, task.state) == ("contact_customer", "customer_service", "open")
    assert task.due_at is not None
    undelivered = db.session.execute(select(AuditEvent).where(
        AuditEvent.business_key == number, AuditEvent.action == "customer_message_undelivered")).scalar_one()
    assert undelivered.data["template"] == "acknowledgement" and undelivered.data["channels"] == ["sms"]
    assert undelivered.data["reason"].startswith("sms: HTTP 400")
    # Started once: later passes find nothing more to do.
    assert Dispatcher(outbox).dispatch_due().escalated == 0
    assert db.session.execute(select(ProcessInstance.id).where(
        ProcessInstance.process_id == "customer_contact")).scalars().all() == [contact.id]


def test_a_message_with_no_channel_also_becomes_a_call_once_starting_it_works(outbox, desk, sink, monkeypatch):
    number = desk.register(sms_opt_out=True, email_opt_out=True)
    runtime = outbox.extensions["runtime"]
    with monkeypatch.context() as patch:
        patch.setattr(runtime, "start_on_message", lambda *a, **k: 1 / 0)
        assert Dispatcher(outbox).dispatch_due().escalated == 0          # rolled back: still to do
    db.session.expire_all()
    assert [m.status for m in messages([number]) if m.template == "acknowledgement"] == ["queued"]
    assert Dispatcher(outbox).dispatch_due().escalated == 1
    db.session.expire_all()
    ack = next(m for m in messages([number]) if m.template == "acknowledgement")
    assert ack.status == "failed"
    undelivered = db.session.execute(select(AuditEvent).where(
        AuditEvent.business_key == number, AuditEvent.action == "customer_message_undelivered")).scalar_one()
    assert (undelivered.data["channels"], undelivered.data["reason"]) == ([], "no channel")
    assert db.session.execute(select(HumanTask).where(HumanTask.business_key == number,
                                                      HumanTask.element_id == "contact_customer")).scalar_one()


def test_two_dispatchers_at_once_send_each_delivery_once(outbox, desk, sink):
    outbox.config.update(OUTBOX_BATCH=2)
    numbers = [desk.register() for _ in range(4)]
    barrier, errors = threading.Barrier(2), []

    def work():
        try:
            dispatcher = Dispatcher(outbox)
            barrier.wait()
            dispatcher.dispatch_due()
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    keys = {m.key for m in messages(numbers)}
    assert Counter(m.message_id.strip("<>").split("@")[0] for m in sink.emails) == Counter({k: 1 for k in keys})
    assert Counter(s.idempotency_key for s in sink.sms) == Counter({k: 1 for k in keys})
    assert all(m.status == "sent" for m in messages(numbers))


def test_a_crash_between_sending_and_recording_resends_with_the_same_ids_after_the_lease(outbox, desk, sink,
                                                                                          monkeypatch):
    outbox.config.update(OUTBOX_LEASE_SECONDS=120)
    with time_machine.travel(T0, tick=False) as clock:
        number = desk.register()

        def crash(*args, **kwargs):
            raise SystemExit("the dispatcher died after sending")
        with monkeypatch.context() as patch:
            patch.setattr(dispatch, "record", crash)
            with pytest.raises(SystemExit):
                Dispatcher(outbox).dispatch_due()
        assert len(sink.emails) == len(sink.sms) == 1
        assert delivery(number, "email").status == "sending"
        assert Dispatcher(outbox).dispatch_due().claimed == 0            # leased: nobody else sends it
        clock.shift(timedelta(seconds=121))
        assert Dispatcher(outbox).dispatch_due().sent == 2
    assert len({m.message_id for m in sink.emails}) == 1 and len(sink.emails) == 2      # same Message-ID
    assert len({s.idempotency_key for s in sink.sms}) == 1 and len(sink.sms) == 2       # same Idempotency-Key
    assert (delivery(number, "email").status, delivery(number, "email").attempts) == ("sent", 2)


def test_a_batch_stops_and_releases_the_rest_when_its_lease_runs_out(outbox, desk, sink):
    numbers = [desk.register(sms_opt_out=True) for _ in range(2)]
    dispatcher = Dispatcher(outbox)
    jobs = dispatch.claim(db.session, ["email"], dispatch.utcnow(), 10, 300)
    results = dispatcher.send_all(jobs, deadline=0)                   # past: only the first is sent
    assert [r.outcome for r in results] == ["sent", "released"]
    dispatch.record(db.session, results, dispatch.utcnow(), outbox.config)
    released = delivery(numbers[1], "email")
    assert (released.status, released.attempts, released.lease_until) == ("queued", 0, None)


def test_no_personal_data_in_errors_audit_or_logs(outbox, desk, sink, caplog):
    sink.smtp_reply = f"550 5.1.1 <{COMPLAINT['email']}>: no such user here"
    sink.sms_answer = 400
    with caplog.at_level(logging.DEBUG):
        number = desk.register()
        Dispatcher(outbox).dispatch_due()
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))  # not the sink's
    email, sms = delivery(number, "email"), delivery(number, "sms")
    assert email.status == sms.status == "failed" and "550" in email.last_error
    audit = [str(e.data) for e in db.session.execute(select(AuditEvent).where(
        AuditEvent.business_key == number, AuditEvent.action.startswith("customer_message"))).scalars()]
    for personal in (COMPLAINT["email"], COMPLAINT["phone"], COMPLAINT["customer_name"], COMPLAINT["id_number"]):
        assert personal not in email.last_error + sms.last_error
        assert not any(personal in text for text in audit)
        assert personal not in ours


# ---- the channels alone (no database) ------------------------------------------------------------
@pytest.mark.parametrize("reply, kind", [("451 4.3.0 mailbox busy, try later", TemporaryFailure),
                                         ("550 5.1.1 <zhangsan@example.com>: no such user", PermanentFailure)])
def test_smtp_answers_4xx_as_temporary_and_5xx_as_permanent(sink, reply, kind):
    sink.smtp_reply = reply
    mailer = SmtpMailer("127.0.0.1", sink.smtp_port, "none", timeout=2)
    with pytest.raises(kind) as failed:
        mailer.send("zhangsan@example.com", "主题", "正文", "k1")
    assert failed.value.reason.startswith(f"SMTP {reply[:3]}") and "zhangsan" not in failed.value.reason
    assert not failed.value.unreachable


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")     # the test server, on 127.0.0.1
def test_smtp_logs_in_when_a_user_is_set(sink):
    sink.stop_smtp()
    sink.credentials = ("mailer", "s3cret")
    sink.start_smtp()
    SmtpMailer("127.0.0.1", sink.smtp_port, "none", user="mailer", password="s3cret", timeout=2).send(
        "a@example.com", "主题", "正文", "k1")
    assert sink.emails[0].message_id == "<k1@example.com>"
    with pytest.raises(TemporaryFailure) as refused:          # our settings, not the message: retried
        SmtpMailer("127.0.0.1", sink.smtp_port, "none", user="mailer", password="wrong", timeout=2).send(
            "a@example.com", "主题", "正文", "k2")
    assert "535" in refused.value.reason and refused.value.unreachable


def test_the_gateway_treats_429_as_temporary_and_a_refused_connection_as_unreachable(sink):
    gateway = HttpJsonGateway(sink.sms_url, "key", timeout=1)
    sink.sms_answer = 429
    with pytest.raises(TemporaryFailure, match="HTTP 429"):
        gateway.send("13812345678", "text", "k1")
    sink.stop()
    with pytest.raises(TemporaryFailure, match="gateway unreachable") as down:
        gateway.send("13812345678", "text", "k1")
    assert down.value.unreachable


def test_a_backlog_drains_at_the_configured_pace(outbox, desk, sink):
    desk.register()                                       # two deliveries: sms and e-mail
    outbox.config.update(OUTBOX_BATCH=1, OUTBOX_MAX_PER_SECOND=10)
    t0 = time.monotonic()
    counts = Dispatcher(outbox).dispatch_due()
    assert counts.sent == 2 and time.monotonic() - t0 >= 0.1     # one message, then a tenth of a second
