"""Who may do what, shared by the JSON API and the web UI."""
# Roles that hold tasks (their lane is in the diagram) and roles that may read complaints.
WORKERS = ("customer_service", "claims_specialist", "management", "training")
READERS = WORKERS + ("compliance",)
REGISTRARS = ("customer_service",)
# The procedure pages (diagram, versions, traceability): every reader, and the process owners, who
# alone upload a changed diagram and migrate running complaints onto it.
PROCESS_OWNERS = ("process_owner",)
PROCEDURE_READERS = READERS + PROCESS_OWNERS
