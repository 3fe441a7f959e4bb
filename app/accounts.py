"""User administration (no Flask), for the admin pages and `flask users` alike: create, edit, disable and
enable, unlock, reset a password (a generated one shown once, or a one-time link), change one's own
password, and drop a lost second factor. Every change is audited; nothing here leaves the installation
without an active administrator (the last one can neither be disabled nor lose the role, and nobody
disables themselves). Refusals are AccountError(code, params) with an English message in MESSAGES that the
web UI translates."""
import hashlib
import re
import secrets
from datetime import timedelta
from typing import Optional

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from . import audit, contact_rules, login_limits
from .models import ApiToken, PasswordReset, User
from .passwords import Policy
from .second_factor import disable as drop_second_factor
from .timeutil import utcnow

ADMIN_ROLE = "admin"
STATES = ("active", "disabled", "locked")      # what a list of users may be filtered by
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")

MESSAGES = {
    "bad_username": "A username is 2 to 64 letters, digits, dots, hyphens or underscores, starting with a "
                    "letter or digit.",
    "username_taken": "The username %(username)s is taken. Choose another.",
    "no_name": "Give the person's name as colleagues know it.",
    "no_roles": "Give at least one role.",
    "unknown_roles": "Unknown role(s): %(roles)s.",
    "bad_email": "Not a valid e-mail address.",
    "last_admin": "This is the last active administrator: give another user the administrator role first.",
    "not_yourself": "You cannot disable your own account.",
    "password_too_short": "The password needs at least %(length)s characters.",
    "password_too_long": "The password may have at most %(length)s characters.",
    "password_has_name": "The password must not contain the username or the person's name.",
    "password_too_simple": "The password is too simple (one repeated character, or a plain run such as "
                           "12345678 or abcdefgh).",
    "password_breached": "This password appears in a list of leaked passwords. Choose another.",
    "wrong_password": "The current password is wrong.",
    "link_invalid": "This link is not valid: it was used already, a newer one was made, or it has expired. Ask "
                    "an administrator for a new one.",
    "inactive": "This account is disabled.",
    "busy": "Another administrator is changing the administrators at this moment. Try again.",
    "own_roles": "You cannot give yourself a role: ask another administrator.",
    "sso_account": "This account logs in through the company's single sign-on: its password is kept there, not "
                   "here.",
}


class AccountError(Exception):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params

    def english(self) -> str:
        return MESSAGES[self.code] % self.params


def users_query(known_roles, now, *, term="", role="", state=""):
    """The users (a SELECT, by username) whose username or name holds `term`, who hold `role` (one of
    `known_roles`; any other is no filter) and are in `state` (one of STATES: locked is a lock running at `now`;
    any other is no filter): the admin page's list and `flask users list` alike."""
    query = select(User).order_by(User.username)
    if term:        # the text as typed: % and _ (usernames hold _) are letters here, not wildcards
        query = query.where(or_(User.username.icontains(term[:64], autoescape=True),
                                User.display_name.icontains(term[:64], autoescape=True)))
    if role in known_roles:
        query = query.where(User.holding(role))
    if state == "active":
        query = query.where(User.active.is_(True))
    elif state == "disabled":
        query = query.where(User.active.is_(False))
    elif state == "locked":
        query = query.where(User.locked_until > now)
    return query


def by_username(session, username) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def check_password(policy: Policy, password: str, username: str, display_name: str = "") -> None:
    problem = policy.problem(password, names=(username, display_name))
    if problem is not None:
        raise AccountError(f"password_{problem.code}", length=problem.length)


def create(session, actor, policy: Policy, known_roles, *, username, display_name, roles, email="",
           password=None) -> tuple[User, str | None]:
    """A new active user; without `password` one is generated, returned (to be shown once) and must be
    changed at the first login."""
    username, display_name = (username or "").strip(), (display_name or "").strip()
    if not USERNAME.match(username):
        raise AccountError("bad_username")
    if by_username(session, username) is not None:
        raise AccountError("username_taken", username=username)
    user = User(username=username, active=True)
    _set_details(user, display_name or username, roles, email, known_roles)
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(12)
        user.must_change_password = True
    else:
        check_password(policy, password, username, user.display_name)
    user.set_password(password)
    try:
        with session.begin_nested():           # two administrators creating one name at once: one wins
            session.add(user)
    except IntegrityError:
        raise AccountError("username_taken", username=username) from None
    audit.record(session, actor, "user_created", data={"username": username, "roles": sorted(user.roles)})
    return user, generated


