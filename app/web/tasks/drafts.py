"""A handler's draft of a task's form: the raw input as typed (file fields by the hashes of the files already
attached), saved without submitting and shown again to its author only, while the task is open. Saving
needs the rights to work the task, checks only app.input_rules and never touches the workflow. Drafts of a
task that is completed or withdrawn go in the same transaction (a record sync of the runtime), whichever
way it was completed (this page, the JSON API, the customer portal); the task's `has_draft` says whether
there are any, so that a change looks for none in vain. A draft is kept only while its task is open."""
from sqlalchemy import delete, select, update

from ...errors import Conflict
from ...models import HumanTask, TaskDraft
from ...timeutil import utcnow


def find(session, task, user):
    """The user's draft of this open task, or None (a finished task never shows one)."""
    if task.state != "open":
        return None
    return session.execute(select(TaskDraft).where(TaskDraft.task_id == task.id, TaskDraft.user_id == user.id)) \
        .scalar_one_or_none()


def save(session, task, user, raw: dict) -> TaskDraft:
    """Write (or overwrite) the user's draft of the task and mark the task as having one; the caller commits.
    Refused (Conflict) when the task closed meanwhile: a change that closed it while this waited for its lock
    deleted the drafts it knew of, and a draft kept now would never go."""
    # Not through the ORM object: that would give the task a new row_version (its form, stale).
    marked = session.execute(update(HumanTask).where(HumanTask.id == task.id, HumanTask.state == "open")
                             .values(has_draft=True).execution_options(synchronize_session=False))
    if marked.rowcount != 1:
        raise Conflict("this task is no longer open: the draft was not kept", code="task_not_ready")
    draft = find(session, task, user)
    if draft is not None:
        draft.data, draft.saved_at = raw, utcnow()
        return draft
    draft = TaskDraft(task_id=task.id, user_id=user.id, data=raw, saved_at=utcnow())
    session.add(draft)
    return draft


def drop_finished(session, instance, change):
    """Record sync: delete the drafts of the tasks that the change completed or withdrew (one statement,
    only if any of them has a draft)."""
    closed = [task.id for task in change.open_tasks if task.state != "open" and task.has_draft]
    if closed:
        session.execute(delete(TaskDraft).where(TaskDraft.task_id.in_(closed)))


def register(state):
    """Blueprint hook: the runtime drops finished drafts in every change."""
    state.app.extensions["runtime"].record_syncs.append(drop_finished)
