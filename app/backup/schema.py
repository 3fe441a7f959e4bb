"""The database schema's alembic revision: which backups this code can restore, and the upgrade of an older one."""
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask_migrate import upgrade

from ..config import ROOT
from . import BackupError


def migrations_dir(app) -> str:
    return str(ROOT / app.extensions["migrate"].directory)       # as `flask db` finds it (absolute stays)


def heads(app) -> list:
    return sorted(ScriptDirectory(migrations_dir(app)).get_heads())


def needs_upgrade(app, revisions: list) -> bool:
    """False for a backup at this code's revision, True for an older one; BackupError for one this code does
    not know (a newer version of the app made it) or none at all."""
    if not revisions:
        raise BackupError("the backup's database has no schema revision (alembic_version): it is not a "
                          "database of this app, or one never migrated")
    script = ScriptDirectory(migrations_dir(app))
    unknown = [rev for rev in revisions if not _known(script, rev)]
    if unknown:
        raise BackupError(f"the backup's database is at schema revision {', '.join(unknown)}, which this code does "
                          f"not know (it is at {', '.join(heads(app))}): a newer version of the app made it. "
                          "Upgrade the code to that version or later, then restore")
    return sorted(revisions) != heads(app)


def _known(script, rev) -> bool:
    try:
        found = script.get_revision(rev)
    except CommandError:
        return False
    return found is not None and found.revision == rev


def upgrade_to_head(app):
    """`flask db upgrade` on the app's database (call inside its app context)."""
    upgrade(directory=migrations_dir(app))
