"""A handler's draft of a task's form: the raw input as typed (file fields by the hashes of the files already
attached), saved without submitting and shown again to its author only, while the task is open. Saving
needs the rights to work the task, checks only app.input_rules and never touches the workflow. Drafts of a
task that is completed or withdrawn go in the same transaction (a record sync of the runtime), whichever
way it was completed (this page, the JSON API, the customer portal)."""
from sqlalchemy import select

from ...models import HumanTask, TaskDraft
from ...timeutil import utcnow


def find(session, task, user):
    """The user's draft of this open task, or None (a finished task never shows one)."""
    if task.state != "open":
        return None
    return session.execute(select(TaskDraft).where(TaskDraft.task_id == task.id, TaskDraft.user_id == user.id)) \
        .scalar_one_or_none()


def save(session, task, user, raw: dict) -> TaskDraft:
    """Write (or overwrite) the user's draft of the task; the caller commits."""
    draft = find(session, task, user)
    if draft is None:
        draft = TaskDraft(task_id=task.id, user_id=user.id)
        session.add(draft)
    draft.data, draft.saved_at = raw, utcnow()
    return draft


def drop_finished(session, instance, change):
    """Record sync: delete the drafts of this instance's tasks that the change completed or withdrew."""
    drafts = session.execute(select(TaskDraft).join(HumanTask, HumanTask.id == TaskDraft.task_id)
                             .where(HumanTask.instance_id == instance.id)).scalars().all()
    for draft in drafts:
        if session.get(HumanTask, draft.task_id).state != "open":     # as this change left it (not flushed yet)
            session.delete(draft)


def register(state):
    """Blueprint hook: the runtime drops finished drafts in every change."""
    state.app.extensions["runtime"].record_syncs.append(drop_finished)
