"""Access logs never hold a link's key: the token in /my/<token> opens a customer's page for months, the one
in /password/reset/<token> sets a staff member's password. The filter rewrites them on the web servers'
access loggers (werkzeug in development, gunicorn in production) before any handler writes the line
(deploy/nginx/complaints.conf does the same for nginx's log)."""
import logging
import re

TOKEN_PATHS = ((re.compile(r"/my/[0-9A-Za-z_-]{16,}"), "/my/<link>"),
               (re.compile(r"/password/reset/[^\s?\"]+"), "/password/reset/<token>"))
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


def hide_tokens(value):
    if isinstance(value, str):
        for path, hidden in TOKEN_PATHS:
            value = path.sub(hidden, value)
        return value
    if isinstance(value, dict):
        return {k: hide_tokens(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(hide_tokens(v) for v in value)
    return value


class HideLinkTokens(logging.Filter):
    def filter(self, record):
        record.msg = hide_tokens(record.msg)
        if record.args:
            record.args = hide_tokens(record.args)
        return True


def install():
    """Add the filter to the access loggers once (create_app may run many times in one process)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideLinkTokens) for f in logger.filters):
            logger.addFilter(HideLinkTokens())
