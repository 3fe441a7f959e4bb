"""SQLite: the online backup API copies the database consistently while the app goes on writing (one read
transaction, WAL included); a restore copies the backup into a private file first, which can be checked and
upgraded, and then into the app's file with the same API, in one write transaction."""
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from . import BackupError

PART = "database.sqlite"


def path_of(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"the SQLite database must be a file named in the URL, not {database or 'in memory'!r}")
    return Path(database)


def dump(url: str, out: Path):
    """The database as one self-contained file (no -wal beside it)."""
    source = path_of(url)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(out)) as dst:
        src.execute("PRAGMA busy_timeout=5000")
        src.backup(dst)                                 # pages=-1: all of it in one step, one snapshot
        dst.execute("PRAGMA journal_mode=DELETE")


def stage(part: Path, target: Path) -> Path:
    """A checked private copy of the backup's database beside the target; the caller deletes it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.restore-", dir=target.parent)
    os.close(fd)
    staged = Path(name)
    try:
        shutil.copyfile(part, staged)
        check_file(staged)
    except BaseException:
        discard(staged)
        raise
    return staged


def check_file(path: Path):
    """BackupError unless `path` is an SQLite database that passes SQLite's integrity check (read only)."""
    try:
        with closing(sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)) as conn:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:        # e.g. "file is not a database"
        raise BackupError(f"the backup's database is not a usable SQLite database ({exc})") from None
    if result != "ok":
        raise BackupError(f"the backup's database fails SQLite's integrity check: {result}")


def put_in_place(staged: Path, target: Path):
    """The staged database becomes the target's content in one write transaction (readers see the old or
    the new database, never a mix; a -wal beside the target is handled by SQLite itself)."""
    with closing(sqlite3.connect(staged)) as src, closing(sqlite3.connect(target)) as dst:
        dst.execute("PRAGMA busy_timeout=5000")
        try:
            src.backup(dst)
        except sqlite3.Error as exc:
            raise BackupError(f"could not write {target} ({exc}): is the app still running on it? "
                              "Stop it and restore again") from None


def discard(staged: Path):
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{staged}{suffix}").unlink(missing_ok=True)
