"""The registry's check problems as sentences in the page's language that say what to change where.

The engine reports each problem with a code and parameters (registry.Problem) and an English message for
the CLI and the API; this table gives each code its translated sentence. A problem with no code here
(ENGINE: an engine message we do not know, or one of another module's checks) is shown as the engine's
text with the element named."""
from flask_babel import gettext as _, lazy_gettext as _l

from ...engine.registry import ENGINE

# The `what` of an expression problem (registry.lint_expressions, lint_decision_cells).
WHAT = {"condition": _l("condition"), "script": _l("script"), "timer": _l("deadline (timer expression)"),
        "expression": _l("expression"), "input expression": _l("input expression"),
        "input cell": _l("input cell"), "output cell": _l("output cell")}

TEXTS = {
    # diagrams and decision tables: expressions
    "expression_empty": _l("The %(what)s of %(element)s is empty: write it in the modeler."),
    "expression_refused": _l("The %(what)s of %(element)s cannot run: %(detail)s. Correct it in the modeler: "
                             "%(expression)s"),
    "timer_not_quoted": _l("The deadline of %(element)s, %(expression)s, is read as Python: put it in quotes, "
                           "\"%(expression)s\", or use a helper such as hours_after(received_at, 24)."),
    "property_refused": _l("The property %(property)s of %(element)s cannot run: %(detail)s. Correct its value "
                           "in the modeler: %(expression)s"),
    # decision tables
    "dmn_cell_not_python": _l("The input cell %(cell)s (%(element)s) is not Python (cells are Python, not FEEL): "
                              "write a value such as \"high\", a comparison such as > 50000, or ? for the input, "
                              "e.g. 50000 <= ? <= 100000."),
    "dmn_cell_glued": _l("The input cell %(cell)s (%(element)s) is glued to the input as %(glued)s: use ? for the "
                         "input, e.g. ? %(cell)s."),
    "dmn_cell_tuple": _l("The input cell %(cell)s (%(element)s) compares %(input)s with a tuple, which is never "
                         "equal: write one rule per value, or ? in (%(cell)s)."),
    "dmn_cell_unquoted": _l("The input cell %(cell)s (%(element)s) of a text column is a variable name: put the "
                            "text in quotes, \"%(cell)s\"."),
    "dmn_output_feel": _l("The output cell %(cell)s (%(element)s) is FEEL; cells are Python: write %(python)s."),
    "dmn_output_malformed": _l("The output cell %(cell)s (%(element)s) cannot be read: %(detail)s. Correct it in "
                               "the DMN modeler."),
    "dmn_hit_policy": _l("The decision table %(element)s has the hit policy %(policy)s, which the engine does not "
                         "run as DMN defines it: choose FIRST, UNIQUE or COLLECT without aggregation."),
    "dmn_no_rule": _l("The decision table %(element)s has no rule: add at least one."),
    "dmn_no_catch_all": _l("The last rule of the decision table (%(element)s) must match every case: write - in "
                           "each of its input cells, otherwise no result is written when no rule matches."),
    "not_dmn": _l("This is not a DMN decision table (DMN 1.1, 1.2 or 1.3): upload the .dmn file the DMN modeler "
                  "saved."),
    "dmn_decision_count": _l("A DMN file must hold exactly one decision; this one holds %(count)s: keep one "
                             "decision per file."),
    "duplicate_decision_id": _l("The decision id %(decision)s is also in %(other_file)s: give this decision "
                                "another id, or upload this file in place of %(other_file)s."),
    "dmn_unreadable": _l("The engine cannot read the decision table %(element)s: %(detail)s is missing. Open it "
                         "in the DMN modeler and complete it."),
    "decision_not_found": _l("The business-rule task %(element)s calls the decision %(decision)s, which no "
                             "decision table holds: correct the called decision id, or upload its .dmn file."),
    # forms
    "form_missing": _l("The user task %(element)s has no form: add %(form_file)s to %(folder)s/, or correct the "
                       "task's id."),
    "form_not_json": _l("The form %(form_file)s of %(element)s is not valid JSON (%(detail)s, line %(form_line)s): "
                        "correct the file in %(folder)s/."),
    "form_not_schema": _l("The form %(form_file)s of %(element)s is not a valid JSON Schema 2020-12 (%(detail)s): "
                          "correct the file in %(folder)s/."),
    "form_not_object": _l("The form %(form_file)s of %(element)s must have \"type\": \"object\": correct the file "
                          "in %(folder)s/."),
    "form_option_names": _l("The form %(form_file)s of %(element)s names %(names)s choices of the field %(field)s "
                            "in %(key)s, but the field offers %(values)s: give one name per choice, in their order, "
                            "in %(folder)s/."),
    "survey_form_name": _l("notify_customer('%(template)s') in %(element)s names the survey form %(form)s, which "
                           "is not a form file name (a-z, 0-9, _): correct the script."),
    "survey_form_missing": _l("notify_customer('%(template)s') in %(element)s names the survey form "
                              "%(form_file)s, which is missing in %(folder)s/: add it, or correct the script."),
    # the file itself
    "not_uploadable": _l("Only .bpmn (a diagram) and .dmn (a decision table) files can be uploaded: choose the "
                         "file the modeler saved."),
    "not_decodable": _l("The file is not valid UTF-8 (or the encoding its XML declaration names): %(detail)s. "
                        "Save it again as UTF-8."),
    "not_well_formed": _l("The file is not well-formed XML at line %(line)s: %(detail)s. Correct it there, or "
                          "save it again from the modeler."),
    "not_bpmn": _l("This is not a BPMN 2.0 diagram (its root element is not bpmn:definitions): upload the .bpmn "
                   "file the modeler saved."),
    "schema_invalid": _l("The diagram does not follow the BPMN 2.0 schema at line %(line)s (%(element)s): "
                         "%(detail)s. Correct that element in the modeler."),
    "no_diagrams": _l("No .bpmn diagram was found."),
    # the diagram's structure
    "duplicate_process_id": _l("The process id %(process)s is also in %(other_file)s: two diagrams cannot hold the "
                               "same process. Give the process in %(file)s another id, or remove it from one of "
                               "the files."),
    "lane_unknown": _l("The lane %(lane)s (%(element)s) is not a role the application knows (known: %(known)s): "
                       "rename the lane to one of them."),
    "task_without_lane": _l("The task %(element)s is in no role lane: move it into the lane of the role that "
                            "does it."),
    "flow_without_condition": _l("The path %(element)s leaves an exclusive gateway without a condition and is not "
                                 "its default path: give it a condition, or make it the gateway's default path."),
    "process_not_found": _l("The called process %(process)s does not exist: correct the called element of "
                            "%(element)s, or upload the diagram of that process first."),
    "no_start_event": _l("The process %(element)s has no start event: add one in the modeler."),
    "process_not_executable": _l("The process %(process)s is not marked executable: tick \"Executable\" in the "
                                 "modeler's properties of the process."),
    "unsupported_element": _l("The element %(element)s is of a kind the engine does not run: replace it with a "
                              "supported task or event."),
    "script_missing": _l("The script task %(element)s has no script: write its script in the modeler."),
    "timer_invalid": _l("The timer of %(element)s cannot be read: %(detail)s. Correct its expression in the "
                        "modeler."),
    "call_without_process": _l("The call activity %(element)s names no process to call: set its called element "
                               "in the modeler."),
    "subprocess_start_end": _l("The subprocess %(element)s must have exactly one start event and an end event: "
                               "add them in the modeler."),
}


def element_label(problem) -> str:
    """The element as a process owner finds it in the modeler: its name and id (the file when none)."""
    if problem.element_name and problem.element_id:
        return f"“{problem.element_name}” ({problem.element_id})"
    return problem.element_id or problem.file


def problem_text(problem) -> str:
    """The problem in the page's language; the engine's own text, with the element named, when its code
    has no sentence here."""
    template = TEXTS.get(problem.code) if problem.code != ENGINE else None
    params = {**problem.params, "element": element_label(problem), "file": problem.file,
              "line": problem.line or "?"}
    if "what" in params:
        params["what"] = str(WHAT.get(params["what"], params["what"]))
    if template is not None:
        try:
            return str(template) % params
        except (KeyError, TypeError, ValueError):
            pass
    return _("%(element)s: %(message)s", element=element_label(problem), message=problem.message)
