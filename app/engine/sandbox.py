"""The sandbox every process expression runs in: conditions, scripts, timers, pre/post scripts.

A diagram is written by a process owner, not by a programmer we trust with the server. So its Python
is compiled by RestrictedPython with a stricter policy (`ProcessPolicy`) and runs with the guards of
guards.py, which refuse at run time what no compiler can see (sizes, time, memory):

- refused when compiling: imports, names and attributes starting with "_" (dunders), frame, code and
  generator attributes, `.format`/`.format_map`/`.mro`, while loops, classes, generators (yield),
  global, and the names in FORBIDDEN_NAMES (getattr, type, open, eval, exec, compile, globals, ...);
  constant expressions over a limit (`'a' * 10**10`, `10**10**10`, `range(10**10)`, f-string widths);
- available: the data, the project's helpers, and only the builtins in guards.BUILTIN_NAMES.

`check(source, mode)` is what `flask processes check` and the upload page report. The same compile,
cached per source text (so once per process version), is what runs: whatever the check refuses also
fails at run time when a diagram bypasses the check.
"""
import ast
import re
import textwrap
from functools import lru_cache
from typing import NamedTuple, Optional

from RestrictedPython import compile_restricted
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from .guards import (FORBIDDEN_ATTRIBUTES, OPS, NotAllowed, bounded_pow, bounded_range, check_binop,
                     check_format_spec)

# Names a process expression may never use, even as a variable: what they would reach is refused.
FORBIDDEN_NAMES = frozenset({
    "getattr", "setattr", "delattr", "hasattr", "type", "vars", "dir", "open", "eval", "exec", "compile",
    "globals", "locals", "breakpoint", "input", "help", "object", "super", "memoryview", "classmethod",
    "staticmethod", "property", "print", "printed", "builtins", "exit", "quit", "format",
})
# Operators whose result can be far larger than their operands: they call guards.check_binop first.
GUARDED_OPS = {ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%"}
STATIC_SIZE = 10_000     # constants the check computes, to see whether an expression of them breaks a limit


# ---- the compiler ------------------------------------------------------------------------------------
class ProcessPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, stricter (see FORBIDDEN_*), and with the resource guards woven in:
    the growing operators call _binop_, f-string fields call _format_, functions the expression defines
    call _tick_ on every call. Constant expressions that would break a limit are refused here already."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._static_memo = {}

    # -- refused outright
    def visit_Import(self, node):
        self.error(node, f"import is not allowed ({ast.unparse(node)})")

    visit_ImportFrom = visit_Import

    def visit_While(self, node):
        self.error(node, "while loops are not allowed; loop with for over a list or range()")

    def visit_ClassDef(self, node):
        self.error(node, f"class definitions are not allowed (class {node.name})")

    def visit_Yield(self, node):
        self.error(node, "generators (yield) are not allowed")

    visit_YieldFrom = visit_Yield

    def visit_Global(self, node):
        self.error(node, "global statements are not allowed")

    def visit_Name(self, node):
        if node.id in FORBIDDEN_NAMES:
            self.error(node, f'the name "{node.id}" is not available in process expressions')
            return node
        return super().visit_Name(node)

    def visit_Attribute(self, node):
        if node.attr in FORBIDDEN_ATTRIBUTES:
            hint = "; use an f-string" if node.attr.startswith("format") else ""
            self.error(node, f'the attribute ".{node.attr}" is not allowed{hint}')
        return super().visit_Attribute(node)

    def visit_Subscript(self, node):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith("__"):
            self.error(node, f"the key {key.value!r} is not allowed (dunder item access)")
        return super().visit_Subscript(node)

    # -- guarded
    def visit_BinOp(self, node):
        self._static(node)            # a constant expression over a limit is reported now
        node = self.node_contents_visit(node)
        sym = GUARDED_OPS.get(type(node.op))
        if sym is None:
            return node
        call = ast.Call(func=ast.Name("_binop_", ast.Load()), args=[ast.Constant(sym), node.left, node.right],
                        keywords=[])
        copy_locations(call, node)
        return call

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in ("range", "pow") and not node.keywords:
            args = [self._static(a) for a in node.args]
            if args and all(a is not _NOT_STATIC for a in args):
                try:
                    (bounded_range if node.func.id == "range" else bounded_pow)(*args)
                except NotAllowed as exc:
                    self.error(node, f"{ast.unparse(node)[:60]}: {exc}")
                except (TypeError, ValueError):
                    pass
        return super().visit_Call(node)

    def visit_FormattedValue(self, node):
        spec = self._static_spec(node.format_spec)
        if spec is not None:
            try:
                check_format_spec(spec)
            except NotAllowed as exc:
                self.error(node, str(exc))
        node = self.node_contents_visit(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant("")
        value = ast.Call(func=ast.Name("_format_", ast.Load()),
                         args=[node.value, ast.Constant(node.conversion), spec], keywords=[])
        copy_locations(value, node.value)
        new = ast.FormattedValue(value=value, conversion=-1, format_spec=None)
        copy_locations(new, node)
        return new

    def visit_FunctionDef(self, node):
        node = super().visit_FunctionDef(node)
        tick = ast.Expr(ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[]))
        copy_locations(tick, node)
        node.body.insert(0, tick)
        return node

    def visit_Lambda(self, node):
        node = super().visit_Lambda(node)
        tick = ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[])
        body = ast.BoolOp(op=ast.Or(), values=[tick, node.body])      # _tick_() returns None
        copy_locations(tick, node.body)
        copy_locations(body, node.body)
        node.body = body
        return node

    def _static_spec(self, spec):
        """The text of an f-string format spec if it is constant (`{x:>{10**9}}` included), else None."""
        if not isinstance(spec, ast.JoinedStr):
            return None
        parts = []
        for part in spec.values:
            value = self._static(part.value if isinstance(part, ast.FormattedValue) else part)
            if value is _NOT_STATIC:
                return None
            parts.append(str(value))
        return "".join(parts)

    # -- constant folding with the run-time limits, so `'a' * 10**10` is refused by the check
    def _static(self, node):
        key = id(node)
        if key in self._static_memo:          # (node, value): holding the node keeps its id unique
            return self._static_memo[key][1]
        value = _NOT_STATIC
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bytes)):
            value = node.value
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self._static(node.operand)
            if isinstance(operand, (int, float)):
                value = -operand if isinstance(node.op, ast.USub) else operand
        elif isinstance(node, (ast.List, ast.Tuple)):
            items = [self._static(e) for e in node.elts]
            if all(i is not _NOT_STATIC for i in items) and len(items) < 1000:
                value = items if isinstance(node, ast.List) else tuple(items)
        elif isinstance(node, ast.BinOp) and type(node.op) in GUARDED_OPS:
            left, right = self._static(node.left), self._static(node.right)
            if left is not _NOT_STATIC and right is not _NOT_STATIC:
                sym = GUARDED_OPS[type(node.op)]
                try:
                    if check_binop(sym, left, right) <= STATIC_SIZE:     # larger results: left to run time
                        value = OPS[sym](left, right)
                except NotAllowed as exc:
                    self.error(node, f"{ast.unparse(node)[:60]}: {exc}")
                except (ArithmeticError, TypeError, ValueError):
                    pass
        self._static_memo[key] = (node, value)
        return value


