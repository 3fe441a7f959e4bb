"""The registry of job kinds: the machinery (runner.py) is generic, a kind says what one item does.

A kind's `run(ctx, job, item)` does one item and returns (outcome, message): OUTCOMES below, the message
for the result list (no personal data). It must be safe to run again for an item whose effect was
committed but whose outcome was not (a runner that died between the two): either the item's effect and
nothing else happen in it, or the verb checks that it is done already (a migration finds the complaint on
the target version: "already"). `finish(ctx, job)` runs once every item has an outcome (again after a
crash: make it idempotent) and returns the name of the result file it wrote (files.JobFiles), or None."""
from dataclasses import dataclass
from typing import Callable, Optional

DONE, ALREADY, REFUSED, FAILED = "done", "already", "refused", "failed"
OUTCOMES = (DONE, ALREADY, REFUSED, FAILED)


@dataclass(frozen=True)
class Kind:
    name: str
    roles: tuple                     # who may start one, follow it and fetch its result
    run: Callable                    # (ctx, job, item) -> (outcome, message or None)
    finish: Optional[Callable] = None     # (ctx, job) -> result file name or None
    batch: int = 10                  # items per transaction of results (and per lease renewal)
    lists_items: bool = True         # its result list is worth showing item by item


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def starter_roles() -> tuple:
    """Every role that may start some kind of job (the /jobs pages' role check)."""
    return tuple(sorted({role for kind in KINDS.values() for role in kind.roles}))
