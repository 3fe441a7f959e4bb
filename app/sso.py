"""Single sign-on through the insurer's OpenID Connect provider, without Flask: the settings (OIDC_* in
app/config.py) and, from the claims of a verified login, the local user (app/web/sso/ does the protocol).

A user is matched by the provider's issuer and their subject there (`sub`, stable), never by a name. The
first login provisions the account: the username from OIDC_USERNAME_CLAIM, the display name and e-mail from
their claims, and the roles the user's groups (OIDC_GROUPS_CLAIM) map to through OIDC_GROUP_ROLES; nobody
with no mapped role is created. Every later login re-syncs the roles (audited when they change), the display
name and the e-mail; the username stays. An SSO account gets an unusable password: it has one way in, the
provider's (with its second factor and its leavers' process). A local account of the same username is taken
over only with OIDC_LINK_LOCAL_ACCOUNTS=1 (its password then stops working); otherwise the login is refused,
since whoever controls a name at the provider would else take over the account of that name here."""
import ipaddress
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from . import accounts, audit
from .models import User

USERNAME_MAX = 64          # User.username
NAME_MAX = 100             # User.display_name
EMAIL_MAX = 254            # User.email


class ConfigError(RuntimeError):
    """OIDC_* settings that cannot work: the app refuses to start with them."""


class Refused(Exception):
    """A login the app refuses although the provider vouched for the user; `reason` is one of REASONS."""
    REASONS = ("no_username", "no_role", "inactive", "username_taken", "subject_mismatch")

    def __init__(self, reason, username=None):
        super().__init__(reason)
        self.reason, self.username = reason, username


@dataclass(frozen=True)
class Settings:
    issuer: str
    discovery_url: str
    client_id: str
    client_secret: str
    redirect_uri: str | None
    scopes: str
    username_claim: str
    name_claim: str
    email_claim: str
    groups_claim: str
    group_roles: tuple          # ((group, (role, ...)), ...)
    link_local: bool
    timeout: float
    button_label: str
    logout_at_provider: bool
    post_logout_redirect_uri: str | None


