"""The package layering of docs/ARCHITECTURE.md, checked from the code's own imports.

Imports go downward only::

    protocol <- foundation (tasks, config, api, signing, ...) <- store/blobs/keys/chain/engines/client
             <- kinds/rewards/approval/retention/telemetry <- server/validator/miner/cli <- neurons

Every import counts, also those inside functions or under ``TYPE_CHECKING``: a lazy import is still
a dependency. Within one layer a package may use another, but no two modules may import each other
in a circle, at any depth. A module that fits no layer fails the test until it is placed here (and
in the map).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("protocol", "subnet_proxy", "neurons")

#: lowest first; a unit is ``protocol``, ``neurons`` or ``subnet_proxy.<top-level module or package>``.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"protocol"}),
    frozenset({"subnet_proxy", "subnet_proxy.tasks", "subnet_proxy.config", "subnet_proxy.api",
               "subnet_proxy.atomic_file", "subnet_proxy.sqlite_worker", "subnet_proxy.firestore_client",
               "subnet_proxy.offline", "subnet_proxy.signing", "subnet_proxy.wallets", "subnet_proxy.outbound",
               "subnet_proxy.extras", "subnet_proxy.parent", "subnet_proxy.languages", "subnet_proxy.log_writer",
               "subnet_proxy.webhook_signature", "subnet_proxy.heap", "subnet_proxy.waits"}),
    frozenset({"subnet_proxy.store", "subnet_proxy.blobs", "subnet_proxy.keys", "subnet_proxy.chain",
               "subnet_proxy.engines", "subnet_proxy.client", "subnet_proxy.backup"}),
    frozenset({"subnet_proxy.kinds", "subnet_proxy.rewards", "subnet_proxy.approval", "subnet_proxy.retention",
               "subnet_proxy.telemetry", "subnet_proxy.monitoring"}),
    frozenset({"subnet_proxy.server", "subnet_proxy.validator", "subnet_proxy.miner", "subnet_proxy.cli",
               "subnet_proxy.entry"}),
    frozenset({"neurons"}),
)
LAYER_OF = {unit: n for n, layer in enumerate(LAYERS) for unit in layer}

#: what the wire models may import: they are the leaf the client, the CLI and the miner share.
API_ALLOWED = {"protocol", "subnet_proxy.tasks", "subnet_proxy.languages", "pydantic", "pydantic_core"}


def module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for top in SOURCES:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


MODULES = module_files()


def imports_of(path: Path) -> Iterator[str]:
    """Absolute names imported by a module: ``from a.b import c`` is ``a.b.c`` when that is a module."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield sub if sub in MODULES else node.module


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "subnet_proxy" and len(parts) > 1 else parts[0]


GRAPH = {name: {m for m in imports_of(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def test_every_unit_has_a_layer() -> None:
    unplaced = sorted({unit_of(m) for m in MODULES} - set(LAYER_OF))
    assert not unplaced, f"place these in LAYERS (and in docs/ARCHITECTURE.md): {unplaced}"


def test_imports_go_downward_only() -> None:
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items() for target in targets
        if LAYER_OF.get(unit_of(target), -1) > LAYER_OF.get(unit_of(name), -1)
    )
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as the list of its modules, first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_no_module_imports_itself_in_a_circle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_package_imports_itself_in_a_circle() -> None:
    units: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        units.setdefault(unit_of(name), set()).update(unit_of(t) for t in targets if unit_of(t) != unit_of(name))
    cycle = find_cycle(units)
    assert cycle is None, "package cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_wire_models_are_a_leaf() -> None:
    for name in (m for m in MODULES if unit_of(m) == "subnet_proxy.api"):
        outside = {
            m for m in imports_of(MODULES[name])
            if not m.startswith("subnet_proxy.api") and m.split(".")[0] not in sys.stdlib_module_names
            and m not in API_ALLOWED and unit_of(m) not in API_ALLOWED and m.split(".")[0] not in API_ALLOWED
        }
        assert not outside, f"{name} imports {sorted(outside)}"


@pytest.mark.parametrize("light", ["subnet_proxy.client", "subnet_proxy.cli", "subnet_proxy.api.schemas",
                                   "subnet_proxy.miner"])
def test_light_clients_do_not_load_the_server(light: str) -> None:
    """Importing for real (what actually runs, package ``__init__`` files included): a miner or a client
    never loads the side-server, the validator loop or a task store backend."""
    code = (f"import sys, {light}; "
            "print(sorted(m for m in sys.modules if m.startswith(('subnet_proxy.server', 'subnet_proxy.validator', "
            "'subnet_proxy.store'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True).stdout.strip()
    assert out == "[]", f"{light} loads {out}"
