"""YAML with positions, and pydantic errors mapped back to file:line:column.

Shared by the dialplan loader and the service settings so both report problems the same way. ruamel's
round-trip loader keeps where every key and value was written; we turn the document into plain Python
data (what pydantic validates) plus a table ``path → position`` (what error messages need).
"""

from __future__ import annotations

import difflib
import types
import typing
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import ReusedAnchorWarning, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from callbridge.dialplan.yamlerrors import alias_loops, multiline_quotes, syntax_problem
from callbridge.errors import Problem, UnreadableConfigError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a key and its value were written (1-based; 0 when unknown)."""

    file: str
    line: int
    column: int
    value_line: int
    value_column: int


@dataclass(slots=True)
class Document:
    """Plain data of one or more merged YAML files and where each path came from."""

    data: dict[str, Any]
    positions: dict[PathKey, Pos]

    def pos(self, path: Iterable[str | int], *, key: bool = False) -> Pos:
        """Position of the longest known prefix of *path* (a missing key points at its parent)."""
        parts = list(path)
        while parts:
            p = self.positions.get(tuple(parts))
            if p is not None:
                return p
            parts.pop()
        return self.positions.get((), Pos("?", 0, 0, 0, 0))

    def problem(self, path: PathKey, message: str, severity: str = "error", *, at_key: bool = False) -> Problem:
        exact = path in self.positions
        p = self.pos(path)
        line, col = (p.line, p.column) if (at_key or not exact) else (p.value_line, p.value_column)
        return Problem(p.file, line, col, dotted(path), message, severity)


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top)"


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", errors="replace").split("\n")
        raise UnreadableConfigError(
            f"{path}:{len(before)}:{len(before[-1]) + 1}: not UTF-8 text ({exc.reason} at byte {exc.start});"
            " save the file as UTF-8 (an editor may have saved it as GBK)"
        ) from exc


def parse_yaml(text: str, filename: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document. Syntax errors (and duplicate keys) become located problems."""
    yaml = YAML(typ="rt")
    loops = alias_loops(text, filename)
    if loops:
        return None, loops
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReusedAnchorWarning)  # YAML allows it: the later anchor counts
            node = yaml.load(text)
    except YAMLError as exc:
        return None, [syntax_problem(exc, text, filename)]
    except Exception as exc:  # a ruamel bug must not become a traceback (the file is the cause)
        message = f"cannot read this YAML ({type(exc).__name__}: {exc}); simplify its anchors and aliases"
        return None, [Problem(filename, 1, 1, "(yaml)", message)]
    if node is None:
        node = CommentedMap()
    if not isinstance(node, CommentedMap):
        line, col = (node.lc.line + 1, node.lc.col + 1) if isinstance(node, CommentedSeq) else (1, 1)
        found = "a list" if isinstance(node, CommentedSeq) else f"{type(node).__name__} {node!r}"
        return None, [Problem(filename, line, col, "(top)", f"found {found}; expected a mapping of sections")]
    problems = multiline_quotes(text, filename)
    if problems:
        return None, problems
    walk = _Plain(filename)
    data = walk.value(node, (), ())
    # ``x-…`` top-level keys hold blocks for anchors (``x-rule: &rule {…}`` … ``<<: *rule``): not read
    data = {k: v for k, v in data.items() if not k.startswith(EXTENSION_PREFIX)}
    return Document(data, walk.positions), walk.problems


#: top-level keys starting with this are the file's own (anchor holders), like docker compose's
EXTENSION_PREFIX = "x-"


#: how many values aliases may expand to (a few aliased blocks are fine; "billion laughs" is not)
MAX_VALUES = 100_000


