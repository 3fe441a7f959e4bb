"""flask users: create, list, change roles, disable and enable users, reset a password or a second factor,
end a login lock, issue API tokens, and the demo users of `make run`. The rules (and the audit) are
app/accounts.py's, the same as the admin pages'."""
import secrets
from datetime import timedelta

import click
from flask import current_app

from .. import absolute_http, accounts, audit
from ..api.auth import issue_token
from ..config import development
from ..extensions import db
from ..models import User
from ..passwords import Policy
from ..timeutil import utcnow
from .group import AUDITED_BY, Group

group = Group("users", help="Manage users and API tokens.")


def _existing(username) -> User:
    user = accounts.by_username(db.session, username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _known_roles() -> str:
    return f" (roles: {', '.join(current_app.config['ROLES'])})"


def _policy() -> Policy:
    return Policy.from_config(current_app.config)


def _apply(change):
    """Run an accounts change and commit it; its refusal as the command's error."""
    try:
        result = change()
    except accounts.AccountError as err:
        db.session.rollback()
        raise click.ClickException(err.english() + (_known_roles() if err.code == "unknown_roles" else ""))
    db.session.commit()
    return result


@group.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              help="A role code (repeat for more): one of the ROLES of the configuration, e.g. customer_service.")
@click.option("--name", "display_name", default=None)
@click.option("--email", default="")
@click.option("--password", default=None, help="Generated and printed when omitted (then changed at the first "
                                                "login).")
@AUDITED_BY
def create(username, roles, display_name, email, password, actor):
    """Create a user with one or more roles (the password policy applies to a given password)."""
    user, generated = _apply(lambda: accounts.create(
        db.session, actor, _policy(), current_app.config["ROLES"], username=username,
        display_name=display_name or username, roles=roles, email=email, password=password))
    click.echo(f"created {username} ({', '.join(sorted(user.roles))})" + (f" password: {generated}" if generated
                                                                          else ""))


@group.command("list")
@click.option("--find", "term", default="", help="Only users whose username or name holds this text.")
@click.option("--role", default="", metavar="ROLE", help="Only users who hold this role code.")
@click.option("--state", type=click.Choice(accounts.STATES), help="Only active, disabled or locked users.")
def list_users(term, role, state):
    """Every user (or those the options name): username, roles, state."""
    known = current_app.config["ROLES"]
    if role and role not in known:
        raise click.ClickException(f"no role {role}{_known_roles()}")
    users = db.session.execute(accounts.users_query(known, utcnow(), term=term, role=role, state=state or ""))
    shown = 0
    for shown, user in enumerate(users.scalars(), 1):
        state = "active" if user.active else "disabled"
        if user.locked_until and user.locked_until > utcnow():
            state += f", locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{user.username:28} {','.join(sorted(user.roles)):40} {state}"
                   + (", second factor" if user.totp_secret else ""))
    if not shown:
        click.echo("no user" + (" matches" if term or role or state else ""))


@group.command("roles")
@click.argument("username")
@click.option("--add", "added", multiple=True, help="A role code to give (repeat for more).")
@click.option("--remove", "removed", multiple=True, help="A role code to take away (repeat for more).")
@AUDITED_BY
def roles(username, added, removed, actor):
    """Give or take roles (the last active administrator keeps theirs)."""
    user = _existing(username)
    unknown = sorted(set(removed) - set(current_app.config["ROLES"]) - user.roles)    # a role held may always go
    if unknown:
        raise click.ClickException(f"no role {', '.join(unknown)}{_known_roles()}")
    wanted = (user.roles | set(added)) - set(removed)
    _apply(lambda: accounts.update_details(db.session, actor, user, current_app.config["ROLES"],
                                           display_name=user.display_name, roles=wanted, email=user.email or ""))
    click.echo(f"{username}: {', '.join(sorted(user.roles))}")


@group.command("disable")
@click.argument("username")
@AUDITED_BY
def disable(username, actor):
    """Disable an account: its sessions and API tokens stop working at once."""
    _apply(lambda: accounts.set_active(db.session, actor, _existing(username), False))
    click.echo(f"disabled {username}")


@group.command("enable")
@click.argument("username")
@AUDITED_BY
def enable(username, actor):
    """Let a disabled user log in again (audited)."""
    _apply(lambda: accounts.set_active(db.session, actor, _existing(username), True))
    click.echo(f"enabled {username}")


