"""The run-time half of the sandbox: limits, and the guards one evaluation of a process expression runs
with (see sandbox.py for the compile-time half).

RestrictedPython refuses dangerous names and attributes but sets no resource limit. These guards
refuse, *before* computing it, whatever would exceed a limit:

- ints of more than MAX_INT_BITS bits; strings and sequences of more than MAX_SIZE characters/items,
  or that would print as more than MAX_SIZE characters; format widths and precisions over MAX_WIDTH;
- per evaluation: more than ITEM_BUDGET loop items, items consumed by builtins and calls of functions
  the expression defines; more than ALLOC_BUDGET characters/items produced by operators, slices,
  methods and printing; more than CPU_SECONDS of CPU time; and, as a backstop for what no guard sees,
  more than MEMORY_GROWTH bytes of process memory growth (the last two checked every CHECK_EVERY items,
  memory at most every MEMORY_EVERY seconds).

A refusal is sticky: an expression that catches it still fails when it ends (`finish`).
"""
import functools
import math
import operator
import os
import re
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import chain
from typing import Optional
from uuid import UUID

from RestrictedPython.Guards import (full_write_guard, guarded_iter_unpack_sequence, guarded_unpack_sequence,
                                     safer_getattr_raise)

MAX_SIZE = 1_000_000          # characters of a string (or that a value prints as), items of a sequence
MAX_INT_BITS = 4_096          # about 1,200 decimal digits
MAX_WIDTH = 1_000             # widths and precisions in format specs, digits of round()
ITEM_BUDGET = 100_000         # per evaluation: loop items, items consumed by builtins, calls of own functions
ALLOC_BUDGET = 20_000_000     # per evaluation: characters/items produced by operators, slices, methods, printing
CPU_SECONDS = 1.0             # per evaluation
MEMORY_GROWTH = 128 * 2**20   # per evaluation, growth of the process's resident memory
CHECK_EVERY = 16              # items between CPU-time checks
MEMORY_EVERY = 0.005          # CPU seconds between memory checks (reading it costs ~10 µs)
MAX_RENDER_DEPTH = 100        # nesting of containers that str() and f-strings may print

# Attributes refused on any object: string formatting reaches attributes by name; mro reaches `object`;
# int.from_bytes makes an int of any size.
FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map", "mro", "from_bytes"})
# Methods that change a container: a condition or timer must not change the process data.
MUTATORS = frozenset({"append", "extend", "insert", "remove", "pop", "popitem", "clear", "update", "setdefault",
                      "add", "discard", "sort", "reverse", "difference_update", "intersection_update",
                      "symmetric_difference_update"})
OPS = {"+": operator.add, "*": operator.mul, "**": operator.pow, "<<": operator.lshift, "%": operator.mod}
INPLACE_OPS = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
               "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
               ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand,
               "@=": operator.imatmul}
PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
TEXT = (str, bytes)
SEQUENCES = (str, bytes, list, tuple)
CONTAINERS = (list, tuple, dict, set, frozenset)
VIEWS = (type({}.keys()), type({}.values()), type({}.items()))
SIZED = (*CONTAINERS, str, bytes, range, *VIEWS)
SCALARS = (bool, int, float, type(None), Decimal)


class NotAllowed(Exception):
    """A process expression did something the sandbox refuses; the message names it."""


def _too_big(what, n, limit, unit):
    raise NotAllowed(f"{what} would have {n:,} {unit}; the limit is {limit:,}")


def _short(value):
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 64 else \
        f"<{value.bit_length():,}-bit int>"
    return text if len(text) <= 40 else text[:37] + "..."


