"""WSGI entry point: `gunicorn wsgi:app`. Deploys processes/ when the server starts (a broken file is refused and
the last good version keeps serving). A `flask` command that loads the app from here (FLASK_APP=wsgi.py) deploys
nothing: it runs inside a click context, and `flask processes check` must not deploy what it checks (`flask
processes deploy` deploys, with its own author and report); a setting missing or wrong (app.config.SettingError) is
its message there, not a traceback (a server logs the traceback), also when `flask --help` lists the commands."""
import sys

import click


def _listing_commands() -> bool:
    """Whether Flask's CLI loads the app to list its commands (for `flask --help`), not to run one."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "list_commands" and frame.f_code.co_filename.endswith("flask/cli.py"):
            return True
        frame = frame.f_back
    return False


try:
    from app import create_app       # app.config reads the settings as it is imported
    from app.cli import deploy_on_start
    app = create_app()
except ValueError as exc:
    setting = any(c.__module__ == "app.config" and c.__name__ == "SettingError" for c in type(exc).__mro__)
    if not setting or click.get_current_context(silent=True) is None:
        raise
    if _listing_commands():       # `flask` or `flask --help`: Flask prints a NoAppException as one line
        from flask.cli import NoAppException
        raise NoAppException(str(exc)) from None
    raise click.ClickException(str(exc)) from None
if click.get_current_context(silent=True) is None:
    deploy_on_start(app)
