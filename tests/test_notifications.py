"""What handlers are told (issue 12 item 8): the notifications page (new since the last look, due within a
day, overdue; for management the overdue tasks nobody holds and those nobody may work) with its count in the
top bar, and the morning e-mail digest of the same lists through a real SMTP server on 127.0.0.1 — once a
working day per user however many schedulers run, retried when the mail server was down, never on a rest day."""
import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import select

from app import notifications
from app.digest_mail import send_digests
from app.extensions import db
from app.models import AuditEvent, User
from app.scheduler import fire_due_timers
from tests.flow import Desk
from tests.test_web import Browser, flashes, fresh, text

SH = ZoneInfo("Asia/Shanghai")
MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=SH)       # a working day
SATURDAY_9 = datetime(2026, 12, 5, 9, 0, tzinfo=SH)


def user(name) -> User:
    fresh()
    return db.session.execute(select(User).where(User.username == name)).scalar_one()


def ids(page, testid) -> list:
    block = re.search(rf'data-testid="{testid}">(.*?)</ul>', page.get_data(as_text=True), flags=re.S)
    return re.findall(r'data-task-id="([^"]+)"', block.group(1)) if block else []


def test_the_page_lists_new_due_soon_and_overdue_and_the_count_goes_after_a_look(app, client, people):
    desk = Desk(client, people)
    with time_machine.travel(MONDAY_9, tick=False) as clock:
        number = desk.register(received_at=MONDAY_9.isoformat())
        review = desk.task_id(number, "initial_review")
        cs = Browser(app).login("customer_service")
        home = cs.get("/")
        assert 'data-testid="count-notifications">1<' in home.get_data(as_text=True)
        page = cs.get("/notifications")
        assert ids(page, "notify-new") == [review] and ids(page, "notify-overdue") == []
        assert "首次查看时" in text(page)
        assert 'data-testid="count-notifications"' not in cs.get("/").get_data(as_text=True)   # looked at
        # claimed and 23 hours on: due within a day; 25 hours on: overdue (and counted again)
        client.post(f"/api/v1/tasks/{review}/claim", headers=people["customer_service"].headers)
        clock.shift(timedelta(hours=1))
        page = cs.get("/notifications")
        assert ids(page, "notify-new") == [] and ids(page, "notify-due-soon") == [review]
        clock.shift(timedelta(hours=25))
        assert fire_due_timers(app) == 1
        cs = Browser(app).login("customer_service")      # a day later: a new login
        assert 'data-testid="count-notifications">1<' in cs.get("/").get_data(as_text=True)
        assert ids(cs.get("/notifications"), "notify-overdue") == [review]
        # management: the overdue follow-up is new to them; nobody holds it, it is not overdue itself yet
        page = Browser(app).login("management").get("/notifications")
        follow_up = desk.task_id(number, "initial_review_overdue")
        assert follow_up in ids(page, "notify-new") and 'data-testid="notify-supervisor"' in page.get_data(as_text=True)
        # a claims specialist is told nothing of customer service's work
        page = Browser(app).login("claims_specialist").get("/notifications")
        assert ids(page, "notify-new") == ids(page, "notify-overdue") == []


def test_supervisors_see_overdue_tasks_nobody_holds(app, client, people):
    desk = Desk(client, people)
    with time_machine.travel(MONDAY_9, tick=False) as clock:
        number = desk.register(received_at=MONDAY_9.isoformat())
        clock.shift(timedelta(hours=25))
        fire_due_timers(app)
        found = notifications.digest(db.session, user("management"), datetime.now(SH), supervisor=True)
        assert [t.element_id for t in found.unassigned_overdue] == ["initial_review"]
        assert found.unstaffed == []
        assert desk.task_id(number, "initial_review") == found.unassigned_overdue[0].id


def settings_form(page) -> tuple:
    """(the address in the digest form, whether its box is ticked, the error beside the address or None)."""
    body = page.get_data(as_text=True)
    address = re.search(r'name="email" value="([^"]*)"', body).group(1)
    ticked = re.search(r'<input type="checkbox" id="digest-on" name="digest"([^>]*)>', body).group(1)
    error = re.search(r'data-testid="error-email">([^<]*)<', body)
    return html.unescape(address), " checked" in ticked, error and html.unescape(error.group(1))


def test_digest_settings_are_checked(app, people):
    cs = Browser(app).login("customer_service")
    r = cs.post("/notifications/settings", {"email": "not-an-address", "digest": "on"}, page="/notifications")
    assert r.status_code == 422 and settings_form(r) == ("not-an-address", True, "电子邮件地址无效。未做任何更改。")
    r = cs.post("/notifications/settings", {"email": "", "digest": "on"}, page="/notifications")
    assert r.status_code == 422 and settings_form(r) == ("", True, "请填写接收摘要的地址。未做任何更改。")
    assert (user("customer_service").email, user("customer_service").digest) == (None, False)
    r = cs.post("/notifications/settings", {"email": "CS@Insurer.Example", "digest": "on"}, page="/notifications")
    assert any("已保存" in m for m in flashes(cs.get(r.location)))
    assert (user("customer_service").email, user("customer_service").digest) == ("CS@insurer.example", True)
    cs.post("/notifications/settings", {"email": "CS@insurer.example", "digest": ""}, page="/notifications")
    changed = db.session.execute(select(AuditEvent.actor, AuditEvent.data).where(
        AuditEvent.action == "user_updated")).all()          # the address changed once: audited once, by its owner
    assert [(actor, data["email_before"], data["email"]) for actor, data in changed] == [
        ("customer_service", None, "CS@insurer.example")]


