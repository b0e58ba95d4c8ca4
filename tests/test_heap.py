"""The heap settings every neuron makes at start: checked in a fresh interpreter, on glibc's own counters."""

from __future__ import annotations

import ctypes.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: frees a 16 MB buffer, then reports how many bytes a 2 MB buffer put in mappings of its own (mallinfo2's hblkhd)
PROBE = """
import ctypes, ctypes.util, json, sys
from subnet_proxy.heap import fix_mmap_threshold
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
fixed = fix_mmap_threshold() if sys.argv[1] == "fixed" else None
libc.free(libc.malloc(16 << 20))  # glibc's dynamic threshold now rises to 16 MB
before = libc.mallinfo2().hblkhd
buffer = libc.malloc(2 << 20)
print(json.dumps({"fixed": fixed, "mapped": libc.mallinfo2().hblkhd - before}))
libc.free(buffer)
"""


def probe(mode: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc"
                    or not ctypes.util.find_library("c"), reason="glibc's mallopt and mallinfo2")
def test_a_fixed_mmap_threshold_keeps_large_buffers_out_of_the_arenas_after_a_larger_one_was_freed() -> None:
    """Without it glibc serves a 2 MB buffer from the heap once a 16 MB one was freed (where it fragments
    what trimming can give back); with it the buffer gets its own mapping, returned to the OS when freed."""
    assert probe("default") == {"fixed": None, "mapped": 0}
    fixed = probe("fixed")
    assert fixed["fixed"] is True and int(fixed["mapped"]) >= 2 << 20  # type: ignore[call-overload]
