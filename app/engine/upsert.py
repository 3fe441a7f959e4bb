"""Write the new and changed ORM objects of one table in one statement: INSERT … ON CONFLICT (primary key) DO
UPDATE … RETURNING, where the ORM's flush would send an UPDATE and an INSERT (each with its own round trip).
The objects stay the session's, as a flush would leave them: new ones persistent, changed ones clean, each
holding what the database now holds (its id, its new row version)."""
from sqlalchemy import inspect, literal_column
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import upsert_insert


def upsert(session, objects: list) -> list:
    """Write `objects` (of one mapped class; new, changed or unchanged) and return them as persistent objects,
    in the same order. A new object whose primary key is set stays the same object; one whose key the database
    assigns comes back as another (the caller keeps the returned one). An object changed since it was read is
    written only if its row version is still the one read (as the flush's UPDATE … WHERE row_version = …),
    else StaleDataError (and the caller's transaction rolls back)."""
    if not objects:
        return []
    mapper = inspect(type(objects[0]))
    (pk,) = mapper.primary_key
    bind = session.get_bind()
    dialect = bind.dialect.name
    rows, changed, to_write = [], set(), []
    for obj in objects:
        state = inspect(obj)
        if state.pending:           # added to the session: written here, not by the flush
            session.expunge(obj)
        _sync_foreign_keys(mapper, obj, state)
        if state.key is None:
            rows.append(_new_row(mapper, pk, obj, dialect))
        elif session.is_modified(obj, include_collections=False):
            rows.append({prop.columns[0].key: getattr(obj, prop.key) for prop in mapper.column_attrs})
            changed |= {attr.key for attr in state.attrs if attr.history.added and attr.key in mapper.columns}
        else:
            continue                # unchanged: nothing to write
        to_write.append(obj)
    if not to_write:
        return list(objects)
    stmt = upsert_insert(bind)(mapper).values(rows)
    stmt = _on_conflict(stmt, mapper, pk, changed)
    for obj in to_write:            # new rows of a known key become the objects the RETURNING refreshes
        if inspect(obj).key is None and getattr(obj, pk.key) is not None:
            make_transient_to_detached(obj)
            session.add(obj)
    with session.no_autoflush:      # the flush would write these objects first, the ORM's way
        written = session.execute(stmt.returning(mapper.class_),
                                  execution_options={"populate_existing": True}).scalars().all()
    if len(written) != len(to_write):
        raise StaleDataError(f"{mapper.local_table.name}: {len(to_write) - len(written)} row(s) changed meanwhile")
    return [obj if inspect(obj).key is not None else _match(obj, written, mapper) for obj in objects]


def _sync_foreign_keys(mapper, obj, state):
    """What the flush does for a many-to-one relationship set on the object (e.g. task.assignee = user): copy
    the related object's key into the foreign key column."""
    for rel in mapper.relationships:
        if rel.direction.name != "MANYTOONE" or not state.attrs[rel.key].history.added:
            continue
        related = getattr(obj, rel.key)
        for local, remote in rel.local_remote_pairs:
            value = None if related is None else getattr(related, rel.mapper.get_property_by_column(remote).key)
            setattr(obj, mapper.get_property_by_column(local).key, value)


def _new_row(mapper, pk, obj, dialect) -> dict:
    """Every column of a new object: its value, else the column's default (set on the object too), else the
    server's default as SQL; a key the database assigns is NULL on SQLite (its rowid) and DEFAULT elsewhere."""
    row = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        value = getattr(obj, prop.key)
        if value is None and column is mapper.version_id_col:
            value = 1
            setattr(obj, prop.key, value)
        elif value is None and column.default is not None:
            value = column.default.arg(None) if column.default.is_callable else column.default.arg
            setattr(obj, prop.key, value)
        elif value is None and column is pk:
            value = None if dialect == "sqlite" else literal_column("DEFAULT")
        elif value is None and column.server_default is not None and not column.nullable:
            value = column.server_default.arg
        row[column.key] = value
    return row


def _on_conflict(stmt, mapper, pk, changed):
    """An existing row takes the columns changed on any of the objects (the others keep what the database
    holds); a versioned row only if its version is still the one read, and then the next version."""
    table = mapper.local_table
    version = mapper.version_id_col
    columns = {mapper.get_property(key).columns[0].key for key in changed}
    set_ = {name: stmt.excluded[name] for name in sorted(columns) if name != pk.key}
    if version is not None:
        set_[version.key] = table.c[version.key] + 1
        return stmt.on_conflict_do_update(index_elements=[pk], set_=set_,
                                          where=table.c[version.key] == stmt.excluded[version.key])
    if not set_:
        set_ = {pk.key: stmt.excluded[pk.key]}      # nothing changed: the row is returned as it is
    return stmt.on_conflict_do_update(index_elements=[pk], set_=set_)


def _match(obj, written, mapper):
    """The returned object for a new one whose key the database assigned: the one with its unique columns (e.g.
    a deadline's timer task id); for a table without any, the one with every value the object holds."""
    props = [p for p in mapper.column_attrs if p.columns[0].unique] or \
        [p for p in mapper.column_attrs if p.columns[0] not in mapper.primary_key and getattr(obj, p.key) is not None]
    for candidate in written:
        if all(getattr(candidate, p.key) == getattr(obj, p.key) for p in props):
            return candidate
    raise StaleDataError(f"{mapper.local_table.name}: a new row was not returned")