# ---- size estimates and checks, also used at compile time on constants -----------------------------
def rendered_size(obj, limit=MAX_SIZE, spend=None, check=None) -> int:
    """About how many characters str(obj) makes, counting a shared object each time it is printed (as
    str() does); stops once past `limit`. Raises NotAllowed when nested too deeply to print, or with
    the message `check(value)` returns for a value inside. Plain values are counted inline: this runs
    over the whole process data after every script."""
    size = 0
    path = set()      # containers being printed: a cycle prints as [...]

    def walk(o, depth):
        nonlocal size
        if check is not None and (refusal := check(o)) is not None:
            raise NotAllowed(refusal)
        if isinstance(o, TEXT):
            size += len(o) + 2
        elif isinstance(o, int) and not isinstance(o, bool):
            size += o.bit_length() // 3 + 2
        elif isinstance(o, (*CONTAINERS, *VIEWS)):
            if id(o) in path:
                size += 5
                return
            if depth > MAX_RENDER_DEPTH:
                raise NotAllowed(f"the value is nested more than {MAX_RENDER_DEPTH} levels deep to be printed")
            if spend is not None:
                spend(len(o))
            path.add(id(o))
            size += 2 + 2 * len(o)
            for item in (chain.from_iterable(o.items()) if isinstance(o, dict) else o):
                kind = type(item)
                if kind is str:
                    size += len(item) + 2
                elif kind is bool or kind is float or item is None:
                    size += 5
                elif kind is int and item.bit_length() < 64:
                    size += 20
                else:
                    walk(item, depth + 1)
                if size > limit:
                    break
            path.discard(id(o))
        else:
            size += 24
    walk(obj, 0)
    return size


def check_binop(sym, a, b, spend=None) -> int:
    """Refuse an operation whose result would exceed the limits, before it is computed; returns
    about how many characters/items the result will have (0 for small numbers)."""
    if sym == "**":
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            bits = math.ceil(b * math.log2(abs(a)))
            if bits > MAX_INT_BITS:
                _too_big(f"{_short(a)} ** {_short(b)}", bits, MAX_INT_BITS, "bits")
            return bits // 8
    elif sym == "*":
        if isinstance(a, int) and isinstance(b, int):
            bits = a.bit_length() + b.bit_length()
            if bits > MAX_INT_BITS:
                _too_big(f"{_short(a)} * {_short(b)}", bits, MAX_INT_BITS, "bits")
            return bits // 8
        if isinstance(a, SEQUENCES) and isinstance(b, int) or isinstance(b, SEQUENCES) and isinstance(a, int):
            seq, n = (a, b) if isinstance(a, SEQUENCES) else (b, a)
            kind = type(seq).__name__
            if n > 1 and len(seq) * n > MAX_SIZE:
                _too_big(f"a {kind} * {_short(n)}", len(seq) * n, MAX_SIZE,
                         "characters" if isinstance(seq, TEXT) else "items")
            if n > 1 and not isinstance(seq, TEXT):
                printed = rendered_size(seq, MAX_SIZE, spend) * n
                if printed > MAX_SIZE:
                    _too_big(f"a {kind} * {_short(n)}", printed, MAX_SIZE, "characters when printed")
            return len(seq) * max(n, 0)
    elif sym == "<<":
        if isinstance(a, int) and isinstance(b, int) and a and b > 0:
            bits = a.bit_length() + b
            if bits > MAX_INT_BITS:
                _too_big(f"{_short(a)} << {_short(b)}", bits, MAX_INT_BITS, "bits")
            return bits // 8
    elif sym == "+":
        if isinstance(a, SEQUENCES) and isinstance(b, SEQUENCES):
            if len(a) + len(b) > MAX_SIZE:
                _too_big(f"a {type(a).__name__} + a {type(b).__name__}", len(a) + len(b), MAX_SIZE, "items")
            return len(a) + len(b)
    elif sym == "%" and isinstance(a, TEXT):
        check_percent_format(a)
        size = len(a) + rendered_size(b, MAX_SIZE, spend)
        if size > MAX_SIZE:
            _too_big("the %-formatted string", size, MAX_SIZE, "characters")
        return size
    return 0


def check_percent_format(fmt):
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    for width, precision in PERCENT_SPEC.findall(text):
        for value in (width, precision):
            if value == "*":
                raise NotAllowed("a '*' width or precision in %-formatting is not allowed")
            if value and int(value) > MAX_WIDTH:
                raise NotAllowed(f"the width or precision {value} in %-formatting is over the limit {MAX_WIDTH:,}")


