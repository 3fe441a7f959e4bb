"""Traceability: each clause of the written procedure against the diagram elements that cite it
(`[C-…]` at the start of their documentation) and the tests marked `@pytest.mark.clause(...)`."""
import json
import re
from pathlib import Path

from lxml import etree

from .engine.registry import NS

CLAUSE = re.compile(r"\[(C-[0-9.]+)\]")
MARK = re.compile(r"@pytest\.mark\.clause\(([^)]*)\)\s*\n(?:@[^\n]*\n)*def (test_\w+)")


def load_clauses(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))["clauses"]


def clause_elements(bpmn_files: dict) -> dict:
    """clause id -> [(file, element id, element name)] from the elements' documentation; ValueError naming a file
    that is not well-formed XML."""
    found = {}
    for file, xml in sorted(bpmn_files.items()):
        try:
            tree = etree.fromstring(xml.encode("utf-8"))
        except etree.XMLSyntaxError as exc:
            raise ValueError(f"{file} is not well-formed XML ({exc}): `flask processes check` lists its problems") \
                from None
        for doc in tree.xpath("//bpmn:documentation", namespaces=NS):
            element = doc.getparent()
            for clause in dict.fromkeys(CLAUSE.findall(doc.text or "")):
                found.setdefault(clause, []).append((file, element.get("id"), element.get("name") or ""))
    return found


def clause_tests(tests_dir: Path) -> dict:
    """clause id -> ["tests/file.py::test_name"] from @pytest.mark.clause("C-…", …) markers."""
    found = {}
    for path in sorted(Path(tests_dir).glob("test_*.py")):
        for args, name in MARK.findall(path.read_text(encoding="utf-8")):
            for clause in re.findall(r"C-[0-9.]+", args):
                found.setdefault(clause, []).append(f"tests/{path.name}::{name}")
    return found


def trace(clauses, elements: dict, tests: dict) -> list[dict]:
    return [{**c, "elements": elements.get(c["id"], []), "tests": tests.get(c["id"], []),
             "gap": not elements.get(c["id"]) and not c.get("app")} for c in clauses]


def to_markdown(rows, versions: str) -> str:
    lines = ["# Traceability: procedure clauses → diagram elements → tests", "", f"Diagram: {versions}", "",
             "| clause | procedure | implemented by | tests |", "|---|---|---|---|"]
    for row in rows:
        implemented = "<br>".join(f"`{eid}` {name}" for _, eid, name in row["elements"]) or ""
        if row.get("app"):
            implemented = "<br>".join(filter(None, [implemented, f"app: {row['app']}"]))
        if row["gap"]:
            implemented = "**GAP: no element**"
        tests = "<br>".join(f"`{t}`" for t in row["tests"]) or "—"
        lines.append(f"| {row['id']} | {row['zh']} / {row['en']} | {implemented} | {tests} |")
    gaps = [r["id"] for r in rows if r["gap"]]
    lines += ["", f"{len(rows)} clauses, {len(gaps)} gaps" + (f": {', '.join(gaps)}" if gaps else "")]
    return "\n".join(lines) + "\n"
