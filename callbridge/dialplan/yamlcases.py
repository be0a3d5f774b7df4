"""The cases of a marked YAML error, each re-read against the source text and its tokens (for yamlerrors).

ruamel stops where its parser gave up; each case recognises one kind of mistake from ruamel's context and
problem texts and says where it really is and what to type instead. The first case that recognises an
error explains it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.tokens import ScalarToken

TAB = "tab character: tabs cannot indent YAML; use spaces"
QUOTES = {'"': "double", "'": "single"}


@dataclass(frozen=True, slots=True)
class At:
    line: int  # 0-based, like ruamel's marks
    column: int


@dataclass(frozen=True, slots=True)
class _Error:
    """One marked YAML error as the cases read it: ruamel's exception, its two texts, where, the file."""

    exc: MarkedYAMLError
    context: str
    problem: str
    at: At
    text: str
    lines: list[str]

    def context_at(self) -> At | None:
        mark = self.exc.context_mark
        return None if mark is None else At(mark.line, mark.column)


Explained = tuple[At, str] | None


def explain(
    exc: MarkedYAMLError, context: str, problem: str, at: At, text: str, lines: list[str]
) -> tuple[At, str] | None:
    """The first case that recognises the error says where it is and what to do (None: no case does)."""
    error = _Error(exc, context, problem, at, text, lines)
    for case in _CASES:
        found = case(error)
        if found is not None:
            return found
    return None


def _tab_case(e: _Error) -> Explained:
    tab = _tab_near(e.lines, e.at)
    return ((tab or e.at), TAB) if "'\\t'" in e.problem or tab is not None else None


def _unclosed_quote(e: _Error) -> Explained:
    start = e.context_at()
    if not e.context.startswith("while scanning a quoted scalar") or start is None:
        return None
    quote = _char(e.lines, start)
    kind = QUOTES.get(quote, "")
    return start, f"unclosed quote: the {kind} quote {quote} opened here is never closed; close it on this line"


def _quoted_before(e: _Error) -> Explained:
    return _quote_before(e.text, e.at)


def _flow(e: _Error) -> Explained:
    start = e.context_at()
    if not e.context.startswith("while parsing a flow") or start is None:
        return None
    opened = _char(e.lines, start)
    closer = {"[": "]", "{": "}"}.get(opened, "the closing bracket")
    found = _char(e.lines, e.at)
    if start.line < e.at.line or (found in "]}" and found != closer):
        return start, f"unclosed {opened!r}: the {opened} opened here is not closed by {closer} on its line"
    hint = f"separate items with ', ', close it with {closer}, and quote a value with ':' or ','"
    return e.at, f"found {found!r} inside the {opened} opened at column {start.column + 1}: {hint}"


def _document_start(e: _Error) -> Explained:
    return _after_the_document(e.lines, e.at) if e.problem.startswith("expected '<document start>'") else None


def _duplicate_key(e: _Error) -> Explained:
    m = re.search(r'found duplicate key "(.*)" with value', e.problem, re.DOTALL)
    if not m:
        return None
    first = _first_key(e.lines, m.group(1), e.exc.context_mark, e.at)
    where = f" (first at line {first + 1})" if first is not None else ""
    return e.at, f'duplicate key "{m.group(1)}": this mapping already has it{where}; keep one'


def _block_scalar(e: _Error) -> Explained:
    if not e.context.startswith("while scanning a block scalar"):
        return None
    return e.at, "after | or > the text starts on the next line (indented); nothing may follow on this line"


def _block_end(e: _Error) -> Explained:
    return (e.at, _indentation(e.lines, e.at)) if "expected <block" in e.problem else None


def _mapping_value(e: _Error) -> Explained:
    return _colon(e.lines, e.at) if e.problem.startswith("mapping values are not allowed") else None


def _no_colon(e: _Error) -> Explained:
    start = e.context_at()
    if "could not find expected ':'" not in e.problem or start is None:
        return None
    return start, "a key without ':' — write 'key: value' (a value that spans lines needs | or >)"


def _undefined_alias(e: _Error) -> Explained:
    if not e.problem.startswith("found undefined alias"):
        return None
    name = e.problem.split("alias", 1)[1].strip()
    return e.at, (
        f"undefined alias {name}: '*' starts an alias (a reference to an &anchor);"
        ' quote values that begin with * (e.g. code: "*1")'
    )


