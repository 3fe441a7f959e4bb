"""Analyses as stored (analysis_report): computed once and kept as they were, e.g. attached to the
quarterly review that discussed them."""
from datetime import date

from sqlalchemy import select

from ..models import AnalysisReport
from .compute import compute
from .periods import period


def attach(session, instance_id, start: date, end: date, actor: str, *, filters=None) -> AnalysisReport:
    """Compute the analysis of start..end and store it, attached to `instance_id` (or to nothing: None).
    Flushes, does not commit: the caller's transaction does."""
    p = period(start, end)
    report = AnalysisReport(period_start=p.start, period_end=p.end, label=p.label, instance_id=instance_id,
                            created_by=actor, data=compute(session, p.start, p.end, filters=filters, label=p.label))
    session.add(report)
    session.flush()
    return report


def reports_of(session, instance_id) -> list:
    """(id, label, created_at) of the reports attached to an instance, newest first (not their data:
    `report` loads one)."""
    return session.execute(select(AnalysisReport.id, AnalysisReport.label, AnalysisReport.created_at)
                           .where(AnalysisReport.instance_id == instance_id)
                           .order_by(AnalysisReport.created_at.desc(), AnalysisReport.id.desc())).all()


def latest_of(session, instance_id):
    found = reports_of(session, instance_id)
    return found[0] if found else None


def report(session, report_id) -> AnalysisReport | None:
    return session.get(AnalysisReport, report_id)
