"""Tables as streamed downloads (CSV or Excel, app.analysis.export), for the analysis and the complaint list."""
from flask import Response

from ..analysis import export
from .common import attachment

FORMATS = {"csv": (export.csv_chunks, export.CSV_MIME), "xlsx": (export.xlsx_chunks, export.XLSX_MIME)}


def download(fmt, tables, name):
    """A streamed download of `tables` ((title, header, rows) each; rows may be a generator) as `name`.fmt.
    It needs no request context: a stream that reads the database opens an app context of its own (so
    that it never pops the request's out of order, whenever the server closes it)."""
    chunks, mimetype = FORMATS[fmt]
    return Response(chunks(tables), mimetype=mimetype, headers={"Content-Disposition": attachment(f"{name}.{fmt}")})
