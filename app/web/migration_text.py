"""The engine's reasons a complaint cannot move onto another process version (app/engine/runtime.py,
workflow.migrate), in the page's language: for the procedure pages' dry run and the background jobs' result list."""
import re

from flask_babel import gettext as _

REASONS = (
    (re.compile(r"^its current step (.+) was removed$"), lambda m: _("its current step %(step)s was removed",
                                                                     step=m[1])),
    (re.compile(r"^its completed step (.+) was removed$"), lambda m: _("its completed step %(step)s was removed",
                                                                       step=m[1])),
    (re.compile(r"^the called process (.+) does not exist in the new version$"),
     lambda m: _("the called process %(process)s does not exist in the new version", process=m[1])),
    (re.compile(r"^the step (.+) has no counterpart in the new version$"),
     lambda m: _("the step %(step)s has no counterpart in the new version", step=m[1])),
    (re.compile(r"^it already runs on version (\d+)$"), lambda m: _("it already runs on version %(num)s", num=m[1])),
    (re.compile(r"^it is (completed|error)$"), lambda m: _("it is no longer running (%(status)s)", status=m[1])),
)


def reason_text(reason: str) -> str:
    """The engine's reason a complaint cannot be migrated, in the page's language (unknown ones as they are)."""
    for pattern, words in REASONS:
        found = pattern.match(reason)
        if found:
            return words(found)
    return reason
