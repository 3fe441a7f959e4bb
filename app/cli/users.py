"""flask users: create users, issue API tokens, end a login lock, and the demo users of `make run`."""
import secrets

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .. import audit, contact_rules, login_limits
from ..api.auth import issue_token
from ..extensions import db
from ..models import User

group = AppGroup("users", help="Manage users and API tokens.")


def _user(username):
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def _existing(username) -> User:
    user = _user(username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _add(username, display_name, roles, password) -> User:
    user = User(username=username, display_name=display_name)
    user.roles = roles
    user.set_password(password)
    db.session.add(user)
    return user


@group.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--name", "display_name", default=None)
@click.option("--password", default=None, help="Generated and printed when omitted.")
def create(username, roles, display_name, password):
    """Create a user with one or more roles."""
    known = current_app.config["ROLES"]
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise click.BadParameter(f"unknown role(s) {unknown}; known: {sorted(known)}")
    if _user(username):
        raise click.ClickException(f"user {username} exists")
    generated = password is None
    password = password or secrets.token_urlsafe(9)
    _add(username, display_name or username, roles, password)
    db.session.commit()
    click.echo(f"created {username} ({', '.join(roles)})" + (f" password: {password}" if generated else ""))


@group.command("token")
@click.argument("username")
@click.option("--days", type=int, default=None)
def token(username, days):
    """Issue an API token (printed once)."""
    user = _existing(username)
    click.echo(issue_token(user, days or current_app.config["API_TOKEN_DAYS"], name="cli"))


@group.command("unlock")
@click.argument("username")
@click.option("--by", "actor", default="cli")
def unlock(username, actor):
    """End a login lock early (the lock message tells people to ask an administrator): clears the
    account's lock and its count of failed logins; audited."""
    user = _existing(username)
    user.locked_until, user.failed_logins = None, 0
    login_limits.record_success(db.session, username)
    audit.record(db.session, actor, "account_unlocked", data={"username": username})
    db.session.commit()
    click.echo(f"unlocked {username}")


@group.command("notify")
@click.argument("username")
@click.option("--email", default=None, help="The user's work address (\"\" removes it).")
@click.option("--digest/--no-digest", default=None, help="The morning digest of their tasks on or off.")
def notify(username, email, digest):
    """Set where a user's morning digest goes and whether it is sent (app/digest_mail.py)."""
    user = _existing(username)
    if email is not None:
        problem = contact_rules.email_problem(email) if email else None
        if problem:
            raise click.ClickException(problem)
        user.email = contact_rules.stored_email(email) if email else None
    if digest is not None:
        if digest and not user.email:
            raise click.ClickException("give --email first: the digest needs an address")
        user.digest = digest
    db.session.commit()
    click.echo(f"{username}: e-mail {user.email or '-'}, digest {'on' if user.digest else 'off'}")


@group.command("demo")
def demo():
    """Create one demo user per role (development only); passwords are printed once."""
    created = 0
    for role, spec in current_app.config["ROLES"].items():
        username = f"demo_{role}"
        if _user(username):
            continue
        password = secrets.token_urlsafe(9)
        _add(username, f"{spec['zh']}（演示）", [role], password)
        created += 1
        click.echo(f"{username:28} {role:20} password: {password}")
    db.session.commit()
    if not created:
        click.echo("demo users exist already (passwords were printed when they were created)")