def settings(config) -> Settings | None:
    """The SSO settings of a Flask config (any mapping), None when SSO is off (OIDC_ISSUER unset)."""
    issuer = (config.get("OIDC_ISSUER") or "").strip()        # compared exactly with the tokens' `iss`
    if not issuer:
        return None
    missing = [name for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_GROUP_ROLES") if not config.get(name)]
    if missing:
        raise ConfigError(f"OIDC_ISSUER is set but {', '.join(missing)} is not: set them, or unset OIDC_ISSUER "
                          "to turn single sign-on off")
    scopes = config.get("OIDC_SCOPES") or "openid profile email"
    if "openid" not in scopes.split():
        raise ConfigError(f"OIDC_SCOPES must include openid, not {scopes!r}")
    discovery = config.get("OIDC_DISCOVERY_URL") or f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    for name, url in (("OIDC_ISSUER", issuer), ("OIDC_DISCOVERY_URL", discovery)):
        if not secure_url(url):
            raise ConfigError(f"{name} must be an https address (http only on this machine), not {url!r}")
    return Settings(
        issuer=issuer, discovery_url=discovery, client_id=config["OIDC_CLIENT_ID"],
        client_secret=config["OIDC_CLIENT_SECRET"], redirect_uri=config.get("OIDC_REDIRECT_URI") or None,
        scopes=scopes,
        username_claim=config.get("OIDC_USERNAME_CLAIM") or "preferred_username",
        name_claim=config.get("OIDC_NAME_CLAIM") or "name", email_claim=config.get("OIDC_EMAIL_CLAIM") or "email",
        groups_claim=config.get("OIDC_GROUPS_CLAIM") or "groups",
        group_roles=tuple(parse_group_roles(config["OIDC_GROUP_ROLES"], config.get("ROLES", {})).items()),
        link_local=bool(config.get("OIDC_LINK_LOCAL_ACCOUNTS")), timeout=float(config.get("OIDC_TIMEOUT_SECONDS") or 10),
        button_label=config.get("OIDC_BUTTON_LABEL") or "",
        logout_at_provider=bool(config.get("OIDC_LOGOUT_AT_PROVIDER", True)),
        post_logout_redirect_uri=config.get("OIDC_POST_LOGOUT_REDIRECT_URI") or None)


def secure_url(url: str) -> bool:
    """https, or http to this machine (a provider on 127.0.0.1 in the tests or on a developer's machine)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.scheme not in ("https", "http"):
        return False
    if parts.scheme == "https" or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_group_roles(text: str, known_roles) -> dict:
    """{group: (role, ...)} from a JSON object ({"group": "role"} or {"group": ["role", ...]}) or from
    "group=role,group=role" (a group may appear more than once; use JSON for names with commas)."""
    text = (text or "").strip()
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except ValueError as err:
            raise ConfigError(f"OIDC_GROUP_ROLES is not valid JSON: {err}") from None
        pairs = [(group, role) for group, roles in raw.items()
                 for role in ([roles] if isinstance(roles, str) else roles if isinstance(roles, list) else [None])]
    else:
        pairs = [item.strip().rpartition("=")[::2] for item in text.split(",") if item.strip()]
    mapping = {}
    for group, role in pairs:
        group = group.strip() if isinstance(group, str) else ""
        role = role.strip() if isinstance(role, str) else ""
        if not group or not role:
            raise ConfigError("OIDC_GROUP_ROLES: each entry needs a group and a role code, as group=role")
        if role not in known_roles:
            raise ConfigError(f"OIDC_GROUP_ROLES: {role!r} is no role code (known: {', '.join(known_roles)})")
        mapping[group] = tuple(sorted({*mapping.get(group, ()), role}))
    if not mapping:
        raise ConfigError("OIDC_GROUP_ROLES maps no group to a role: nobody could log in")
    return mapping


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    username: str
    display_name: str
    email: str | None
    groups: tuple


def merged_claims(id_token_claims: dict, userinfo: dict | None) -> dict:
    """The ID token's verified claims, completed by the userinfo endpoint's answer, which must be about the
    same subject (OpenID Connect Core 5.3.2)."""
    if not userinfo:
        return dict(id_token_claims)
    if userinfo.get("sub") != id_token_claims.get("sub"):
        raise Refused("subject_mismatch")
    return {**userinfo, **id_token_claims}


def identity(config: Settings, claims: dict) -> Identity:
    username = claims.get(config.username_claim)
    username = username.strip() if isinstance(username, str) else ""
    if not username or len(username) > USERNAME_MAX or any(c.isspace() or not c.isprintable() for c in username):
        raise Refused("no_username")
    name = claims.get(config.name_claim)
    name = name.strip()[:NAME_MAX] if isinstance(name, str) and name.strip() else username
    email = claims.get(config.email_claim)
    email = email.strip() if isinstance(email, str) and "@" in email and len(email.strip()) <= EMAIL_MAX else None
    groups = claims.get(config.groups_claim)
    groups = [groups] if isinstance(groups, str) else groups if isinstance(groups, list) else []
    groups = tuple(g for g in groups if isinstance(g, str))
    return Identity(config.issuer, str(claims["sub"]), username, name, email, groups)


def roles_for(config: Settings, groups) -> set:
    """The roles the groups map to; groups the mapping does not name are ignored."""
    mapping = dict(config.group_roles)
    return {role for group in groups for role in mapping.get(group, ())}


def sign_in(session, config: Settings, id_token_claims: dict, userinfo: dict | None = None) -> User:
    """The local user for a verified login, created, linked or re-synced, and committed with its audit
    events (`login_sso` among them). Refused, with `login_sso_refused` audited (and committed: a user whose
    groups map to no role any more loses their roles), when the app will not let them in."""
    try:
        claims = merged_claims(id_token_claims, userinfo)
        try:
            return _sign_in(session, config, claims)
        except IntegrityError:           # a first login of the same user at the same moment: theirs won
            session.rollback()
            return _sign_in(session, config, claims)
    except Refused as refusal:
        audit.record(session, refusal.username or "sso", "login_sso_refused", data={"reason": refusal.reason})
        session.commit()
        raise


def _sign_in(session, config, claims):
    who = identity(config, claims)
    roles = roles_for(config, who.groups)
    user = session.execute(select(User).where(User.sso_issuer == who.issuer, User.sso_subject == who.subject)
                           ).scalar_one_or_none()
    if user is None:
        if not roles:
            raise Refused("no_role", who.username)
        user = _provision(session, config, who, roles)
    elif not user.active:
        raise Refused("inactive", user.username)
    else:
        _sync(session, user, who, roles)
        if not roles:
            raise Refused("no_role", user.username)
    audit.record(session, user.username, "login_sso", data={"roles": sorted(user.roles)})
    session.commit()
    return user


def _provision(session, config, who, roles) -> User:
    """A new account, or (OIDC_LINK_LOCAL_ACCOUNTS) the local account of the same username taken over."""
    user = session.execute(select(User).where(User.username == who.username)).scalar_one_or_none()
    if user is None:
        user = User(username=who.username, display_name=who.display_name, email=who.email, roles_csv="")
        session.add(user)
        action = "sso_user_created"
    elif user.sso_subject is not None or not config.link_local:
        raise Refused("username_taken", who.username)
    elif not user.active:
        raise Refused("inactive", user.username)
    else:
        action = "sso_account_linked"
    user.sso_issuer, user.sso_subject = who.issuer, who.subject
    user.password_hash = unusable_password_hash()
    user.must_change_password = False
    user.display_name, user.email = who.display_name, who.email or user.email
    if user.id is not None:                  # a linked local account: its reset links go with its password
        accounts.end_links(session, user)
    user.roles = _roles_keeping_an_admin(session, user, roles)
    session.flush()
    audit.record(session, user.username, action, data={"roles": sorted(roles)})
    return user


def _roles_keeping_an_admin(session, user, roles) -> set:
    """`roles`, but the last active administrator keeps the role the provider took away (audited): the
    installation must keep one (app/accounts.py)."""
    if accounts.ADMIN_ROLE not in user.roles or accounts.ADMIN_ROLE in roles or not user.active:
        return roles
    try:
        accounts.keep_an_admin(session, user)
    except accounts.AccountError:
        audit.record(session, user.username, "sso_admin_kept", data={"groups_gave": sorted(roles)})
        return set(roles) | {accounts.ADMIN_ROLE}
    return roles


def _sync(session, user, who, roles):
    before = user.roles
    roles = _roles_keeping_an_admin(session, user, roles)
    if before != roles:
        user.roles = roles
        audit.record(session, user.username, "sso_roles_changed",
                     data={"before": sorted(before), "after": sorted(roles)})
    user.display_name = who.display_name
    if who.email:
        user.email = who.email


def unusable_password_hash() -> str:
    """A real hash of a random secret nobody keeps: no password matches it, and checking one takes as long
    as for any account (the login does not tell SSO accounts apart)."""
    return generate_password_hash(secrets.token_urlsafe(32))
