"""The suite runs from a clone with nothing beside it: fixtures live in the repository, nothing reads ``../shared``.

CI has the lab folder beside its clone and a user does not, so two checks: the source of every test, conftest
and helper (and of the benchmarks) names no path into it, and ``tests.shared_guard`` fails any test run that
reads it anyway. Only the live-PBX suite (``tests/live/``) may use the lab's Asterisk there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LAB, REPO, traces_dir
from tests.shared_guard import SHARED, reads_shared

FIXTURE_TRACES = REPO / "tests" / "fixtures" / "asterisk-22"
# The two files that name the lab folder in order to forbid it.
GUARD_FILES = {REPO / "tests" / "shared_guard.py", Path(__file__).resolve()}
# A path into the lab folder, however it is spelled: "../shared/…", ".../shared/traces", parents[n] / "shared",
# joinpath("shared"), os.path.join(x, "shared").
SHARED_PATH = re.compile(r"""\.\./shared\b|\bshared/(?:traces|asterisk)|(["'])shared\1""")
SCENARIOS = ("01", "01a", "02", "03", "04", "05", "06", "07", "08", "09", "10", "13", "15", "16", "17", "18", "19",
             "20", "21")


def references_to_shared(text: str) -> list[int]:
    """Line numbers of ``text`` that name a path into the lab folder."""
    return [n for n, line in enumerate(text.splitlines(), 1) if SHARED_PATH.search(line)]


def _checked_sources() -> list[Path]:
    live = REPO / "tests" / "live"
    files = [*(REPO / "tests").rglob("*.py"), *(REPO / "bench").rglob("*.py")]
    return sorted(p for p in files if not p.is_relative_to(live) and p.resolve() not in GUARD_FILES)


@pytest.mark.parametrize("text", [
    'LAB = Path(__file__).resolve().parents[3] / "shared" / "asterisk-lab"',
    "return REPO.parent.joinpath('shared', 'traces')",
    'os.path.join(root, "..", "shared")',
    'TRACES = "../shared/traces/asterisk-22"',
    '"""The recordings in ``/work/shared/traces/asterisk-22``."""',
    'conf = "/srv/shared/asterisk-lab/etc/extensions.conf"',
])
def test_the_source_check_sees_every_spelling_of_the_lab_path(text: str) -> None:
    assert references_to_shared(f"x = 1\n{text}\n") == [2]


@pytest.mark.parametrize("text", [
    'SECRET = b"shared-secret"',
    "async def test_shared_subscription_spreads_commands() -> None:",
    '"$share/<group>/…" shared subscriptions',
    'TRACES = REPO / "tests" / "fixtures" / "asterisk-22"',
])
def test_the_source_check_leaves_other_uses_of_the_word_alone(text: str) -> None:
    assert references_to_shared(text) == []


def test_no_test_conftest_helper_or_benchmark_names_the_lab_folder() -> None:
    sources = _checked_sources()
    assert REPO / "tests" / "conftest.py" in sources and len(sources) > 50
    found = [f"{p.relative_to(REPO)}:{n}" for p in sources for n in references_to_shared(p.read_text("utf-8"))]
    assert found == [], f"paths into {SHARED} (use tests/fixtures/; only tests/live/ may): {found}"


def test_the_default_traces_are_the_repository_copy_with_every_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLBRIDGE_TRACES", raising=False)
    path = traces_dir()
    assert path == FIXTURE_TRACES and not reads_shared(str(path))
    recorded = {p.name.split("_", 1)[0] for p in path.glob("*.rx.raw")}
    assert recorded == set(SCENARIOS)
    for prefix in SCENARIOS:
        (rx,) = path.glob(f"{prefix}_*.rx.raw")
        name = rx.name.removesuffix(".rx.raw")
        assert rx.read_bytes().startswith(b"Asterisk Call Manager/11.0.0\r\n"), name
        assert (path / f"{name}.tx.raw").is_file() and (path / f"{name}.log").is_file(), name
    assert "Per scenario NAME" in (path / "README.md").read_text("utf-8")


def test_the_lab_configuration_is_in_the_repository() -> None:
    assert not reads_shared(str(LAB))
    assert "[from-trunk]" in (LAB / "etc" / "extensions.conf").read_text("utf-8")
    assert {"manager.conf", "pjsip.conf", "queues.conf", "features.conf"} <= {p.name for p in (LAB / "etc").iterdir()}
    assert (LAB / "sipp" / "uas_hold.xml").is_file() and (LAB / "README.md").is_file()


def test_callbridge_traces_still_overrides_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = next(FIXTURE_TRACES.glob("04_*.rx.raw"))
    (tmp_path / one.name).write_bytes(one.read_bytes())
    monkeypatch.setenv("CALLBRIDGE_TRACES", str(tmp_path))
    assert traces_dir() == tmp_path
    monkeypatch.setenv("CALLBRIDGE_TRACES", str(tmp_path / "nothing"))
    with pytest.raises(pytest.fail.Exception, match=r"no recorded traces .*CALLBRIDGE_TRACES"):
        traces_dir()  # an empty folder is not "no scenarios, nothing to test"


def test_git_ignores_no_fixture() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "tests/fixtures"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert ignored == "", f"fixtures a clone would not get: {ignored}"
    attributes = subprocess.run(["git", "check-attr", "text", "--", "tests/fixtures/asterisk-22/04_x.rx.raw"],
                                cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert attributes.strip().endswith("text: unset"), "recordings keep their CRLF bytes"


def _run_guarded(tmp_path: Path, test_source: str) -> subprocess.CompletedProcess[str]:
    """Runs one test file under the guard plugin, from a folder outside the repository."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_reader.py").write_text(test_source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.shared_guard",
         "-c", str(tmp_path / "pytest.ini"), str(tmp_path / "test_reader.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_test_that_reads_the_lab_folder_fails_even_if_it_swallows_the_error(tmp_path: Path) -> None:
    target = SHARED / "traces" / "asterisk-22" / "04_blind_transfer_sip_agent_to_hotline.rx.raw"
    source = (f"from pathlib import Path\n\n"
              f"def test_reads():\n"
              f"    try:\n"
              f"        Path({str(target)!r}).read_bytes()\n"
              f"    except OSError:\n"
              f"        pass  # whether the lab folder is there or not\n\n"
              f"def test_reads_nothing():\n"
              f"    assert Path({str(tmp_path)!r}).is_dir()\n")
    run = _run_guarded(tmp_path, source)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 passed, 1 error" in run.stdout and "ERROR at teardown of test_reads" in run.stdout
    assert str(target) in run.stdout


def test_a_read_at_collection_fails_the_session(tmp_path: Path) -> None:
    source = (f"import os\n\n"
              f"try:\n"
              f"    NAMES = os.listdir({str(SHARED)!r})\n"
              f"except OSError:\n"
              f"    NAMES = []\n\n"
              f"def test_something():\n"
              f"    assert isinstance(NAMES, list)\n")
    run = _run_guarded(tmp_path, source)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout and f"{SHARED} (during collection)" in run.stdout


def test_reading_the_repository_fixtures_is_not_flagged(tmp_path: Path) -> None:
    source = (f"from pathlib import Path\n\n"
              f"def test_reads_the_fixtures():\n"
              f"    assert sorted(Path({str(FIXTURE_TRACES)!r}).glob('*.rx.raw'))\n"
              f"    assert Path({str(LAB / 'etc' / 'extensions.conf')!r}).read_text()\n")
    run = _run_guarded(tmp_path, source)
    assert run.returncode == 0, run.stdout + run.stderr
