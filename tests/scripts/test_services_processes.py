"""scripts/services_processes.py: finding and stopping every process of a deployment."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import textwrap
import time

import psutil

from scripts.services_processes import (
    TAG_VAR,
    describe_exit,
    kill_session,
    owned_processes,
    session_processes,
    stop_processes,
)

_TREE = textwrap.dedent(
    """\
    import os, subprocess, sys, time
    # Like a task supervisor: a child in a process group of its own.
    subprocess.Popen([sys.executable, "-c", "import os,time; os.setpgid(0,0); time.sleep(300)"])
    # Like a process that escapes the session entirely: only the tag finds it.
    subprocess.Popen([sys.executable, "-c", "import os,time; os.setsid(); time.sleep(300)"])
    # Ignores SIGTERM: needs the SIGKILL escalation.
    subprocess.Popen([sys.executable, "-c",
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
    time.sleep(300)
    """
)


def _alive(pids: list[int]) -> list[int]:
    return [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]


def test_stop_processes_leaves_no_process_behind() -> None:
    tag = f"ctr-test-{secrets.token_hex(4)}"
    env = {"PATH": "/usr/bin:/bin", TAG_VAR: tag}
    started = time.time()
    leader = subprocess.Popen([sys.executable, "-c", _TREE], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(owned_processes(tag, [leader.pid], started)) < 4:
            assert time.monotonic() < deadline, "the process tree did not start"
            time.sleep(0.1)
        pids = [p.pid for p in owned_processes(tag, [leader.pid], started)]
        assert stop_processes(tag, [leader.pid], since=started, grace=2) == []
        leader.wait(timeout=5)
        assert _alive(pids) == []
    finally:
        for proc in owned_processes(tag, [leader.pid], started):
            proc.send_signal(signal.SIGKILL)


def test_kill_session_kills_what_a_dead_leader_left_behind() -> None:
    # A worker whose main process died while its pool child (same session) lives on.
    started = time.time()
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "time.sleep(0.5)\n"
    )
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        leader.wait(timeout=30)
        left = session_processes(leader.pid, since=started)
        assert len(left) == 1, left
        assert kill_session(leader.pid, since=started) == []
        assert _alive([p.pid for p in left]) == []
    finally:
        for proc in session_processes(leader.pid, since=started):
            proc.kill()


def test_describe_exit_names_the_signal() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(3) == "exit code 3"
