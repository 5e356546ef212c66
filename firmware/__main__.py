"""Composition root: reads the command line, picks real or simulated parts.

The only module of `firmware/` allowed to import `sim/`, and only when a
simulated part is asked for.

Every entry point (`*_main`, `main`) first switches core dumps off
(`no_core_dumps`): a crash dump of a process holding the clear TMK, PIK or
device key would write them to disk, readable by whoever reads the dump.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from firmware.cli.terminal import TerminalOptions
    from firmware.emv.online import OnlineHandler
    from firmware.emv.reader import CardReader
    from firmware.host.channel import HostAddress, HostLink
    from firmware.keys.passwords import PasswordStore
    from firmware.txn.service import TerminalService
    from firmware.txn.technician import Technician
    from sim.issuer import Issuer


_PR_SET_DUMPABLE = 4


def no_core_dumps() -> list[str]:
    """Core dumps off for this process: RLIMIT_CORE 0 and, on Linux, PR_SET_DUMPABLE 0 (no dump, no
    ptrace by another process of the same user, /proc/PID/mem closed). Returns what could not be done."""
    failed = []
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError):
        failed.append("RLIMIT_CORE")
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
                failed.append("PR_SET_DUMPABLE")
        except (OSError, AttributeError):
            failed.append("PR_SET_DUMPABLE")
    return failed


def open_reader(spec: str) -> CardReader:
    """`sim:PROFILE` gives a simulated card in process; `pcsc` or `pcsc:NAME` the real stack."""
    if spec.startswith("sim:"):
        from firmware.errors import ConfigError
        from sim.card import load_profile_card
        from sim.errors import SimError
        from sim.reader import SimReader

        try:
            return SimReader(load_profile_card(spec.removeprefix("sim:")))
        except SimError as exc:
            raise ConfigError(f"no simulated card {spec!r}: {exc}") from None
    from firmware.emv.reader import open_pcsc_reader

    return open_pcsc_reader(spec.removeprefix("pcsc").removeprefix(":") or None)


def issuer_online(issuer: Issuer) -> OnlineHandler:
    """The kernel's host callback answered in process by a simulated issuer (`sim.issuer`)."""
    from firmware.emv.online import OnlineRequest, OnlineResponse

    def online(request: OnlineRequest) -> OnlineResponse | None:
        psn = request.pan_sequence_number
        if request.cryptogram_type == "AAC":  # a refund: the issuer checks the card's AAC and credits
            valid = issuer.verify_cryptogram(request.field55, request.pan, psn)
            return OnlineResponse("00" if valid else "05")
        answer = issuer.authorise(request.field55, request.pan, psn, request.amount)
        if answer is None:
            return None
        return OnlineResponse(answer.response_code, answer.issuer_authentication_data or None, answer.scripts)

    return online


def online_factory(spec: str) -> OnlineHandler | None:
    """`sim`: the simulated issuer holding every sim profile's keys answers in process; `none`: no host."""
    if spec == "none":
        return None
    if spec != "sim":
        from firmware.errors import ConfigError

        raise ConfigError(f"unknown online spec {spec!r} (sim or none)")
    from sim.acquirer import issuer_from_profiles

    return issuer_online(issuer_from_profiles())


def emv_main(argv: Sequence[str] | None = None) -> int:
    """`pos-emv` (firmware.cli.emv) with the reader opener and the online factory chosen here."""
    no_core_dumps()
    from firmware.cli.emv import main as emv_cli_main

    return emv_cli_main(argv, open_reader=open_reader, online_factory=online_factory)


def keys_main(argv: Sequence[str] | None = None) -> int:
    """`pos-keys` (firmware.cli.keys)."""
    no_core_dumps()
    from firmware.cli.keys import main as keys_cli_main

    return keys_cli_main(argv)


def flash_main(argv: Sequence[str] | None = None) -> int:
    """`pos-flash` (firmware.cli.flash): images, slots, boot decision, mark-good, rollback."""
    no_core_dumps()
    from firmware.cli.flash import main as flash_cli_main

    return flash_cli_main(argv)


def open_link(address: HostAddress) -> HostLink:
    """The acquirer over TLS, or plain TCP to this machine when asked for (`pos-sim host` on a port)."""
    from firmware.host.channel import open_host_link

    return open_host_link(address)


def txn_main(argv: Sequence[str] | None = None) -> int:
    """`pos-txn` (firmware.cli.txn) with the reader opener and the host link chosen here."""
    no_core_dumps()
    from firmware.cli.txn import main as txn_cli_main

    return txn_cli_main(argv, open_reader=open_reader, open_link=open_link)


