"""The satisfaction survey (C-5.1) of the complaints closed in the period: how many answered, the mean
score (1-5) of each scored question and the spread of the overall score — one aggregate over the answers'
JSON in SQL (on PostgreSQL each answer is parsed once, by json_to_record; elsewhere per question). The
questions and their labels are the survey form's integer properties, as deployed."""
from sqlalchemy import Integer, case, column, func, select, true

from ..models import Complaint, ProcessVersion, SurveyResponse

FORM = "satisfaction_survey"     # the survey the diagram offers (notify_customer(..., survey=...))
OVERALL = "overall"
SCORES = range(1, 6)


def questions(session, process_id, form=FORM) -> list[dict]:
    """[{key, zh, en}] of the survey form's scored questions in the newest version that has the form."""
    schema = session.execute(select(ProcessVersion.forms[form]).where(ProcessVersion.process_id == process_id)
                             .order_by(ProcessVersion.version.desc()).limit(1)).scalar_one_or_none() or {}
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    return [{"key": key, "zh": p.get("title", key), "en": p.get("x-title-en", p.get("title", key))}
            for key, p in props.items() if isinstance(p, dict) and p.get("type") == "integer"]


def _scores(dialect: str, keys: list, answered) -> tuple[dict, object]:
    """({question: its score as an SQL expression}, the FROM clause that gives them)."""
    if dialect == "postgresql" and keys:
        record = func.json_to_record(SurveyResponse.answers).table_valued(
            *(column(k, Integer) for k in keys)).render_derived("answer", with_types=True)
        return {k: record.c[k] for k in keys}, answered.join(record, true())     # a function in FROM: lateral
    return {k: SurveyResponse.answers[k].as_integer() for k in keys}, answered


def survey(session, instants: tuple, where: list, process_id) -> dict:
    asked = questions(session, process_id)
    answered = SurveyResponse.__table__.join(Complaint.__table__, Complaint.id == SurveyResponse.complaint_id)
    score, source = _scores(session.get_bind().dialect.name, [q["key"] for q in asked], answered)
    spread = [func.count(case((score[OVERALL] == n, 1))) for n in SCORES] if OVERALL in score else []
    row = session.execute(select(func.count(), *(func.avg(s) for s in score.values()), *spread).select_from(source)
                          .where(Complaint.closed_at >= instants[0], Complaint.closed_at < instants[1], *where)).one()
    means = row[1:1 + len(score)]
    counts = row[1 + len(score):] or [0] * len(SCORES)
    return {"responses": row[0],
            "questions": [{**q, "mean": None if m is None else round(float(m), 2)} for q, m in zip(asked, means)],
            "overall": {str(n): c for n, c in zip(SCORES, counts)}}
