"""Verbs over SpiffWorkflow with no database in them: parse, start, load, save, run a task,
fire timers, deliver a message, compact before saving, and read the facts the app stores in flat tables
(ready human tasks, timers, the messages a workflow waits for)."""
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Optional
from uuid import UUID

from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.bpmn.util.diff import SpecDiff, diff_dependencies, diff_workflow, migrate_workflow
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition as SpiffMessageEventDefinition

from .scripting import EFFECT_HELPERS


# User task properties (spiffworkflow:properties), each an expression on the task's data:
ASSIGNEE = "assignee"       # the username the task is given to
SUBJECT = "subject"         # what this task is about, in a line, e.g. the measure's title and due date
TASK_PROPERTIES = (ASSIGNEE, SUBJECT)
log = logging.getLogger(__name__)


def new_parser() -> SpiffBpmnParser:
    return SpiffBpmnParser(validator=VALIDATOR)


class SpecRef:
    """Stands for an already restored spec inside a serialized workflow (never itself serialized)."""


class SpecStoreSerializer(BpmnWorkflowSerializer):
    """Serializes a workflow without its spec (SpeclessWorkflowConverter): the spec is stored once per
    process version, and restored once per process: specs are immutable, so every workflow of a version
    shares them."""

    def __init__(self, registry):
        super().__init__(registry)
        self._specs = {}     # content hash -> (spec, {name: subprocess spec})
        self._refs = {}      # SpecRef key -> spec
        registry.register(SpecRef, lambda ref: {}, lambda dct: self._refs[dct["key"]])

    def spec_to_json(self, spec, subprocess_specs) -> tuple[str, str]:
        return (json.dumps(self.registry.convert(spec)),
                json.dumps({name: self.registry.convert(s) for name, s in subprocess_specs.items()}))

    def specs_from_json(self, spec_json, subprocess_specs_json):
        subs = json.loads(subprocess_specs_json)
        return (self.registry.restore(json.loads(spec_json)),
                {name: self.registry.restore(s) for name, s in subs.items()})

    def cached_specs(self, key, spec_json, subprocess_specs_json):
        """(spec, subprocess specs) of the version whose content hash is `key`, restored once."""
        if key not in self._specs:
            spec, subs = self.specs_from_json(spec_json, subprocess_specs_json)
            self._refs.update({f"{key}/{name}": s for name, s in subs.items()}, **{key: spec})
            self._specs[key] = (spec, subs)
        return self._specs[key]

    def load(self, workflow_json, key, spec_json, subprocess_specs_json):
        _, subs = self.cached_specs(key, spec_json, subprocess_specs_json)
        dct = json.loads(workflow_json)
        dct["spec"] = {"typename": "SpecRef", "key": key}
        dct["subprocess_specs"] = {name: {"typename": "SpecRef", "key": f"{key}/{name}"} for name in subs}
        self.migrate(dct)
        return self.from_dict(dct)


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """A workflow's state without its spec and called-process specs, which are stored once per version:
    SpiffWorkflow's own converter converts the whole spec on every dump (it was most of a dump's time)."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


def _make_serializer() -> SpecStoreSerializer:
    registry = BpmnWorkflowSerializer.configure({**DEFAULT_CONFIG, BpmnWorkflow: SpeclessWorkflowConverter})
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]))
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda d: date.fromisoformat(d["value"]))
    return SpecStoreSerializer(registry)


serializer = _make_serializer()


def specs(key, spec_json, subprocess_specs_json):
    """(spec, subprocess specs) of a version, restored once per process."""
    return serializer.cached_specs(key, spec_json, subprocess_specs_json)


def start(key, spec_json, subprocess_specs_json, data, script_engine) -> BpmnWorkflow:
    spec, subs = serializer.cached_specs(key, spec_json, subprocess_specs_json)
    wf = BpmnWorkflow(spec, subs, script_engine=script_engine)
    # Task data must be seeded on the start task: workflow data is not visible to tasks.
    wf.get_next_task(state=TaskState.READY).data.update(data)
    wf.do_engine_steps()
    return wf


def load(workflow_json, key, spec_json, subprocess_specs_json, script_engine) -> BpmnWorkflow:
    """`key` names the version's spec (its content hash), restored once per process."""
    wf = serializer.load(workflow_json, key, spec_json, subprocess_specs_json)
    wf.script_engine = script_engine
    return wf


