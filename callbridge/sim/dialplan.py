"""The extensions.conf subset the simulator runs: parsing, pattern matching, ``${}``/``$[]`` expansion.

Pure functions and dataclasses; the interpreter that executes the steps is :mod:`callbridge.sim.pbx`.
Pattern letters N, X, Z are case-insensitive as in Asterisk (``_conf-.`` does not match
``conf-room1``; write ``_co[n]f-.``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Step:
    priority: int
    app: str
    data: str
    label: str = ""


@dataclass(slots=True)
class Extension:
    pattern: str
    steps: dict[int, Step] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    name: str
    extensions: list[Extension] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)

    def extension(self, pattern: str) -> Extension:
        for ext in self.extensions:
            if ext.pattern == pattern:
                return ext
        ext = Extension(pattern)
        self.extensions.append(ext)
        return ext


@dataclass(slots=True)
class Dialplan:
    contexts: dict[str, Context] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, str], Extension | None] = field(default_factory=dict)

    def find(self, context: str, exten: str) -> Extension | None:
        """The extension of ``context`` (or its includes) that matches ``exten``; exact beats pattern."""
        key = (context, exten)
        if key not in self._cache:
            if len(self._cache) > 50_000:  # bounded: traffic dials many distinct numbers
                self._cache.clear()
            self._cache[key] = self._find(context, exten, frozenset())
        return self._cache[key]

    def _find(self, context: str, exten: str, _seen: frozenset[str]) -> Extension | None:
        ctx = self.contexts.get(context)
        if ctx is None or context in _seen:
            return None
        for ext in ctx.extensions:
            if ext.pattern == exten:
                return ext
        best: tuple[int, Extension] | None = None
        for ext in ctx.extensions:
            if ext.pattern.startswith("_") and pattern_regex(ext.pattern).fullmatch(exten):
                score = _specificity(ext.pattern)
                if best is None or score > best[0]:
                    best = (score, ext)
        if best is not None:
            return best[1]
        for inc in ctx.includes:
            found = self._find(inc, exten, _seen | {context})
            if found is not None:
                return found
        return None

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        ext = self.find(context, exten)
        return ext is not None and priority in ext.steps


def _specificity(pattern: str) -> int:
    # Asterisk sorts patterns so that more specific ones win; a literal-character count is close enough.
    return sum(1 for ch in pattern[1:] if ch.isalnum() and ch.upper() not in "NXZ") * 10 - pattern.count(".")


@lru_cache(maxsize=512)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        ch = body[i]
        up = ch.upper()
        if up == "X":
            out.append("[0-9]")
        elif up == "Z":
            out.append("[1-9]")
        elif up == "N":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            end = body.index("]", i)
            out.append("[" + body[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


_EXTEN_LINE = re.compile(r"^(exten|same)\s*=>?\s*(.*)$", re.IGNORECASE)
_APP = re.compile(r"^([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def parse_extensions(text: str) -> Dialplan:
    """Parse extensions.conf text: contexts, ``exten =>``, ``same =>``, ``include =>``, [globals]."""
    reader = _ExtensionsReader()
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if line:
            reader.read(line)
    return reader.plan


_LABELLED = re.compile(r"^([^()]+)\(([^)]*)\)$")


class _ExtensionsReader:
    """extensions.conf a line at a time: the section it is in, and the extension ``same =>`` continues."""

    def __init__(self) -> None:
        self.plan = Dialplan()
        self.section = ""
        self.ctx: Context | None = None
        self.current: Extension | None = None
        self.last_prio = 0

    def read(self, line: str) -> None:
        if line.startswith("[") and "]" in line:
            self._enter(line[1 : line.index("]")].strip())
        elif self.section == "globals":
            key, _, value = line.partition("=")
            self.plan.globals[key.strip()] = value.strip()
        elif self.ctx is None:
            return
        elif line.lower().startswith("include"):
            self.ctx.includes.append(line.split("=>", 1)[-1].strip())
        elif m := _EXTEN_LINE.match(line):
            self._step(self.ctx, m.group(1).lower(), m.group(2).lstrip(">").strip())

    def _enter(self, section: str) -> None:
        self.section, self.ctx, self.current = section, None, None
        if section not in ("general", "globals"):
            self.ctx = self.plan.contexts.setdefault(section, Context(section))

    def _step(self, ctx: Context, kind: str, rest: str) -> None:
        """One ``exten => pattern,prio,App(data)`` or ``same => prio,App(data)`` (prio ``n``, ``n(label)``)."""
        if kind == "exten":
            pattern, _, rest = rest.partition(",")
            self.current = ctx.extension(pattern.strip())
            self.last_prio = 0
        current = self.current
        if current is None:
            return
        prio_text, _, app_text = rest.partition(",")
        prio_text, label = prio_text.strip(), ""
        if lm := _LABELLED.match(prio_text):
            prio_text, label = lm.group(1), lm.group(2)
        if prio_text == "hint":
            return
        prio = self.last_prio + 1 if prio_text == "n" else int(prio_text)
        self.last_prio = prio
        am = _APP.match(app_text.strip())
        app, data = (am.group(1), am.group(2) or "") if am else (app_text.strip(), "")
        current.steps[prio] = Step(prio, app, data, label)
        if label:
            current.labels[label] = prio


# --- expansion ------------------------------------------------------------------------------------

Lookup = Callable[[str], str]


def expand(text: str, lookup: Lookup) -> str:
    """Substitute ``${NAME}``, ``${NAME:offset[:length]}``, ``${FUNC(arg)}`` and ``$[expr]``."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        k = text.find("$", i)
        if k < 0 or k + 1 >= n:
            out.append(text[i:])
            break
        if text[k + 1] not in "{[":
            out.append(text[i : k + 1])
            i = k + 1
            continue
        out.append(text[i:k])
        opener = text[k + 1]
        close = "}" if opener == "{" else "]"
        depth = 1
        j = k + 2
        while j < n and depth:
            if text[j] == opener and text[j - 1] == "$":
                depth += 1
            elif text[j] == close:
                depth -= 1
            j += 1
        inner = expand(text[k + 2 : j - 1], lookup)
        out.append(_variable(inner, lookup) if close == "}" else evaluate(inner))
        i = j
    return "".join(out)


