"""Complaints: register one (/complaints/new), find one (/complaints), a complaint with its deadlines,
timeline and diagram (/complaints/<number>), and its case file (/complaints/<number>/case-file…)."""
from ..errorpages import blueprint

bp = blueprint("complaints", __name__)

from . import listing, routes  # noqa: E402,F401  (routes register on import)
