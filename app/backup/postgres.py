"""PostgreSQL: `pg_dump -Fc` of the app's database in the snapshot of a transaction the caller holds (so what
else it reads there matches the dump), and `pg_restore` in one transaction (all or nothing). Connection
settings come from SQLALCHEMY_DATABASE_URI; the password goes in PGPASSWORD, never on the command line."""
import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from . import BackupError

PART = "database.pgdump"


def _connection(url: str) -> tuple[str, dict]:
    """(libpq connection string without the password, environment with it)."""
    u = make_url(url)
    params = {"host": u.host, "port": u.port, "user": u.username, "dbname": u.database, **u.query}
    env = {**os.environ}
    env.pop("PGPASSWORD", None)
    if u.password:
        env["PGPASSWORD"] = u.password
    return make_conninfo(**{k: v for k, v in params.items() if v is not None}), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client tools of the server's "
                          f"major version (e.g. apt install postgresql-client-15)")
    return found


def _run(args: list, env: dict):
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode:
        raise BackupError(f"{Path(args[0]).name} failed (exit {done.returncode}): {done.stderr.strip()}")


def dump(url: str, snapshot: str, out: Path):
    conninfo, env = _connection(url)
    _run([_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", f"--file={out}", f"--dbname={conninfo}"],
         env)


def restore(url: str, part: Path, replace: bool = False):
    """Into the app's database, all in one transaction: on any error nothing of the backup stays. Into a
    database without data, objects of the same name are dropped first (--clean). With `replace` (--force over
    a database holding data) the whole schema goes first, so tables and rows the backup does not know (a newer
    schema's) go too: pg_restore writes the SQL and psql runs it after the DROP, in one transaction. Owners
    and grants are the restoring user's."""
    conninfo, env = _connection(url)
    if not replace:
        _run([_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
              "--clean", "--if-exists", f"--dbname={conninfo}", str(part)], env)
        return
    script = subprocess.Popen([_tool("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(part)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = subprocess.run([_tool("psql"), "--quiet", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1",
                           "-c", "DROP SCHEMA public CASCADE", "-c", "CREATE SCHEMA public", "-f", "-",
                           f"--dbname={conninfo}"], env=env, stdin=script.stdout, capture_output=True, text=True)
    script.stdout.close()
    made = script.wait()
    if made or done.returncode:
        problem = script.stderr.read().decode(errors="replace").strip() if made else done.stderr.strip()
        raise BackupError(f"the restore failed and changed nothing (exit {made or done.returncode}): {problem}")
