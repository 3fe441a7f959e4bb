"""A task form sent for a task that changed after the page was shown keeps what the user typed (issue 12
item 6): the form carries the task's version; when someone else completed or took the task meanwhile, the
page shows the typed values to copy; when the task is still the user's to work but changed (claimed and
released, a deadline moved) or the change lost a race, the form comes back filled in as it was sent, to
check and send again. Nothing is saved in either case. SQLite only: the web layer is what is tested."""
import re

import pytest
from sqlalchemy import select

from app.errors import Conflict
from app.extensions import db
from app.models import HumanTask
from tests.flow import FORM_DATA
from tests.test_web import as_, browser, desk, fresh, open_task, snapshot, text  # noqa: F401  (fixtures)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

TYPED = {**FORM_DATA["investigate"], "findings": "理赔审核超过约定时效，\r\n系统记录显示材料已于3月2日齐全"}


def shown_version(page) -> str:
    found = re.search(r'name="_task_version" value="(\d+)"', page.text)
    assert found, "the task form carries the task's version"
    return found.group(1)


def investigation(desk):
    number = desk.register()
    desk.complete(number, "initial_review")
    return number, open_task(number, "investigate")


def test_a_task_taken_or_completed_meanwhile_shows_what_was_typed_to_copy(browser, desk, backend):
    number, task = investigation(desk)
    first, second = as_(browser, "claims_specialist"), as_(browser, "claims_specialist_2")
    version = shown_version(first.get(f"/tasks/{task.id}"))     # the form is open; then a colleague claims it
    assert second.post(f"/tasks/{task.id}/claim", page="/").status_code == 302
    before = snapshot()
    r = first.post(f"/tasks/{task.id}", {**TYPED, "_task_version": version})
    assert r.status_code == 409
    assert "此任务已分配给 claims_specialist_2" in text(r) and 'data-testid="stale-message"' in r.text
    assert 'data-testid="task-form"' not in r.text
    assert "系统记录显示材料已于3月2日齐全" in text(r)                     # shown, and as text to copy
    copy = re.search(r'data-testid="typed-copy">(.*?)</textarea>', r.text, re.S).group(1)
    assert "调查结论" in copy and "材料已于3月2日齐全" in copy
    assert snapshot() == before                                         # nothing saved

    # Completed by the colleague meanwhile: the same.
    desk.complete(number, "investigate", who="claims_specialist_2")
    r = first.post(f"/tasks/{task.id}", {**TYPED, "_task_version": version})
    assert r.status_code == 409 and "此任务已完成" in text(r) and "材料已于3月2日齐全" in text(r)


def test_a_task_that_changed_but_is_still_mine_comes_back_filled_in(browser, desk, app, monkeypatch, backend):
    number, task = investigation(desk)
    me, colleague = as_(browser, "claims_specialist"), as_(browser, "claims_specialist_2")
    version = shown_version(me.get(f"/tasks/{task.id}"))
    colleague.post(f"/tasks/{task.id}/claim", page="/")                  # claimed and released meanwhile
    colleague.post(f"/tasks/{task.id}/unclaim", page=f"/tasks/{task.id}")
    before = snapshot()
    r = me.post(f"/tasks/{task.id}", {**TYPED, "_task_version": version})
    assert r.status_code == 409 and snapshot() == before
    assert "此任务发生了变化" in text(r) and "请核对后重新提交" in text(r)
    assert 'data-testid="task-form"' in r.text and 'data-testid="typed-values"' not in r.text
    assert "系统记录显示材料已于3月2日齐全</textarea>" in r.text
    newer = shown_version(r)
    assert newer != version

    # The change itself lost a race: the form comes back filled in too.
    runtime = app.extensions["runtime"]

    def lost(*_args, **_kwargs):
        raise Conflict("someone else changed this complaint at the same moment", code="concurrent_change")
    monkeypatch.setattr(runtime, "complete", lost)
    r = me.post(f"/tasks/{task.id}", {**TYPED, "_task_version": newer})
    assert r.status_code == 409 and "他人同时修改了该投诉" in text(r)
    assert "系统记录显示材料已于3月2日齐全</textarea>" in r.text
    monkeypatch.undo()

    # Sent again from the page shown: taken. The same answers once more (a double click) lose nothing.
    r = me.post(f"/tasks/{task.id}", {**TYPED, "_task_version": newer})
    assert r.status_code == 302, text(r)
    fresh()
    assert db.session.execute(select(HumanTask.state).where(HumanTask.id == task.id)).scalar_one() == "completed"
    again = me.post(f"/tasks/{task.id}", {**TYPED, "_task_version": newer})
    assert again.status_code == 302
