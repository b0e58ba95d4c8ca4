#!/usr/bin/env bash
# A whole local subnet on 127.0.0.1: the proxy validator on the local chain, SQLite + local blobs,
# three reference miners as child processes, the side-server on 127.0.0.1:8000 (prints a dev API key and
# ready curl commands). Creates .venv and installs what is missing on first use.
# Extra arguments pass through to the validator, e.g. ./scripts/run_local.sh --proxy.port 8080
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DATA_DIR=${DATA_DIR:-$PWD/.local-subnet}

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

# Installed when anything the validator extra provides is missing (the check itself fails on a fresh venv).
if ! python -c 'import sys; from subnet_proxy.extras import missing_modules; sys.exit(bool(missing_modules("validator")))' \
    2>/dev/null; then
  echo "installing subnet-proxy[validator] into $VENV (first run only)"
  python -m pip install -q --upgrade pip
  python -m pip install -q -e ".[validator]"
fi

export HF_HUB_OFFLINE=1 WANDB_MODE=offline WANDB_SILENT=true
# Loopback only unless overridden (e.g. --proxy.host 0.0.0.0): a dev key is printed in clear.
exec subnet-proxy-validator --mock --mock.miners 3 --neuron.data_dir "$DATA_DIR" --proxy.host 127.0.0.1 "$@"