def dump(wf: BpmnWorkflow) -> str:
    return serializer.serialize_json(wf)


def find_task(wf, task_id: str):
    try:
        return wf.get_task_from_id(UUID(task_id))
    except (TaskNotFoundException, ValueError):
        return None


def run_human_task(wf, task, data: dict):
    task.data.update(data)
    task.run()
    wf.do_engine_steps()


def fire_due_timers(wf):
    # A fired timer makes its branch READY; the engine must then run again (see the engine notes).
    wf.refresh_timers()
    wf.do_engine_steps()


def send_message(wf, name: str, payload: dict) -> bool:
    """Deliver the message `name` (caught by a boundary, catch or start event, or an event-based
    gateway; the diagram's messageVariable receives `payload`) and run the engine. False, and nothing
    changed, when the workflow does not wait for it."""
    if name not in awaited_messages(wf):
        return False
    # The parser builds spiff message definitions, and an event matches by class and name.
    wf.send_event(BpmnEvent(SpiffMessageEventDefinition(name), payload))
    wf.do_engine_steps()
    return True


def reset_timers(wf, timer_ids):
    """Forget the computed due time of these waiting timers so their expressions are evaluated
    again (SpiffWorkflow evaluates a timer whose value is missing on the next refresh)."""
    for timer_id in timer_ids:
        task = find_task(wf, timer_id)
        if task is not None and task.state == TaskState.WAITING:
            task.internal_data.pop("event_value", None)
    fire_due_timers(wf)


@dataclass
class ReadyTask:
    id: str
    element_id: str
    name: str
    lane: Optional[str]
    has_form: bool
    scope_ids: tuple      # this task and the call activities around it: where its deadlines attach


@dataclass
class TimerInfo:
    id: str
    element_id: str
    name: str
    host_id: Optional[str]
    host_element_id: Optional[str]
    due_at: Optional[datetime]


def _scope_ids(wf, task):
    ids = [str(task.id)]
    sub = task.workflow
    while sub is not wf and getattr(sub, "parent_task_id", None) is not None:
        ids.append(str(sub.parent_task_id))
        parent = wf.get_task_from_id(sub.parent_task_id)
        sub = parent.workflow
    return tuple(ids)


def ready_human_tasks(wf) -> list[ReadyTask]:
    return [ReadyTask(id=str(t.id), element_id=t.task_spec.bpmn_id, name=t.task_spec.bpmn_name or t.task_spec.bpmn_id,
                      lane=t.task_spec.lane, has_form=isinstance(t.task_spec, UserTask), scope_ids=_scope_ids(wf, t))
            for t in wf.get_tasks(state=TaskState.READY, manual=True)]


def property_expression(spec, name) -> Optional[str]:
    """The expression a user task's property `name` holds (spiffworkflow:properties), e.g. the
    `assignee` measure['owner']."""
    return ((getattr(spec, "extensions", None) or {}).get("properties") or {}).get(name) or None


def task_properties(wf, task_id: str) -> dict:
    """{name: text} of the TASK_PROPERTIES a ready task's diagram gives it, evaluated on its data (the
    runtime asks once, when it first sees the task). An expression that fails or gives no text is left
    out and logged: a process owner's expression never stops the procedure (e.g. the task then stays in
    its lane's queue for a supervisor to assign). It may read the data and call no helper that acts."""
    task = find_task(wf, task_id)
    found = {}
    for name in TASK_PROPERTIES:
        expression = property_expression(task.task_spec, name) if task is not None else None
        if expression is None:
            continue
        try:
            value = wf.script_engine.evaluate(task, expression, external_context=_NO_EFFECTS)
        except Exception as exc:        # noqa: BLE001
            log.warning("the %s of task %s (%s) could not be evaluated: %s", name, task.task_spec.bpmn_id,
                        expression, exc)
            continue
        if isinstance(value, str) and value.strip():
            found[name] = value.strip()
    return found


def _refuse_effect(*_args, **_kwargs):
    raise PermissionError("a task property may not send messages or write records")


# The helpers that act (customer messages, records) shadowed while a task property is evaluated.
_NO_EFFECTS = {name: _refuse_effect for name in EFFECT_HELPERS}


