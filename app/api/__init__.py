"""The JSON API, /api/v1: Bearer-token auth, marshmallow schemas, one error shape."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import auth, errors, bulk, complaints, docs, evidence, processes, tasks, vocabularies  # noqa: E402,F401  (routes register on import)
