"""WSGI entry point: `gunicorn wsgi:app`. Deploys processes/ when it starts (a broken file is refused
and the last good version keeps serving)."""
from app import create_app
from app.cli import deploy_on_start

app = create_app()
deploy_on_start(app)
