#!/usr/bin/env bash
# One entry point for people and CI: setup, run, test, bench, lint.
# Safe to run twice: each step checks before it does work.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
DEBIAN_PACKAGES=(pcscd vsmartcard-vpcd swig libpcsclite-dev gcc python3-dev python3-venv fonts-wqy-microhei)
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

# pcscd: use one that already answers; otherwise start our own in the
# foreground (as a background job) and stop it when we leave.
PCSCD_PID=""
PCSCD_PIDFILE="$ROOT/var/pcscd.pid"
pcscd_answers() {
    "$PY" - <<'EOF' 2>/dev/null
import sys
from smartcard.System import readers
sys.exit(0 if any("Virtual PCD" in str(r) for r in readers()) else 1)
EOF
}

start_pcscd() {
    if pcscd_answers; then
        return 0
    fi
    if pgrep -x pcscd >/dev/null; then
        say "a pcscd is running but shows no vpcd reader; restarting it"
        pkill -x pcscd || true
        sleep 0.5
    fi
    mkdir -p /run/pcscd
    pcscd --foreground >>"$ROOT/var/pcscd.log" 2>&1 &
    PCSCD_PID=$!
    # The test harness may replace a pcscd whose vpcd driver stopped taking
    # cards (tests/conftest.py); it writes the new pid here.
    echo "$PCSCD_PID" >"$PCSCD_PIDFILE"
    export POS_PCSCD_PIDFILE="$PCSCD_PIDFILE"
    local i
    for i in $(seq 1 100); do
        if pcscd_answers; then
            return 0
        fi
        sleep 0.1
    done
    say "pcscd did not answer within 10 s; its log:"
    cat "$ROOT/var/pcscd.log" >&2
    exit 1
}

stop_pcscd() {
    if [ -n "$PCSCD_PID" ]; then
        local pid i
        for pid in "$PCSCD_PID" "$(cat "$PCSCD_PIDFILE" 2>/dev/null)"; do
            [ -n "$pid" ] || continue
            kill "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do
                [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        done
        wait "$PCSCD_PID" 2>/dev/null || true
        rm -f "$PCSCD_PIDFILE"
        PCSCD_PID=""
    fi
}

cmd_test() {
    cmd_setup
    mkdir -p var
    trap stop_pcscd EXIT
    start_pcscd
    export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
    export POS_VPCD_PORT=$VPCD_PORT
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

# The fuzz targets run long (tests/fuzz_run.py): hypothesis rounds, then atheris when installed.
# ./build.sh fuzz [--minutes N] [--scale X] [--no-atheris]
cmd_fuzz() {
    cmd_setup
    mkdir -p var/fuzz
    SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy PYTHONPATH="$ROOT" "$PY" -m tests.fuzz_run "$@"
}

# The terminal against the simulated host for minutes, under faults (bench/soak.py); one line of counts.
# ./build.sh soak [--minutes N] [--seed S] [--no-disk-faults]
cmd_soak() {
    cmd_setup
    SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy PYTHONPATH="$ROOT" "$PY" bench/soak.py "$@"
}

# A signed firmware image under dist/ (firmware/update/build.py; README "Firmware images").
# ./build.sh image [--arch x86_64|aarch64|armv7l] [--version V] [--key FILE] [--wheels DIR | --no-deps]
cmd_image() {
    install_python_packages
    local version
    version=$(sed -n 's/^version *= *//p' setup.cfg)
    export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
    "$PY" -c 'import sys; from firmware.__main__ import flash_main; sys.exit(flash_main())' \
        build --source "$ROOT" --out "$ROOT/dist" --version "$version" "$@"
}

case "${1:-}" in
    setup) shift; cmd_setup "$@" ;;
    run) shift; cmd_run "$@" ;;
    test) shift; cmd_test "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    lint) shift; cmd_lint "$@" ;;
    image) shift; cmd_image "$@" ;;
    fuzz) shift; cmd_fuzz "$@" ;;
    soak) shift; cmd_soak "$@" ;;
    *)
        echo "usage: ./build.sh setup|run|test|bench|lint|image|fuzz|soak [args]" >&2
        exit 2
        ;;
esac