def _all_tasks(wf):
    # The task dicts of the workflow and its subprocesses: cheaper than the tree iterator, and it
    # sees finished tasks below unfinished ones (which get_tasks(state=COMPLETED) misses).
    yield from wf.tasks.values()
    for sub in wf.subprocesses.values():
        yield from sub.tasks.values()


def completed_ids(wf) -> frozenset:
    """Ids of the completed tasks; taken before a change, it tells what the change completed."""
    return frozenset(t.id for t in _all_tasks(wf) if t.state == TaskState.COMPLETED)


def newly_completed(wf, before: frozenset) -> list:
    """The tasks a change completed, in the order they completed (tree order on equal times). By task
    id rather than by clock, so a frozen or coarse clock cannot count a task twice."""
    done = [t for t in _all_tasks(wf) if t.state == TaskState.COMPLETED and t.id not in before]
    return sorted(done, key=lambda t: t.last_state_change)


def visited_elements(done) -> list[tuple]:
    """(process id, element id, task id) of the diagram elements among `done` (newly completed tasks)."""
    return [(t.workflow.spec.name, t.task_spec.bpmn_id, str(t.id))
            for t in done if getattr(t.task_spec, "bpmn_id", None)]


def _event_definitions(spec) -> list:
    """The event definitions of a task spec (an event-based gateway holds those of its events)."""
    ed = getattr(spec, "event_definition", None)
    return ed.event_definitions if isinstance(ed, MultipleEventDefinition) else [ed]


def _is_timer(spec):
    return any(isinstance(d, TimerEventDefinition) for d in _event_definitions(spec))


def _message_names(spec) -> list[str]:
    return [d.name for d in _event_definitions(spec) if isinstance(d, MessageEventDefinition)]


def awaited_messages(wf) -> list[str]:
    """The names of the messages the workflow waits for now, in its subprocesses too."""
    return sorted({name for t in wf.get_tasks(state=TaskState.WAITING) for name in _message_names(t.task_spec)})


def start_messages(spec) -> frozenset:
    """The names of the messages that start a process (its message start events)."""
    return frozenset(name for ts in spec.task_specs.values() if isinstance(ts, StartEvent)
                     for name in _message_names(ts))


def _timer_info(t) -> TimerInfo:
    value = t.internal_data.get("event_value")
    if isinstance(value, dict):   # cycle timer
        value = value["next"] if value["cycles"] != 0 else None
    host = _deadline_host(t)
    return TimerInfo(id=str(t.id), element_id=t.task_spec.bpmn_id, name=t.task_spec.bpmn_name or t.task_spec.bpmn_id,
                     host_id=str(host.id) if host else None, host_element_id=host.task_spec.bpmn_id if host else None,
                     due_at=TimerEventDefinition.get_datetime(value) if value else None)


def _deadline_host(t):
    """The task a timer's deadline binds: the task its boundary event sits on; for a timer waiting
    further down the branch a non-interrupting boundary event started (e.g. at the new completion
    date management set for a late task), the task that boundary event sits on. Tasks on the way
    up that carry boundary events of their own are passed over; a timer on the main path, or after
    an interrupting boundary event (which replaced its task), binds none."""
    node = t
    while node.parent is not None:
        if isinstance(node.parent.task_spec, BoundaryEventSplit) and isinstance(node.task_spec, BoundaryEvent):
            if node is not t and node.task_spec.cancel_activity:
                return None
            return next((c for c in node.parent.children if not isinstance(c.task_spec, BoundaryEvent)), None)
        node = node.parent
    return None


def waiting_timers(wf) -> list[TimerInfo]:
    return [_timer_info(t) for t in wf.get_tasks(state=TaskState.WAITING) if _is_timer(t.task_spec)]


def fired_timers(done) -> list[TimerInfo]:
    """The timers among `done` (newly completed tasks): fired in this change, e.g. set and already due."""
    return [_timer_info(t) for t in done if _is_timer(t.task_spec) and _fired(t)]


def deadline_outcome(wf, timer_id: str, host_id: Optional[str]) -> str:
    """How a deadline the app knew as open ended, once its timer no longer waits: "missed" (the timer
    fired), "met" (its task, or for a timer without one its event gateway, was done first) or
    "cancelled" (it was cut short, e.g. by a withdrawal)."""
    if timer_fired(wf, timer_id):
        return "missed"
    done = task_outcome(wf, host_id if host_id else timer_id) == "completed"
    return "met" if done else "cancelled"