def check_format_spec(spec):
    if len(spec) > MAX_WIDTH:
        raise NotAllowed(f"a format spec of {len(spec):,} characters is over the limit {MAX_WIDTH:,}")
    for digits in re.findall(r"\d+", spec):
        if len(digits) > 6 or int(digits) > MAX_WIDTH:
            raise NotAllowed(f"the width or precision {digits[:12]} in the format spec {spec[:40]!r} is over "
                             f"the limit {MAX_WIDTH:,}")


# ---- builtins with a bound ---------------------------------------------------------------------------
def bounded_range(*args):
    """range() of at most ITEM_BUDGET numbers: a longer one could never be looped over anyway."""
    r = range(*args)
    if len(r) > ITEM_BUDGET:
        _too_big(f"range{args!r}", len(r), ITEM_BUDGET, "numbers")
    return r


def bounded_pow(base, exp, mod=None):
    if mod is None:
        check_binop("**", base, exp)
        return pow(base, exp)
    for n in (base, exp, mod):
        if isinstance(n, int) and n.bit_length() > MAX_INT_BITS:
            _too_big("pow() with a modulus", n.bit_length(), MAX_INT_BITS, "bits")
    return pow(base, exp, mod)


def bounded_round(number, ndigits=None):
    if ndigits is None:
        return round(number)
    if isinstance(ndigits, int) and abs(ndigits) > MAX_WIDTH:
        raise NotAllowed(f"round() to {_short(ndigits)} digits is over the limit {MAX_WIDTH:,}")
    return round(number, ndigits)


def _import_for_c_code(name, globals=None, locals=None, fromlist=(), level=0):
    """datetime.strftime imports `time` through the builtins. Expressions themselves cannot import:
    the compiler refuses import statements and the name __import__."""
    if name == "time" and level == 0:
        return sys.modules["time"]
    raise ImportError(f"import of {name!r} is not allowed")


def _apply(f, *args, **kwargs):
    return f(*args, **kwargs)


EXCEPTIONS = {e.__name__: e for e in (Exception, ArithmeticError, LookupError, ValueError, TypeError, KeyError,
                                      IndexError, ZeroDivisionError, AttributeError, NameError, OverflowError)}
STATIC_BUILTINS = {"None": None, "True": True, "False": False, "abs": abs, "bool": bool, "float": float, "len": len,
                   "round": bounded_round, "range": bounded_range, "pow": bounded_pow, "enumerate": enumerate,
                   "zip": zip, "reversed": reversed, "__import__": _import_for_c_code, **EXCEPTIONS}
GUARDED_BUILTINS = ("min", "max", "sum", "sorted", "any", "all", "str", "int", "list", "tuple", "set", "dict",
                    "isinstance")
BUILTIN_NAMES = tuple(sorted(set(STATIC_BUILTINS) - {"__import__", "None", "True", "False"} | set(GUARDED_BUILTINS)))
REAL_TYPES = {"str": str, "int": int, "list": list, "dict": dict, "set": set, "tuple": tuple}


# ---- what methods may produce ------------------------------------------------------------------------
def _padded(obj, width=0, *args, **kwargs):
    return width if isinstance(width, int) else 0


def _replaced(obj, old=None, new=None, count=-1, **kwargs):
    if not isinstance(old, TEXT) or not isinstance(new, TEXT):
        return len(obj)
    n = obj.count(old) if old else len(obj) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(obj) + n * max(len(new) - len(old), 0)


def _expanded(obj, tabsize=8, **kwargs):
    tab = b"\t" if isinstance(obj, bytes) else "\t"
    return len(obj) + obj.count(tab) * max(tabsize, 0) if isinstance(tabsize, int) else len(obj)


def _joined(obj, items=(), **kwargs):
    return sum(len(i) for i in items if isinstance(i, TEXT)) + len(obj) * max(len(items) - 1, 0)


def _translated(obj, table=None, *args, **kwargs):
    if isinstance(table, dict):
        return len(obj) * max((len(v) for v in table.values() if isinstance(v, TEXT)), default=1)
    return len(obj)