def update_details(session, actor, user: User, known_roles, *, display_name, roles, email="") -> bool:
    """Name, e-mail and roles; whether anything changed (only a change is audited). Nobody adds a role to
    themselves (an administrator would otherwise read complaints by giving themselves a handler's role): another
    administrator does."""
    before, name_before, email_before = sorted(user.roles), user.display_name, user.email
    if user.username == actor and {r for r in roles if r} - user.roles:
        raise AccountError("own_roles")
    if ADMIN_ROLE in before and ADMIN_ROLE not in set(roles):
        keep_an_admin(session, user)
    _set_details(user, (display_name or "").strip(), roles, email, known_roles)
    changes = {"username": user.username}
    if before != sorted(user.roles):
        changes.update(roles_before=before, roles=sorted(user.roles))
    if name_before != user.display_name:
        changes["name_changed"] = True
    if email_before != user.email:      # a staff member's work address: where their digest of tasks goes
        changes.update(email_before=email_before, email=user.email)
    if len(changes) == 1:               # a save that changed nothing leaves no event
        return False
    audit.record(session, actor, "user_updated", data=changes)
    return True


def set_email(session, actor, user: User, email: Optional[str] = None, digest: Optional[bool] = None) -> None:
    """A user's work e-mail (None: kept; "": removed) and whether their morning digest goes there (None: kept; off
    without an address): the notifications page (the user's own) and `flask users notify`. A changed address is
    audited as an administrator's change is (user_updated, the address before and after)."""
    before = user.email
    if email is not None:
        email = email.strip()
        if email and contact_rules.email_problem(email):
            raise AccountError("bad_email")
        user.email = contact_rules.stored_email(email) if email else None
    if digest is not None:
        user.digest = digest
    if not user.email:
        user.digest = False
    if before != user.email:
        audit.record(session, actor, "user_updated",
                     data={"username": user.username, "email_before": before, "email": user.email})


def _set_details(user, display_name, roles, email, known_roles) -> None:
    roles = {r for r in roles if r}
    if not display_name:
        raise AccountError("no_name")
    if not roles:
        raise AccountError("no_roles")
    unknown = sorted(roles - set(known_roles))
    if unknown:
        raise AccountError("unknown_roles", roles=", ".join(unknown))
    email = (email or "").strip()
    if email and contact_rules.email_problem(email):
        raise AccountError("bad_email")
    user.display_name, user.roles = display_name[:100], roles
    user.email = contact_rules.stored_email(email) if email else None
    if not user.email:
        user.digest = False


def set_active(session, actor, user: User, active: bool) -> None:
    """Enable or disable an account. A disabled user's sessions and API tokens stop working at once."""
    if user.active == active:
        return
    if not active:
        if user.username == actor:
            raise AccountError("not_yourself")
        if ADMIN_ROLE in user.roles:
            keep_an_admin(session, user)
    user.active = active
    audit.record(session, actor, "user_enabled" if active else "user_disabled", data={"username": user.username})


def keep_an_admin(session, leaving: User) -> None:
    """Refuse when `leaving` is the only active administrator (the other admins' rows are locked, so two
    administrators cannot each remove the other at the same moment)."""
    try:
        others = session.execute(
            select(User.id).where(User.active.is_(True), User.id != leaving.id, User.holding(ADMIN_ROLE))
            .with_for_update()).all()
    except OperationalError:                 # e.g. PostgreSQL's deadlock: two admins removing each other
        raise AccountError("busy") from None
    if not others:
        raise AccountError("last_admin")


def unlock(session, actor, user: User) -> None:
    """End a login lock early: the account's lock and its count of failed logins."""
    clear_lock(session, user)
    audit.record(session, actor, "account_unlocked", data={"username": user.username})


def clear_lock(session, user: User) -> None:
    """The account's lock and failure counts gone (a good login, an unlock, a new password)."""
    user.locked_until, user.failed_logins = None, 0
    login_limits.record_success(session, user.username)


