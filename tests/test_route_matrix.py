"""Every route × every role, read from app.url_map itself, so that a route added without a role check
fails the suite. Each view carries `allowed_roles` or `public` (app/permissions.py); then, for every rule
and method: nobody logged in → 401 (the API) or the login page (web pages, such as /api/v1/docs); each
role outside allowed_roles → 403; a user holding the allowed roles → past the role check (a GET is
neither 401 nor 403); each allowed role alone → not 401 (it may still meet a 403 about the one thing
it asked for, e.g. a task of another lane). No call may end in a 500.

Runs on SQLite only: the checks are Python decorators in front of the views, the same on every
backend, and the database-dependent paths behind them are covered per backend elsewhere; running it
twice would double its time for nothing."""
import re

import pytest

from app.permissions import ANY_ROLE
from tests.conftest import ROLES, make_user
from tests.flow import Desk
from tests.test_web import TOKEN, Browser

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
NO_ROLES = "no_roles"                  # logged in, holding no role at all
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def is_public(endpoint, view) -> bool:
    # Flask's own static-file views (the app's and any blueprint's) carry no personal data.
    return getattr(view, "public", False) or endpoint == "static" or endpoint.endswith(".static")


def rules(app):
    """(rule, method, view) for every route and method, HEAD and OPTIONS aside."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted(set(rule.methods) & set(METHODS)):
            yield rule, method, app.view_functions[rule.endpoint]


def test_every_route_says_who_may_use_it(app):
    unmarked = sorted(f"{rule.rule} ({rule.endpoint})" for rule, _method, view in rules(app)
                      if not is_public(rule.endpoint, view) and not getattr(view, "allowed_roles", None))
    assert unmarked == [], "routes without roles_required/require/any_role/public: " + ", ".join(unmarked)


@pytest.fixture
def seeded(app, people):
    """A real complaint with an open task, so that a URL's parameters name things that exist."""
    people[NO_ROLES] = make_user(NO_ROLES)
    desk = Desk(Browser(app), people)
    number = desk.register()
    return {"number": number, "task_id": desk.task_id(number, "initial_review"),
            "process_id": "complaint_handling", "file_name": "complaint_handling.bpmn", "code": "en",
            # the admin pages' actions (disable, reset the password) change a user of their own
            "int:user_id": make_user("matrix_target", "training").user.id}


def url(rule, values) -> str:
    def fill(match):
        converter, name = match.groups()
        return str(values.get(f"int:{name}", 1)) if converter == "int" else str(values.get(name, "x"))
    return ARGUMENT.sub(fill, rule.rule)


class Caller:
    """One person calling the routes the way each side expects: the API with their Bearer token, the
    web with a logged-in session and the CSRF token of its pages."""

    def __init__(self, app, person=None):
        self.app, self.person = app, person
        self.browser = Browser(app)
        if person is not None:
            self.browser.login(person.user.username)
        page = self.browser.get("/" if person else "/login", follow_redirects=True).text
        self.csrf = TOKEN.search(page).group(1)

    def call(self, method, path):
        if path.startswith("/api/"):
            headers = self.person.headers if self.person else {}
            body = {"json": {}} if method != "GET" else {}
            return self.browser.open(path, method=method, headers=headers, **body)
        data = {"csrf_token": self.csrf} if method != "GET" else None
        return self.browser.open(path, method=method, data=data)


def holders(app, people, view) -> Caller:
    """Someone holding every role the route allows (for any-role routes: no role at all), logged in."""
    roles = tuple(sorted(set(view.allowed_roles) - ANY_ROLE))
    if roles not in people:
        people[roles] = make_user(f"holder-{len(people)}", *roles) if roles else people[NO_ROLES]
    caller = Caller(app, people[roles])
    caller.name = "+".join(roles) or NO_ROLES
    return caller


def allowed(view) -> set:
    roles = set(getattr(view, "allowed_roles", ()))
    return set(ROLES) | {NO_ROLES} if roles == ANY_ROLE else roles


def test_every_route_checks_the_role(app, people, seeded):
    found = list(rules(app))
    callers = {who: Caller(app, people[who]) for who in (*ROLES, NO_ROLES)}
    anonymous = Caller(app)
    wrong = []

    def expect(ok, who, method, path, response):
        if not ok or response.status_code >= 500:
            wrong.append(f"{who} {method} {path} → {response.status_code}")

    # Nobody and the wrong roles first: refused, so nothing changes before the allowed calls.
    for rule, method, view in found:
        if is_public(rule.endpoint, view):
            continue
        path = url(rule, seeded)
        r = anonymous.call(method, path)
        to_login = r.status_code == 302 and r.location.startswith("/login")
        expect(r.status_code == 401 or to_login, "anonymous", method, path, r)
        for who in sorted(set(callers) - allowed(view)):
            r = callers[who].call(method, path)
            expect(r.status_code == 403, who, method, path, r)
    # Then the allowed roles: past the check (GETs first; a POST may change what later calls see).
    for rule, method, view in sorted(found, key=lambda found: found[1] != "GET"):
        if is_public(rule.endpoint, view):
            continue
        path = url(rule, seeded)
        holder = holders(app, people, view)
        r = holder.call(method, path)
        expect(method != "GET" or r.status_code not in (401, 403), holder.name, method, path, r)
        for who in sorted(allowed(view)):
            caller = callers[who] if method == "GET" else Caller(app, people[who])   # e.g. /logout ends it
            r = caller.call(method, path)
            expect(r.status_code != 401, who, method, path, r)
    assert wrong == [], "\n".join(wrong)
