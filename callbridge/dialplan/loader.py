"""Load dialplan YAML (one file or a directory of files) → located problems or a frozen :class:`Dialplan`.

Steps: read → parse with positions → merge files → pydantic validation → cross-reference checks → index.
Every problem names file, line and column; warnings never stop a load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from callbridge.dialplan.checks import cross_check
from callbridge.dialplan.model import KEYED_SECTIONS, PATTERN_HELP, DialplanModel
from callbridge.dialplan.plan import Dialplan
from callbridge.dialplan.yamlsource import (
    Document,
    PathKey,
    Pos,
    iter_yaml_files,
    parse_yaml,
    read_text,
    validation_problems,
)
from callbridge.errors import ConfigError, Problem, UnreadableConfigError

#: sections merged key by key across files (everything else may be set in one file only)
MERGED_SECTIONS = (*KEYED_SECTIONS, "categories")


def load_dialplan(path: Path) -> Dialplan:
    """Load and check *path* (file or directory). Raises ``ConfigError`` / ``UnreadableConfigError``."""
    plan, _warnings = load_dialplan_with_warnings(path)
    return plan


def load_dialplan_with_warnings(path: Path) -> tuple[Dialplan, tuple[Problem, ...]]:
    plan, problems = check_dialplan(path)
    errors = [p for p in problems if p.severity == "error"]
    if plan is None or errors:
        raise ConfigError(errors or problems)
    return plan, tuple(problems)


def check_dialplan(path: Path) -> tuple[Dialplan | None, list[Problem]]:
    """Everything ``callbridge check`` reports; the plan is ``None`` when any error was found."""
    path = Path(path)
    if path.is_dir():
        files = list(iter_yaml_files(path))
        if not files:
            raise UnreadableConfigError(f"{path}: no *.yaml or *.yml files in this directory")
    elif path.is_file():
        files = [path]
    else:
        raise UnreadableConfigError(f"{path}: no such file or directory")
    texts = [(str(f), read_text(f)) for f in files]
    return check_texts(texts)


def parse_dialplan_text(text: str, filename: str = "<string>") -> Dialplan:
    """Load a dialplan from YAML text (tests, MQTT-pushed dialplans). Raises ``ConfigError``."""
    plan, problems = check_texts([(filename, text)])
    if plan is None:
        raise ConfigError([p for p in problems if p.severity == "error"] or problems)
    return plan


def check_texts(texts: list[tuple[str, str]]) -> tuple[Dialplan | None, list[Problem]]:
    problems: list[Problem] = []
    docs: list[Document] = []
    for filename, text in texts:
        doc, found = parse_yaml(text, filename)
        problems.extend(found)
        if doc is not None:
            docs.append(doc)
    if problems:
        return None, problems
    merged, merge_problems = merge_documents(docs)
    if merge_problems:
        return None, merge_problems
    try:
        model = DialplanModel.model_validate(merged.data)
    except ValidationError as exc:
        problems = validation_problems(
            merged, exc, DialplanModel, pattern_help=PATTERN_HELP, skip=lambda loc: _injected_id(merged, loc)
        )
        return None, _sorted(problems)
    for finding in cross_check(model):
        message = finding.message
        if finding.also is not None:
            other = merged.problem(finding.also, "")
            message += f" (at {other.file}:{other.line}:{other.column})"
        problems.append(merged.problem(finding.path, message, finding.severity, at_key=finding.at_key))
    problems = _sorted(problems)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return Dialplan(model, tuple(f for f, _ in texts)), problems


def merge_documents(docs: list[Document]) -> tuple[Document, list[Problem]]:
    """Merge several files: keyed sections entry by entry, other top-level keys from one file only."""
    if len(docs) == 1:
        return docs[0], []
    data: dict[str, Any] = {}
    positions: dict[PathKey, Pos] = {(): docs[0].positions[()]}
    problems: list[Problem] = []
    for doc in docs:
        for section, value in doc.data.items():
            here = doc.positions[(section,)]
            if section in MERGED_SECTIONS and isinstance(value, dict) and isinstance(data.get(section, {}), dict):
                target = data.setdefault(section, {})
                positions.setdefault((section,), here)
                for key, item in value.items():
                    kpos = doc.positions[(section, key)]
                    if key in target:
                        first = positions[(section, key)]
                        problems.append(
                            Problem(
                                kpos.file,
                                kpos.line,
                                kpos.column,
                                f"{section}.{key}",
                                f"duplicate id {key!r}: already defined at {first.file}:{first.line}:{first.column}",
                            )
                        )
                        continue
                    target[key] = item
                    _copy_positions(doc, positions, (section, key))
            elif section in data:
                first = positions[(section,)]
                problems.append(
                    Problem(
                        here.file,
                        here.line,
                        here.column,
                        section,
                        f"{section!r} is already set at {first.file}:{first.line}:{first.column}; set it in one file",
                    )
                )
            else:
                data[section] = value
                _copy_positions(doc, positions, (section,))
    return Document(data, positions), problems


def _copy_positions(doc: Document, positions: dict[PathKey, Pos], prefix: PathKey) -> None:
    n = len(prefix)
    for path, pos in doc.positions.items():
        if path[:n] == prefix:
            positions[path] = pos


def _injected_id(doc: Document, loc: PathKey) -> bool:
    """An error about an id the model copied from its key: the key's own error already says it."""
    return len(loc) == 3 and KEYED_SECTIONS.get(str(loc[0])) == loc[2] and loc not in doc.positions


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.severity != "error", p.file, p.line, p.column))
