"""Who holds a data directory's writer lock, so that a busy lock is reported with a pid and can be cleared.

The lock is an ``flock`` on ``DATA_DIR/writer.lock``; the kernel drops it when every descriptor of it
is closed, so a dead writer never holds it. What can hold it past its writer is a process that
inherited the descriptor (an orphaned worker of an older version, or of another program). The file
records the writer that took the lock (pid, command, time), and ``holders`` finds every process
that has the file open, from /proc.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path


def write_owner(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
            "command": " ".join(sys.argv)[:300]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


def read_owner(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _ppid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def holders(path: Path) -> list[dict]:
    """Processes (other than this one) with the lock file open: pid, parent pid, command line."""
    target = os.path.realpath(path)
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    pid = int(entry.name)
                    found.append({"pid": pid, "ppid": _ppid(pid), "command": _cmdline(pid)[:200]})
                    break
        except OSError:
            continue  # gone, or not ours to read
    return found


def lock_report(path: Path) -> str:
    owner = read_owner(path)
    data_dir = Path(path).parent
    msg = f"another process is writing to {data_dir}"
    pid = owner.get("pid")
    if pid:
        state = "running" if _alive(pid) else "no longer running"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("since", 0)))
        msg += f": the lock was taken by pid {pid} ({owner.get('command', '?')}, since {since}), {state}"
    others = [h for h in holders(path) if h["pid"] != pid]
    if others:
        listed = ", ".join(f"pid {h['pid']} ({h['command'][:80]}{', orphaned' if h['ppid'] == 1 else ''})" for h in others)
        msg += f"; also holding the lock file: {listed}. `mmrag unlock --data-dir {data_dir}` stops orphaned mmrag workers"
    elif pid and not _alive(pid):
        msg += "; no process holds the file now, so retry"
    return msg


def stop_orphans(path: Path, force: bool = False) -> list[dict]:
    """Kill processes that hold the lock file although the writer that took it is gone: orphans
    (parent pid 1) running mmrag code, or any holder with ``force``. Returns the ones killed."""
    owner = read_owner(path)
    pid = owner.get("pid")
    if pid and _alive(pid) and not force:
        return []  # a live writer: not ours to break
    killed = []
    for h in holders(path):
        mmrag_code = any(k in h["command"] for k in ("mmrag", "ingest.worker", "multiprocessing"))
        if force or (h["ppid"] == 1 and mmrag_code):
            try:
                os.kill(h["pid"], signal.SIGKILL)
                killed.append(h)
            except OSError:
                pass
    return killed
