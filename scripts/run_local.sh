#!/usr/bin/env bash
# A whole local subnet on 127.0.0.1: the proxy validator on the local chain, SQLite + local blobs,
# three reference miners as child processes, the side-server on 127.0.0.1:8000 (prints a dev API key and
# ready curl commands). Creates .venv and installs what is missing on first use.
# Extra arguments pass through to the validator, e.g. ./scripts/run_local.sh --proxy.port 8080
# --validators N (first argument) starts N validators on one local chain, each with its own data dir
# (DATA_DIR/validator-I: store, blobs, wallet, scores) and port (8000+I), stakes 4000, 3500, 2500, ...:
# none holds a quorum alone, so their tasks are approved by peers' evaluations. Ctrl-C stops them all.
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
VALIDATORS=1
if [ "${1:-}" = "--validators" ]; then
  VALIDATORS=${2:?--validators needs a number}
  shift 2
fi
# Loopback only unless overridden (e.g. --proxy.host 0.0.0.0): a dev key is printed in clear.
if [ "$VALIDATORS" -le 1 ]; then
  exec subnet-proxy-validator --mock --mock.miners 3 --neuron.data_dir "$DATA_DIR" --proxy.host 127.0.0.1 "$@"
fi
stake() { echo $(($1 < 7 ? 4000 - 500 * $1 : 500)); }
# Every validator is registered before any miner starts: a miner refuses a validator its metagraph
# does not show yet (until its next resync), so one registering itself later would lose its first tasks.
for ((i = 0; i < VALIDATORS; i++)); do
  python scripts/local_subnet.py register --role validator --neuron.data_dir "$DATA_DIR/validator-$i" \
    --mock.chain_file "$DATA_DIR/local_chain.json" --stake "$(stake "$i")"
done
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM
for ((i = 0; i < VALIDATORS; i++)); do
  miners=0
  [ "$i" -eq 0 ] && miners=3  # the first validator starts the reference miners; all share the chain
  # A resync every 10 s (a file read here): the others see those miners, and each other's URLs, soon
  # after they register, not a default 120 s later with no miner to ask meanwhile.
  subnet-proxy-validator --mock --mock.miners "$miners" --neuron.data_dir "$DATA_DIR/validator-$i" \
    --mock.chain_file "$DATA_DIR/local_chain.json" --mock.validator_stake "$(stake "$i")" \
    --neuron.resync_s 10 --proxy.host 127.0.0.1 --proxy.port $((8000 + i)) "$@" &
  pids+=($!)
done
echo "local network: $VALIDATORS validators on http://127.0.0.1:8000 .. http://127.0.0.1:$((8000 + VALIDATORS - 1))"
wait
