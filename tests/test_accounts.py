"""User administration's rules (app/accounts.py, app/passwords.py) on both databases, and `flask users`
driving them: the password policy and the breached list, the last administrator, one-time reset links,
and the commands an operator runs."""
import hashlib
import random
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app import accounts
from app.extensions import db
from app.models import AuditEvent, User
from app.passwords import Policy, is_breached
from app.timeutil import utcnow
from tests.conftest import make_user

ROLES = ("admin", "customer_service", "management")


@pytest.mark.parametrize("password, code", [
    ("short-1", "too_short"), ("x" * 129, "too_long"), ("zhang.wei-2026!", "has_name"),
    ("aaaaaaaaaaaaaaaa", "too_simple"), ("123456789012", "too_simple"), ("abababababab", "too_simple"),
    ("zyxwvutsrqponm", "too_simple"), ("correct horse battery", None)])
def test_the_password_policy(password, code):
    problem = Policy(min_length=12).problem(password, names=("zhang.wei", "张伟"))
    assert (problem.code if problem else None) == code


def test_the_breached_list_is_searched_by_bisection(tmp_path):
    """A sorted SHA-1 list in the Pwned Passwords format; the first, the last and a middle line are found,
    a password between two lines is not."""
    rng = random.Random(7)
    leaked = ["first-leaked", "middle-leaked", "last-leaked"]
    hashes = {hashlib.sha1(p.encode()).hexdigest().upper() for p in leaked}
    hashes |= {hashlib.sha1(str(rng.random()).encode()).hexdigest().upper() for _ in range(3000)}
    listing = tmp_path / "pwned.txt"
    listing.write_text("".join(f"{h}:{rng.randint(1, 99999)}\r\n" for h in sorted(hashes)))
    assert all(is_breached(str(listing), p) for p in leaked)
    assert not is_breached(str(listing), "never-leaked-anywhere")
    long_leaked = "a long leaked sentence"
    listing.write_text("\n".join(sorted(hashes | {hashlib.sha1(long_leaked.encode()).hexdigest().upper()})))
    assert Policy(min_length=12, breached_file=str(listing)).problem(long_leaked).code == "breached"


def admins(session):
    return sorted(u.username for u in session.execute(select(User)).scalars() if "admin" in u.roles and u.active)


def test_the_last_administrator_stays(app):
    boss = make_user("boss", "admin", "management").user
    with pytest.raises(accounts.AccountError) as refused:
        accounts.set_active(db.session, "someone", boss, False)
    assert refused.value.code == "last_admin"
    with pytest.raises(accounts.AccountError) as refused:
        accounts.update_details(db.session, "boss", boss, ROLES, display_name="Boss", roles=["management"])
    assert refused.value.code == "last_admin"
    db.session.rollback()
    second = make_user("second", "admin").user
    with pytest.raises(accounts.AccountError) as refused:
        accounts.set_active(db.session, "second", second, False)
    assert refused.value.code == "not_yourself"
    accounts.update_details(db.session, "second", boss, ROLES, display_name="Boss", roles=["management"])
    db.session.commit()
    assert admins(db.session) == ["second"]
    actions = db.session.execute(select(AuditEvent.action, AuditEvent.data).where(
        AuditEvent.action == "user_updated")).all()
    assert actions[-1].data == {"username": "boss", "roles_before": ["admin", "management"], "roles": ["management"],
                                "name_changed": True}                     # "boss" became "Boss"
    accounts.update_details(db.session, "second", boss, ROLES, display_name="Boss", roles=["management"])
    db.session.commit()                                                  # nothing changed: no event
    assert len(db.session.execute(select(AuditEvent).where(AuditEvent.action == "user_updated")).all()) == len(actions)
    with pytest.raises(accounts.AccountError) as refused:        # nobody gives themselves a role
        accounts.update_details(db.session, "second", second, ROLES, display_name="S", roles=["admin", "management"])
    assert refused.value.code == "own_roles"


def test_a_reset_link_works_once_and_expires(app):
    user = make_user("li.na", "customer_service").user
    policy = Policy(min_length=12)
    token = accounts.reset_link_token(db.session, "boss", user, timedelta(hours=24))
    db.session.commit()
    with pytest.raises(accounts.AccountError) as refused:
        accounts.redeem_link(db.session, policy, token, "li.na-secret-pass")
    assert refused.value.code == "password_has_name"
    db.session.rollback()
    accounts.redeem_link(db.session, policy, token, "green tea at nine")
    db.session.commit()
    assert user.check_password("green tea at nine") and not user.must_change_password
    with pytest.raises(accounts.AccountError) as refused:
        accounts.redeem_link(db.session, policy, token, "green tea at ten")
    assert refused.value.code == "link_invalid"
    db.session.rollback()
    older = accounts.reset_link_token(db.session, "boss", user, timedelta(hours=24))
    newer = accounts.reset_link_token(db.session, "boss", user, timedelta(hours=24))
    db.session.commit()
    with pytest.raises(accounts.AccountError):
        accounts.link_user(db.session, older)           # a newer link replaces it
    with time_machine.travel(utcnow() + timedelta(hours=24, seconds=1), tick=False):
        with pytest.raises(accounts.AccountError):
            accounts.link_user(db.session, newer)
    assert accounts.link_user(db.session, newer) is user


