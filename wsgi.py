"""WSGI entry point: `gunicorn wsgi:app`. Deploys processes/ when the server starts (a broken file is refused and
the last good version keeps serving). A `flask` command that loads the app from here (FLASK_APP=wsgi.py) deploys
nothing: it runs inside a click context, and `flask processes check` must not deploy what it checks (`flask
processes deploy` deploys, with its own author and report); a setting missing or wrong (app.config.SettingError) is
its message there, not a traceback (a server logs the traceback)."""
import click

try:
    from app import create_app       # app.config reads the settings as it is imported
    from app.cli import deploy_on_start
    app = create_app()
except ValueError as exc:
    setting = any(c.__module__ == "app.config" and c.__name__ == "SettingError" for c in type(exc).__mro__)
    if not setting or click.get_current_context(silent=True) is None:
        raise
    raise click.ClickException(str(exc)) from None
if click.get_current_context(silent=True) is None:
    deploy_on_start(app)
