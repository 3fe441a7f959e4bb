"""Controlled vocabularies (coded data): the lists of codes the process owner maintains beside the
diagrams, one TOML file per vocabulary in processes/vocabularies/ (category, product line, cause,
responsible party, ...). They deploy with every process version (part of its content hash), are
checked like the diagrams, and give the forms their choices: a form property with
`"x-vocabulary": "<name>"` is deployed with a `oneOf` of the codes on offer (each with its Chinese
`title` and English `x-title-en`) and an `x-retired` list of the codes no longer offered, whose labels
old data still shows.

A deployed version keeps its vocabularies in process_version.vocabularies.

A code is stable for ever. Retiring one (`retired = <date>`) stops offering it without touching the
data that holds it. A term with sub-terms (`parent`) is a group and is not offered itself."""
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Optional

FOLDER = "vocabularies"                   # below processes/
FORM_KEY = "x-vocabulary"                 # a form property coded by a vocabulary names it here
RETIRED_KEY = "x-retired"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TOP_KEYS = {"title", "title_en", "term"}
TERM_KEYS = {"code", "zh", "en", "parent", "retired"}
MAX_LABEL = 100
SEPARATOR = " › "


def _problem(file, element_id, line, message):
    from .engine.registry import Problem       # the registry imports this module
    return Problem(file, element_id, line, message)


@dataclass(frozen=True)
class Term:
    code: str
    zh: str
    en: str
    parent: Optional[str] = None
    retired: Optional[str] = None          # ISO date it was retired on


class Vocabulary:
    """One deployed vocabulary: its terms by code, in the file's order."""

    def __init__(self, name: str, data: dict):
        self.name, self.title, self.title_en = name, data.get("title", name), data.get("title_en", name)
        self.terms = {t["code"]: Term(**t) for t in data.get("terms", [])}
        self._parents = {t.parent for t in self.terms.values() if t.parent}
        self._offered = [c for c, t in self.terms.items() if not t.retired and not self.is_group(c)]

    def is_group(self, code) -> bool:
        return code in self._parents

    def offered(self) -> list[str]:
        """The codes new input may use: not retired, not a group (worked out once: a vocabulary never changes)."""
        return list(self._offered)

    def label(self, code, lang="zh") -> Optional[str]:
        """"理赔纠纷 › 理赔时效" (in English the English labels); None for a value that is no code."""
        term = self.terms.get(code) if isinstance(code, str) else None
        if term is None:
            return None
        own = term.en if lang == "en" else term.zh
        parent = self.terms.get(term.parent) if term.parent else None
        return f"{parent.en if lang == 'en' else parent.zh}{SEPARATOR}{own}" if parent else own

    def refusal(self, code) -> Optional[str]:
        """Why `code` may not be used for new input (None: it may). English, for the API's `fields`."""
        offered = ", ".join(self.offered())
        if code in (None, ""):
            return "Missing data for required field."
        term = self.terms.get(code) if isinstance(code, str) else None
        if term is None:
            return f"{code!r} is not a code of the {self.name} vocabulary; use one of: {offered}"
        if term.retired:
            return f"{code!r} is retired (since {term.retired}) and is not used for new input; use one of: {offered}"
        if self.is_group(code):
            subs = ", ".join(c for c in self.offered() if self.terms[c].parent == code)
            return f"{code!r} is a group; use one of its sub-categories: {subs}"
        return None

    def _entry(self, code) -> dict:
        return {"const": code, "title": self.label(code, "zh"), "x-title-en": self.label(code, "en")}

    def choices(self) -> dict:
        """A form property's `oneOf` (the codes on offer) and `x-retired` (every other code, whose label
        old data still shows)."""
        offered = self.offered()
        return {"oneOf": [self._entry(c) for c in offered],
                RETIRED_KEY: [self._entry(c) for c in self.terms if c not in offered]}


# ---- loading and checking processes/vocabularies/ ---------------------------------------------------
def load(processes_dir) -> tuple[dict, list]:
    """({name: stored form}, problems with file and line) of processes/vocabularies/*.toml."""
    vocabularies, problems = {}, []
    folder = Path(processes_dir) / FOLDER
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        file = f"{FOLDER}/{path.name}"
        if path.suffix != ".toml" or not NAME.match(path.stem):
            problems.append(_problem(file, None, None, "a vocabulary file is named <name>.toml with a-z, 0-9 and _ "
                                                       "(e.g. category.toml)"))
            continue
        data, found = _read(file, path.read_bytes())
        problems += found
        if data is not None and not found:
            vocabularies[path.stem] = data
    return vocabularies, problems


def _read(file, raw: bytes) -> tuple[Optional[dict], list]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        return None, [_problem(file, None, line, f"byte 0x{raw[exc.start]:02x} is not valid UTF-8")]
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        return None, [_problem(file, None, int(found.group(1)) if found else None, f"not valid TOML: {exc}")]
    return check(file, text, parsed)


def _line_of(text, code) -> Optional[int]:
    found = re.search(rf"""^\s*code\s*=\s*["']{re.escape(str(code))}["']""", text, re.M)
    return text.count("\n", 0, found.start()) + 1 if found else None


def check(file, text, parsed: dict) -> tuple[Optional[dict], list]:
    """The vocabulary as stored ({title, title_en, terms}) and every problem, each naming the file, the
    term's code and the line it is written on."""
    problems = [_problem(file, None, None, f"unknown key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")
                for key in parsed if key not in TOP_KEYS]
    for key in ("title", "title_en"):
        if not _label_ok(parsed.get(key)):
            problems.append(_problem(file, None, None, f"{key} is missing: write the vocabulary's name "
                                                       f"({'Chinese' if key == 'title' else 'English'})"))
    raw_terms = parsed.get("term")
    if not isinstance(raw_terms, list) or not raw_terms or not all(isinstance(t, dict) for t in raw_terms):
        return None, problems + [_problem(file, None, None, "no terms: write each as a [[term]] table with "
                                                            "code, zh and en")]
    terms = []
    for raw in raw_terms:
        term, found = _check_term(file, text, raw, {t["code"] for t in terms})
        problems += found
        if term is not None:
            terms.append(term)
    problems += _check_tree(file, text, terms)
    stored = {"title": parsed.get("title"), "title_en": parsed.get("title_en"), "terms": terms}
    return stored, problems


