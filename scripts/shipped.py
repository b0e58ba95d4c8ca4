"""The shipped entry points as benchmark targets: started as operators start them, measured from outside.

A benchmark of what users run starts ``python -m subnet_proxy.server`` or ``neurons/proxy_validator.py``
as a child process with its default logging and settings (only what the bench must change, given as
flags), waits until it serves, reads its CPU time from ``/proc`` and stops it as an operator would
(SIGTERM). ``code`` is the source tree whose entry point runs, so two trees can be compared.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

#: how long a validator may take to load its scoring models and serve.
START_S = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_env(code: Path) -> dict[str, str]:
    """The environment of a child running ``code``: no model downloads, wandb writing offline."""
    return {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
            "WANDB_SILENT": "true"}


def register(chain_file: Path, miners: Sequence[tuple[str, int]]) -> None:
    """Register (hotkey, port) miners on 127.0.0.1 in a local chain file, before its validator starts
    (the local chain of the tree on ``sys.path``: the one whose validator reads the file)."""
    from subnet_proxy.chain import Registration
    from subnet_proxy.chain.local import LocalChain

    chain = LocalChain(chain_file, netuid=1)
    for hotkey, port in miners:
        chain.register_sync(Registration(hotkey=hotkey, coldkey=hotkey, ip="127.0.0.1", port=port))


class Target:
    """One server process: started, paused and resumed on demand, then asked to shut down."""

    def __init__(self, argv: list[str], log_path: Path, port: int, *, code: Path) -> None:
        self.port, self.log_path = port, log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=child_env(code), cwd=code)
        deadline = time.monotonic() + START_S
        while True:  # a validator loads its scoring models first
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[1:3]} exited ({self.proc.returncode}); see {log_path}")
            try:
                with urllib.request.urlopen(self.url + "/api/v1/health/live", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{argv[1:3]} did not serve within {START_S:.0f} s; see {log_path}")
            time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cpu_s(self) -> float:
        return cpu_s(self.proc.pid)

    def pause(self, paused: bool) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def stop(self, timeout: float = 60.0) -> float:
        """Shut down gracefully (killed after ``timeout`` s); the seconds it took."""
        started = time.monotonic()
        self.pause(False)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - started