def test_flask_users_administers_accounts(app):
    make_user("boss", "admin")
    cli = app.test_cli_runner()

    def run(*args):
        result = cli.invoke(args=["users", *args])
        return result.exit_code, result.output

    code, out = run("create", "wang.fang", "--role", "customer_service", "--password", "123456789012")
    assert code == 1 and "too simple" in out and db.session.execute(
        select(User).where(User.username == "wang.fang")).scalar_one_or_none() is None
    code, out = run("create", "wang.fang", "--role", "customer_service", "--name", "王芳")
    assert code == 0 and "password: " in out
    wang = db.session.execute(select(User).where(User.username == "wang.fang")).scalar_one()
    assert wang.must_change_password and wang.check_password(out.split("password: ")[1].strip())
    assert run("roles", "wang.fang", "--add", "management", "--remove", "customer_service") == \
        (0, "wang.fang: management\n")
    assert run("roles", "boss", "--remove", "admin")[0] == 1
    assert run("disable", "boss")[1].strip().endswith("give another user the administrator role first.")
    assert run("disable", "wang.fang")[0] == 0
    assert "wang.fang" in run("list")[1] and "disabled" in run("list")[1]
    # Filtered as the admin page filters: by text, role and state.
    names = lambda out: [line.split()[0] for line in out.splitlines()]     # noqa: E731
    assert names(run("list", "--state", "disabled")[1]) == ["wang.fang"]
    assert names(run("list", "--role", "admin")[1]) == ["boss"]
    assert names(run("list", "--find", "王芳", "--state", "disabled")[1]) == ["wang.fang"]
    assert run("list", "--find", "王芳", "--state", "active") == (0, "no user matches\n")
    assert names(run("list", "--find", "g.f")[1]) == ["wang.fang"] and run("list", "--find", "%")[1] == \
        "no user matches\n"                                                    # as typed, no wildcards
    make_user("claims_2", "claims_specialist")
    assert names(run("list", "--find", "s_2")[1]) == ["claims_2"]
    code, out = run("list", "--role", "astronaut")
    assert code == 1 and "no role astronaut" in out and "customer_service" in out
    assert run("list", "--state", "asleep")[0] == 2
    assert run("enable", "wang.fang")[0] == 0
    code, out = run("reset-password", "wang.fang", "--link", "--base-url", "https://complaints.example/")
    assert code == 0 and out.startswith("https://complaints.example/password/reset/")
    token = out.split("/password/reset/")[1].split()[0]
    db.session.expire_all()
    assert accounts.link_user(db.session, token).username == "wang.fang"
    assert run("unlock", "wang.fang") == (0, "unlocked wang.fang\n")
    assert run("second-factor-reset", "nobody")[0] == 1
    db.session.expire_all()
    actions = [a for a, in db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id))]
    assert actions[-6:] == ["user_created", "user_updated", "user_disabled", "user_enabled", "password_reset",
                            "account_unlocked"]


def test_a_single_sign_on_account_gets_no_password_here(app):
    """Its password and second factor are the provider's: a password set here would get in past them."""
    user = make_user("sun.li", "customer_service").user
    user.sso_issuer, user.sso_subject = "https://idp.insurer.example", "8f1c"
    for change in (lambda: accounts.reset_password(db.session, "boss", user),
                   lambda: accounts.reset_link_token(db.session, "boss", user, timedelta(hours=1)),
                   lambda: accounts.change_password(db.session, Policy(), user, "pw-sun.li", "a fine long phrase")):
        with pytest.raises(accounts.AccountError) as refused:
            change()
        assert refused.value.code == "sso_account"


def test_a_breached_list_that_is_missing_stops_the_app_at_start(tmp_path):
    from app import create_app
    from app.config import TestConfig
    with pytest.raises(RuntimeError, match="PASSWORD_BREACHED_FILE"):
        create_app(TestConfig, PASSWORD_BREACHED_FILE=str(tmp_path / "pwned.txt"))
    with pytest.raises(RuntimeError, match="PASSWORD_MIN_LENGTH"):
        create_app(TestConfig, PASSWORD_MIN_LENGTH=4)
