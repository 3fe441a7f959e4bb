"""Long actions in the background: a job table worked by runners (the scheduler process, `flask jobs
run-once`), never by the request that asked for it.

- store.py    create a job with its items, cancel it, read its progress and results (queries, no runner)
- runner.py   claim a job with a row lock, work its pending items in small batches (commit per batch, lease
              renewed), finish it; a runner that dies is replaced once its lease has run out
- kinds.py    the registry of job kinds: what an item does, what the job does when every item is done
- migration.py, list_export.py   the kinds: a bulk migration onto a process version, a complaint-list export
- files.py    the jobs' files in the database (an export's parts and result), deleted after expiry
- setup.py    the wiring to the Flask app: its runtime, the jobs' files, one bounded pass

No Flask in the machinery: it takes a session (and the runtime, the files) in a Context."""
from . import list_export, migration      # the kinds register on import
from .kinds import KINDS, Kind
from .runner import Context, claim, release, run_batch, work
from .store import cancel, create

__all__ = ["list_export", "migration", "KINDS", "Kind", "Context", "claim", "release", "run_batch", "work",
           "cancel", "create"]
