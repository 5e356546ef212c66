#!/usr/bin/env bash
# One entry point for people and CI: setup, run, test, bench, lint.
# Safe to run twice: each step checks before it does work.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
DEBIAN_PACKAGES=(pcscd vsmartcard-vpcd swig libpcsclite-dev gcc python3-dev python3-venv fonts-wqy-microhei)
# The kiosk's window: pygame's SDL loads the X11 client libraries at run time (a minimal Debian has
# none); the window tests run it in Xvfb and press its keys with xdotool.
DEBIAN_PACKAGES+=(libx11-6 libxext6 libxcursor1 libxi6 libxrandr2 libxss1 xvfb xdotool)
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

# ----- the demo terminal: ./build.sh run (a window) and ./build.sh demo (headless, scripted) -----
# A TEST terminal in var/demo: keys (pos-keys provision), a TEST kit for the simulated acquirer
# (pos-sim kit), its TMK loaded, and the supervisor password below. Each step is skipped when done.
DEMO="$ROOT/var/demo"
DEMO_SUPERVISOR_PASSWORD=246810   # the demo terminal's supervisor password (README: the kiosk)
DEMO_HOST_PID=""
DEMO_PORT=""

# demo_provision DIR: a provisioned, TMK-loaded TEST terminal in DIR/data, its kit in DIR/kit.
demo_provision() {
    local dir="$1" data="$1/data" kit="$1/kit" keys="$VENV/bin/pos-keys" fresh=""
    mkdir -p "$dir"
    if ! "$keys" --data-dir "$data" list 2>/dev/null | grep -q '^SIGNING '; then
        "$keys" --data-dir "$data" provision >/dev/null
        fresh=1
    fi
    if [ -n "$fresh" ] || [ ! -f "$kit/terminals.json" ]; then  # the host must know this device key
        "$VENV/bin/pos-sim" kit "$kit" --force \
            --public-key "$("$keys" --data-dir "$data" public-key)" >/dev/null
    fi
    if ! "$keys" --data-dir "$data" list | grep -q '^TMK '; then
        "$keys" --data-dir "$data" load-tmk --block "$kit/tmk.tr31" --kbpk-file "$kit/kbpk.hex" >/dev/null
    fi
    if [ ! -f "$data/keys/passwords.json" ]; then
        printf '%s\n' "$DEMO_SUPERVISOR_PASSWORD" | "$keys" --data-dir "$data" set-password supervisor >/dev/null
    fi
}

# demo_start_host DIR: pos-sim host on a free port of 127.0.0.1 (DEMO_PORT), its ledger and notices in DIR.
demo_start_host() {
    local dir="$1" log="$1/host.log" i
    : >"$log"
    "$VENV/bin/pos-sim" host --port 0 --terminals "$dir/kit/terminals.json" \
        --ledger "$dir/host-ledger.json" --notices "$dir/host-notices.json" </dev/null >"$log" 2>&1 &
    DEMO_HOST_PID=$!
    for i in $(seq 1 100); do
        DEMO_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log")
        [ -n "$DEMO_PORT" ] && return 0
        if ! kill -0 "$DEMO_HOST_PID" 2>/dev/null; then
            say "pos-sim host did not start: $(cat "$log")"
            exit 1
        fi
        sleep 0.1
    done
    say "pos-sim host did not listen within 10 s (log: $log)"
    exit 1
}

# Stop the host this script started, by its pid (never by name).
demo_stop_host() {
    if [ -n "$DEMO_HOST_PID" ]; then
        kill "$DEMO_HOST_PID" 2>/dev/null || true
        wait "$DEMO_HOST_PID" 2>/dev/null || true
        DEMO_HOST_PID=""
    fi
}

# demo_up DIR: the terminal provisioned, the host started for it, and signed on.
demo_up() {
    local dir="$1"
    demo_provision "$dir"
    trap demo_stop_host EXIT
    demo_start_host "$dir"
    if ! "$VENV/bin/pos-txn" --data-dir "$dir/data" --host "127.0.0.1:$DEMO_PORT" --plain sign-on >"$dir/sign-on.json"; then
        say "sign-on refused (see $dir/sign-on.json and $dir/host.log)"
        exit 1
    fi
}

