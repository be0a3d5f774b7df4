"""The final stage of the repo's Dockerfile, read the way ``docker build`` reads it — enough to lay the image's
files out in a temporary root and run its command there, without a Docker daemon.

Only the instructions the Dockerfile uses are understood; anything else is an error, so the layout test
cannot silently run something other than what the image runs.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


class UnknownInstruction(AssertionError):
    """The Dockerfile grew an instruction this reader does not model: teach it before trusting the test."""


@dataclass
class Image:
    """What the final stage puts where, and how the container starts."""

    copies: list[tuple[str, str]] = field(default_factory=list)  # (path in the repo, path in the image)
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    home: str | None = None  # the home of the user created by RUN useradd
    workdir: str = "/"
    volumes: list[str] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: str = ""  # the shell command of HEALTHCHECK CMD
    installs_package: bool = False  # RUN pip install of the wheels built in the first stage

    @property
    def argv(self) -> list[str]:
        return self.entrypoint + self.cmd

    def lay_out(self, root: Path) -> None:
        """Copy every ``COPY`` source to its place under *root* and create the working directory."""
        for src, dest in self.copies:
            source = REPO / src
            target = inside(root, dest)
            if source.is_dir():
                shutil.copytree(source, target)  # COPY dir dest copies the directory's contents
            else:
                if dest.endswith("/"):
                    target = target / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        inside(root, self.workdir).mkdir(parents=True, exist_ok=True)


def inside(root: Path, image_path: str) -> Path:
    """*image_path* (absolute in the image) under the temporary *root*."""
    assert image_path.startswith("/"), f"{image_path}: image paths in the Dockerfile must be absolute"
    return root / image_path.lstrip("/")


def map_paths(root: Path, words: list[str]) -> list[str]:
    """Absolute image paths in a command line moved under *root*; other words unchanged."""
    return [str(inside(root, w)) if w.startswith("/") else w for w in words]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def final_stage(text: str | None = None) -> Image:
    """The image the last ``FROM`` builds."""
    steps = instructions(DOCKERFILE.read_text(encoding="utf-8") if text is None else text)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    image = Image()
    for word, args in steps[last_from + 1 :]:
        step = _STEPS.get(word)
        if step is None:
            raise UnknownInstruction(f"Dockerfile: {word} {args}")
        step(image, args)
    return image


def _env(image: Image, args: str) -> None:
    for item in shlex.split(args):
        key, sep, value = item.partition("=")
        assert sep, f"ENV {args}: use the KEY=value form"
        image.env[key] = value


def _user(image: Image, args: str) -> None:
    image.user = args


def _workdir(image: Image, args: str) -> None:
    image.workdir = args


def _volume(image: Image, args: str) -> None:
    image.volumes += _exec_form(args) if args.startswith("[") else args.split()


def _expose(image: Image, args: str) -> None:
    image.expose += [int(p.split("/")[0]) for p in args.split()]


def _entrypoint(image: Image, args: str) -> None:
    image.entrypoint = _exec_form(args)
    image.cmd = []  # docker resets CMD when ENTRYPOINT is set after it


def _cmd(image: Image, args: str) -> None:
    image.cmd = _exec_form(args)


def _healthcheck(image: Image, args: str) -> None:
    m = re.search(r"\bCMD\s+(.*)$", args)
    assert m, f"HEALTHCHECK {args}: expected a CMD"
    image.healthcheck = m.group(1)


def _run(image: Image, args: str) -> None:
    words = shlex.split(args)
    if words[0] == "useradd":
        m = re.search(r"--home-dir\s+(\S+)", args)
        image.home = m.group(1) if m else None
    elif words[:2] == ["pip", "install"] and any(w.startswith("/wheels/") for w in words):
        image.installs_package = True  # the test runs the package installed in this environment
    else:
        raise UnknownInstruction(f"Dockerfile: RUN {args}")


def _copy(image: Image, args: str) -> None:
    words = _exec_form(args) if args.startswith("[") else shlex.split(args)
    if words[0].startswith("--from="):
        if words[1:] != ["/wheels", "/wheels"]:
            raise UnknownInstruction(f"Dockerfile: COPY {args}")
        return
    if any(w.startswith("--") for w in words):
        raise UnknownInstruction(f"Dockerfile: COPY {args}")
    *sources, dest = words
    for src in sources:
        assert (REPO / src).exists(), f"Dockerfile: COPY {src}: not in the repository"
        image.copies.append((src, dest))


#: what each instruction of the final stage does to the image (any other instruction is refused)
_STEPS: dict[str, Callable[[Image, str], None]] = {
    "ENV": _env,
    "RUN": _run,
    "COPY": _copy,
    "USER": _user,
    "WORKDIR": _workdir,
    "VOLUME": _volume,
    "EXPOSE": _expose,
    "ENTRYPOINT": _entrypoint,
    "CMD": _cmd,
    "HEALTHCHECK": _healthcheck,
}
