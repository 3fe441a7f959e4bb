"""User administration for the `admin` role: /admin/users (the list), /admin/users/new, /admin/users/<id>
(details and roles) and its actions (disable, enable, unlock, reset the password, reset the second factor).
The rules are app/accounts.py's, shared with `flask users`."""
from ..errorpages import blueprint

bp = blueprint("admin", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)