def timer_fired(wf, task_id: str) -> bool:
    """Whether the timer task the app knew as waiting has fired (rather than being cancelled, or left
    by another event of its event-based gateway)."""
    task = find_task(wf, task_id)
    return task is not None and _fired(task)


def _fired(task) -> bool:
    """A completed timer event fired; an event-based gateway completes whichever of its events came
    first, and its timer fired only when the timer's branch was taken (e.g. not a message)."""
    if task.state != TaskState.COMPLETED:
        return False
    spec = task.task_spec
    if not isinstance(spec, EventBasedGateway):
        return True
    timers = {spec.outputs[i] for i, d in enumerate(spec.event_definition.event_definitions)
              if isinstance(d, TimerEventDefinition)}
    return any(child.task_spec in timers for child in task.children)


def task_outcome(wf, task_id: str) -> str:
    """What became of a task the app knew as open or waiting: completed, cancelled, ready or waiting."""
    task = find_task(wf, task_id)
    if task is None:
        return "cancelled"
    if task.state == TaskState.COMPLETED:
        return "completed"
    if task.state == TaskState.READY:
        return "ready"
    if task.state in (TaskState.WAITING, TaskState.STARTED):
        return "waiting"
    return "cancelled"


def is_user_task_spec(spec) -> bool:
    return isinstance(spec, UserTask)


def is_call_activity(spec) -> bool:
    return isinstance(spec, SubWorkflowTask)


# ---- versions: what changed, and moving a running workflow onto a new version -----------------------
LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def _label(spec):
    return f"{spec.bpmn_name or spec.bpmn_id} ({spec.bpmn_id})"


def _changes(diff: SpecDiff) -> dict:
    visible = lambda spec: getattr(spec, "bpmn_id", None) is not None   # noqa: E731  (skip engine-internal specs)
    return {"added": sorted(s.bpmn_id for s in diff.added if visible(s)),
            "removed": sorted(s.bpmn_id for s in diff.removed if visible(s)),
            "changed": {s.bpmn_id: sorted(attrs) for s, attrs in diff.changed.items() if visible(s)}}


def spec_changes(old_spec, old_subs, new_spec, new_subs) -> dict:
    """Per process: the elements added, removed and changed (with the changed attributes)."""
    out = {old_spec.name: _changes(SpecDiff(serializer.registry, old_spec, new_spec))}
    diffs, added = diff_dependencies(serializer.registry, old_subs, new_subs)
    for name, diff in diffs.items():
        out[name] = _changes(diff) if diff is not None else {"process removed": True}
    for name in added:
        out[name] = {"process added": True}
    return out


def migrate(wf, new_spec, new_subs) -> list:
    """Move `wf` onto a new version in place. Returns the reasons it cannot be moved; when there are
    any, `wf` is left unusable and must be discarded. Waiting timers are not reset, so running
    deadlines keep their due times."""
    top, sub_diffs = diff_workflow(serializer.registry, wf, new_spec, new_subs)
    reasons = []
    for diff, workflow_ in [(top, wf)] + [(d, wf.subprocesses[i]) for i, d in sub_diffs.items()]:
        if diff is None:
            reasons.append(f"the called process {workflow_.spec.name} does not exist in the new version")
            continue
        for task in diff.removed:
            if getattr(task.task_spec, "bpmn_id", None) is None:
                continue     # engine-internal (a task's boundary-event split): removed with its element, named by it
            if task.has_state(LIVE):
                reasons.append(f"its current step {_label(task.task_spec)} was removed")
            elif task.state == TaskState.COMPLETED:
                reasons.append(f"its completed step {_label(task.task_spec)} was removed")
    compacted = _compacted_diffs(wf, new_spec, new_subs)   # the steps compaction dropped count as well
    reasons += _compacted_reasons(compacted, completed=True)
    if reasons:
        return sorted(set(reasons))
    migrate_workflow(top, wf, new_spec, reset_mask=TaskState.READY)
    for sp_id, diff in sub_diffs.items():
        sub = wf.subprocesses[sp_id]
        migrate_workflow(diff, sub, new_subs[sub.spec.name], reset_mask=TaskState.READY)
    wf.subprocess_specs = new_subs
    orphans = [t for t in wf.get_tasks() if t.task_spec.name not in t.workflow.spec.task_specs]
    orphans = {f"the step {_label(t.task_spec)} has no counterpart in the new version" for t in orphans}
    orphans.update(_compacted_reasons(compacted, completed=False))
    if orphans:
        return sorted(orphans)
    _rename_compacted(wf, compacted)
    wf.do_engine_steps()
    return []


