"""Put a simulated card in pcscd's virtual reader (vsmartcard's vpcd driver).

The vpcd driver listens on TCP (127.0.0.1:35963 for 'Virtual PCD 00 00');
the card connects to it. Each message is a 2-byte big-endian length and a
payload: a 1-byte payload is a control code (0 power off, 1 power on,
2 reset, 4 get ATR: answered with the ATR), anything else is a command APDU,
answered with the response APDU. Connected = card inserted; closing the
socket = card removed.

Linux clears TCP_QUICKACK after it is used, so it is set again after every
read: without it each APDU waits for the delayed ACK (~40 ms) instead of
taking well under a millisecond. `quickack=False` keeps the slow behaviour,
for the benchmark.

`run()` also reads commands, one per line, from a stream (stdin for
`pos-sim card`): ``remove``, ``insert``, ``quit``. It prints ``ready`` each
time the card is in the reader and ``removed`` each time it leaves, so a test
can wait for them; end of input means quit.

vpcd listens with a backlog of 0 and accepts only while it holds no card: a
TCP connect can succeed in the kernel's queue long before vpcd takes the
connection, or stay there behind a connection vpcd has not let go of. So
the card counts as inserted only once vpcd has spoken on the link (it asks
for the ATR as soon as it accepts), and a link vpcd has not spoken on within
ACCEPT_TIMEOUT_S is closed and made again.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from typing import TextIO

from sim.card import Card
from sim.errors import CardPulled, VpcdError

__all__ = [
    "CONTROL_GET_ATR",
    "CONTROL_POWER_OFF",
    "CONTROL_POWER_ON",
    "CONTROL_RESET",
    "DEFAULT_ADDRESS",
    "VpcdError",
    "VpcdLink",
    "answer",
    "parse_address",
    "run",
]

DEFAULT_ADDRESS = ("127.0.0.1", 35963)
CONTROL_POWER_OFF, CONTROL_POWER_ON, CONTROL_RESET, CONTROL_GET_ATR = 0, 1, 2, 4
MAX_BACKOFF_S = 1.0
FIRST_BACKOFF_S = 0.05
ACCEPT_TIMEOUT_S = 5.0


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise VpcdError(f"vpcd address {text!r} is not HOST:PORT")
    return host, int(port)


def answer(card: Card, payload: bytes) -> bytes | None:
    """What the card sends back for one vpcd message (None: nothing). May raise `CardPulled`."""
    if len(payload) == 1:
        code = payload[0]
        if code == CONTROL_POWER_OFF:
            card.power_off()
        elif code in (CONTROL_POWER_ON, CONTROL_RESET):
            card.power_on()
        elif code == CONTROL_GET_ATR:
            return card.atr
        return None
    return card.transmit(payload)


class VpcdLink:
    """One connection to vpcd: the card is in the reader while it lasts."""

    def __init__(self, card: Card, address: tuple[str, int], *, quickack: bool = True) -> None:
        self.card = card
        self.quickack = quickack
        self.sock = socket.create_connection(address, timeout=2.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self._ack_now()

    def _ack_now(self) -> None:
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _recv_exact(self, count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            self._ack_now()
            if not chunk:
                if data:
                    raise VpcdError(f"vpcd closed the link inside a message ({len(data)} of {count} bytes)")
                return None
            data += chunk
        return data

    def serve_one(self) -> bool:
        """Read and answer one message; False when vpcd closed the connection."""
        header = self._recv_exact(2)
        if header is None:
            return False
        length = int.from_bytes(header, "big")
        payload = self._recv_exact(length) if length else b""
        if payload is None:
            raise VpcdError(f"vpcd closed the link before a {length}-byte message")
        if not payload:
            return True
        reply = answer(self.card, payload)
        if reply is not None:
            self.sock.sendall(len(reply).to_bytes(2, "big") + reply)
        return True

    def close(self) -> None:
        self.card.power_off()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
        self.sock.close()


def run(
    card: Card,
    address: tuple[str, int] = DEFAULT_ADDRESS,
    *,
    quickack: bool = True,
    commands: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Serve `card` to vpcd until ``quit`` or end of `commands`; reconnects with back-off."""
    selector = selectors.DefaultSelector()
    command_fd = commands.fileno() if commands is not None else None
    if command_fd is not None:
        selector.register(command_fd, selectors.EVENT_READ, "commands")
    link: VpcdLink | None = None
    accepted = False  # vpcd has spoken on `link`
    accept_deadline = 0.0
    inserted = True
    backoff = FIRST_BACKOFF_S
    pending = b""

    def say(line: str) -> None:
        if out is not None:
            print(line, file=out, flush=True)

    def disconnect() -> None:
        nonlocal link
        if link is not None:
            selector.unregister(link.sock)
            link.close()
            link = None

    try:
        while True:
            wait: float | None = None
            if inserted and link is None:
                try:
                    link = VpcdLink(card, address, quickack=quickack)
                except OSError:
                    wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF_S)
                else:
                    backoff = FIRST_BACKOFF_S
                    selector.register(link.sock, selectors.EVENT_READ, "vpcd")
                    accepted = False
                    accept_deadline = time.monotonic() + ACCEPT_TIMEOUT_S
            if link is not None and not accepted:
                left = accept_deadline - time.monotonic()
                if left <= 0:
                    disconnect()  # still in the kernel's queue: vpcd never took it
                    continue
                wait = left
            if wait is None and link is None and command_fd is None:
                return 0  # removed for good, and nobody can put it back
            for key, _ in selector.select(wait):
                if key.data == "vpcd" and link is not None:
                    try:
                        alive = link.serve_one()
                    except CardPulled:
                        inserted, alive = False, False
                        say("removed")
                    except (OSError, VpcdError):
                        alive = False
                    if not alive:
                        disconnect()
                    elif not accepted:
                        accepted = True
                        say("ready")
                elif key.data == "commands" and command_fd is not None:
                    chunk = os.read(command_fd, 4096)
                    if not chunk:
                        return 0
                    pending += chunk
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        word = line.decode("ascii", "replace").strip()
                        if word == "quit":
                            return 0
                        if word == "remove":
                            inserted = False
                            disconnect()
                            say("removed")
                        elif word == "insert":
                            if inserted and link is not None and accepted:
                                say("ready")
                            inserted = True
                        elif word:
                            say(f"error: unknown command {word!r} (remove, insert, quit)")
    finally:
        disconnect()
        selector.close()
