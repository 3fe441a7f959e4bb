"""Customer messages really delivered: a registered complaint's acknowledgement is rendered, keyed and
queued per channel in the registration's transaction, and the dispatcher sends it through a real
SMTP server (aiosmtpd) and a real HTTP SMS gateway on 127.0.0.1 (fixtures `sink`, `outbox`)."""
import logging
import re

import pytest
from sqlalchemy import select

from app import portal_links
from app.config import Config
from app.extensions import db
from app.models import AuditEvent, Complaint, Delivery, OutboxMessage, PortalLink, ProcessVersion
from app.outbox import dispatch
from app.outbox.cli import group as outbox_cli
from app.outbox.dispatch import Dispatcher
from app.scheduler import dispatch_outbox
from tests.flow import COMPLAINT, Desk

LINK = re.compile(r"https://complaints\.insurer\.example/my/([0-9a-f]{48})")


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


def acknowledgement(number) -> OutboxMessage:
    db.session.expire_all()
    return db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key == number,
                                                          OutboxMessage.template == "acknowledgement")).scalar_one()


def deliveries(message) -> dict:
    return {d.channel: d for d in db.session.execute(select(Delivery).where(Delivery.message_id == message.id))
            .scalars()}


def audit_actions(number, prefix="customer_message_") -> list:
    return [(e.action, e.data.get("channel")) for e in db.session.execute(
        select(AuditEvent).where(AuditEvent.business_key == number, AuditEvent.action.startswith(prefix))
        .order_by(AuditEvent.id)).scalars()]


@pytest.mark.clause("C-3.1.3", "C-7.2")
def test_the_acknowledgement_reaches_both_channels_with_its_content_and_link(outbox, desk, sink):
    number = desk.register()
    message = acknowledgement(number)
    assert message.status == "queued" and re.fullmatch(r"[0-9a-f]{32}", message.key) and message.language == "zh"
    assert portal_links.LINK_MARK in message.body and number in message.subject     # no usable link is stored
    assert {c: d.status for c, d in deliveries(message).items()} == {"sms": "queued", "email": "queued"}

    counts = Dispatcher(outbox).dispatch_due()
    assert counts.sent >= 2 and counts.failed == counts.retried == 0

    mail = next(m for m in sink.emails if number in m.subject)
    assert mail.subject == f"【保险公司】投诉登记回执（投诉编号：{number}）"             # decoded from RFC 2047
    assert mail.to == [COMPLAINT["email"]] and mail.message_id == f"<{message.key}@insurer.example>"
    assert "尊敬的客户" in mail.body and number in mail.body
    sms = next(s for s in sink.sms if number in s.text)
    assert sms.to == COMPLAINT["phone"] and sms.idempotency_key == message.key
    assert sms.authorization == "Bearer gateway-test-key"
    # The link in both is the customer's own, and only its hash is stored.
    token = LINK.search(mail.body).group(1)
    assert LINK.search(sms.text).group(1) == token
    link = db.session.execute(select(PortalLink).where(PortalLink.message_id == message.id)).scalar_one()
    assert link.token_hash == portal_links.token_hash(token)
    assert portal_links.find(db.session, token)[1] == "ok"

    message = acknowledgement(number)
    sent = deliveries(message)
    assert message.status == "sent" and message.sent_at == max(d.sent_at for d in sent.values())
    assert sent["email"].provider_ref == mail.message_id and sent["sms"].provider_ref == sms.id
    assert {a for a in audit_actions(number)} >= {("customer_message_sent", "sms"), ("customer_message_sent", "email")}
    assert Dispatcher(outbox).dispatch_due().claimed == 0                     # nothing is sent twice


def test_an_english_customer_gets_the_english_message(outbox, desk, sink):
    number = desk.register(language="en")
    Dispatcher(outbox).dispatch_due()
    assert acknowledgement(number).language == "en"
    mail = next(m for m in sink.emails if number in m.subject)
    assert "we have received your complaint" in mail.subject and "Dear customer" in mail.body


@pytest.mark.parametrize("overrides, channels", [
    ({"sms_opt_out": True}, {"email"}),
    ({"email_opt_out": True}, {"sms"}),
    ({"email": None}, {"sms"}),
])
def test_channels_follow_the_registration_and_opt_outs(outbox, desk, sink, overrides, channels):
    number = desk.register(**overrides)
    message = acknowledgement(number)
    assert set(deliveries(message)) == channels
    Dispatcher(outbox).dispatch_due()
    assert acknowledgement(number).status == "sent"
    assert any(number in m.subject for m in sink.emails) == ("email" in channels)
    assert any(number in s.text for s in sink.sms) == ("sms" in channels)


def test_a_customer_who_opted_out_of_everything_has_a_failed_message_at_once(outbox, desk, sink):
    number = desk.register(sms_opt_out=True, email=None)
    message = acknowledgement(number)
    [(channel, delivery)] = deliveries(message).items()
    assert (channel, delivery.status, delivery.last_error, delivery.attempts) == ("none", "failed", "no channel", 0)
    assert ("customer_message_failed", None) in audit_actions(number)
    assert not sink.emails and not sink.sms