# ---- compaction: a stored workflow keeps only what a later change reads ------------------------------
# SpiffWorkflow keeps every finished task and every finished call-activity subprocess, so each dissatisfied
# round added 12-17 KB that every later change deserialized and serialized again. Its only API for this is
# BpmnWorkflow.delete_subprocess (made for resets); pruning the task tree is ours. The history stays in our
# own tables (audit_event, element_visit, human_task, deadline).
DONE = TaskState.COMPLETED | TaskState.CANCELLED   # ERROR is not dropped: a change that errs is rolled back
COMPACTED = "compacted"   # root task's internal data: {process: {task spec name: completed}} of dropped tasks


def compact(wf) -> BpmnWorkflow:
    """Drop the subprocesses of finished call activities and the finished tasks nothing reads any more
    (see _needed). Run it as the last step of a change, after everything the change reads from the
    workflow (newly completed tasks, task and deadline outcomes, changed data) and right before dump:
    a task completed and dropped in the same change is gone, and task_outcome would call it cancelled.
    Messages thrown inside the workflow that no event caught go too: SpiffWorkflow queues them for
    get_events(), which the app never calls, and never delivers them to an event that waits later."""
    dropped = _drop_finished_subprocesses(wf)
    for workflow_ in [wf, *wf.subprocesses.values()]:
        if _prunable(workflow_.spec):
            dropped += _prune(workflow_)
    _remember(wf, dropped)
    wf.bpmn_events = []
    return wf


def _drop_finished_subprocesses(wf) -> list:
    """The subprocesses of finished call activities: the data of one that completed is already in its call
    activity's task (copied when it completed), a cancelled one has none to give, and neither runs again."""
    dropped = []
    for sp_id in list(wf.subprocesses):
        sub = wf.subprocesses.get(sp_id)       # gone when its dropped parent subprocess took it along
        if sub is not None and sub.completed and wf.get_task_from_id(sp_id).has_state(DONE):
            dropped += wf.delete_subprocess(wf.get_task_from_id(sp_id))
    return dropped


def _prunable(spec) -> bool:
    """Whether the tree of a process built from this spec may be pruned: loops, multi-instance tasks,
    inclusive gateways, parallel joins and cycle timers read the tasks of earlier passes, so a process
    with any of them keeps its whole tree (it still loses its finished subprocesses)."""
    for ts in spec.task_specs.values():
        if isinstance(ts, (LoopTask, InclusiveGateway)) or (isinstance(ts, ParallelGateway) and len(ts.inputs) > 1):
            return False
        if any(isinstance(d, CycleTimerEventDefinition) for d in _event_definitions(ts)):
            return False
    return True


def _prune(workflow_) -> list:
    """Drop the tasks of one (sub)workflow that _needed leaves out; each kept task hangs from its nearest
    kept ancestor, children in their old order. Data needs no care: every task holds all of its data, and
    the serializer stores it as a delta against whatever its parent now is."""
    keep = _needed(workflow_)
    if len(keep) == len(workflow_.tasks):
        return []
    parents, children = {}, {task_id: [] for task_id in keep}
    stack = [(workflow_.task_tree, None)]       # (task, id of its nearest kept ancestor)
    while stack:
        task, above = stack.pop()
        if task.id in keep:
            parents[task.id] = above
            if above is not None:
                children[above].append(task.id)
            above = task.id
        stack.extend((workflow_.tasks[c], above) for c in reversed(task._children) if c in workflow_.tasks)
    if len(parents) != len(keep):
        return []         # a task outside the tree (none is, in SpiffWorkflow's own use): leave it all alone
    for task_id in keep:
        task = workflow_.tasks[task_id]
        task._parent, task._children = parents[task_id], children[task_id]
    dropped = [task for task in workflow_.tasks.values() if task.id not in keep]
    for task in dropped:
        del workflow_.tasks[task.id]
    if workflow_.last_task is not None and workflow_.last_task.id not in keep:
        workflow_.last_task = None
    return dropped