def test_refused_digest_settings_are_shown_again_as_typed_with_the_error_beside_the_address(app, people):
    row = user("claims_specialist")
    row.email, row.digest = "cs@insurer.example", False
    db.session.commit()
    specialist = Browser(app).login("claims_specialist")
    assert settings_form(specialist.get("/notifications")) == ("cs@insurer.example", False, None)
    token = specialist.token("/notifications")
    seen = user("claims_specialist").notifications_seen_at

    r = specialist.post("/notifications/settings", {"email": "boss@insurer", "digest": "on", "csrf_token": token},
                        token=False)
    assert r.status_code == 422 and r.location is None
    assert settings_form(r) == ("boss@insurer", True, "电子邮件地址无效。未做任何更改。")
    assert 'aria-describedby="err-digest-email"' in r.get_data(as_text=True) and flashes(r) == []
    assert "每日邮件摘要" in text(r)                        # the page itself, its lists and all
    stored = user("claims_specialist")
    assert (stored.email, stored.digest, stored.notifications_seen_at) == ("cs@insurer.example", False, seen)

    specialist.get("/language/en?next=/notifications")
    r = specialist.post("/notifications/settings", {"email": "boss@insurer", "digest": "on"}, page="/notifications")
    assert settings_form(r) == ("boss@insurer", True, "Not a valid e-mail address. Nothing was changed.")
    assert (user("claims_specialist").email, user("claims_specialist").digest) == ("cs@insurer.example", False)
    # The refused form's address is where the language switch leads back to: it opens the page's settings.
    back = specialist.get("/language/zh_Hans_CN?next=/notifications/settings")
    r = specialist.get(back.location)
    assert r.status_code == 302 and r.location.endswith("/notifications#settings"), (back.location, r.status_code)


def _digest_on(name, address):
    row = user(name)
    row.email, row.digest = address, True
    db.session.commit()


def test_the_morning_digest_goes_once_a_working_day_and_says_what_waits(app, client, people, outbox, sink):
    desk = Desk(client, people)
    _digest_on("customer_service", "cs@insurer.example")
    _digest_on("management", "boss@insurer.example")
    with time_machine.travel(MONDAY_9 - timedelta(hours=2), tick=False) as clock:
        number = desk.register(received_at=(MONDAY_9 - timedelta(hours=2)).isoformat())
        assert send_digests(app) == 0                      # before DIGEST_HOUR
        clock.shift(timedelta(hours=2))
        assert send_digests(app) == 1                      # management has nothing to be told yet
        [mail] = sink.emails
        assert mail.to == ["cs@insurer.example"] and mail.subject == "投诉待办：新任务 1 项，即将到期 1 项，已超时 0 项"
        assert number in mail.body and f"/tasks/{desk.task_id(number, 'initial_review')}" in mail.body
        assert "张三" not in mail.body and "138" not in mail.body      # no personal data in a mail to staff
        assert send_digests(app) == 0 and len(sink.emails) == 1       # once a day, however often it runs
        clock.shift(timedelta(days=1))                     # Tuesday: overdue now, and management is told
        fire_due_timers(app)
        assert send_digests(app) == 2
        to = {m.to[0]: m for m in sink.emails[:2]}
        assert "已超时且无人领取" in to["boss@insurer.example"].body
        assert "已超时（您的或您角色的任务）" in to["cs@insurer.example"].body
        assert "自上次摘要以来的新任务" not in to["cs@insurer.example"].body     # nothing new since Monday's
    with time_machine.travel(SATURDAY_9, tick=False):
        assert send_digests(app) == 0                      # a rest day


def test_a_digest_the_mail_server_refused_is_sent_at_the_next_run(app, client, people, outbox, sink):
    desk = Desk(client, people)
    _digest_on("customer_service", "cs@insurer.example")
    with time_machine.travel(MONDAY_9, tick=False) as clock:
        desk.register(received_at=MONDAY_9.isoformat())
        port = app.config["SMTP_PORT"]
        app.config["SMTP_PORT"] = 1                        # nothing listens there
        assert send_digests(app) == 0 and user("customer_service").digest_sent_at is None
        app.config["SMTP_PORT"] = port
        clock.shift(timedelta(hours=1))
        assert send_digests(app) == 1 and len(sink.emails) == 1


def test_two_schedulers_cannot_both_take_a_users_digest(app, people):
    now = MONDAY_9.astimezone(ZoneInfo("UTC"))
    start = MONDAY_9.replace(hour=0)
    uid = user("customer_service").id
    assert notifications.claim_digest(db.session, uid, start, now) is None       # first: never sent before
    assert notifications.claim_digest(db.session, uid, start, now) is False      # second: taken
    db.session.rollback()


