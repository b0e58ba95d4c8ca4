"""subnet_proxy.parent: a child tied to its parent ends when the parent is SIGKILLed, on both mechanisms."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from subnet_proxy.parent import PARENT_PID_ENV

ROOT = Path(__file__).resolve().parents[1]

#: a child that ties itself to its parent (optionally as a non-Linux system would), says so, then sleeps.
CHILD = """
import os, sys, time
from subnet_proxy.parent import tie_to_parent_from_env
if sys.argv[1] == "watch":
    sys.platform = "darwin"  # take the portable path: a thread watching the parent pid
tie_to_parent_from_env(os.environ)
print(os.getpid(), flush=True)
time.sleep(120)
"""
#: a parent that starts the child with its own pid in the environment, prints the child's pid, then sleeps.
PARENT = """
import os, subprocess, sys, time
env = {**os.environ, %r: str(os.getpid())}
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], env=env, stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
time.sleep(120)
""" % PARENT_PID_ENV


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.parametrize("mechanism", ["prctl", "watch"])
def test_the_child_ends_when_its_parent_is_killed(mechanism: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, mechanism], env=env, stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        for pid in (child, parent.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait(10)
        parent.stdout.close()


def test_a_child_whose_parent_is_already_gone_ends_at_once() -> None:
    # the pid in the environment is not this child's parent: the parent died before the child got to tie itself
    env = {**os.environ, "PYTHONPATH": str(ROOT), PARENT_PID_ENV: "1"}
    child = subprocess.run([sys.executable, "-c", CHILD, "prctl"], env=env, capture_output=True, timeout=30)
    assert child.returncode == -signal.SIGTERM and child.stdout == b""


def test_no_tie_without_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != PARENT_PID_ENV} | {"PYTHONPATH": str(ROOT)}
    code = "import os; from subnet_proxy.parent import tie_to_parent_from_env; tie_to_parent_from_env(os.environ)"
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=30).returncode == 0
