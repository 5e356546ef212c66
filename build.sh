#!/usr/bin/env bash
# One entry point for people and CI: setup, run, test, bench, lint.
# Safe to run twice: each step checks before it does work.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
DEBIAN_PACKAGES=(pcscd vsmartcard-vpcd swig libpcsclite-dev gcc python3-dev python3-venv)
VPCD_PORT=35963

say() { printf '%s\n' "build.sh: $*" >&2; }

missing_debian_packages() {
    local p
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

install_debian_packages() {
    local missing
    missing=$(missing_debian_packages | tr '\n' ' ')
    [ -z "${missing// /}" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: $missing"
        say "install them with: sudo apt-get update && sudo apt-get install -y $missing"
        exit 1
    fi
    say "installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
}

python_setup_stamp() {
    cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1
}

install_python_packages() {
    if [ ! -x "$PY" ]; then
        say "creating $VENV"
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-from"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(python_setup_stamp)" ]; then
        return 0
    fi
    say "installing the Python packages from setup.cfg"
    "$PY" -m pip install -qq --upgrade pip
    "$PY" -m pip install -qq -e ".[test]"
    python_setup_stamp > "$stamp"
}

cmd_setup() {
    install_debian_packages
    install_python_packages
}

# pcscd for the tests and benchmarks. Never a pcscd by name: only the one
# started here is stopped, by its pid.
#
# As root: a pcscd of our own, in a private mount namespace. pcscd's socket
# directory is fixed at build time (/run/pcscd; PCSCLITE_CSOCK_NAME is read by
# the client library only), a second pcscd refuses to start beside a running
# one, and pcscd empties that directory when it exits. So a private directory
# is bind-mounted over /run/pcscd for our pcscd alone, which reads its own
# reader.conf: the vpcd driver on a free port of ours (the reader is still
# called "Virtual PCD 00 00"). The clients reach it with PCSCLITE_CSOCK_NAME
# pointing at the socket in that directory. A system pcscd, and another run's
# pcscd, are never touched.
#
# Without root: the system's pcscd, which must have the vpcd reader on vpcd's
# own port.
PCSCD_PID=""
PCSCD_DIR=""
VPCD_READER="Virtual PCD 00 00"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so

pcscd_answers() {
    # Whether the pcscd the clients reach (PCSCLITE_CSOCK_NAME, else the
    # system's) lists the vpcd reader.
    POS_VPCD_READER="$VPCD_READER" "$PY" - <<'EOF' 2>/dev/null
import os
import sys
from smartcard.System import readers
sys.exit(0 if os.environ["POS_VPCD_READER"] in [str(r) for r in readers()] else 1)
EOF
}

free_vpcd_port() {
    # An even port below the ephemeral range, free together with the next one
    # (vpcd's second slot, "Virtual PCD 00 01").
    "$PY" - <<'EOF'
import random
import socket
import sys

def free(port):
    with socket.socket() as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True

for port in random.sample(range(20000, 32000, 2), 200):
    if free(port) and free(port + 1):
        print(port)
        sys.exit(0)
sys.exit(1)
EOF
}

process_running() {
    [ -e "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

start_private_pcscd() {
    local port=$1 i
    PCSCD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pos-pcscd.XXXXXX")
    mkdir "$PCSCD_DIR/run"
    cat >"$PCSCD_DIR/reader.conf" <<EOF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:$port
LIBPATH      $VPCD_DRIVER
CHANNELID    $port
EOF
    mkdir -p /run/pcscd  # only the mount point: the system's pcscd keeps its own
    # unshare and sh exec: $! is pcscd itself.
    unshare --mount --propagation private -- \
        sh -c 'mount --bind "$1" /run/pcscd && exec pcscd --foreground --config "$2"' \
        sh "$PCSCD_DIR/run" "$PCSCD_DIR/reader.conf" >"$PCSCD_DIR/pcscd.log" 2>&1 &
    PCSCD_PID=$!
    export PCSCLITE_CSOCK_NAME="$PCSCD_DIR/run/pcscd.comm"
    export POS_VPCD_PORT=$port POS_VPCD_READER="$VPCD_READER" POS_VPCD_LOCK="$PCSCD_DIR/vpcd.lock"
    for i in $(seq 1 100); do
        if pcscd_answers; then
            return 0
        fi
        process_running "$PCSCD_PID" || return 1
        sleep 0.1
    done
    return 1
}

start_pcscd() {
    if [ "$(id -u)" -ne 0 ]; then
        export POS_VPCD_PORT=$VPCD_PORT POS_VPCD_READER="$VPCD_READER"
        if pcscd_answers; then
            return 0
        fi
        say "no pcscd shows '$VPCD_READER': install vsmartcard-vpcd and restart the system's pcscd" \
            "(sudo apt-get install vsmartcard-vpcd && sudo systemctl restart pcscd), or run as root"
        exit 1
    fi
    local attempt port
    for attempt in 1 2 3; do
        if ! port=$(free_vpcd_port); then
            say "no free port for vpcd"
            exit 1
        fi
        if start_private_pcscd "$port"; then
            return 0
        fi
        say "our pcscd (vpcd port $port) did not show '$VPCD_READER' (attempt $attempt); its log:"
        cat "$PCSCD_DIR/pcscd.log" >&2
        stop_pcscd
    done
    exit 1
}

stop_pcscd() {
    if [ -n "$PCSCD_PID" ]; then
        local i
        kill "$PCSCD_PID" 2>/dev/null || true
        for i in $(seq 1 50); do
            process_running "$PCSCD_PID" || break
            sleep 0.1
        done
        kill -9 "$PCSCD_PID" 2>/dev/null || true
        wait "$PCSCD_PID" 2>/dev/null || true
        PCSCD_PID=""
    fi
    if [ -n "$PCSCD_DIR" ]; then
        # the bind mount lived in pcscd's own namespace and went with it
        cat "$PCSCD_DIR/pcscd.log" >>"$ROOT/var/pcscd.log" 2>/dev/null || true
        rm -rf "$PCSCD_DIR"
        PCSCD_DIR=""
    fi
}

cmd_test() {
    cmd_setup
    mkdir -p var
    trap stop_pcscd EXIT
    trap 'exit 130' INT TERM
    start_pcscd
    export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
    "$PY" -m pytest -n 2 --dist loadgroup "$@"
}

cmd_run() {
    cmd_setup
    export SDL_AUDIODRIVER="${SDL_AUDIODRIVER:-dummy}"
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${SDL_VIDEODRIVER:-}" ]; then
        export SDL_VIDEODRIVER=dummy
    fi
    exec "$VENV/bin/pos-terminal" "$@"
}

cmd_bench() {
    cmd_setup
    mkdir -p var
    trap stop_pcscd EXIT
    trap 'exit 130' INT TERM
    start_pcscd
    local b
    for b in bench/bench_*.py; do
        [ -e "$b" ] || continue
        say "== $b"
        "$PY" "$b"
    done
}

cmd_lint() {
    cmd_setup
    "$VENV/bin/ruff" check firmware sim tests bench
    "$VENV/bin/mypy"
}

case "${1:-}" in
    setup) shift; cmd_setup "$@" ;;
    run) shift; cmd_run "$@" ;;
    test) shift; cmd_test "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    lint) shift; cmd_lint "$@" ;;
    *)
        echo "usage: ./build.sh setup|run|test|bench|lint [args]" >&2
        exit 2
        ;;
esac