def _merge(e: _Error) -> Explained:
    if "for merging" in e.problem:
        at = _merge_key_after(e.lines, e.exc.context_mark) or e.at
        return at, "'<<' merges mappings: write <<: *name where &name marks a mapping (or <<: [*a, *b])"
    if "duplicate merge key" in e.problem:
        return e.at, "two '<<' keys in one mapping; merge both with one: <<: [*a, *b]"
    return None


def _bad_start(e: _Error) -> Explained:
    m = re.match(r"found character '(.+)' that cannot start any token", e.problem)
    return (e.at, f"{m.group(1)!r} cannot start a value here; quote the value") if m else None


#: in order: the first that recognises an error explains it (a tab anywhere near wins, as it misleads the rest)
_CASES = (_tab_case, _unclosed_quote, _quoted_before, _flow, _document_start, _duplicate_key, _block_scalar,
          _block_end, _mapping_value, _no_colon, _undefined_alias, _merge, _bad_start)  # fmt: skip


def _after_the_document(lines: list[str], at: At) -> tuple[At, str]:
    first = _next_content(lines, 0)
    if first is not None:
        n, text = first
        indent = len(text) - len(text.lstrip(" "))
        if indent > at.column:
            return At(n, indent), (
                f"bad indentation: the first key starts at column {indent + 1}, but line {at.line + 1} starts at"
                f" column {at.column + 1}; top-level keys start at column 1"
            )
    return at, (
        "this line does not continue the file above: the top-level block ended before it"
        " (is the first line a 'key:' at column 1? top-level keys start at column 1)"
    )


def _first_key(lines: list[str], key: str, mark: Any, at: At) -> int | None:
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


def _merge_key_after(lines: list[str], mark: Any) -> At | None:
    """The ``<<`` of the mapping that starts at *mark* (ruamel points at the merged value instead)."""
    if mark is None:
        return None
    for n in range(mark.line, len(lines)):
        column = lines[n].find("<<", mark.column if n == mark.line else 0)
        if column >= 0:
            return At(n, column)
    return None


def _tab_near(lines: list[str], at: At) -> At | None:
    """A tab in the indentation of the error's line or the line before it (the usual cause then)."""
    for n in (at.line, at.line - 1):
        if 0 <= n < len(lines):
            line = lines[n]
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            if "\t" in indent:
                return At(n, indent.index("\t"))
    return None


def _quote_before(text: str, at: At) -> tuple[At, str] | None:
    """The parser stopped right after a quoted value: left open (it ran on) or followed by stray text."""
    tokens, _error = scan_tokens(text)
    before = [t for t in tokens if (t.start_mark.line, t.start_mark.column) < (at.line, at.column)]
    for tok in reversed(before[-3:]):
        if not is_quoted(tok) or tok.end_mark.line != at.line:
            continue
        start = At(tok.start_mark.line, tok.start_mark.column)
        if tok.end_mark.line > tok.start_mark.line:
            return start, unclosed(tok, text)
        quote = tok.style
        return At(at.line, tok.end_mark.column), (
            f"text after the closing quote {quote} (opened at column {start.column + 1}); to write {quote} inside"
            f" the value, {'double it' if quote == chr(39) else 'escape it as ' + chr(92) + quote}"
            " or quote the whole value with the other quote"
        )
    return None


def unclosed(tok: Any, text: str) -> str:
    kind = QUOTES.get(tok.style, "")
    return (
        f"unclosed quote: the {kind} quote {tok.style} opened here is not closed on this line"
        f" (the value runs on to line {tok.end_mark.line + 1}); close it on this line"
    )


def _indentation(lines: list[str], at: At) -> str:
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


def _colon(lines: list[str], at: At) -> tuple[At, str]:
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
            return At(at.line, indent), (
                f"bad indentation: this line is indented deeper than {key.strip()!r} on line {n + 1}, which"
                f" already has a value; line it up with {key.strip()!r} (column {prev_indent + 1})"
            )
        if not sep:
            return At(n, prev_indent), "a key without ':' — write 'key: value'"
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


def _char(lines: list[str], at: At) -> str:
    if 0 <= at.line < len(lines) and 0 <= at.column < len(lines[at.line]):
        return lines[at.line][at.column]
    return "?"


def is_quoted(tok: Any) -> bool:
    return isinstance(tok, ScalarToken) and tok.style in QUOTES


def scan_tokens(text: str) -> tuple[list[Any], YAMLError | None]:
    """The tokens ruamel's scanner reads before it gives up (if it does)."""
    tokens: list[Any] = []
    try:
        for tok in YAML(typ="rt").scan(text):
            tokens.append(tok)
    except YAMLError as exc:
        return tokens, exc
    return tokens, None