def test_the_cli_sets_the_digest(app, people):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["users", "notify", "claims_specialist", "--digest"])
    assert r.exit_code != 0 and "--email" in r.output
    r = runner.invoke(args=["users", "notify", "claims_specialist", "--email", "bad", "--digest"])
    assert r.exit_code != 0
    r = runner.invoke(args=["users", "notify", "claims_specialist", "--email", "cl@insurer.example", "--digest"])
    assert r.exit_code == 0 and "digest on" in r.output
    assert (user("claims_specialist").email, user("claims_specialist").digest) == ("cl@insurer.example", True)
    r = runner.invoke(args=["users", "notify", "claims_specialist", "--email", "", "--digest"])
    assert r.exit_code == 1 and user("claims_specialist").email == "cl@insurer.example"    # refused: nothing changed
    r = runner.invoke(args=["users", "notify", "claims_specialist", "--email", "", "--by", "ops"])   # no address
    assert r.exit_code == 0 and "e-mail -, digest off" in r.output
    changed = db.session.execute(select(AuditEvent.actor, AuditEvent.data).where(
        AuditEvent.action == "user_updated")).all()
    assert [(actor, data.get("email_before"), data.get("email")) for actor, data in changed] == [
        ("cli", None, "cl@insurer.example"), ("ops", "cl@insurer.example", None)]


def test_a_task_given_to_me_is_new_to_me(app, client, people):
    desk = Desk(client, people)
    with time_machine.travel(MONDAY_9, tick=False) as clock:
        number = desk.register(received_at=MONDAY_9.isoformat())
        desk.complete(number, "initial_review")
        task_id = desk.task_id(number, "investigate")
        specialist = Browser(app).login("claims_specialist_2")
        specialist.get("/notifications")                   # looked: the investigation is no longer new
        clock.shift(timedelta(minutes=5))
        assert 'data-testid="count-notifications"' not in specialist.get("/").get_data(as_text=True)
        r = client.post(f"/api/v1/tasks/{task_id}/assign", headers=people["management"].headers,
                        json={"username": "claims_specialist_2"})
        assert r.status_code == 200, r.json
        assert ids(specialist.get("/notifications"), "notify-new") == [task_id]


def test_the_top_bar_counts_agree_with_the_queues_and_the_notifications_lists(app, client, people):
    """The top bar's one statement gives what counting each queue gives, and for the notifications the tasks the
    notifications page lists as new or overdue (each once): before the first look, and after it with a task opened
    since, one given to the user since, one they held before, and one overdue."""
    from app import queues
    from app.timeutil import utcnow
    desk = Desk(client, people)
    cs_headers = people["customer_service"].headers

    def agree(name, supervisor=False):
        who, now = user(name), utcnow()
        independent = app.config["INDEPENDENT_PROCESSES"]
        counted = notifications.top_bar_counts(db.session, who, now, independent=independent, supervisor=supervisor)
        listed = notifications.digest(db.session, who, now, since=who.notifications_seen_at, independent=independent)
        expected = {q: queues.count(db.session, queues.queue_query(who, q, independent=independent))
                    for q in (queues.QUEUES if supervisor else ("mine", "available"))}
        expected["notifications"] = len({t.id for t in listed.new} | {t.id for t in listed.overdue})
        assert counted == expected, (name, counted, expected)
        return counted

    with time_machine.travel(MONDAY_9, tick=False) as clock:
        held_before = desk.register(received_at=MONDAY_9.isoformat())
        given_later = desk.register(received_at=MONDAY_9.isoformat())
        client.post(f"/api/v1/tasks/{desk.task_id(held_before, 'initial_review')}/claim", headers=cs_headers)
        assert agree("customer_service") == {"mine": 1, "available": 1, "notifications": 2}     # never looked
        assert agree("management", supervisor=True)["unstaffed"] == 0
        clock.shift(timedelta(hours=1))
        notifications.mark_seen(db.session, user("customer_service"), utcnow())
        db.session.commit()
        assert agree("customer_service") == {"mine": 1, "available": 1, "notifications": 0}
        clock.shift(timedelta(hours=1))
        opened_since = desk.register(received_at=utcnow().isoformat())
        r = client.post(f"/api/v1/tasks/{desk.task_id(given_later, 'initial_review')}/assign",
                        json={"username": "customer_service"}, headers=people["management"].headers)
        assert r.status_code == 200, r.json
        assert agree("customer_service") == {"mine": 2, "available": 1, "notifications": 2}
        clock.shift(timedelta(hours=21, minutes=59))     # nothing is overdue yet: the reviews take 24 hours
        assert agree("customer_service") == {"mine": 2, "available": 1, "notifications": 2}
        clock.shift(timedelta(minutes=2))                # the one held before the look is overdue now: told again
        assert agree("customer_service") == {"mine": 2, "available": 1, "notifications": 3}
        assert agree("management", supervisor=True)["mine"] == 0
        assert opened_since
