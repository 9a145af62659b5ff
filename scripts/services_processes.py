"""Which processes belong to one deployment, and stopping all of them.

Every service is started as the leader of its own session (and process group) and tagged
with an environment variable (``CTR_AIRFLOW_SERVICES_TAG``) that its children inherit.
The pid file ``$AIRFLOW_HOME/ctr-airflow-services.json`` records them, so ``down`` can stop
a detached or orphaned set. Stopping signals each group, then every process still in one
of our sessions or carrying the tag (a task runs in a group of its own, and the
``airflow api_server`` child can outlive its group), escalates to SIGKILL after a grace
period and checks with psutil that nothing of ours is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

TAG_VAR = "CTR_AIRFLOW_SERVICES_TAG"
PID_FILE_NAME = "ctr-airflow-services.json"


@dataclass
class Service:
    """One long-running Airflow process we started (and restart when it dies)."""

    name: str
    argv: list[str]
    #: Its environment when it differs from the deployment's (a worker's own home).
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    started_at: float = 0.0
    restarts: int = 0
    #: Size of the (appended) log file when this process started: its lines come after.
    log_offset: int = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def exit_code(self) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal)."""
        return self.proc.poll() if self.proc is not None else None


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL``."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def read_pid_file(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def write_pid_file(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def recorded_processes(data: Mapping[str, Any]) -> list[psutil.Process]:
    """The live processes of the deployment a pid file describes."""
    pids = [p["pid"] for p in data.get("processes", [])]
    return owned_processes(data.get("tag", ""), pids, data.get("started_at", 0.0))


def owned_processes(
    tag: str, sessions: Iterable[int] = (), since: float = 0.0
) -> list[psutil.Process]:
    """Every live process of one deployment.

    A process is ours when its environment carries ``CTR_AIRFLOW_SERVICES_TAG=<tag>``, or
    when it runs in the session of one of our services (each service is started as a
    session leader) and was created after them. Both are needed: Airflow renames its
    processes with setproctitle, which overwrites ``/proc/<pid>/environ``, and a task
    supervisor moves its task into a new process group (but not a new session).
    """
    needle = f"{TAG_VAR}={tag}".encode() if tag else None
    sids = set(sessions)
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            ours = False
            if sids and os.getsid(proc.pid) in sids and proc.create_time() >= since - 1.0:
                ours = True
            elif needle is not None:
                # Reading /proc directly is much faster than psutil's environ() parsing.
                with open(f"/proc/{proc.pid}/environ", "rb") as fh:
                    ours = needle + b"\0" in fh.read() + b"\0"
            if ours and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def session_processes(sid: int, since: float = 0.0) -> list[psutil.Process]:
    """Live processes of session ``sid`` created after ``since`` (guards pid reuse)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if (
                os.getsid(proc.pid) == sid
                and proc.create_time() >= since - 1.0
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def kill_session(sid: int, since: float = 0.0, timeout: float = 10.0) -> list[psutil.Process]:
    """SIGKILL every process left in session ``sid``; return those still alive after."""
    procs = session_processes(sid, since)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return list(alive)


def stop_processes(
    tag: str, pids: Iterable[int], since: float = 0.0, grace: float = 20.0
) -> list[psutil.Process]:
    """SIGTERM our process groups and every process we own, SIGKILL what remains.

    Args:
        tag: The deployment's ``CTR_AIRFLOW_SERVICES_TAG`` value.
        pids: The service processes (each leads its own session and group).
        since: When they were started (``time.time()``); guards against pid reuse.
        grace: Seconds between SIGTERM and SIGKILL.

    Returns:
        Processes still alive afterwards (empty on success).
    """
    pids = list(pids)

    def collect() -> dict[int, psutil.Process]:
        found = {p.pid: p for p in owned_processes(tag, pids, since)}
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() >= since - 1.0:
                    found[pid] = proc
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
        return found

    def signal_all(procs: Iterable[psutil.Process], sig: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(pid, sig)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    targets = collect()
    signal_all(targets.values(), signal.SIGTERM)
    _, alive = psutil.wait_procs(list(targets.values()), timeout=grace)
    # Processes spawned during shutdown (a task supervisor, a pool child) are ours too.
    late = [p for pid, p in collect().items() if pid not in targets]
    if alive or late:
        signal_all([*alive, *late], signal.SIGKILL)
        psutil.wait_procs([*alive, *late], timeout=5)
    deadline = time.monotonic() + 5
    while True:
        left = owned_processes(tag, pids, since)
        if not left or time.monotonic() > deadline:
            return left
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        time.sleep(0.2)
