"""Access logs never hold a customer's link: the token in /my/<token> is a key to their page for
months. The filter rewrites it on the web servers' access loggers (werkzeug in development,
gunicorn in production) before any handler writes the line."""
import logging
import re

TOKEN_PATH = re.compile(r"/my/[0-9A-Za-z_-]{16,}")
HIDDEN = "/my/<link>"
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


def hide_tokens(value):
    if isinstance(value, str):
        return TOKEN_PATH.sub(HIDDEN, value)
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
