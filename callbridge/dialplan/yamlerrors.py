"""YAML syntax errors in words an ops person reads: what is wrong, where it started, what to type instead.

ruamel reports where its parser gave up, in parser terms (``expected <block end>, but found '<scalar>'``),
often lines after the mistake: a quote left open swallows the next lines and the parser stops where the
swallowed text ends. Here the error is re-read against the source text and its tokens so the message
points at the cause (the opening quote, the tab, the key indented to no mapping's column).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, SequenceNode
from ruamel.yaml.tokens import AliasToken, ScalarToken

from callbridge.errors import Problem

FIELD = "(yaml)"
TAB = "tab character: tabs cannot indent YAML; use spaces"
#: the line breaks ruamel counts (its marks are in these lines)
_BREAKS = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
_QUOTES = {'"': "double", "'": "single"}


@dataclass(frozen=True, slots=True)
class _At:
    line: int  # 0-based, like ruamel's marks
    column: int


def source_lines(text: str) -> list[str]:
    return _BREAKS.split(text)


def syntax_problem(exc: YAMLError, text: str, filename: str) -> Problem:
    """One located, plain-words problem for a YAML error raised while loading *text*."""
    lines = source_lines(text)
    if not isinstance(exc, MarkedYAMLError):
        return _unmarked(exc, text, lines, filename)
    mark = exc.problem_mark or exc.context_mark
    at = _At(mark.line, mark.column) if mark is not None else _At(0, 0)
    context = exc.context or ""
    problem = exc.problem or ""
    found = _explain(exc, context, problem, at, text, lines)
    if found is None:
        what = " ".join(s for s in (context, problem) if s) or "invalid YAML"
        found = at, what.replace("\n", " ")
    where, message = found
    return Problem(filename, where.line + 1, where.column + 1, FIELD, message)


def multiline_quotes(text: str, filename: str) -> list[Problem]:
    """Quoted values that run on over several lines: in these files that is a quote left open.

    YAML lets a quoted string continue on the next lines, so a missing closing quote may still parse and
    silently eat the keys below it (then "required key 'kind' is missing" would point elsewhere).
    """
    if not any(_odd_quotes(line) for line in source_lines(text)):
        return []  # the scan below costs as much as the load: skip it when no line leaves a quote open
    problems: list[Problem] = []
    tokens, _error = _tokens(text)
    for tok in tokens:
        if _is_quoted(tok) and tok.end_mark.line > tok.start_mark.line:
            problems.append(
                Problem(
                    filename,
                    tok.start_mark.line + 1,
                    tok.start_mark.column + 1,
                    FIELD,
                    _unclosed(tok, text),
                )
            )
    return problems


def alias_loops(text: str, filename: str) -> list[Problem]:
    """Aliases that point back at a block containing them (``a: &x {b: *x}``, or ``<<: *x`` inside x).

    ruamel reads the first kind as null without a word, and fails on the second with an AttributeError.
    """
    if "&" not in text or "*" not in text:
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            root = YAML(typ="rt").compose(text)
    except YAMLError:
        return []  # the load reports it
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[int, ...]]] = [(root, ())]
    done: set[int] = set()
    while stack:
        node, ancestors = stack.pop()
        if not isinstance(node, MappingNode | SequenceNode) or id(node) in done:
            continue
        done.add(id(node))
        inside = (*ancestors, id(node))
        pairs = node.value if isinstance(node, MappingNode) else [(None, item) for item in node.value]
        for key, child in pairs:
            if isinstance(child, MappingNode | SequenceNode) and id(child) in inside:
                mark = key.start_mark if key is not None else node.start_mark
                where = _alias_inside(text, child) or _At(mark.line, mark.column)
                name = f"*{child.anchor}" if child.anchor else "this alias"
                problems.append(
                    Problem(filename, where.line + 1, where.column + 1, FIELD,
                            f"{name} refers to a block that contains it (a loop); it cannot be expanded")
                )  # fmt: skip
            else:
                stack.append((child, inside))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _alias_inside(text: str, block: Any) -> _At | None:
    """Where ``*anchor`` is written inside the block it names."""
    start, end = block.start_mark, block.end_mark
    for tok in _tokens(text)[0]:
        m = tok.start_mark
        inside = (start.line, start.column) < (m.line, m.column) < (end.line, end.column)
        if isinstance(tok, AliasToken) and tok.value == block.anchor and inside:
            return _At(m.line, m.column)
    return None


def _odd_quotes(line: str) -> bool:
    """A line that may leave a quote open (false alarms are fine: they only cost a scan)."""
    text = _ESCAPE.sub("", line)
    text = text[: text.find(" #")] if " #" in text else text
    if text.lstrip().startswith("#"):
        return False
    return text.count('"') % 2 == 1 or text.count("'") % 2 == 1


_ESCAPE = re.compile(r"\\.")


# --- the cases ------------------------------------------------------------------------------------


def _explain(
    exc: MarkedYAMLError, context: str, problem: str, at: _At, text: str, lines: list[str]
) -> tuple[_At, str] | None:
    tab = _tab_near(lines, at)
    if "'\\t'" in problem or tab is not None:
        return (tab or at), TAB
    if context.startswith("while scanning a quoted scalar") and exc.context_mark is not None:
        start = _At(exc.context_mark.line, exc.context_mark.column)
        quote = _char(lines, start)
        kind = _QUOTES.get(quote, "")
        return start, f"unclosed quote: the {kind} quote {quote} opened here is never closed; close it on this line"
    quoted = _quote_before(text, at)
    if quoted is not None:
        return quoted
    if context.startswith("while parsing a flow") and exc.context_mark is not None:
        start = _At(exc.context_mark.line, exc.context_mark.column)
        opened = _char(lines, start)
        closer = {"[": "]", "{": "}"}.get(opened, "the closing bracket")
        found = _char(lines, at)
        if start.line < at.line or (found in "]}" and found != closer):
            return start, f"unclosed {opened!r}: the {opened} opened here is not closed by {closer} on its line"
        hint = f"separate items with ', ', close it with {closer}, and quote a value with ':' or ','"
        return at, f"found {found!r} inside the {opened} opened at column {start.column + 1}: {hint}"
    if problem.startswith("expected '<document start>'"):
        return _after_the_document(lines, at)
    m = re.search(r'found duplicate key "(.*)" with value', problem, re.DOTALL)
    if m:
        first = _first_key(lines, m.group(1), exc.context_mark, at)
        where = f" (first at line {first + 1})" if first is not None else ""
        return at, f'duplicate key "{m.group(1)}": this mapping already has it{where}; keep one'
    if context.startswith("while scanning a block scalar"):
        return at, "after | or > the text starts on the next line (indented); nothing may follow on this line"
    if "expected <block end>" in problem or "expected <block" in problem:
        return at, _indentation(lines, at)
    if problem.startswith("mapping values are not allowed"):
        return _colon(lines, at)
    if "could not find expected ':'" in problem and exc.context_mark is not None:
        start = _At(exc.context_mark.line, exc.context_mark.column)
        return start, "a key without ':' — write 'key: value' (a value that spans lines needs | or >)"
    if problem.startswith("found undefined alias"):
        name = problem.split("alias", 1)[1].strip()
        return at, (
            f"undefined alias {name}: '*' starts an alias (a reference to an &anchor);"
            ' quote values that begin with * (e.g. code: "*1")'
        )
    if "for merging" in problem:
        at = _merge_key_after(lines, exc.context_mark) or at
        return at, "'<<' merges mappings: write <<: *name where &name marks a mapping (or <<: [*a, *b])"
    if "duplicate merge key" in problem:
        return at, "two '<<' keys in one mapping; merge both with one: <<: [*a, *b]"
    m = re.match(r"found character '(.+)' that cannot start any token", problem)
    if m:
        return at, f"{m.group(1)!r} cannot start a value here; quote the value"
    return None


def _after_the_document(lines: list[str], at: _At) -> tuple[_At, str]:
    first = _next_content(lines, 0)
    if first is not None:
        n, text = first
        indent = len(text) - len(text.lstrip(" "))
        if indent > at.column:
            return _At(n, indent), (
                f"bad indentation: the first key starts at column {indent + 1}, but line {at.line + 1} starts at"
                f" column {at.column + 1}; top-level keys start at column 1"
            )
    return at, (
        "this line does not continue the file above: the top-level block ended before it"
        " (is the first line a 'key:' at column 1? top-level keys start at column 1)"
    )


def _first_key(lines: list[str], key: str, mark: Any, at: _At) -> int | None:
    """0-based line where *key* was first written in the mapping that starts at *mark*."""
    if mark is None:
        return None
    pattern = re.compile(r"^[\s{,-]*['\"]?" + re.escape(key) + r"['\"]?\s*:")
    for n in range(mark.line, at.line):
        if n < len(lines) and pattern.match(lines[n][mark.column :] if n == mark.line else lines[n]):
            return n
    return None


def _next_content(lines: list[str], start: int) -> tuple[int, str] | None:
    for n in range(start, len(lines)):
        stripped = lines[n].strip()
        if stripped and not stripped.startswith("#"):
            return n, lines[n]
    return None


def _merge_key_after(lines: list[str], mark: Any) -> _At | None:
    """The ``<<`` of the mapping that starts at *mark* (ruamel points at the merged value instead)."""
    if mark is None:
        return None
    for n in range(mark.line, len(lines)):
        column = lines[n].find("<<", mark.column if n == mark.line else 0)
        if column >= 0:
            return _At(n, column)
    return None


def _unmarked(exc: YAMLError, text: str, lines: list[str], filename: str) -> Problem:
    """Reader errors (control characters) carry a character offset instead of a mark."""
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    if isinstance(position, int) and 0 <= position <= len(text):
        before = source_lines(text[:position])
        line, column = len(before), len(before[-1]) + 1
    else:
        line, column = 1, 1
    if isinstance(character, int):
        name = unicodedata.name(chr(character), "a control character")
        message = (
            f"invisible character U+{character:04X} ({name}) is not allowed in YAML (pasted in?); delete it"
        )
    else:
        message = str(exc).replace("\n", " ")
    return Problem(filename, line, column, FIELD, message)


def _tab_near(lines: list[str], at: _At) -> _At | None:
    """A tab in the indentation of the error's line or the line before it (the usual cause then)."""
    for n in (at.line, at.line - 1):
        if 0 <= n < len(lines):
            line = lines[n]
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            if "\t" in indent:
                return _At(n, indent.index("\t"))
    return None


