"""Tables as downloads: CSV streamed row by row (UTF-8 with a BOM, so that Excel opens Chinese text
right) and Excel (openpyxl in write_only mode: rows go to a temporary file as they come, so memory stays
bounded at any size; an .xlsx is a zip whose index comes last, so the file is sent, in chunks, once it
is written, and removed). A table is (title, header, rows); rows may be a generator."""
import csv
import io
import os
import re
import tempfile
from datetime import date, datetime

from openpyxl import Workbook

from ..timeutil import BUSINESS_TZ

BOM = "\ufeff"
CHUNK = 64 * 1024
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv"                     # werkzeug adds "; charset=utf-8" to a text type
SHEET_NAME = re.compile(r"[\[\]:*?/\\]")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SIGNED_NUMBER = re.compile(r"[+-]\d+(\.\d+)?%?")


def cell(value):
    """A value a spreadsheet takes: times in Beijing time without a zone (both formats have none), numbers,
    dates and text as they are, anything else (e.g. a translated label) as its text. Text that a spreadsheet
    would run as a formula (it starts with = + - @, e.g. a customer's name typed as =HYPERLINK(…)) gets a
    leading apostrophe, so it stays text."""
    if isinstance(value, str):
        runs = len(value) > 1 and value.startswith(FORMULA_START) and not SIGNED_NUMBER.fullmatch(value)   # "+3": a change
        return "'" + value if runs else value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(BUSINESS_TZ).replace(tzinfo=None)
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (str, int, float, date)):
        return value
    return str(value)


def csv_chunks(tables):
    """The tables one after another (a blank line and the next title between them), as text chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    for i, (title, header, rows) in enumerate(tables):
        if len(tables) > 1:
            writer.writerows(([], [title]) if i else ([title],))
        writer.writerow([cell(h) for h in header])
        for row in rows:
            writer.writerow([_csv_text(cell(v)) for v in row])
            if buffer.tell() >= CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _csv_text(value):
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else value


def sheet_title(title: str, taken: set) -> str:
    """An Excel sheet name: no []:*?/\\, at most 31 characters, unique in the workbook."""
    base = SHEET_NAME.sub(" ", title).strip()[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def xlsx_chunks(tables):
    """A workbook with a sheet per table, written to a temporary file, then sent in chunks and removed."""
    fd, path = tempfile.mkstemp(prefix="analysis-", suffix=".xlsx")
    os.close(fd)
    try:
        _write_workbook(path, tables)
        with open(path, "rb") as written:
            while chunk := written.read(CHUNK):
                yield chunk
    finally:
        os.unlink(path)


def _write_workbook(path, tables):
    book, taken = Workbook(write_only=True), set()
    for title, header, rows in tables:
        sheet = book.create_sheet(sheet_title(title, taken))
        sheet.append([cell(h) for h in header])
        for row in rows:
            sheet.append([cell(v) for v in row])
    book.save(path)
