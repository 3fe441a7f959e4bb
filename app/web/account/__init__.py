"""One's own account: /account (change the password, set up or drop the second factor), the page a one-time
reset link opens (/password/reset/<token>), and the gate that sends a user who must change their password or
set up a second factor there before anything else."""
from ..errorpages import blueprint

bp = blueprint("account", __name__)

from . import routes  # noqa: E402,F401  (routes register on import)