def _quote_before(text: str, at: _At) -> tuple[_At, str] | None:
    """The parser stopped right after a quoted value: left open (it ran on) or followed by stray text."""
    tokens, _error = _tokens(text)
    before = [t for t in tokens if (t.start_mark.line, t.start_mark.column) < (at.line, at.column)]
    for tok in reversed(before[-3:]):
        if not _is_quoted(tok) or tok.end_mark.line != at.line:
            continue
        start = _At(tok.start_mark.line, tok.start_mark.column)
        if tok.end_mark.line > tok.start_mark.line:
            return start, _unclosed(tok, text)
        quote = tok.style
        return _At(at.line, tok.end_mark.column), (
            f"text after the closing quote {quote} (opened at column {start.column + 1}); to write {quote} inside"
            f" the value, {'double it' if quote == chr(39) else 'escape it as ' + chr(92) + quote}"
            " or quote the whole value with the other quote"
        )
    return None


def _unclosed(tok: Any, text: str) -> str:
    kind = _QUOTES.get(tok.style, "")
    return (
        f"unclosed quote: the {kind} quote {tok.style} opened here is not closed on this line"
        f" (the value runs on to line {tok.end_mark.line + 1}); close it on this line"
    )


def _indentation(lines: list[str], at: _At) -> str:
    line = lines[at.line] if at.line < len(lines) else ""
    if line.lstrip(" ").startswith("-"):
        for n in range(at.line - 1, -1, -1):
            item = lines[n].lstrip(" ")
            indent = len(lines[n]) - len(item)
            if item.startswith("- ") and indent != at.column:
                return (
                    f"bad indentation: this '- ' item starts at column {at.column + 1}, the items of the list above"
                    f" (line {n + 1}) at column {indent + 1}; items of one list start in the same column"
                )
            if item and not item.startswith("#") and indent < at.column:
                break
    columns = _enclosing_columns(lines, at.line)
    if columns and at.column + 1 not in [c for c, _ in columns]:
        where = ", ".join(f"column {c} (line {n})" for c, n in columns)
        return (
            f"bad indentation: this line starts at column {at.column + 1}, which lines up with no mapping above"
            f" — the keys above start at {where}; indent it like the keys it belongs with (spaces only)"
        )
    return (
        "bad indentation: this line does not fit the structure above (a key or '- ' item at a column"
        " where none is open, or a value after a finished one); line it up with the keys it belongs with"
    )


