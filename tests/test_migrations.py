"""The migrations build exactly the schema the models describe, on each backend."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db
from app.models import on_backend


def test_models_and_migrations_agree(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": on_backend(conn.dialect.name)})
        diff = compare_metadata(context, db.metadata)
    assert diff == []
