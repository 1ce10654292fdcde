"""`mmrag store postgres`: a local PostgreSQL with pgvector that answers, and stops with its command."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from app.generation.local import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_local_server_answers_and_sigterm_stops_it():
    folder = Path(tempfile.mkdtemp(prefix="mmrag-test-pgcli-"))
    folder.chmod(0o755)  # as root the server runs as nobody, which must reach its folder
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "store", "postgres", "--dir", str(folder / "pg"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].split("MMRAG_POSTGRES_URL=")[1].strip()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            assert conn.execute("SELECT '[1,2]'::vector <#> '[3,4]'::vector").fetchone()[0] == -11.0
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
        time.sleep(0.5)
        assert not (folder / "pg" / "postmaster.pid").exists()  # the server went down with its command
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
