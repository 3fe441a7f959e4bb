"""Forms for what a handler tells a running procedure outside its tasks: the messages a diagram waits
for from staff (e.g. `extension_requested`, `appraisal_started`). A catch event waiting for message M,
with `forms/M.json` beside the diagrams that names in `x-sent-by` the roles that may send it, is an
action the complaint page offers while the diagram waits there. The form is deployed with the
process version like a task's form, so the action and its data change with the diagram."""
from pathlib import Path

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
SENT_BY = "x-sent-by"
CATCHING = ("intermediateCatchEvent", "boundaryEvent")


def awaited_by_staff(tree) -> list[tuple[str, str, int]]:
    """(message name, catch event id, line) of every message a catch event in `tree` waits for."""
    names = {m.get("id"): m.get("name") for m in tree.xpath("//bpmn:message", namespaces=NS)}
    found = []
    for definition in tree.xpath("//bpmn:messageEventDefinition[@messageRef]", namespaces=NS):
        event = definition.getparent()
        if event.tag.rsplit("}", 1)[-1] in CATCHING and names.get(definition.get("messageRef")):
            found.append((names[definition.get("messageRef")], event.get("id"), event.sourceline))
    return found


def message_forms(files, trees, forms_dir: Path, load_form, report) -> dict:
    """{message name: schema} of the staff messages the diagrams in `files` wait for and that have a
    form; `report(file, element_id, line, message, code=None, params=None)` gets what is wrong with one
    (`load_form(forms_dir, name)`: (schema, None) or (None, (message, code, params)))."""
    forms = {}
    for file in files:
        for name, element_id, line in awaited_by_staff(trees[file]):
            if name in forms or not (Path(forms_dir) / f"{name}.json").exists():
                continue
            schema, reason = load_form(Path(forms_dir), name)
            reason = reason or (_sent_by_problem(schema),)      # (message, code, params), or (message or None,)
            if reason[0]:
                report(file, element_id, line, f"message {name!r}: {reason[0]}", *reason[1:])
            else:
                forms[name] = schema
    return forms


def _sent_by_problem(schema: dict):
    roles = schema.get(SENT_BY)
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
        return f'{SENT_BY} must list the roles that may send it, e.g. ["customer_service"]'
    return None


def sent_by(schema: dict) -> set:
    return set(schema.get(SENT_BY) or ())
