"""Die with the parent: a child process a validator started ends when the validator dies by any signal.

A SIGKILLed validator runs no clean-up, so its local-mode miners (about 500 MB each) would live on.
The child asks the kernel for a signal when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``),
and elsewhere watches its parent pid from a daemon thread. The parent passes its pid in
``PARENT_PID_ENV``: if the child's parent is already another process (the validator died before the
child got here), the child signals itself at once.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, so the parent must start
its children from a thread that lives as long as it does (the event loop's, not a worker pool's).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping

#: the environment variable a parent sets to its pid for the children it wants tied to it.
PARENT_PID_ENV = "SUBNET_PROXY_PARENT_PID"
PR_SET_PDEATHSIG = 1
#: how often the portable watch looks at the parent pid, in seconds.
WATCH_INTERVAL_S = 1.0


def tie_to_parent(parent_pid: int, *, sig: signal.Signals = signal.SIGTERM) -> None:
    """Get ``sig`` when the process ``parent_pid`` (this process's parent) dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch, args=(parent_pid, sig), name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the kernel was told to watch it
        os.kill(os.getpid(), sig)


def _watch(parent_pid: int, sig: signal.Signals) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os.kill(os.getpid(), sig)


def tie_to_parent_from_env(environ: Mapping[str, str]) -> None:
    """``tie_to_parent`` when the parent asked for it through ``PARENT_PID_ENV``."""
    value = environ.get(PARENT_PID_ENV)
    if value:
        tie_to_parent(int(value))