# One terminal at a time on the demo books.
demo_lock() {
    mkdir -p "$DEMO"
    exec 9>"$DEMO/.lock"
    if ! flock -n 9; then
        say "the demo terminal in $DEMO is in use by another ./build.sh run or demo"
        exit 1
    fi
}

# ./build.sh run [pos-terminal options]: the kiosk in a window on this desktop, with a simulated
# card in the slot (visa-credit, PIN 1234; --card sim:PROFILE for another) and the simulated
# acquirer, signed on. Without a display it says so and exits 0: ./build.sh demo is the headless run.
cmd_run() {
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${SDL_VIDEODRIVER:-}" ]; then
        say "no display (DISPLAY is not set): the kiosk needs a window; headless, run: ./build.sh demo"
        exit 0
    fi
    cmd_setup
    export SDL_AUDIODRIVER="${SDL_AUDIODRIVER:-dummy}"
    demo_lock
    demo_up "$DEMO"
    say "kiosk on the simulated acquirer at 127.0.0.1:$DEMO_PORT; supervisor password $DEMO_SUPERVISOR_PASSWORD"
    local card=(--card sim:visa-credit)
    case " $* " in *" --card "*) card=() ;; esac
    local rc=0
    "$VENV/bin/pos-terminal" --data-dir "$DEMO/data" --host "127.0.0.1:$DEMO_PORT" --plain \
        --receipts "$DEMO/receipts" "${card[@]}" "$@" || rc=$?
    demo_stop_host
    return "$rc"
}

