"""Who may do what, shared by the JSON API and the web UI."""
from flask import current_app

# Roles that handle complaints, roles that hold tasks (their lane is in a diagram: the owners of improvement
# measures hold the quarterly review's, and read no complaint) and roles that may read complaints.
HANDLERS = ("customer_service", "claims_specialist", "management", "head_office", "training")
WORKERS = HANDLERS + ("measure_owner",)
READERS = HANDLERS + ("compliance",)
TASK_READERS = WORKERS + ("compliance",)     # a task's page: its role, or compliance (which reads every one)
# The analysis of complaints (/analysis, the quarterly review's reports): figures, no personal data.
ANALYSTS = ("management", "compliance", "training", "head_office", "process_owner")
REVIEW_STARTERS = ("management",)            # start a quarterly review by hand (the scheduler starts each quarter's)
REGISTRARS = ("customer_service",)
# Evidence files of a complaint (call recordings, ID documents, medical and repair bills): downloaded by
# the roles that investigate and decide, and by compliance; every download is audited. The training
# department, which reads complaints to learn from them, sees that files exist but not their content.
EVIDENCE_READERS = ("customer_service", "claims_specialist", "management", "head_office", "compliance")
# The complaint list as a spreadsheet (every row of a filter, names masked as on the page): those who
# supervise and audit the handling.
LIST_EXPORTERS = ("management", "head_office", "compliance")
# Internal notes on a complaint (never shown to the customer): every reader of it may add one.
NOTE_WRITERS = READERS
# The procedure pages (diagram, versions, traceability): every reader, and the process owners, who
# alone upload a changed diagram and migrate running complaints onto it.
PROCESS_OWNERS = ("process_owner",)
PROCEDURE_READERS = READERS + PROCESS_OWNERS
# The users and their roles (/admin/users): administrators only, who read no complaint.
ADMINS = ("admin",)
# Every route says who may use it, and a test walks app.url_map to check that each one does: a view
# carries `allowed_roles` (a set of role codes; ANY_ROLE = any logged-in user) or is marked public.
ANY_ROLE = frozenset({"*"})


def allow(view, roles):
    """Record on `view` (a decorated wrapper) which roles may use it."""
    view.allowed_roles = frozenset(roles) or ANY_ROLE
    return view


def any_role(view):
    """A route for any logged-in user, whatever their roles (place it above the login check)."""
    return allow(view, ())


def public(view):
    """A route open without login (the login page, static files, the language switch)."""
    view.public = True
    return view


def pii_roles() -> list:
    """The roles that see personal data in full (config ROLES[…]["pii"])."""
    return [r for r, spec in current_app.config["ROLES"].items() if spec.get("pii")]