def _to_bytes(obj, length=1, *args, **kwargs):
    length = kwargs.get("length", length)
    return length if isinstance(length, int) else 0


def _strftime(obj, fmt="", *args, **kwargs):
    return len(fmt) * 32 if isinstance(fmt, str) else 0      # %c makes 24 characters of 2


def _extended(obj, items=(), **kwargs):
    return len(obj) + len(items)


def _one_more(obj, *args, **kwargs):
    return len(obj) + 1


# Methods whose result can be far larger than the object: refused over MAX_SIZE.
SIZE_AFTER = {"ljust": _padded, "rjust": _padded, "center": _padded, "zfill": _padded, "expandtabs": _expanded,
              "replace": _replaced, "join": _joined, "translate": _translated, "to_bytes": _to_bytes,
              "strftime": _strftime, "extend": _extended, "append": _one_more, "insert": _one_more}
MATERIALISED = frozenset({"join", "extend"})     # their argument is made a list first, to be measured


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sticky(guard):
    """A refusal by this guard is remembered, so that an expression cannot catch it and carry on."""
    @functools.wraps(guard)
    def sticky(self, *args, **kwargs):
        try:
            return guard(self, *args, **kwargs)
        except NotAllowed as exc:
            if self.error is None:
                self.error = exc
            raise
    return sticky


