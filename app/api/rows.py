"""Plain rows dumped by a marshmallow schema, without marshmallow's per-field machinery.

The schemas stay the API's contract (the OpenAPI document is built from them, and the fuzz tests check
answers against it). But dumping a page of rows through `Schema.dump` cost more than reading them: 50
queue rows took 9 ms of marshmallow against 2 ms of SQL at 100,000 complaints (issue 10). A `RowDump`
is compiled once per schema: it names the SQL column behind every field, and turns each selected row
into the schema's dict by calling only the field's own formatting (`_serialize`: a datetime's ISO form,
a string's text). A field computed from the object (`fields.Function`/`Method`) needs its value as a
SQL expression of its own, given by name in `computed`; a schema field without one is an error at
import, so that a field added to a schema is never left out of the rows silently."""
from marshmallow import fields
from sqlalchemy import func, select
from sqlalchemy.orm import Bundle

from ..extensions import disjoint


class RowDump:
    """The columns behind `schema`'s fields on `model` (plus `computed` expressions), and the dump of
    rows selected with them."""

    def __init__(self, schema, model, computed=None):
        computed = computed or {}
        unknown = set(computed) - set(schema.fields)
        if unknown:
            raise TypeError(f"{type(schema).__name__} has no field {sorted(unknown)}")
        self.columns, self._fields = [], []
        for name, field in schema.fields.items():
            if name in computed:
                column, serialize = computed[name], None
            elif isinstance(field, (fields.Function, fields.Method)):
                raise TypeError(f"{type(schema).__name__}.{name} is computed: give its SQL expression")
            else:
                column, serialize = getattr(model, field.attribute or name), field._serialize
            self.columns.append(column.label(name))
            self._fields.append((field.data_key or name, serialize))

    def bundle(self, name) -> Bundle:
        """The columns as one entity of a select (e.g. beside another RowDump's)."""
        return Bundle(name, *self.columns)

    def one(self, row) -> dict:
        """The schema's dict of one row selected with `columns` (or `bundle`), in their order."""
        return {key: value if serialize is None or value is None else serialize(value, key, row)
                for (key, serialize), value in zip(self._fields, row)}

    def many(self, rows) -> list[dict]:
        return [self.one(row) for row in rows]


class SideBySide:
    """Several unrelated queries read in one statement (extensions.disjoint), built once: `read` returns each
    query's rows in its own order. `parts`: (a SELECT of labelled columns, the columns that order it), with
    bind parameters for what `read` is given. A row of a part has its columns in the SELECT's order, by position
    and by label."""

    def __init__(self, *parts):
        numbered = [query.add_columns(func.row_number().over(order_by=order).label("_n")).subquery()
                    for query, order in parts]
        bundles = [Bundle(f"part{i}", *[c for c in sub.c if c.name != "_n"]) for i, sub in enumerate(numbered)]
        numbers = [sub.c._n for sub in numbered]
        self.statement = select(*bundles, *numbers).select_from(disjoint(*numbered)).order_by(*numbers)
        self.parts = len(parts)

    def read(self, session, **params) -> list[list]:
        out = [[] for _ in range(self.parts)]
        for row in session.execute(self.statement, params):
            part = next((i for i, n in enumerate(row[self.parts:]) if n is not None), None)
            if part is not None:            # None: the row of a part that has no rows
                out[part].append(row[part])
        return out