def _label_ok(value) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= MAX_LABEL


def _check_term(file, text, raw: dict, seen: set) -> tuple[Optional[dict], list]:
    code = raw.get("code")
    line = _line_of(text, code) if isinstance(code, str) else None
    where = code if isinstance(code, str) else None
    problems = [_problem(file, where, line, f"unknown key {key!r} in a term (known: {', '.join(sorted(TERM_KEYS))})")
                for key in raw if key not in TERM_KEYS]
    if not isinstance(code, str) or not CODE.match(code):
        return None, problems + [_problem(file, where, line, f"code {code!r} is not a code: a-z, 0-9 and _, "
                                                             f"starting with a letter, at most 64 characters")]
    if code in seen:
        return None, problems + [_problem(file, code, line, f"code {code!r} is written twice: a code names one term")]
    for key, language in (("zh", "Simplified Chinese"), ("en", "English")):
        if not _label_ok(raw.get(key)):
            problems.append(_problem(file, code, line, f"{key}: the {language} label is missing or longer than "
                                                       f"{MAX_LABEL} characters"))
    retired = raw.get("retired")
    if retired is not None and (not isinstance(retired, date) or hasattr(retired, "hour")):
        problems.append(_problem(file, code, line, f"retired = {retired!r}: write the date it was retired "
                                                   f"on, e.g. retired = 2026-12-01 (no quotes)"))
    term = {"code": code, "zh": str(raw.get("zh", "")).strip(), "en": str(raw.get("en", "")).strip()}
    if raw.get("parent") is not None:
        term["parent"] = raw["parent"]
    if isinstance(retired, date):
        term["retired"] = retired.isoformat()
    return term, problems


def _check_tree(file, text, terms: list) -> list:
    """Parents exist and are top-level terms; a retired group has no term on offer; an active group has
    one; two terms of one group do not share a label (the near-duplicates coded data is meant to end)."""
    by_code, problems = {t["code"]: t for t in terms}, []
    for t in terms:
        parent = by_code.get(t.get("parent")) if "parent" in t else None
        if "parent" in t and parent is None:
            problems.append(_problem(file, t["code"], _line_of(text, t["code"]),
                                     f"parent {t['parent']!r} is not a code of this vocabulary"))
        elif parent is not None and "parent" in parent:
            problems.append(_problem(file, t["code"], _line_of(text, t["code"]),
                                     f"parent {t['parent']!r} is itself a sub-term: two levels at most"))
        elif parent is not None and parent.get("retired") and not t.get("retired"):
            problems.append(_problem(file, t["code"], _line_of(text, t["code"]),
                                     f"its group {t['parent']!r} is retired: retire {t['code']!r} too"))
    for t in terms:
        children = [c for c in terms if c.get("parent") == t["code"]]
        if children and not t.get("retired") and all(c.get("retired") for c in children):
            problems.append(_problem(file, t["code"], _line_of(text, t["code"]),
                                     "every sub-term of this group is retired: retire the group too, or add one"))
    labels = {}
    for t in terms:
        key = (t.get("parent"), t["zh"])
        if key in labels:
            problems.append(_problem(file, t["code"], _line_of(text, t["code"]),
                                     f"label {t['zh']!r} is also the label of {labels[key]!r}: one meaning, one code"))
        labels.setdefault(key, t["code"])
    if terms and not any(not t.get("retired") and not any(c.get("parent") == t["code"] for c in terms)
                         for t in terms):
        problems.append(_problem(file, None, None, "no term is on offer: every term is retired"))
    return problems


# ---- the vocabularies in forms -----------------------------------------------------------------------
def expand_form(name: str, schema: dict, vocabularies: dict, forms_dir) -> tuple[dict, list]:
    """The form `name` with each `x-vocabulary` property given its choices; problems name the form file."""
    props = (schema.get("properties") or {}) if isinstance(schema, dict) else {}
    if not any(isinstance(p, dict) and FORM_KEY in p for p in props.values()):
        return schema, []
    file, problems, expanded = f"{Path(forms_dir).name}/{name}.json", [], {}
    for field, prop in props.items():
        wanted = prop.get(FORM_KEY) if isinstance(prop, dict) else None
        if wanted is None:
            expanded[field] = prop
        elif wanted not in vocabularies:
            problems.append(_problem(file, field, None, f"{FORM_KEY} {wanted!r} is not a vocabulary in processes/"
                                                        f"{FOLDER}/ (there: {', '.join(sorted(vocabularies)) or 'none'})"))
        elif any(key in prop for key in ("enum", "const", "oneOf", "anyOf")) or prop.get("type", "string") != "string":
            problems.append(_problem(file, field, None, f"a property with {FORM_KEY} is a string and takes its "
                                                        f"choices from the vocabulary: remove its enum/oneOf"))
        else:
            expanded[field] = {**prop, "type": "string", **Vocabulary(wanted, vocabularies[wanted]).choices()}
    return {**schema, "properties": {**props, **expanded}}, problems


def of_version(stored: dict) -> dict:
    """{name: Vocabulary} of a deployed version's `vocabularies` (empty for a version deployed without any)."""
    return {name: Vocabulary(name, data) for name, data in (stored or {}).items()}
