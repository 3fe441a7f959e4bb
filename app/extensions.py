"""Extension objects, created unbound and wired up in create_app()."""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, literal, literal_column, select, union_all
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


def constant(value):
    """`value` written into the SQL, not bound: the planner sees it, also in a prepared statement's generic plan
    (PostgreSQL), which plans for any value of a parameter. Needed where a partial index applies only to one
    value, and where the value decides the plan (a status that few rows have)."""
    return literal(value, literal_execute=True)


def disjoint(*subqueries):
    """The FROM of several unrelated row sets read in one statement: one row per set from a list of their numbers,
    each left-joined to its own set only, so that a row of the result holds one set's row and NULL for the others
    (a set with no rows leaves one row of NULLs). One round trip instead of one per set; each subquery (or ORM
    entity aliased to one) is planned on its own indexes. LEFT JOINs, not a FULL JOIN, which SQLite has only
    since 3.39."""
    numbers = [literal_column(str(i)) for i in range(len(subqueries))]     # written into the SQL: seen by the planner
    parts = union_all(*(select(number.label("part")) for number in numbers)).subquery("part")
    joined = parts
    for number, subquery in zip(numbers, subqueries):
        joined = join(joined, subquery, parts.c.part == number, isouter=True)
    return joined
