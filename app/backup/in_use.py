"""Whether something still uses the database a restore would replace. A restore over a database the app still
serves would leave its workers holding what they read and cached from data that is gone, and its scheduler
firing timers in the middle of the copy: the README's first step of a restore is to stop both. This checks it.

- The scheduler: its heartbeat (app/scheduler.py) younger than SCHEDULER_HEARTBEAT_MAX_SECONDS, as /readyz
  judges it: once the scheduler is stopped, the restore waits that long (5 minutes by default).
- PostgreSQL: any other session connected to the database (gunicorn's workers, a scheduler, someone's psql), of
  any role (another role's address is shown only when the app's role has pg_read_all_stats). Something that connects
  after this check and before the restore is not seen.
- SQLite keeps no list of the processes that have the file open."""
import time

from sqlalchemy import inspect, text

from .. import scheduler
from ..models import SchedulerHeartbeat

# Other roles' sessions show with their backend type and address hidden unless the app's role has
# pg_read_all_stats; those without a user (autovacuum and other background workers) are no session.
OTHER_SESSIONS = text(
    "SELECT application_name, host(client_addr), backend_type IS NULL, client_addr IS NULL "
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND (backend_type = 'client backend' OR (backend_type IS NULL AND usesysid IS NOT NULL)) ORDER BY 1, 2")
SHOWN = 5
SETTLE_SECONDS = 2.0    # a connection closed just before (this process's own) may stay listed that long


def users_of(conn, config) -> list[str]:
    """What still uses the database on `conn` (the only connection of this process to it), in words; [] if
    nothing does."""
    found = []
    if SchedulerHeartbeat.__tablename__ in inspect(conn).get_table_names():
        age = scheduler.heartbeat_age(conn)
        if scheduler.is_alive(age, config):
            found.append(f"the scheduler (its heartbeat is {int(age.total_seconds())} s old; once it is stopped, "
                         f"its heartbeat counts as stale after {config['SCHEDULER_HEARTBEAT_MAX_SECONDS']} s, "
                         "SCHEDULER_HEARTBEAT_MAX_SECONDS)")
    if conn.dialect.name == "postgresql":
        sessions = _other_sessions(conn)
        if sessions:
            named = ", ".join(sessions[:SHOWN]) + (", …" if len(sessions) > SHOWN else "")
            found.append(f"{len(sessions)} other session(s) connected to it ({named})")
    return found


def _other_sessions(conn) -> list[str]:
    """The other sessions connected to the database, each in words; asked again for SETTLE_SECONDS while any
    is listed, since a server process leaves the list a moment after its client closed."""
    give_up = time.monotonic() + SETTLE_SECONDS
    while True:
        rows = conn.execute(OTHER_SESSIONS).all()
        conn.rollback()                  # a new snapshot of the statistics for the next look
        if not rows or time.monotonic() >= give_up:
            return [_described(*row) for row in rows]
        time.sleep(0.2)


def _described(name, address, hidden, local) -> str:
    if hidden:
        return f"{name or 'unnamed'} of another role (its address needs pg_read_all_stats to be shown)"
    return f"{name or 'unnamed'} from {'the local socket' if local else address}"
