#!/usr/bin/env bash
# The test command: make the venv, install what tests need, start the emulators, lint, type-check, test.
# Works on a fresh machine; extra pytest arguments pass through (e.g. ./run_tests.sh -m "not slow").
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# What npm and apt install (dclint, which lints the compose files in tests/test_deploy_files.py;
# firebase-tools, java, the Firestore emulator, promtool, chromium: scripts/emulators.sh install-deps)
# is fetched while pip installs the project; each writes to its own log, shown if it fails.
mkdir -p .cache
command -v npm >/dev/null || { echo "npm (Node.js) is needed for dclint and the Firebase Auth emulator" >&2; exit 1; }
if [ ! -x .cache/node/node_modules/.bin/dclint ]; then
  npm install --silent --no-audit --no-fund --prefix .cache/node "dclint@3.1.0" > .cache/dclint-install.log 2>&1 &
  DCLINT=$!
fi
scripts/emulators.sh install-deps > .cache/install-deps.log 2>&1 &
DEPS=$!
python -m pip install -q -e ".[dev]"
if [ -n "${DCLINT:-}" ] && ! wait "$DCLINT"; then cat .cache/dclint-install.log >&2; exit 1; fi
if ! wait "$DEPS"; then cat .cache/install-deps.log >&2; exit 1; fi
cat .cache/install-deps.log

export HF_HUB_OFFLINE=1 WANDB_MODE=offline WANDB_SILENT=true
echo "== ruff"; ruff check protocol subnet_proxy neurons scripts tests
echo "== mypy"; mypy

echo "== emulators"
# Firestore and GCS backends run against Google's Firestore emulator and fake-gcs-server, Firebase ID
# tokens against the Firebase Auth emulator (firebase-tools, installed from npm into .cache); a missing
# emulator fails here with what to install. Each run gets its own set, stopped by PID on any exit.
export EMULATORS_DIR=${EMULATORS_DIR:-$(mktemp -d -t subnet-proxy-emulators.XXXXXX)}
trap 'scripts/emulators.sh stop' EXIT
scripts/emulators.sh start
# shellcheck disable=SC1091
. "$EMULATORS_DIR/env"

echo "== pytest"
# The wheel test (tests/e2e/test_wheel_install.py) installs the built wheel into a fresh venv from this
# directory of wheels only; it fills it with `pip wheel` on its first run and reuses it after. The 30
# slowest tests are listed at the end: the whole command must stay within about 15 minutes on 2 cores.
# Two workers (pytest-xdist), each taking a whole test file at a time (a module's fixtures, such as
# e2e's processes, are made once): one alone used under 0.8 of the 2 cores, most tests wait on
# processes, sockets and timers. `-n 0` runs them in this process, one after another.
export SUBNET_PROXY_WHEELHOUSE=${SUBNET_PROXY_WHEELHOUSE:-$PWD/.cache/wheelhouse}
python -m pytest -q -n 2 --dist loadfile --durations=30 "$@"
