"""Importing the core (calls/, engine/) has no side effect on ami/: no C module loaded, none configured.

The C loop's state is process-wide; it is set up on first use (the first AmiFramer, see callbridge.ami.fast),
never by an import. Each check runs in a fresh interpreter, where nothing else has framed anything yet.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

C_MODULE = "callbridge.ami.fast._fastframe"

_IMPORT_THE_CORE = """
import importlib, pkgutil, sys
import callbridge.calls, callbridge.engine
for package in (callbridge.calls, callbridge.engine):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
"""

# parse_run refuses to run before configure(): the C module's state, read from outside.
_C_STATE = f"""
try:
    c = importlib.import_module("{C_MODULE}")
except ImportError:
    print("not built")
else:
    try:
        c.parse_run(b"Event: X\\r\\n", 0, 9)
        print("configured")
    except RuntimeError:
        print("unconfigured")
"""


def _run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _c_built() -> bool:
    return _run("import importlib\n" + _C_STATE) != ["not built"]


def test_importing_calls_and_engine_loads_neither_the_c_module_nor_the_decoder() -> None:
    loaded = _run(_IMPORT_THE_CORE + f"""
print("c-module" if "{C_MODULE}" in sys.modules else "-")
print("decoder" if "callbridge.ami.decode" in sys.modules else "-")
print(len([name for name in sys.modules if name.startswith(("callbridge.calls.", "callbridge.engine."))]))
""")
    assert loaded[:2] == ["-", "-"]  # the core imports event types, not the decoder nor the C loop
    assert int(loaded[2]) > 10  # every module of calls/ and engine/ was imported


def test_importing_calls_and_engine_leaves_the_c_module_unconfigured() -> None:
    if not _c_built():
        pytest.skip("the C loop is not built (tests/ami/test_fastframe.py::test_the_c_loop_is_built says why)")
    assert _run(_IMPORT_THE_CORE + _C_STATE) == ["unconfigured"]
    # The check can tell: the first framer configures it.
    framed = _IMPORT_THE_CORE + "from callbridge.ami.framing import AmiFramer\nAmiFramer()\n" + _C_STATE
    assert _run(framed) == ["configured"]
