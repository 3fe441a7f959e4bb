"""The password policy (no Flask): a minimum and maximum length, nothing built from the account's own name,
no single repeated character or plain run of digits or letters, and — when PASSWORD_BREACHED_FILE names one —
not in a list of breached passwords.

The breached list is a text file of SHA-1 hashes in upper-case hex, one per line, sorted, each optionally
followed by ":count" — the format of the offline Pwned Passwords download ("ordered by hash"). It is searched
by bisection over the file's bytes, so a list of a billion lines costs some thirty reads, and nothing is loaded
into memory."""
import hashlib
import os
from dataclasses import dataclass
from typing import Optional

KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True)
class Problem:
    """Why a password is refused: `code` (too_short, too_long, has_name, too_simple, breached) and the
    minimum or maximum length where that matters."""
    code: str
    length: int = 0


@dataclass(frozen=True)
class Policy:
    min_length: int = 12
    max_length: int = 128
    breached_file: str = ""

    @classmethod
    def from_config(cls, config) -> "Policy":
        return cls(int(config["PASSWORD_MIN_LENGTH"]), 128, config.get("PASSWORD_BREACHED_FILE") or "")

    def problem(self, password: str, names=()) -> Optional[Problem]:
        """None when `password` may be used by the account whose names (username, display name) are given."""
        if len(password) < self.min_length:
            return Problem("too_short", self.min_length)
        if len(password) > self.max_length:
            return Problem("too_long", self.max_length)
        lowered = password.lower()
        if any(len(name) >= 3 and name.lower() in lowered for name in names if name):
            return Problem("has_name")
        if _too_simple(lowered):
            return Problem("too_simple")
        if self.breached_file and is_breached(self.breached_file, password):
            return Problem("breached")
        return None


def check_settings(config) -> None:
    """At start: a breached list that is named must be there (else every password change would fail)."""
    path = config.get("PASSWORD_BREACHED_FILE")
    if path and not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise RuntimeError(f"PASSWORD_BREACHED_FILE={path!r} is not a readable file (the sorted SHA-1 list of "
                           "breached passwords); fix the path or unset it")
    if int(config.get("PASSWORD_MIN_LENGTH") or 0) < 8:
        raise RuntimeError("PASSWORD_MIN_LENGTH must be at least 8")


def _too_simple(lowered: str) -> bool:
    """Two characters or fewer (aaaa, abab), a run up or down (12345678, 9012…, abcdef), a keyboard row."""
    if len(set(lowered)) <= 2 or lowered in KEYBOARD or lowered in KEYBOARD[::-1]:
        return True
    steps = {_step(a, b) for a, b in zip(lowered, lowered[1:])}
    return steps in ({1}, {-1})


def _step(a: str, b: str) -> int:
    step = ord(b) - ord(a)
    return {-9: 1, 9: -1}.get(step, step) if a.isdigit() and b.isdigit() else step


def is_breached(path: str, password: str) -> bool:
    """Whether the SHA-1 of `password` is a line of the sorted hash file at `path` (bisection on bytes)."""
    wanted = hashlib.sha1(password.encode("utf-8")).hexdigest().upper().encode()
    with open(path, "rb") as f:
        low, high = 0, os.fstat(f.fileno()).st_size
        while low < high:
            middle = (low + high) // 2
            line_start = _line_start(f, middle)
            f.seek(line_start)
            line = f.readline()
            found = line.split(b":", 1)[0].strip().upper()
            if found == wanted:
                return True
            if found < wanted:
                low = line_start + len(line)
                if not line:
                    return False
            else:
                high = line_start
    return False


def _line_start(f, offset: int) -> int:
    """The offset where the line holding `offset` starts."""
    start = max(0, offset - 256)           # a line is 40 hex digits, a colon and a count
    f.seek(start)
    chunk = f.read(offset - start)
    newline = chunk.rfind(b"\n")
    return start + newline + 1 if newline >= 0 else start
