"""Record-store fixtures: every store test runs on SQLite and — when the Debian PostgreSQL binaries and
psycopg are present — on a throwaway PostgreSQL cluster started for the session."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from callbridge.store.records import RecordStore
from callbridge.testing.ports import free_port


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


class PgCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="cb-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        # root cannot run postgres: run the cluster as the 'postgres' system user when we are root.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.root, "postgres")
        self.user = "postgres" if self.prefix else os.environ.get("USER", "postgres")

    def run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        self.run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "-l", str(self.root / "log"),
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
        )  # fmt: skip

    def stop(self) -> None:
        try:
            self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, db: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={db}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests skipped: psycopg is not installed (pip install 'callbridge[postgres]')")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL tests skipped: no /usr/lib/postgresql/*/bin/pg_ctl (apt-get install postgresql)")
    cluster = PgCluster(bindir)
    try:
        cluster.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(cluster.root, ignore_errors=True)
        detail = exc.stderr.decode(errors="replace")[-400:] if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"PostgreSQL tests skipped: could not start a throwaway cluster: {detail}")
    yield cluster
    cluster.stop()


_db_names = itertools.count()


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the session cluster."""
    import psycopg

    name = f"cb_test_{os.getpid()}_{next(_db_names)}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return pg_cluster.dsn(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    if request.param == "sqlite":
        s = RecordStore.sqlite(tmp_path / "records.db")
    else:
        s = RecordStore.postgres(request.getfixturevalue("pg_dsn"))
    yield s
    s.close()
