"""YAML syntax errors in words an ops person reads: what is wrong, where it started, what to type instead.

ruamel reports where its parser gave up, in parser terms (``expected <block end>, but found '<scalar>'``),
often lines after the mistake: a quote left open swallows the next lines and the parser stops where the
swallowed text ends. Here the error is re-read against the source text and its tokens so the message
points at the cause (the opening quote, the tab, the key indented to no mapping's column).
The cases that explain a marked error, one function each, are in :mod:`callbridge.dialplan.yamlcases`.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, SequenceNode
from ruamel.yaml.tokens import AliasToken

from callbridge.dialplan.yamlcases import At, explain, is_quoted, scan_tokens, unclosed
from callbridge.errors import Problem

FIELD = "(yaml)"
#: the line breaks ruamel counts (its marks are in these lines)
_BREAKS = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")


def source_lines(text: str) -> list[str]:
    return _BREAKS.split(text)


def syntax_problem(exc: YAMLError, text: str, filename: str) -> Problem:
    """One located, plain-words problem for a YAML error raised while loading *text*."""
    lines = source_lines(text)
    if not isinstance(exc, MarkedYAMLError):
        return _unmarked(exc, text, lines, filename)
    mark = exc.problem_mark or exc.context_mark
    at = At(mark.line, mark.column) if mark is not None else At(0, 0)
    context = exc.context or ""
    problem = exc.problem or ""
    found = explain(exc, context, problem, at, text, lines)
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
    tokens, _error = scan_tokens(text)
    for tok in tokens:
        if is_quoted(tok) and tok.end_mark.line > tok.start_mark.line:
            problems.append(
                Problem(
                    filename,
                    tok.start_mark.line + 1,
                    tok.start_mark.column + 1,
                    FIELD,
                    unclosed(tok, text),
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
                where = _alias_inside(text, child) or At(mark.line, mark.column)
                name = f"*{child.anchor}" if child.anchor else "this alias"
                problems.append(
                    Problem(filename, where.line + 1, where.column + 1, FIELD,
                            f"{name} refers to a block that contains it (a loop); it cannot be expanded")
                )  # fmt: skip
            else:
                stack.append((child, inside))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _alias_inside(text: str, block: Any) -> At | None:
    """Where ``*anchor`` is written inside the block it names."""
    start, end = block.start_mark, block.end_mark
    for tok in scan_tokens(text)[0]:
        m = tok.start_mark
        inside = (start.line, start.column) < (m.line, m.column) < (end.line, end.column)
        if isinstance(tok, AliasToken) and tok.value == block.anchor and inside:
            return At(m.line, m.column)
    return None


def _odd_quotes(line: str) -> bool:
    """A line that may leave a quote open (false alarms are fine: they only cost a scan)."""
    text = _ESCAPE.sub("", line)
    text = text[: text.find(" #")] if " #" in text else text
    if text.lstrip().startswith("#"):
        return False
    return text.count('"') % 2 == 1 or text.count("'") % 2 == 1


_ESCAPE = re.compile(r"\\.")


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
