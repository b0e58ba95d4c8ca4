"""subnet_proxy.extras: what each neuron run needs, and the one-line error naming the extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from subnet_proxy import extras
from subnet_proxy.config import build_settings
from subnet_proxy.extras import MissingExtra, missing_modules, needed_extras, require

ROOT = Path(__file__).resolve().parents[1]


def test_this_environment_has_every_extra() -> None:
    # the dev install is ".[dev]", which holds all the others: a name here that no extra provides is a typo
    assert {extra: missing_modules(extra) for extra in extras.EXTRAS} == {extra: [] for extra in extras.EXTRAS}


def test_cloud_backends_add_their_extras() -> None:
    assert needed_extras(build_settings([], "t"), "validator") == ["validator"]
    cloud = build_settings(["--store", "firestore", "--blobs", "gcs"], "t")
    assert needed_extras(cloud, "validator") == ["validator", "firestore", "gcs"]
    assert needed_extras(cloud, "miner") == ["miner"]


def test_firebase_auth_adds_its_extra() -> None:
    assert needed_extras(build_settings(["--auth.firebase_project", "demo-x"], "t"), "validator") == [
        "validator", "firebase"]


def test_a_missing_module_names_the_extra_and_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extras.EXTRAS, "miner", ("av", "no_such_engine_module", "google.no_such_cloud"))
    with pytest.raises(MissingExtra) as caught:
        require(build_settings([], "t"), "miner")
    assert str(caught.value) == ("the miner needs the 'miner' extra (not installed: no_such_engine_module, "
                                 "google.no_such_cloud): pip install 'subnet-proxy[miner]'")
    require(build_settings([], "t"), "validator")  # the other extras are untouched


@pytest.mark.parametrize("module", ["subnet_proxy.validator", "subnet_proxy.miner"])
def test_help_imports_no_engine(module: str) -> None:
    # --help must work on a base install: parsing the flags may not import an engine or a metric
    probe = (f"import runpy, sys; sys.argv = ['{module}', '--help']\n"
             f"try:\n    runpy.run_module('{module}', run_name='__main__', alter_sys=True)\n"
             "except SystemExit as exit:\n"
             "    heavy = sorted(m for m in ('av', 'faster_whisper', 'piper', 'rouge_score', 'jiwer', 'onnxruntime',"
             " 'sumy', 'wandb') if m in sys.modules)\n    print('exit', exit.code, 'heavy', heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().endswith("exit 0 heavy []"), out.stderr[-2000:]
    assert f"usage: python -m {module} " in out.stdout  # not "__main__.py"


def test_the_server_needs_firebase_admin_only_when_configured() -> None:
    # a process where firebase_admin cannot be imported: the server imports and runs on API keys, and
    # configuring --auth.firebase_project fails at create_app naming the extra
    probe = """
import sys
sys.modules["firebase_admin"] = None
from subnet_proxy.config import build_settings
from subnet_proxy.extras import MissingExtra
from subnet_proxy.server.app import create_app
def app(argv):
    return create_app(build_settings(argv, "t"), store=None, blobs=None, keys=None, metagraph=lambda: None,
                      own_hotkey="me")
app([])
try:
    app(["--auth.firebase_project", "demo-x"])
except MissingExtra as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    expected = ("the side-server with --auth.firebase_project needs the 'firebase' extra (not installed: "
                "firebase_admin): pip install 'subnet-proxy[firebase]'")
    assert out.stdout.strip() == expected, out.stderr[-2000:]