def kiosk_health() -> tuple[Callable[[], None], Callable[[], None], float | None]:
    """What the kiosk tells systemd: READY=1 once up (then `pos-flash mark-good` when the current
    slot is on trial), WATCHDOG=1 every half WatchdogSec. Failures are logged; the kiosk goes on."""
    import logging
    import os
    from pathlib import Path

    from firmware.cli.flash import DEFAULT_ROOT
    from firmware.errors import PosError
    from firmware.sdnotify import notify, watchdog_interval
    from firmware.update.slots import mark_good

    log = logging.getLogger("pos-terminal")

    def ready() -> None:
        try:
            notify("READY=1\nSTATUS=idle screen up, books open")
        except OSError as error:
            log.warning("systemd READY=1 not sent: %s", error)
        root = Path(os.environ.get("POS_ROOT") or DEFAULT_ROOT)
        if not (root / "current").is_symlink():
            return  # not an installed terminal (a desktop run): no slots to mark
        try:
            slot, trial = mark_good(root)
        except (PosError, OSError) as error:
            log.warning("mark-good of %s failed: %s", root, error)
            return
        if trial is not None:
            log.info("slot %s marked good after %d start(s) on trial", slot, trial.boots)
            try:
                notify(f"STATUS=slot {slot} marked good")
            except OSError:
                pass

    def beat() -> None:
        try:
            notify("WATCHDOG=1")
        except OSError as error:
            log.warning("systemd WATCHDOG=1 not sent: %s", error)

    return ready, beat, watchdog_interval()


def technician_tools(data_dir: Path, service: TerminalService, passwords: PasswordStore) -> Technician:
    """The technician menu's tools: `firmware/data/technician.json`, with $POS_ROOT (the slots' root,
    as for `pos-flash`), $POS_MEDIA_DIR and $POS_LOG_FILE over it; images built for this machine."""
    import os
    from dataclasses import replace
    from pathlib import Path

    from firmware.txn.technician import Technician, load_technician_settings
    from firmware.update.verify import Target

    settings = load_technician_settings()
    if os.environ.get("POS_ROOT"):
        settings = replace(settings, slots_root=Path(os.environ["POS_ROOT"]))
    if os.environ.get("POS_MEDIA_DIR"):
        settings = replace(settings, media_dir=Path(os.environ["POS_MEDIA_DIR"]))
    if os.environ.get("POS_LOG_FILE"):
        settings = replace(settings, log_file=Path(os.environ["POS_LOG_FILE"]))
    return Technician(service, passwords, settings, data_dir, target=Target.this_machine())


def run_kiosk(options: TerminalOptions) -> None:
    """The kiosk over the terminal's books, its host link, the supervisor's password store and a card slot.

    A script's `CARD INSERT profile` fills the slot with a simulated card (`sim.card`, in process);
    `--card SPEC` puts one there at start (`sim:PROFILE` or a PC/SC reader).
    """
    import time
    from pathlib import Path

    from firmware.app import CardSlot, Kiosk, KioskOptions, parse_script, run_script
    from firmware.identity import load_identity
    from firmware.keys.layout import KeyLayout, open_password_store
    from firmware.printer.escpos import EscPosPrinter
    from firmware.screens.base import TerminalInfo
    from firmware.screens.render import find_font
    from firmware.screens.slip import ReceiptDesk, SlipPainter
    from firmware.txn.service import open_terminal
    from firmware.txn.terms import Language

    steps = None
    if options.script:
        from firmware.store.json_guard import read_bounded

        steps = parse_script(read_bounded(options.script, 1 << 20).decode("utf-8"))
    service = open_terminal(options.data_dir, open_link(options.address))
    passwords = open_password_store(KeyLayout.under(options.data_dir), time.monotonic)
    identity = load_identity()
    info = TerminalInfo(
        merchant_name=identity.merchant_name_location,
        terminal_id=identity.terminal_id,
        merchant_id=identity.merchant_id,
        currency=service.ctx.terms.currency,
    )
    settings = options.settings
    slot = CardSlot()
    if options.card:
        slot.insert(open_reader(options.card))
    # without a device the slips are still encoded: the ESC/POS bytes are kept beside their PNG
    printer = EscPosPrinter(
        settings.printer_device, text=settings.printer_text, paper_dots=settings.paper_dots
    )
    desk = ReceiptDesk(
        info,
        service.ctx.terms,
        SlipPainter(find_font(), settings.paper_dots),
        folder=options.receipts,
        printer=printer,
        kept=settings.receipts_kept,
    )
    ready, beat, beat_every = kiosk_health()
    kiosk = Kiosk(
        service,
        info,
        slot,
        verify_supervisor=lambda password: passwords.verify("supervisor", password).authenticated,
        receipts=desk,
        on_ready=ready,
        heartbeat=beat,
        heartbeat_every=beat_every,
        options=KioskOptions(
            width=settings.width,
            height=settings.height,
            language=Language(settings.language),
            touch_keypad=settings.touch_keypad,
            fps=settings.wakeups_per_second,
            headless=options.headless,
        ),
    )
    kiosk.ctx.technician = technician_tools(options.data_dir, service, passwords)
    try:
        if steps is not None:
            shots = Path(options.shots) if options.shots else None
            run_script(kiosk, steps, shots=shots, insert_card=lambda profile: open_reader(f"sim:{profile}"))
        else:
            kiosk.install_signal_handlers()
            kiosk.run()
    finally:
        kiosk.close()
        desk.close()
        service.close()


def main(argv: Sequence[str] | None = None) -> int:
    """`pos-terminal` (firmware.cli.terminal): the kiosk, composed here."""
    no_core_dumps()
    from firmware.cli.terminal import main as terminal_cli_main

    return terminal_cli_main(argv, run=run_kiosk)


if __name__ == "__main__":
    sys.exit(main())
