"""Write the new and changed ORM objects of one table in one statement: INSERT … ON CONFLICT (key) DO UPDATE …
RETURNING, where the ORM's flush would send an UPDATE and an INSERT (each with its own round trip). The objects
stay the session's, as a flush would leave them: new ones persistent, changed ones clean, each holding what the
database now holds (its id, its new row version)."""
from functools import lru_cache

from sqlalchemy import and_, event, inspect, literal
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import upsert_insert

_ATTACHED = "upsert_attached"       # session.info: the new objects this transaction's upserts made persistent


@event.listens_for(Session, "after_rollback")
def _expunge_attached(session):
    """A rollback of the whole transaction takes their rows back: the objects made persistent for them leave the
    session, as the flush's new objects do (else a row inserted later with the same key could not be attached).
    A savepoint's end changes nothing here: the runtime writes none inside one."""
    if not session.in_nested_transaction():
        for obj in session.info.pop(_ATTACHED, ()):
            if obj in session:
                session.expunge(obj)


@event.listens_for(Session, "after_commit")
def _forget_attached(session):
    if not session.in_nested_transaction():
        session.info.pop(_ATTACHED, None)


def upsert(session, objects: list, key: str = None, read_as=None) -> list:
    """Write `objects` (of one mapped class; new, changed or unchanged), which are then persistent and clean.
    `key`: the unique column the rows are found by (default the primary key); an object whose `key` changed is
    left to the flush. `read_as`: what held for every existing row when the caller read it (e.g. `state = 'open'`):
    an existing row is updated only if it still holds, and only if its row version is still the one read (as the
    flush's UPDATE … WHERE row_version = …). A row not written (changed meanwhile, or a "new" object whose row
    exists) raises StaleDataError, and the caller's transaction rolls back. Each row takes only the columns changed
    on it: objects changed in different columns are written by one statement per set of columns (new ones go with
    the first). Returns `objects`."""
    if not objects:
        return []
    mapper = inspect(type(objects[0]))
    key = key or mapper.primary_key[0].key
    batches: dict[frozenset, list] = {}
    new = []
    for obj in objects:
        state = inspect(obj)
        if state.pending:           # added to the session: written here, not by the flush
            session.expunge(obj)
        _sync_foreign_keys(mapper, obj, state)
        if state.key is None:
            _set_defaults(mapper, obj)
            new.append(obj)
        elif session.is_modified(obj, include_collections=False) and not state.attrs[key].history.deleted:
            changed = frozenset(a.key for a in state.attrs if a.history.added and a.key in mapper.columns)
            batches.setdefault(changed, []).append(obj)
        # else unchanged, or found by another key than its row has: the flush's
    if new:
        first = next(iter(batches), frozenset())
        batches[first] = batches.get(first, []) + new
    for changed, batch in batches.items():
        _write(session, mapper, key, changed, read_as, batch)
    return list(objects)


def _write(session, mapper, key, changed, read_as, batch):
    stmt = _statement(session.get_bind().dialect.name, mapper.class_, key, changed, read_as)
    rows = [_values(mapper, obj, key) for obj in batch]
    with session.no_autoflush:      # the flush would write these objects first, the ORM's way
        written = {row[1]: row for row in session.execute(stmt, rows)}     # key -> (primary key, key, version)
    if len(written) != len(batch):
        raise StaleDataError(f"{mapper.local_table.name}: {len(batch) - len(written)} row(s) not as read")
    for obj in batch:
        _as_written(session, mapper, obj, written[getattr(obj, key)])


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


def _set_defaults(mapper, obj):
    """A new object's empty columns take their Python defaults (the first row version: 1), as the flush does, and
    every column is set, so that none is left to load once the object is persistent."""
    state = inspect(obj)
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if getattr(obj, prop.key) is not None:
            continue
        value = None
        if column is mapper.version_id_col:
            value = 1
        elif column.default is not None and column.default.is_scalar:
            value = column.default.arg
        elif column.default is not None and column.default.is_callable:
            value = column.default.arg(None)
        if value is not None or prop.key not in state.dict:
            setattr(obj, prop.key, value)


def _values(mapper, obj, key) -> dict:
    """The object's columns by column name."""
    return {column: getattr(obj, attribute) for attribute, column in _written(mapper.class_, key)}


@lru_cache(maxsize=64)
def _written(model, key) -> tuple:
    """(attribute, column) of what an upsert of `model` found by `key` writes: all its columns but a primary key
    the database assigns (when the rows are found by another key)."""
    mapper = inspect(model)
    primary = {column.key for column in mapper.primary_key}
    return tuple((prop.key, prop.columns[0].key) for prop in mapper.column_attrs
                 if prop.key == key or prop.columns[0].key not in primary)


def _as_written(session, mapper, obj, row):
    """Leave the object as the flush would have: a new one persistent with its primary key (history reset, as
    if loaded), a changed one with its changes committed and its next row version."""
    primary, _, version = row
    state = inspect(obj)
    if state.key is None:
        setattr(obj, mapper.primary_key[0].key, primary)
        if mapper.version_id_col is not None:
            setattr(obj, mapper.get_property_by_column(mapper.version_id_col).key, version)
        make_transient_to_detached(obj)
        session.add(obj)
        session.info.setdefault(_ATTACHED, []).append(obj)
        return
    for attr in state.attrs:
        if attr.history.added or attr.history.deleted:
            set_committed_value(obj, attr.key, attr.value)
    if mapper.version_id_col is not None:
        set_committed_value(obj, mapper.get_property_by_column(mapper.version_id_col).key, version)


@lru_cache(maxsize=64)
def _statement(dialect, model, key, changed: frozenset, read_as):
    """The upsert of `model`'s rows found by `key`: an existing row takes the `changed` columns (the others keep
    what the database holds), only if `read_as` still holds for it, and for a versioned row only if its version is
    still the one read, and then the next version. Built once per shape, so that its SQL is compiled once."""
    mapper = inspect(model)
    table, version = mapper.local_table, mapper.version_id_col
    stmt = upsert_insert(dialect)(table)
    set_ = {mapper.get_property(name).columns[0].key: stmt.excluded[mapper.get_property(name).columns[0].key]
            for name in sorted(changed) if name != key}
    key_column = mapper.get_property(key).columns[0]
    if not set_:                    # only new rows: one that exists already is not returned
        stmt = stmt.on_conflict_do_nothing(index_elements=[key_column])
    else:
        where = [table.c[version.key] == stmt.excluded[version.key]] if version is not None else []
        if version is not None:
            set_[version.key] = table.c[version.key] + 1
        if read_as is not None:
            where.append(read_as)
        stmt = stmt.on_conflict_do_update(index_elements=[key_column], set_=set_, where=and_(*where) if where else None)
    return stmt.returning(mapper.primary_key[0], key_column, version if version is not None else literal(None))