def count_failed_login(session, limits: login_limits.Limits, address, username, user: User | None, now) -> list:
    """A failed login (a wrong password or code, or a wrong current password when changing it) counted per
    address and username, and on the account's own row: its failure count, and the lock (audited) when this
    failure set one. The refusals it set (login_limits.Refusal)."""
    refusals = login_limits.record_failure(session, limits, address, username, now)
    if user is None:
        return refusals
    lock = next((r for r in refusals if r.reason == "user"), None)
    if lock is None:
        session.execute(update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1))
        return refusals
    session.execute(update(User).where(User.id == user.id).values(failed_logins=0, locked_until=lock.until))
    audit.record(session, user.username, "account_locked",
                 data={"until": lock.until.isoformat(), "failed_attempts": limits.max_attempts})
    return refusals


def _password_kept_here(user: User) -> None:
    """Refuse to give a single sign-on account a password: it would get in past the provider and its MFA."""
    if user.sso_subject:
        raise AccountError("sso_account")


def reset_password(session, actor, user: User) -> str:
    """A generated password (to be shown once) that must be changed at the next login; the lock ends,
    earlier reset links stop working and the user's other sessions end (their session marks the hash)."""
    _password_kept_here(user)
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.must_change_password = True
    _after_reset(session, user)
    audit.record(session, actor, "password_reset", data={"username": user.username, "method": "generated"})
    return password


def reset_link_token(session, actor, user: User, valid: timedelta) -> str:
    """A one-time token for a link where the user sets a password themselves (only its hash is kept; it
    replaces any earlier link)."""
    _password_kept_here(user)
    now = utcnow()
    end_links(session, user, now)
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=_hash(token), created_by=actor, created_at=now,
                              expires_at=now + valid))
    audit.record(session, actor, "password_reset", data={"username": user.username, "method": "link",
                                                         "expires_at": (now + valid).isoformat()})
    return token


def link_user(session, token: str) -> User:
    """The user a still-valid link is for (AccountError link_invalid otherwise)."""
    row = session.execute(select(PasswordReset).where(PasswordReset.token_hash == _hash(token or ""))) \
        .scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise AccountError("link_invalid")
    if not row.user.active:
        raise AccountError("inactive")
    _password_kept_here(row.user)
    return row.user


def redeem_link(session, policy: Policy, token: str, password: str) -> User:
    """Set the password through a link; the link is used up (claimed by a conditional UPDATE: one use)."""
    user = link_user(session, token)
    check_password(policy, password, user.username, user.display_name)
    claimed = session.execute(update(PasswordReset)
                              .where(PasswordReset.token_hash == _hash(token), PasswordReset.used_at.is_(None))
                              .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise AccountError("link_invalid")
    user.set_password(password)
    user.must_change_password = False
    _after_reset(session, user)
    audit.record(session, user.username, "password_changed", data={"username": user.username, "via": "link"})
    return user


def change_password(session, policy: Policy, user: User, current: str, new: str) -> None:
    _password_kept_here(user)
    if not user.check_password(current or ""):
        raise AccountError("wrong_password")
    check_password(policy, new, user.username, user.display_name)
    user.set_password(new)
    user.must_change_password = False
    end_links(session, user)                 # a link sent earlier must not take the account over later
    audit.record(session, user.username, "password_changed", data={"username": user.username, "via": "self"})


def reset_second_factor(session, actor, user: User) -> None:
    """Drop a user's second factor (a lost phone); they set up a new one at their next login if their role
    requires one."""
    drop_second_factor(user)
    audit.record(session, actor, "second_factor_reset", data={"username": user.username})


def _after_reset(session, user) -> None:
    clear_lock(session, user)
    end_links(session, user)


def end_links(session, user, now=None) -> None:
    """Every unused reset link of the user stops working."""
    now = now or utcnow()
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                    .values(used_at=now).execution_options(synchronize_session=False))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_mark(user: User) -> str:
    """A short fingerprint of the user's password hash, kept in their login session: a password change or
    reset ends every other session of the user."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def api_token_count(session, user: User) -> int:
    return session.execute(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > utcnow())).scalar_one()
