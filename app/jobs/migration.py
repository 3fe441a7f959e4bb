"""The bulk migration kind: move running complaints onto a process version, or (dry_run) tell which could
move. An item is a process instance (key: its id, label: its complaint number).

Never twice: runtime.migrate locks the instance and checks its version in its own transaction, and the item
reads the version first; a complaint already on the target (moved by a runner that died before recording
it, or by hand meanwhile) is "already", with no second move and no second audit event."""
from sqlalchemy import select

from ..errors import AppError, Conflict
from ..models import ProcessInstance, ProcessVersion
from ..permissions import PROCESS_OWNERS
from .kinds import ALREADY, DONE, REFUSED, Kind, register
from .store import NewItem

KIND = "migrate"


def params(target: ProcessVersion, dry_run: bool = False) -> dict:
    return {"process_id": target.process_id, "version_id": target.id, "version": target.version,
            "dry_run": bool(dry_run)}


def items(rows) -> list[NewItem]:
    """(instance id, complaint number, version number it is on) of each complaint to move."""
    return [NewItem(str(instance_id), key, {"from": number}) for instance_id, key, number in rows]


def run(ctx, job, item):
    session, instance_id = ctx.session, int(item.key)
    target = session.get(ProcessVersion, job.params["version_id"])
    current = session.execute(select(ProcessInstance.version_id).where(ProcessInstance.id == instance_id)) \
        .scalar_one_or_none()
    if current == target.id:
        return ALREADY, None
    if current is None:
        return REFUSED, "the complaint's process instance no longer exists"
    reasons = _migrate(ctx, instance_id, target, job)
    if reasons == [f"it already runs on version {target.version}"]:
        return ALREADY, None
    return (REFUSED, "\n".join(reasons)) if reasons else (DONE, None)


def _migrate(ctx, instance_id, target, job, tries=2) -> list:
    """runtime.migrate; a concurrent change to the complaint (a handler at work) is tried once more."""
    for attempt in range(tries):
        try:
            return ctx.runtime.migrate(instance_id, target, job.started_by, dry_run=job.params.get("dry_run", False))
        except Conflict as err:
            ctx.session.rollback()
            if attempt == tries - 1:
                return [err.message]
        except AppError as err:
            ctx.session.rollback()
            return [err.message]


register(Kind(KIND, PROCESS_OWNERS, run, batch=10))