def _needed(workflow_) -> set:
    """The ids of the tasks a later change may read:
    - the root, and every task not finished (predicted, waiting, ready, started, in error);
    - the parent of each of those: a task takes its parent's data when it becomes ready, and a reset (as in
      a migration) copies it again;
    - above each of those, the nearest boundary event with its split and the split's main task (see
      _anchors); a kept task below a split keeps the split (a boundary join finds its split as an ancestor),
      and a split with an open task keeps all its branches' first tasks (the join looks at them);
    - finished joins (a process's end, parallel gateways) with their parents: the last branch to arrive
      merges the data of the others;
    - call activities that still own a subprocess."""
    keep = {workflow_.task_tree.id}
    subprocesses = workflow_.top_workflow.subprocesses
    for task in workflow_.tasks.values():
        if not task.has_state(DONE):
            keep.add(task.id)
            keep.update(_anchors(task))
        elif isinstance(task.task_spec, UnstructuredJoin):
            keep.update((task.id, task._parent))
        elif task.id in subprocesses:
            keep.add(task.id)
    for task in [workflow_.tasks[task_id] for task_id in keep if task_id in workflow_.tasks]:
        split = task.parent
        if split is not None and isinstance(split.task_spec, BoundaryEventSplit):
            keep.add(split.id)
            if not task.has_state(DONE):
                keep.update(split._children)
    return keep


def _anchors(task) -> list:
    """What an open task, or a timer that will wait below it, looks up above it: its parent, and the nearest
    boundary event on the way up with its split and the split's main task (_deadline_host binds a timer
    to that task, and deadline_outcome asks whether it was done)."""
    found = [task._parent] if task._parent is not None else []
    node = task
    while node.parent is not None:
        split = node.parent
        if isinstance(split.task_spec, BoundaryEventSplit) and isinstance(node.task_spec, BoundaryEvent):
            return found + [node.id, split.id] + [c.id for c in split.children
                                                  if c is not None and not isinstance(c.task_spec, BoundaryEvent)]
        node = split
    return found


def _remember(wf, dropped):
    """Note the steps dropped, per process (and whether one completed there), so that migrate() refuses a
    version that removed one of them just as it did while their tasks were still in the workflow."""
    if not dropped:
        return
    noted = wf.task_tree.internal_data.setdefault(COMPACTED, {})
    for task in dropped:
        steps = noted.setdefault(task.workflow.spec.name, {})
        steps[task.task_spec.name] = steps.get(task.task_spec.name, False) or task.state == TaskState.COMPLETED


def _compacted_diffs(wf, new_spec, new_subs) -> dict:
    """{process: (its SpecDiff onto the new version, or None when that has no such process; the new
    process name; the steps compaction dropped from it)} for the processes compaction dropped steps of."""
    out = {}
    for process, steps in wf.task_tree.internal_data.get(COMPACTED, {}).items():
        top = process == wf.spec.name
        old, new = (wf.spec, new_spec) if top else (wf.subprocess_specs.get(process), new_subs.get(process))
        if old is not None:
            out[process] = (SpecDiff(serializer.registry, old, new) if new is not None else None,
                            new.name if new is not None else process, steps)
    return out


def _compacted_reasons(compacted, completed: bool) -> list:
    """What migrating the dropped steps would have said. `completed`: the reasons that refuse up front (a
    completed step removed, a called process gone); else those found after moving (a step without a spec)."""
    out = []
    for process, (diff, _, steps) in compacted.items():
        if diff is None:
            out += [f"the called process {process} does not exist in the new version"] if completed else []
            continue
        for spec in (s for s in diff.removed if s.name in steps):
            up_front = steps[spec.name] and getattr(spec, "bpmn_id", None) is not None
            if up_front and completed:
                out.append(f"its completed step {_label(spec)} was removed")
            elif not up_front and not completed:
                out.append(f"the step {_label(spec)} has no counterpart in the new version")
    return out


def _rename_compacted(wf, compacted):
    """After a migration, the dropped steps go by their names in the new version."""
    noted = {}
    for process, (diff, new_process, steps) in compacted.items():
        if diff is None:
            continue           # not reached: a process gone from the new version refuses the move
        names = {old.name: new.name for old, new in diff.alignment.items() if new is not None}
        renamed = noted.setdefault(new_process, {})
        for name, done in steps.items():
            renamed[names.get(name, name)] = renamed.get(names.get(name, name), False) or done
    if noted:
        wf.task_tree.internal_data[COMPACTED] = noted
