"""Whether something still uses the database a restore would replace. A restore over a database the app still
serves would leave its workers holding what they read and cached from data that is gone, and its scheduler
firing timers in the middle of the copy: the README's first step of a restore is to stop both. This checks it.

- The scheduler: its heartbeat (app/scheduler.py) younger than SCHEDULER_HEARTBEAT_MAX_SECONDS, as /readyz
  judges it: once the scheduler is stopped, the restore waits that long (5 minutes by default).
- PostgreSQL: any other session connected to the database (gunicorn's workers, a scheduler, someone's psql).
  SQLite keeps no list of the processes that have the file open."""
from datetime import timedelta

from sqlalchemy import func, inspect, select, text

from ..models import SchedulerHeartbeat
from ..timeutil import utcnow

OTHER_SESSIONS = text(
    "SELECT coalesce(nullif(application_name, ''), 'unnamed') AS name, "
    "coalesce(host(client_addr), 'local socket') AS address FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
    "ORDER BY 1, 2")
SHOWN = 5


def users_of(conn, config) -> list[str]:
    """What still uses the database on `conn` (the only connection of this process to it), in words; [] if
    nothing does."""
    found = []
    if SchedulerHeartbeat.__tablename__ in inspect(conn).get_table_names():
        beat = conn.execute(select(func.max(SchedulerHeartbeat.beat_at))).scalar_one()
        age = utcnow() - beat if beat is not None else None
        if age is not None and age <= timedelta(seconds=config["SCHEDULER_HEARTBEAT_MAX_SECONDS"]):
            limit = config["SCHEDULER_HEARTBEAT_MAX_SECONDS"]
            found.append(f"the scheduler (its heartbeat is {int(age.total_seconds())} s old; once it is stopped, "
                         f"its heartbeat counts as stale after {limit} s, SCHEDULER_HEARTBEAT_MAX_SECONDS)")
    if conn.dialect.name == "postgresql":
        sessions = conn.execute(OTHER_SESSIONS).all()
        if sessions:
            named = ", ".join(f"{name} from {address}" for name, address in sessions[:SHOWN])
            found.append(f"{len(sessions)} other session(s) connected to it ({named}"
                         + (", …" if len(sessions) > SHOWN else "") + ")")
    return found
