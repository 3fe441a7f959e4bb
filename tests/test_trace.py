"""Traceability: clauses of the written procedure against diagram elements and tests."""
from app.config import ROOT
from app.trace import clause_elements, load_clauses, clause_tests, to_markdown, trace

CLAUSES = ROOT / "processes" / "clauses.json"


def rows_for_files():
    bpmn = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "processes").glob("*.bpmn")}
    return {r["id"]: r for r in trace(load_clauses(CLAUSES), clause_elements(bpmn), clause_tests(ROOT / "tests"))}


def test_every_clause_is_listed_with_its_elements_and_tests():
    rows = rows_for_files()
    assert len(rows) == 37 and list(rows)[0] == "C-1"
    deadline = rows["C-4.1"]
    assert ("complaint_handling.bpmn", "initial_review_deadline", "初审时限（24小时）") in deadline["elements"]
    assert "tests/test_deadlines.py::test_initial_review_overdue_after_24_hours_escalates_to_management" \
        in deadline["tests"]
    assert rows["C-7.4"]["elements"] and not rows["C-7.4"]["gap"]
    # Principles the app implements outside the diagram are not gaps; unimplemented clauses are.
    assert not rows["C-2.2"]["gap"] and rows["C-2.2"]["app"]
    # Learning from complaints (issue 11): the quarterly review's diagram elements and tests cover them.
    for clause in ("C-3.5.2", "C-3.5.3", "C-5.2", "C-5.3", "C-5.4", "C-6.4"):
        files = {file for file, _element, _name in rows[clause]["elements"]}
        assert not rows[clause]["gap"] and files & {"quarterly_review.bpmn", "improvement_measure.bpmn"}, clause
        assert any(t.startswith("tests/test_quarterly_review.py::") for t in rows[clause]["tests"]), clause


def test_a_clause_whose_element_is_removed_becomes_a_gap():
    bpmn = (ROOT / "processes" / "complaint_handling.bpmn").read_text(encoding="utf-8")
    broken = {"complaint_handling.bpmn": bpmn.replace("[C-7.4]", "")}
    rows = {r["id"]: r for r in trace(load_clauses(CLAUSES), clause_elements(broken), {})}
    assert rows["C-7.4"]["gap"]
    markdown = to_markdown(list(rows.values()), "test")
    assert "| C-7.4 |" in markdown and "**GAP: no element**" in markdown and "C-7.4" in markdown.splitlines()[-1]


def test_trace_command_prints_markdown_for_the_deployed_version(app):
    result = app.test_cli_runner().invoke(args=["processes", "trace"])
    assert result.exit_code == 0
    assert "Diagram: complaint_handling version 1" in result.output
    assert "| C-4.3 |" in result.output and "`resolution_deadline`" in result.output
