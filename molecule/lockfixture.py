"""Planting a held lock for the lock tests of the scenarios: a holder on another machine, a run of this controller
that is still going, or one whose process is gone (provably dead)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time


def a_dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def start_time(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        stat = fh.read()
    return stat[stat.rfind(")") + 2:].split()[19]


def holder(kind: str, age: int = 10, token: str = "theirs", version: str = "sample_app-x", what: str = "backup") -> dict:
    """owner.json of a lock held by: 'elsewhere' (another controller), 'alive' (a process of this controller that
    runs: this test), 'dead' (a process of this controller that is gone)."""
    info = {"owner": "ci@elsewhere", "since": "2026-01-01T00:00:00Z", "epoch": int(time.time()) - age,
            "version": version, "message": "held by a test", "token": token, "what": what}
    if kind == "alive":
        info.update(owner="alice@here", controller=socket.gethostname(), controller_pid=os.getpid(),
                    controller_pid_start=start_time(os.getpid()))
    elif kind == "dead":
        info.update(owner="alice@here", controller=socket.gethostname(), controller_pid=a_dead_pid())
    return info


def plant(host, path: str, info: dict) -> None:
    """The lock directory at ``path`` on the host, held as ``info`` says."""
    out = host.run(f"rm -rf {path} && install -d -m 0700 {path} && cat > {path}/owner.json <<'EOF'\n"
                   f"{json.dumps(info)}\nEOF")
    assert out.rc == 0, out.stderr