@group.command("reset-password")
@click.argument("username")
@click.option("--link", is_flag=True, help="Print a one-time link (RESET_LINK_HOURS) instead of a password.")
@click.option("--base-url", default=None,
              help="The site's address for the link, with --link (default PUBLIC_BASE_URL).")
@AUDITED_BY
def reset_password(username, link, base_url, actor):
    """A generated password (changed at the next login) or a one-time link, printed once."""
    if base_url is not None and not link:
        raise click.UsageError("--base-url is the address of a link: give --link too")
    if base_url is not None and not absolute_http(base_url):
        raise click.BadParameter("an address such as https://complaints.example.com", param_hint="--base-url")
    user = _existing(username)
    if not link:
        click.echo(f"{username} password: {_apply(lambda: accounts.reset_password(db.session, actor, user))}")
        return
    hours = current_app.config["RESET_LINK_HOURS"]
    token = _apply(lambda: accounts.reset_link_token(db.session, actor, user, timedelta(hours=hours)))
    base = base_url or current_app.config.get("PUBLIC_BASE_URL") or ""
    click.echo(f"{base.rstrip('/')}/password/reset/{token}  (one use, valid {hours} hours)")


@group.command("second-factor-reset")
@click.argument("username")
@AUDITED_BY
def second_factor_reset(username, actor):
    """Remove a user's second factor (a lost phone)."""
    user = _existing(username)
    if not user.totp_secret:
        raise click.ClickException(f"{username} has no second factor to remove")
    _apply(lambda: accounts.reset_second_factor(db.session, actor, user))
    click.echo(f"removed the second factor of {username}")


@group.command("token")
@click.argument("username")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="How long the token is valid, 1 to 3650 days (default API_TOKEN_DAYS).")
@AUDITED_BY
def token(username, days, actor):
    """Issue an API token of an active user (printed once; only its hash is kept); audited (api_token_issued)."""
    user = _existing(username)
    if not user.active:
        raise click.ClickException(f"{username} is disabled: enable the account first (flask users enable)")
    days = days or current_app.config["API_TOKEN_DAYS"]
    audit.record(db.session, actor, "api_token_issued", data={"username": username, "days": days})
    click.echo(issue_token(user, days, name="cli"))


@group.command("unlock")
@click.argument("username")
@AUDITED_BY
def unlock(username, actor):
    """End a login lock early (the lock message tells people to ask an administrator): clears the
    account's lock and its count of failed logins; audited."""
    _apply(lambda: accounts.unlock(db.session, actor, _existing(username)))
    click.echo(f"unlocked {username}")


@group.command("notify")
@click.argument("username")
@click.option("--email", default=None, help="The user's work address (\"\" removes it).")
@click.option("--digest/--no-digest", default=None, help="The morning digest of their tasks on or off.")
@AUDITED_BY
def notify(username, email, digest, actor):
    """Set where a user's morning digest goes and whether it is sent (app/digest_mail.py); a changed address is
    audited (user_updated), and removing it turns the digest off."""
    user = _existing(username)
    if digest and not (user.email if email is None else email.strip()):     # refused before anything changes
        raise click.ClickException("give --email first: the digest needs an address")
    _apply(lambda: accounts.set_email(db.session, actor, user, email, digest))
    click.echo(f"{username}: e-mail {user.email or '-'}, digest {'on' if user.digest else 'off'}")


@group.command("demo")
def demo():
    """Create one demo user per role (development only: refused unless APP_ENV=development or FLASK_DEBUG);
    passwords are printed once. Made as `create` makes a user: the password policy applies, and each is audited
    (user_created, by "cli")."""
    if not (development() or current_app.config.get("TESTING")):
        raise click.ClickException("demo users are for a developer's machine (APP_ENV=development): this one is "
                                   "not, and a demo account with a printed password would stay in it")
    created, policy, known = 0, _policy(), current_app.config["ROLES"]
    for role, spec in known.items():
        username = f"demo_{role}"
        if accounts.by_username(db.session, username):
            continue
        password = secrets.token_urlsafe(policy.max_length)[:max(policy.min_length, 16)]     # within the policy
        _apply(lambda: accounts.create(db.session, "cli", policy, known, username=username,
                                       display_name=f"{spec['zh']}（演示）", roles=[role], password=password))
        created += 1
        click.echo(f"{username:28} {role:20} password: {password}")
    if not created:
        click.echo("demo users exist already (passwords were printed when they were created)")