class _Plain:
    """ruamel's round-trip nodes → plain data + positions.

    Merge keys (``<<: *defaults``) work: a merged key is placed where it was written, in the anchored
    mapping. An alias that contains itself, or aliases expanding past :data:`MAX_VALUES`, are problems.
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.positions: dict[PathKey, Pos] = {(): Pos(filename, 1, 1, 1, 1)}
        self.problems: list[Problem] = []
        self._count = 0

    def value(self, node: Any, path: PathKey, open_nodes: tuple[int, ...]) -> Any:
        self._count += 1
        if self._count > MAX_VALUES:
            if self._count == MAX_VALUES + 1:
                here = self.positions.get(path) or self.positions[()]
                self.problems.append(
                    Problem(self.filename, here.line, here.column, dotted(path),
                            f"aliases expand to more than {MAX_VALUES} values; write the data out")
                )  # fmt: skip
            return None
        if isinstance(node, CommentedMap | CommentedSeq):
            if id(node) in open_nodes:
                here = self.positions.get(path) or self.positions[()]
                self.problems.append(
                    Problem(self.filename, here.line, here.column, dotted(path),
                            "this alias refers to a block that contains it (a loop); it cannot be expanded")
                )  # fmt: skip
                return None
            open_nodes = (*open_nodes, id(node))
        if isinstance(node, CommentedMap):
            return self._mapping(node, path, open_nodes)
        if isinstance(node, CommentedSeq):
            items: list[Any] = []
            for i, item in enumerate(node):
                line, col = _item_position(node, i)
                self.positions[(*path, i)] = Pos(self.filename, line + 1, col + 1, line + 1, col + 1)
                items.append(self.value(item, (*path, i), open_nodes))
            return items
        return _scalar(node)

    def _mapping(self, node: CommentedMap, path: PathKey, open_nodes: tuple[int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in node.items():
            skey = _key_text(key)
            kline, kcol, vline, vcol = _key_position(node, key)
            if skey in out:  # e.g. ``110:`` and ``"110":`` are the same id
                where = dotted((*path, skey))
                self.problems.append(Problem(self.filename, kline + 1, kcol + 1, where, "duplicate key"))
                continue
            self.positions[(*path, skey)] = Pos(self.filename, kline + 1, kcol + 1, vline + 1, vcol + 1)
            out[skey] = self.value(item, (*path, skey), open_nodes)
        return out


def _key_position(node: CommentedMap, key: Any) -> tuple[int, int, int, int]:
    """0-based (key line, key column, value line, value column); a merged key where its anchor wrote it."""
    source = _written_in(node, key, ())
    if source is not None:
        try:
            kline, kcol = source.lc.key(key)
            vline, vcol = source.lc.value(key)
            return kline, kcol, vline, vcol
        except (KeyError, TypeError, IndexError):
            pass
    line, col = node.lc.line or 0, node.lc.col or 0
    return line, col, line, col


def _written_in(node: CommentedMap, key: Any, seen: tuple[int, ...]) -> CommentedMap | None:
    """The mapping that holds *key* itself, following merge keys (which may merge merged mappings)."""
    if any(k == key for k, _ in node.non_merged_items()):
        return node
    for merged in node.merge:
        source = merged[1] if isinstance(merged, tuple) else merged  # ruamel 0.18: (index, map) pairs
        if isinstance(source, CommentedMap) and id(source) not in seen:
            found = _written_in(source, key, (*seen, id(node)))
            if found is not None:
                return found
    return None


def _item_position(node: CommentedSeq, index: int) -> tuple[int, int]:
    try:
        line, col = node.lc.item(index)
        return int(line), int(col)
    except (KeyError, TypeError, IndexError):
        return node.lc.line or 0, node.lc.col or 0


def _scalar(node: Any) -> Any:
    if isinstance(node, ScalarBoolean):
        return bool(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)  # timestamps and other tagged scalars: text, the model decides


def _key_text(key: Any) -> str:
    if isinstance(key, ScalarBoolean | bool):
        # YAML 1.2 reads `yes`/`no` as strings but `true`/`false` as booleans; keep what was typed
        return "true" if key else "false"
    return str(key)


# --- pydantic errors → problems -----------------------------------------------------------------


def validation_problems(
    doc: Document,
    exc: ValidationError,
    root: type[BaseModel],
    *,
    pattern_help: Mapping[str, str] | None = None,
    skip: Callable[[PathKey], bool] | None = None,
) -> list[Problem]:
    """One located problem per pydantic error. *skip* drops errors about data the loader made up."""
    problems: list[Problem] = []
    seen: set[tuple[int, int, str]] = set()
    errors = exc.errors(include_url=False)
    deeper = [_data_path(doc.data, e["loc"]) for e in errors]
    for err in errors:
        loc = _data_path(doc.data, err["loc"])
        if skip is not None and skip(loc):
            continue
        kind = err["type"]
        if kind == "too_short" and any(len(d) > len(loc) and d[: len(loc)] == loc for d in deeper):
            continue  # pydantic adds "too short" when items failed; the item errors say it better
        on_key = "[key]" in err["loc"]
        if kind == "extra_forbidden":
            key = loc[-1] if loc else "?"
            allowed = _allowed_keys(root, loc[:-1])
            hint = ""
            close = difflib.get_close_matches(str(key), allowed, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
            expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
            problems.append(doc.problem(loc, f"unknown key {key!r}{hint}{expected}", at_key=True))
        elif kind == "missing":
            problems.append(doc.problem(loc, f"required key {loc[-1]!r} is missing", at_key=True))
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
                loc, msg, on_key = _narrow(doc.data, loc, msg)
            pattern = (err.get("ctx") or {}).get("pattern")
            if (
                kind == "string_pattern_mismatch"
                and pattern_help
                and isinstance(pattern, str)
                and pattern in pattern_help
            ):
                msg = pattern_help[pattern]
            found = err.get("input")
            if not isinstance(found, dict | list):
                msg = f"found {found!r}; {msg}"
            problem = doc.problem(loc, msg, at_key=on_key)
            if (problem.line, problem.column, problem.message) not in seen:
                seen.add((problem.line, problem.column, problem.message))
                problems.append(problem)
    return problems


def _narrow(data: Any, loc: PathKey, msg: str) -> tuple[PathKey, str, bool]:
    """A validator message ``"field: text"`` about an object points at that field when it was written;
    otherwise an object-level error points at the object's key rather than its first line."""
    target: Any = data
    for part in loc:
        if isinstance(target, dict):
            target = target.get(part)
        elif isinstance(target, list) and isinstance(part, int) and 0 <= part < len(target):
            target = target[part]
        else:
            target = None
    if not isinstance(target, dict):
        return loc, msg, False
    field, sep, rest = msg.partition(": ")
    if sep and field in target:
        return (*loc, field), rest, False
    if sep and field.isidentifier():
        return loc, rest, True
    return loc, msg, True


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """Keep only the loc parts that name a real place in the data (pydantic adds e.g. union member names)."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        if isinstance(part, str) and (part == "[key]" or _looks_internal(part)):
            continue
        in_dict = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_dict or in_list:
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str):
            cur = None  # a missing key: reported at its parent
        else:
            continue
        out.append(part)
    return tuple(out)


def _looks_internal(part: str) -> bool:
    return part.startswith(("function-", "literal[", "tagged-union[")) or ("[" in part and part.endswith("]"))


def _allowed_keys(root: type[BaseModel], path: PathKey) -> list[str]:
    model = _model_at(root, path)
    return sorted(model.model_fields) if model is not None else []


def _model_at(root: Any, path: PathKey) -> type[BaseModel] | None:
    cur: Any = root
    for part in path:
        cur = _unwrap(cur)
        if isinstance(cur, type) and issubclass(cur, BaseModel):
            field = cur.model_fields.get(str(part))
            if field is None:
                return None
            cur = field.annotation
            continue
        origin = typing.get_origin(cur)
        args = typing.get_args(cur)
        if origin is dict and len(args) == 2:
            cur = args[1]
        elif origin in (tuple, list) and args:
            cur = args[0]
        else:
            return None
    cur = _unwrap(cur)
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``X | None``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def iter_yaml_files(path: Path) -> Iterator[Path]:
    yield from sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
