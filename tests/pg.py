"""A throwaway PostgreSQL server for the team-state tests (Debian's ``postgresql`` package).

``initdb`` and ``pg_ctl`` come from ``/usr/lib/postgresql/*/bin`` (``make sysdeps`` installs
the package when it is missing). PostgreSQL refuses to run as root, so when we are root (CI)
they run as the ``postgres`` OS user through ``runuser`` in a temp dir owned by it. The server
listens on 127.0.0.1 on a free port (its unix socket stays in the temp dir), trusts local
connections, and is stopped at the end of the session. Each test gets a database of its own.

Where the server cannot be found or started, the tests that need it are skipped and say why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version, reverse=True)
    return Path(found[0]).parent if found else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A running server; ``url()`` makes a fresh database and returns its SQLAlchemy URL."""

    def __init__(self, bindir: Path, root: Path, port: int, as_user: list[str]) -> None:
        self.bindir, self.root, self.port, self.as_user = bindir, root, port, as_user
        self.data = root / "data"
        self.user = "amictl"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=timeout, cwd=self.root
        )

    def start(self) -> None:
        self._initdb()
        self.restart()

    def _initdb(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text("secret\n")
        init = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--pwfile",
            str(pwfile),
            "-A",
            "scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()[-500:]}")

    def restart(self) -> None:
        """Start the server (again, after ``stop``: same data, same port)."""
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        ctl = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            opts,
            "-w",
            "-t",
            "30",
            "start",
        )
        if ctl.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"pg_ctl start failed: {ctl.stderr.strip()[-300:]} {log}")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate`` (the end of the session) or ``fast``: a clean shutdown, what a server
        stopped for maintenance does (the test server runs with synchronous_commit=off, so
        an immediate stop may lose the last commits it acknowledged, as a crash of it would)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{self.user}:secret@127.0.0.1:{self.port}/postgres"

    def url(self) -> str:
        """A new empty database of its own."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        dsn = f"host=127.0.0.1 port={self.port} user={self.user} password=secret dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}:secret@127.0.0.1:{self.port}/{name}"


def doc_sql(section: str) -> list[str]:
    """The ```sql blocks of a section of docs/team.md, in order: the tests run the role SQL
    the operators read, so the two cannot drift."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "team.md").read_text()
    part = text.split(section, 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in part.split("```sql\n")[1:]]


class TeamDb:
    """A database of its own set up exactly as docs/team.md says: the owner, app and signer
    roles (roles are the server's: made if missing, dropped at ``close``), the owner's grants,
    ``state migrate`` as the owner, then the signer's grant. ``url(role)`` for each role."""

    ROLES = {"owner": "change-me-owner", "app": "change-me-app", "signer": "change-me-signer"}

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.db = f"team_{uuid.uuid4().hex[:10]}"
        self.base = f"host=127.0.0.1 port={server.port}"
        self.admin = f"{self.base} user={server.user} password=secret dbname=postgres"
        setup, grants, self.regrant = doc_sql("## The PostgreSQL database and its roles")
        signer_setup, signer_grants = doc_sql("## The plan-signing key")
        self.sql(self.admin, setup.replace("DATABASE amictl ", f"DATABASE {self.db} "))
        self.sql(self.dsn("owner"), grants)
        from amictl.state import schema
        from amictl.state.store import Store

        schema.migrate(Store(self.url("owner"), check_schema=False).engine)
        self.sql(self.admin, signer_setup)
        self.sql(self.dsn("owner"), signer_grants)

    def dsn(self, role: str) -> str:
        return f"{self.base} user=amictl_{role} password={self.ROLES[role]} dbname={self.db}"

    def url(self, role: str) -> str:
        return (
            f"postgresql+psycopg://amictl_{role}:{self.ROLES[role]}"
            f"@127.0.0.1:{self.server.port}/{self.db}"
        )

    @staticmethod
    def sql(dsn: str, text: str) -> None:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as c:
            for stmt in filter(str.strip, text.split(";")):
                try:
                    c.execute(stmt)
                except psycopg.errors.DuplicateObject:
                    if "CREATE ROLE" not in stmt:
                        raise

    def close(self) -> None:
        import contextlib

        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
            for role in ("amictl_signer", "amictl_app", "amictl_owner"):
                with contextlib.suppress(psycopg.Error):
                    c.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture
def team_db(pg_server: PgServer) -> Iterator[TeamDb]:
    """A database with docs/team.md's roles, migrated to head by the owner."""
    team = TeamDb(pg_server)
    try:
        yield team
    finally:
        team.close()


def _start() -> tuple[PgServer | None, str]:
    bindir = _bindir()
    if bindir is None:
        return (
            None,
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): `make sysdeps`",
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed: `make install`"
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="amictl-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root and there is no `postgres` OS user to run the server as"
        runuser = shutil.which("runuser") or shutil.which("setpriv")
        if runuser is None:
            return None, "running as root without runuser/setpriv to drop to the postgres user"
        os.chown(root, pw.pw_uid, pw.pw_gid)
        if runuser.endswith("runuser"):
            as_user = [runuser, "-u", "postgres", "--"]
        else:
            as_user = [runuser, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
    server = PgServer(bindir, root, _free_port(), as_user)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        return None, f"could not start PostgreSQL from {bindir}: {exc}"
    return server, ""


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server, why = _start()
    if server is None:
        pytest.skip(why)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty state store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.url()


@pytest.fixture
def wait_for():  # type: ignore[no-untyped-def]
    """``wait_for(predicate, timeout, every)``: poll until true; returns the last result."""
    return _wait_for


def _wait_for(predicate, timeout: float = 30.0, every: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())