_NOT_STATIC = object()


class Compiled(NamedTuple):
    code: Optional[object]
    problems: tuple          # ((line or None, message), ...)


LINE = re.compile(r"^Line (\d+|None): (.*)$", re.S)


def _normalise(source: str, mode: str) -> str:
    # Modelers indent the text of an XML element; the line numbers must stay those of the element.
    return source.strip() if mode == "eval" else textwrap.dedent(source).rstrip()


@lru_cache(maxsize=4096)
def compiled(source: str, mode: str) -> Compiled:
    """Compile once per distinct source text (in effect once per process version)."""
    try:
        code = compile_restricted(_normalise(source, mode), filename="<string>", mode=mode, policy=ProcessPolicy)
        return Compiled(code, ())
    except SyntaxError as exc:
        problems = []
        for message in (exc.msg if isinstance(exc.msg, tuple) else (exc.msg,)):
            found = LINE.match(str(message))
            line = int(found.group(1)) if found and found.group(1) != "None" else (exc.lineno or 1)
            text = found.group(2) if found else str(message)
            problems.append((line, re.sub(r" at statement: .*$", "", text, flags=re.S)))
        return Compiled(None, tuple(problems))
    except (RecursionError, MemoryError):
        return Compiled(None, ((1, "the expression is nested too deeply"),))
    except ValueError as exc:         # e.g. a NUL character in the source
        return Compiled(None, ((1, str(exc)),))


def check(source: str, mode: str) -> list:
    """[(line within the source, message naming the refused construct)]; empty when it may run."""
    return list(compiled(source, mode).problems)


class SandboxSyntaxError(SyntaxError):
    """A refused construct found when compiling at run time (a diagram that bypassed the check)."""


def code_for(source: str, mode: str):
    found = compiled(source, mode)
    if found.code is None:
        lines = source.splitlines() or [""]
        line = min(max(found.problems[0][0] or 1, 1), len(lines))
        message = "; ".join(f"line {n or 1}: {text}" for n, text in found.problems)
        raise SandboxSyntaxError(message, ("<string>", line, 0, lines[line - 1]))
    return found.code
