"""Single sign-on through the insurer's OpenID Connect provider: /login/sso starts it, /login/sso/callback
finishes it (app/sso.py maps the verified claims to the local user), and the login page's button."""
from ... import sso
from ..errorpages import blueprint

bp = blueprint("sso", __name__)
# Settings that cannot work stop the app at its start, with the reason (SSO off needs no settings).
bp.record_once(lambda state: sso.settings(state.app.config))

from . import routes  # noqa: E402,F401  (routes register on import)