def _variable(inner: str, lookup: Lookup) -> str:
    name, offset, length = inner, None, None
    if "(" not in inner and ":" in inner:
        parts = inner.split(":")
        name = parts[0]
        offset = int(parts[1] or 0)
        length = int(parts[2]) if len(parts) > 2 and parts[2] else None
    value = lookup(name)
    if offset is not None:
        value = value[offset:] if length is None else value[offset : offset + length if offset >= 0 else None]
        if length is not None and offset < 0:
            value = value[:length]
    return value


_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|!=|<=|>=|[=<>&|()+\-*/!]|[^\s=<>&|()+\-*/!"]+)')


def evaluate(expr: str) -> str:
    """``$[...]`` expressions: comparison, ``&``, ``|``, ``!``, ``+ - * /``, parentheses."""
    tokens = [t for t in _TOKEN.findall(expr) if t]
    return _Expression(tokens).disj() if tokens else ""


class _Expression:
    """Recursive descent over the tokens of one ``$[...]``, loosest first: ``|``, ``&``, comparisons,
    ``+ - * /``, then an atom (a parenthesised expression, ``!`` atom, a quoted or bare token)."""

    __slots__ = ("pos", "tokens")

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self) -> str:
        tok = self.peek()
        self.pos += 1
        return tok

    def atom(self) -> str:
        tok = self.take()
        if tok == "(":
            val = self.disj()
            self.take()
            return val
        if tok == "!":
            return "0" if _truthy(self.atom()) else "1"
        if tok.startswith('"') and tok.endswith('"') and len(tok) >= 2:
            return tok[1:-1]
        return tok

    def arith(self) -> str:
        val = self.atom()
        while self.peek() in ("+", "-", "*", "/"):
            op = self.take()
            rhs = self.atom()
            try:
                a, b = int(val), int(rhs)
            except ValueError:
                return ""
            val = str({"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else 0}[op])
        return val

    def compare(self) -> str:
        val = self.arith()
        while self.peek() in ("=", "!=", "<", ">", "<=", ">="):
            op = self.take()
            rhs = self.arith()
            val = "1" if _cmp(val, op, rhs) else "0"
        return val

    def conj(self) -> str:
        val = self.compare()
        while self.peek() == "&":
            self.take()
            rhs = self.compare()
            val = rhs if _truthy(val) and _truthy(rhs) else "0"
        return val

    def disj(self) -> str:
        val = self.conj()
        while self.peek() == "|":
            self.take()
            rhs = self.conj()
            val = val if _truthy(val) else rhs
        return val


def _truthy(value: str) -> bool:
    return value not in ("", "0")


def _cmp(a: str, op: str, b: str) -> bool:
    try:
        x: int | str = int(a)
        y: int | str = int(b)
    except ValueError:
        x, y = a, b
    if op == "=":
        return x == y
    if op == "!=":
        return x != y
    if type(x) is not type(y):
        x, y = str(x), str(y)
    return {"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]  # type: ignore[operator]


def split_args(data: str) -> list[str]:
    """Split application arguments on top-level commas (parentheses and quotes protect)."""
    args: list[str] = []
    depth = 0
    quote = False
    cur: list[str] = []
    for ch in data:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0 and not quote:
            args.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    args.append("".join(cur))
    return args


def parse_gotoif(data: str) -> tuple[str, str, str]:
    """``cond?iftrue:iffalse`` → (cond, iftrue, iffalse)."""
    cond, _, branches = data.partition("?")
    iftrue, _, iffalse = branches.partition(":")
    return cond.strip(), iftrue.strip(), iffalse.strip()
