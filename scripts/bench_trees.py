"""Before/after in one run: a benchmark script run for this checkout and another source tree, taking turns.

A benchmark that imports the library from ``BENCH_CODE`` (else its own checkout) and prints its rows
as one JSON line last can be run here for both trees in alternating child processes, so a shared
machine's slow spells fall on both alike. The other tree is any copy of the sources (for instance
``git archive main | tar -x -C DIR``); the benchmark script itself is always this checkout's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def alternate(script: str, argv: list[str], other: Path, turns: int) -> dict[str, list[list[dict[str, Any]]]]:
    """``script argv`` on this tree and on ``other``, ``turns`` times each in turn: label -> each turn's rows."""
    trees = {"this code": HERE, f"against {other}": other}
    results: dict[str, list[list[dict[str, Any]]]] = {label: [] for label in trees}
    for _ in range(turns):
        for label, code in trees.items():
            env = {**os.environ, "PYTHONPATH": str(code), "BENCH_CODE": str(code)}
            out = subprocess.run([sys.executable, script, *argv], env=env, check=True, capture_output=True,
                                 text=True).stdout
            results[label].append(json.loads(out.strip().splitlines()[-1]))
            print(f"[{label}] turn {len(results[label])}: {json.dumps(results[label][-1])}", flush=True)
    return results
