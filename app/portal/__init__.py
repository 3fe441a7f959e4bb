"""The customers' own pages under /my/: no account and no staff login. A customer arrives by the link
in one of our messages (/my/<token>), which puts the link's id in the portal's own signed cookie
(access.py) and redirects to /my/, where they follow their complaint and answer what the procedure
asks of them (routes.py). What the page shows is read from the flat tables only (page.py); a form's
customer wording comes from its `x-customer` (forms.py). Forms are protected against CSRF on the
portal's cookie, not the staff session (csrf.py)."""
from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/my", template_folder="templates")

from . import csrf, logfilter, routes  # noqa: E402,F401  (hooks and routes register on import)

logfilter.install()