class Evaluation:
    """The guards of one evaluation and what it may still spend. `read_only` (conditions, timers)
    refuses the methods that change a list, dict or set."""

    def __init__(self, read_only=False):
        self.read_only = read_only
        self.left = ITEM_BUDGET
        self.allocated = 0
        self.next_check = ITEM_BUDGET - CHECK_EVERY
        self.deadline = time.thread_time() + CPU_SECONDS
        self.memory_limit = None          # set at the first check: tiny expressions never read it
        self.memory_checked = 0.0
        self.error: Optional[NotAllowed] = None

    def globals(self) -> dict:
        """What the compiled code needs besides data and helpers; put it last, so data cannot override it."""
        return {
            "__builtins__": {**STATIC_BUILTINS, **{name: getattr(self, name) for name in GUARDED_BUILTINS}},
            "_getattr_": self.getattr, "_getitem_": self.getitem, "_getiter_": self.getiter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence, "_unpack_sequence_": guarded_unpack_sequence,
            "_write_": full_write_guard, "_inplacevar_": self.inplacevar, "_apply_": _apply,
            "_binop_": self.binop, "_format_": self.format, "_tick_": self.tick,
        }

    # -- budgets
    def fail(self, message):
        self.error = NotAllowed(message)
        raise NotAllowed(message)

    def finish(self):
        """After the code ran: a refusal the expression caught still fails it."""
        if self.error is not None:
            raise NotAllowed(str(self.error))

    def spend(self, n=1):
        if self.error is not None:
            raise NotAllowed(str(self.error))
        self.left -= n
        if self.left < 0:
            self.fail(f"the expression went through more than {ITEM_BUDGET:,} loop items, items or calls")
        if self.left <= self.next_check:
            self.next_check = self.left - CHECK_EVERY
            self._check_resources()

    def _check_resources(self):
        now = time.thread_time()
        if now > self.deadline:
            self.fail(f"the expression ran longer than {CPU_SECONDS:g} s of CPU time")
        if now - self.memory_checked >= MEMORY_EVERY:
            self.memory_checked = now
            memory = _resident_bytes()
            if self.memory_limit is None:
                self.memory_limit = memory + MEMORY_GROWTH
            elif memory > self.memory_limit:
                self.fail(f"the expression took more than {MEMORY_GROWTH // 2**20} MB of memory")

    def charge(self, n):
        if self.error is not None:
            raise NotAllowed(str(self.error))
        self.allocated += n
        if self.allocated > ALLOC_BUDGET:
            self.fail(f"the expression produced more than {ALLOC_BUDGET:,} characters or items")

    def tick(self):
        self.spend(1)

    def _counted(self, iterator):
        spend = self.spend
        for item in iterator:
            spend(1)
            yield item

    def consume(self, iterable):
        """`iterable`, charged to the item budget: at once when its size is known, else item by item."""
        if isinstance(iterable, SIZED):
            self.spend(len(iterable))
            return iterable
        return self._counted(iter(iterable))

    def getiter(self, obj):
        return self._counted(iter(obj))

    # -- operators, items, formatting
    @_sticky
    def binop(self, sym, a, b):
        self.charge(check_binop(sym, a, b, self.spend))
        return OPS[sym](a, b)

    @_sticky
    def inplacevar(self, op, a, b):
        sym = op[:-1]
        if sym in OPS:
            self.charge(check_binop(sym, a, b, self.spend))
        return INPLACE_OPS[op](a, b)

    @_sticky
    def getitem(self, obj, key):
        if isinstance(key, str) and key.startswith("__"):
            raise NotAllowed(f"the key {key!r} is not allowed (dunder item access)")
        if isinstance(key, slice) and isinstance(obj, SEQUENCES):
            self.charge(len(range(*key.indices(len(obj)))))
        return obj[key]

    @_sticky
    def format(self, value, conversion, spec):
        check_format_spec(spec)
        if conversion in (ord("r"), ord("a")):
            self.printable(value)
            value = repr(value) if conversion == ord("r") else ascii(value)
        elif conversion == ord("s"):
            value = self.str(value)
        elif not isinstance(value, SCALARS + TEXT):
            self.printable(value)         # formatted as itself: a date keeps its strftime spec
        text = format(value, spec)
        self.charge(len(text))
        return text

    @_sticky
    def printable(self, value) -> int:
        size = 24 if isinstance(value, SCALARS) else rendered_size(value, MAX_SIZE, self.spend)
        if size > MAX_SIZE:
            _too_big("printing this value", size, MAX_SIZE, "characters")
        self.charge(size)
        return size

    # -- attributes
    @_sticky
    def getattr(self, obj, name):
        if name in FORBIDDEN_ATTRIBUTES:
            raise NotAllowed(f'the attribute ".{name}" is not allowed')
        if self.read_only and name in MUTATORS and isinstance(obj, (list, dict, set)):
            raise NotAllowed(f'a condition or timer may not change data (".{name}")')
        value = safer_getattr_raise(obj, name)
        if isinstance(obj, (*TEXT, *CONTAINERS)) and callable(value) or name in ("to_bytes", "strftime"):
            return self._guarded_method(obj, name, value)
        return value

    def _guarded_method(self, obj, name, method):
        """The method, charged with what it reads and makes, and refused when it would make too much."""
        def guarded(*args, **kwargs):
            try:
                return call(*args, **kwargs)
            except NotAllowed as exc:
                self.error = self.error or exc
                raise

        def call(*args, **kwargs):
            if name in MATERIALISED and args:
                args = (list(self.consume(args[0])),) + args[1:]
            if name in SIZE_AFTER:
                size = SIZE_AFTER[name](obj, *args, **kwargs)
                if size > MAX_SIZE:
                    _too_big(f".{name}()", size, MAX_SIZE, "characters or items")
            else:
                size = len(obj) + sum(len(a) for a in args if isinstance(a, SIZED))
            self.charge(size)
            return method(*args, **kwargs)
        return guarded

    # -- builtins that consume an iterable, print a value, or convert
    def min(self, *args, **kwargs):
        return min(*(args if len(args) != 1 else (self.consume(args[0]),)), **kwargs)

    def max(self, *args, **kwargs):
        return max(*(args if len(args) != 1 else (self.consume(args[0]),)), **kwargs)

    @_sticky
    def sum(self, iterable, start=0):
        if not isinstance(start, (int, float, Decimal)):
            raise NotAllowed("sum() adds numbers only")
        return sum(self.consume(iterable), start)

    def sorted(self, iterable, **kwargs):
        return sorted(self.consume(iterable), **kwargs)

    def any(self, iterable):
        return any(self.consume(iterable))

    def all(self, iterable):
        return all(self.consume(iterable))

    def list(self, iterable=()):
        return list(self.consume(iterable))

    def tuple(self, iterable=()):
        return tuple(self.consume(iterable))

    def set(self, iterable=()):
        return set(self.consume(iterable))

    def dict(self, *args, **kwargs):
        return dict(*(self.consume(a) for a in args), **kwargs)

    @_sticky
    def str(self, obj="", *args):
        if args:                      # str(b, encoding)
            return str(obj, *args)
        self.printable(obj)
        return str(obj)

    @_sticky
    def int(self, x=0, *args):
        if isinstance(x, Decimal) and x.is_finite() and x.adjusted() > MAX_INT_BITS * 0.30103:
            raise NotAllowed(f"int() of {x:.3e} would be over the limit of {MAX_INT_BITS:,} bits")
        n = int(x, *args)
        if n.bit_length() > MAX_INT_BITS:
            _too_big("int()", n.bit_length(), MAX_INT_BITS, "bits")
        return n

    def isinstance(self, obj, classes):
        def real(c):       # str, int, list... are guarded functions here; isinstance needs the types
            return REAL_TYPES.get(c.__name__, c) if getattr(c, "__self__", None) is self else c
        return isinstance(obj, tuple(map(real, classes)) if isinstance(classes, tuple) else real(classes))