# demo_keys TEXT: one script line per character (digits typed at the keypad).
demo_keys() {
    local text="$1" i
    for ((i = 0; i < ${#text}; i++)); do
        printf '%s\n' "${text:i:1}"
    done
}

# demo_reverse AMOUNT_FEN SOFTKEY: find the order of that amount (orders, by amount) and open
# the cancel (F1), refund (F2) or adjust (F3) from its detail.
demo_find() {
    printf 'F2\n3\n'
    demo_keys "$1"
    printf 'ENTER\nEXPECT 找到 1 笔\nENTER\nEXPECT 订单详情\n%s\n' "$2"
}

# demo_evidence REASON: the original date and time, the applicant, the phone, [a reason].
demo_evidence() {
    demo_keys "$(date +%Y%m%d%H%M)"
    echo ENTER
    printf '%s\n' 5 5 5 4 4 4 0 5 5 5 3 3 4 4 4 ENTER   # LI LEI by multi-tap
    demo_keys 13800138000
    echo ENTER
    if [ -n "$1" ]; then echo 1; fi   # the reason: goods returned
}

# demo_receipt NAME: from a result, its receipt preview: the merchant copy, then the customer copy.
demo_receipt() {
    printf 'ENTER\nEXPECT 签购单预览\nSHOT %s-receipt\nF1\nEXPECT 持卡人存根\nSHOT %s-receipt-customer\nENTER\n' "$1" "$1"
}

demo_authorise() {  # the terms, the confirmation, the supervisor's password
    printf 'EXPECT 交易条款\nENTER\nEXPECT 请确认\nENTER\nEXPECT 请输入主管密码\n'
    demo_keys "$DEMO_SUPERVISOR_PASSWORD"
    echo ENTER
}

# demo_sale AMOUNT_FEN PROFILE PIN NAME: a sale at the keypad, its result and receipt shot.
demo_sale() {
    printf 'ENTER\nEXPECT 主菜单\n1\n'
    demo_keys "$1"
    printf 'ENTER\nCARD INSERT %s\nEXPECT 请持卡人输入密码\n' "$2"
    demo_keys "$3"
    printf 'ENTER\nEXPECT 交易成功\nSHOT %s\n' "$4"
    demo_receipt "$4"
    echo "CARD REMOVE"
}

demo_script() {
    echo "# build.sh demo: the kiosk's keypad, played against the simulated acquirer"
    printf 'EXPECT TERM0001\nSHOT 00-idle\n'
    demo_sale 5000 visa-credit 1234 01-sale
    demo_find 5000 F1; demo_evidence ""; demo_authorise
    printf 'EXPECT 交易成功\nSHOT 02-cancel-order\n'; demo_receipt 02-cancel-order
    demo_sale 12000 mastercard-credit 4315 03-sale
    demo_find 12000 F2; demo_keys 2000; printf 'ENTER\nEXPECT 退回原卡\n1\n'; demo_evidence 1; demo_authorise
    printf 'EXPECT 交易成功\nSHOT 04-refund-to-card\n'; demo_receipt 04-refund-to-card
    demo_find 12000 F2; demo_keys 1000; printf 'ENTER\nEXPECT 现金退款\n2\n'; demo_evidence 1; demo_authorise
    printf 'EXPECT 现金退款已登记\nSHOT 05-cash-refund\n'; demo_receipt 05-cash-refund
    demo_sale 8000 visa-credit 1234 06-sale
    demo_find 8000 F3; demo_keys 8000; echo ENTER; demo_keys 9200; echo ENTER; demo_evidence ""; demo_authorise
    printf 'EXPECT 交易成功\nSHOT 07-adjust\n'; demo_receipt 07-adjust
    printf 'ENTER\n7\nEXPECT 按确认键结算\nENTER\nEXPECT 新批次\nSHOT 08-settlement\n'
    printf 'ENTER\nEXPECT 结算单\nSHOT 08-settlement-receipt\nENTER\n'
    printf 'EXPECT TERM0001\nSHOT 09-idle\n'
}

# ./build.sh demo: a fresh TEST terminal and simulated acquirer in var/demo/run-TIME, the scripted
# keypad (pos-terminal --headless --script): a sale, a cancel order, a partial refund to the card,
# a cash refund, an adjust and the settlement; the screenshots and receipts stay in that folder.
cmd_demo() {
    cmd_setup
    local out
    out="$DEMO/run-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$out"
    demo_up "$out"
    demo_script >"$out/demo.script"
    local rc=0
    SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy "$VENV/bin/pos-terminal" --headless \
        --data-dir "$out/data" --host "127.0.0.1:$DEMO_PORT" --plain --lang zh \
        --script "$out/demo.script" --shots "$out" --receipts "$out" || rc=$?
    demo_stop_host
    if [ "$rc" -ne 0 ]; then
        say "the demo stopped (exit $rc); what it made is in $out"
        return "$rc"
    fi
    say "screenshots and receipts:"
    echo "$out"
}

cmd_bench() {
    cmd_setup
    mkdir -p var
    trap stop_pcscd EXIT
    trap 'exit 130' INT TERM
    start_pcscd
    # every benchmark (bench/bench_*.py), its own figures first, then all of them in one table
    "$PY" bench/bench_all.py "$@"
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
# Cards through pcscd + vpcd (its own pcscd, as for the tests) unless --cards sim.
# ./build.sh soak [--minutes N] [--seed S] [--no-disk-faults] [--cards pcsc|sim]
cmd_soak() {
    cmd_setup
    local arg previous="" cards=pcsc
    for arg in "$@"; do
        [ "$previous" = "--cards" ] && cards=$arg
        case "$arg" in --cards=*) cards=${arg#--cards=} ;; esac
        previous=$arg
    done
    if [ "$cards" = pcsc ]; then
        mkdir -p var
        trap stop_pcscd EXIT
        trap 'exit 130' INT TERM
        start_pcscd
    fi
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
    demo) shift; cmd_demo "$@" ;;
    test) shift; cmd_test "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    lint) shift; cmd_lint "$@" ;;
    image) shift; cmd_image "$@" ;;
    fuzz) shift; cmd_fuzz "$@" ;;
    soak) shift; cmd_soak "$@" ;;
    *)
        echo "usage: ./build.sh setup|run|demo|test|bench|lint|image|fuzz|soak [args]" >&2
        exit 2
        ;;
esac
