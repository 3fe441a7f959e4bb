"""Extension objects, created unbound and wired up in create_app()."""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, false
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, join

# Named constraints let Alembic's batch mode rebuild SQLite tables.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def upsert_insert(bind):
    """The INSERT construct of `bind`'s dialect (an engine or connection, or the dialect's name), which has ON
    CONFLICT on both databases the app runs on."""
    name = bind if isinstance(bind, str) else bind.dialect.name
    return pg_insert if name == "postgresql" else sqlite_insert


def disjoint(*subqueries):
    """The FROM of several unrelated row sets read in one statement: the subqueries (or ORM entities aliased to
    them) full-joined on false, so that each row of the result holds one subquery's row and NULL for the others
    (one round trip instead of one each; each subquery is planned on its own indexes)."""
    joined = subqueries[0]
    for subquery in subqueries[1:]:
        joined = join(joined, subquery, false(), full=True)
    return joined