def test_a_template_that_does_not_render_fails_the_step_and_saves_nothing(outbox, desk, people, client):
    version = db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == "complaint_handling")
                                 .order_by(ProcessVersion.version.desc())).scalars().first()
    version.messages = {**version.messages, "acknowledgement.zh":
                        "{% block subject %}{{ 1 // 0 }}{% endblock %}{% block sms %}{% endblock %}"
                        "{% block body %}{% endblock %}"}
    db.session.commit()
    body = {**COMPLAINT, "received_at": "2026-03-02T09:00:00+08:00"}
    r = client.post("/api/v1/complaints", json=body, headers=people["customer_service"].headers)
    assert r.status_code == 500 and r.json["error"]["code"] == "message_error", r.json
    assert "acknowledgement" in r.json["error"]["message"] and "ZeroDivisionError" in r.json["error"]["message"]
    assert db.session.execute(select(Complaint)).first() is None


def test_a_channel_not_configured_leaves_its_deliveries_queued_and_warns_once(outbox, desk, sink, caplog):
    outbox.config.update(SMS_GATEWAY_URL=None)
    number = desk.register()
    dispatcher = Dispatcher(outbox)
    with caplog.at_level(logging.WARNING, logger="app.outbox"):
        dispatcher.dispatch_due()
        dispatcher.dispatch_due()
    warnings = [r for r in caplog.records if "not configured" in r.getMessage()]
    assert len(warnings) == 1 and "SMS_GATEWAY_URL" in warnings[0].getMessage()
    message = acknowledgement(number)
    assert {c: d.status for c, d in deliveries(message).items()} == {"sms": "queued", "email": "sent"}
    assert message.status == "queued" and not sink.sms


def test_the_case_file_lists_each_messages_deliveries(outbox, desk, people, client):
    number = desk.register(email_opt_out=True)
    Dispatcher(outbox).dispatch_due()
    r = client.get(f"/api/v1/complaints/{number}/case-file", headers=people["compliance"].headers)
    [ack] = [m for m in r.json["messages"] if m["template"] == "acknowledgement"]
    assert ack["status"] == "sent" and ack["sent_at"]
    assert [(d["channel"], d["status"], d["attempts"], d["last_error"]) for d in ack["deliveries"]] == \
        [("sms", "sent", 1, None)]


def test_the_cli_sends_what_is_due_and_counts_by_status(outbox, desk, sink):
    desk.register()
    runner = outbox.test_cli_runner()
    before = runner.invoke(outbox_cli, ["status"])
    assert "deliveries  email queued" in before.output and "messages    queued" in before.output
    sent = runner.invoke(outbox_cli, ["send-due"])
    assert sent.exit_code == 0 and "sent 2" in sent.output, sent.output
    after = runner.invoke(outbox_cli, ["status"])
    assert "deliveries  sms   sent" in after.output and "queued" not in after.output


def test_outbox_run_sends_in_a_loop_until_interrupted(outbox, desk, sink, monkeypatch):
    number = desk.register()

    def interrupt(seconds):
        raise KeyboardInterrupt
    monkeypatch.setattr("app.outbox.cli.sleep", interrupt)
    result = outbox.test_cli_runner().invoke(outbox_cli, ["run", "--interval", "5"])
    assert result.exit_code == 0 and "channels email, sms; every 5 s" in result.output, result.output
    assert "sent 2" in result.output and result.output.rstrip().endswith("stopped")
    assert acknowledgement(number).status == "sent"


def test_the_scheduler_job_logs_a_failing_pass_and_goes_on(caplog):
    class Broken:
        def dispatch_due(self):
            raise RuntimeError("database gone")
    with caplog.at_level(logging.ERROR, logger="app.scheduler"):
        assert dispatch_outbox(Broken()) is None
    assert "outbox dispatch failed" in caplog.text


def test_the_back_off_follows_the_configured_steps():
    config = {"OUTBOX_BACKOFF_SECONDS": Config.OUTBOX_BACKOFF_SECONDS}
    steps = [dispatch.backoff(config, n).total_seconds() for n in range(1, 8)]
    assert steps == [60, 300, 900, 3600, 10800, 10800, 10800]


def test_the_complaint_page_shows_each_message_and_its_deliveries(outbox, desk, people):
    from tests.test_web import Browser
    number = desk.register()
    outbox.config.update(SMS_GATEWAY_URL=None)                # e-mail goes out, SMS waits
    Dispatcher(outbox).dispatch_due()
    page = Browser(outbox).login(people["compliance"].user.username).get(f"/complaints/{number}").get_data(as_text=True)
    row = re.search(r'<tr data-testid="customer-message" data-template="acknowledgement" data-status="queued">'
                    r'(.*?)</tr>', page, re.S)
    assert row is not None, page
    assert 'data-channel="email" data-status="sent"' in row.group(1)
    assert 'data-channel="sms" data-status="queued"' in row.group(1)
    assert "已送达" in row.group(1) and "待发送" in row.group(1)        # in the UI's language