PLAIN = frozenset({str, int, float, bool, type(None)})
STORED_SCALARS = (str, int, float, bool, type(None), Decimal, date, datetime, timedelta, UUID)
STORED_KEYS = (str, int, float, bool, type(None))


def _unstorable(obj):
    """Values the workflow serializer cannot keep, which would otherwise fail only when it is saved."""
    if isinstance(obj, dict):
        what = next((f"a {type(k).__name__} as a key" for k in obj if not isinstance(k, STORED_KEYS)), None)
    elif isinstance(obj, int) and obj.bit_length() > MAX_INT_BITS:
        what = f"an int of {obj.bit_length():,} bits"
    elif isinstance(obj, (list, tuple)) or isinstance(obj, STORED_SCALARS):
        what = None
    elif callable(obj):
        # Only a function the script leaves at the top level vanishes (SpiffWorkflow removes those
        # before this check); one inside a list or dict would fail when the workflow is saved.
        what = "a function inside a list or dict"
    else:
        what = f"a {type(obj).__name__}"
    return what and f"{what} cannot be kept in the process data; use lists, dicts, text and numbers"


def _not_json(obj):
    if isinstance(obj, dict):
        found = next((k for k in obj if not isinstance(k, str)), None)
        return None if found is None else f"a message field cannot have a {type(found).__name__} as a key"
    if isinstance(obj, int) and obj.bit_length() > MAX_INT_BITS:
        return f"an int of {obj.bit_length():,} bits cannot be a message field"
    if isinstance(obj, (str, int, float, bool, type(None), list, tuple)):
        return None
    return f"a {type(obj).__name__} cannot be a message field; use text (e.g. .isoformat()), numbers, lists, dicts"


def check_message_fields(template, fields: dict, limit):
    """The fields of a customer message are stored as JSON in the outbox: text, numbers, lists, dicts."""
    size = rendered_size(fields, limit, check=_not_json)
    if size > limit:
        raise NotAllowed(f"the fields of message {str(template)[:40]!r} are longer than {limit:,} characters")


def check_data(data: dict, limit=MAX_SIZE):
    """The process data a script leaves behind is stored as JSON: refuse data that would be huge, or
    that holds a value the workflow cannot store (a set, a generator, a range...). Runs after every
    script, so plain values are counted in one quick pass (the keys are variable names)."""
    size, nested = 0, []
    for value in data.values():
        kind = type(value)
        if kind is str:
            size += len(value)
        elif kind not in PLAIN or kind is int and value.bit_length() > MAX_INT_BITS:
            nested.append(value)
    for value in nested:
        size += rendered_size(value, limit, check=_unstorable)
        if size > limit:
            break
    if size > limit:
        _too_big("the process data after this script", size, limit, "characters")