def _colon(lines: list[str], at: _At) -> tuple[_At, str]:
    line = lines[at.line] if at.line < len(lines) else ""
    if ": " in line[: at.column] or line[: at.column].rstrip().endswith(":"):
        return at, "a second ': ' in one value; quote the value if it contains ': '"
    prev = _previous_content(lines, at.line)
    indent = len(line) - len(line.lstrip(" "))
    if prev is not None:
        n, text = prev
        prev_indent = len(text) - len(text.lstrip(" "))
        key, sep, value = text.strip().partition(":")
        if sep and value.strip() and not value.strip().startswith("#") and indent > prev_indent:
            return _At(at.line, indent), (
                f"bad indentation: this line is indented deeper than {key.strip()!r} on line {n + 1}, which"
                f" already has a value; line it up with {key.strip()!r} (column {prev_indent + 1})"
            )
        if not sep:
            return _At(n, prev_indent), "a key without ':' — write 'key: value'"
    return at, "':' is not allowed here; quote the value if it contains ': '"


def _enclosing_columns(lines: list[str], before: int) -> list[tuple[int, int]]:
    """(1-based column, 1-based line) of the keys the lines above are nested in, innermost first."""
    out: list[tuple[int, int]] = []
    limit: int | None = None
    for n in range(min(before, len(lines)) - 1, -1, -1):
        text = lines[n]
        stripped = text.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(text) - len(stripped)
        if limit is None or indent < limit:
            out.append((indent + 1, n + 1))
            limit = indent
            if indent == 0:
                break
    return out


def _previous_content(lines: list[str], before: int) -> tuple[int, str] | None:
    for n in range(min(before, len(lines)) - 1, -1, -1):
        stripped = lines[n].strip()
        if stripped and not stripped.startswith("#"):
            return n, lines[n]
    return None


def _char(lines: list[str], at: _At) -> str:
    if 0 <= at.line < len(lines) and 0 <= at.column < len(lines[at.line]):
        return lines[at.line][at.column]
    return "?"


def _is_quoted(tok: Any) -> bool:
    return isinstance(tok, ScalarToken) and tok.style in _QUOTES


def _tokens(text: str) -> tuple[list[Any], YAMLError | None]:
    """The tokens ruamel's scanner reads before it gives up (if it does)."""
    tokens: list[Any] = []
    try:
        for tok in YAML(typ="rt").scan(text):
            tokens.append(tok)
    except YAMLError as exc:
        return tokens, exc
    return tokens, None
