"""Command APDUs as the card sees them, and the transmission protocol that carries its answers.

`parse_command` tells the four ISO 7816-4 cases apart (short APDUs only;
EMV never uses extended length). `TransmissionProtocol` (the card's side of
ISO 7816-3 T=0 or T=1) shapes a handler's (data, SW) into what goes back on
the wire: directly (T=1 style), or T=0 style with '61xx' (data waiting for
GET RESPONSE) and '6Cxx' (wrong Le, exact length in SW2), so the terminal's
transport layer is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import SwError

__all__ = [
    "INS_GET_RESPONSE",
    "SW_OK",
    "Command",
    "TransmissionProtocol",
    "parse_command",
]

SW_OK = 0x9000
INS_GET_RESPONSE = 0xC0
SW_WRONG_LENGTH = 0x6700
SW_CONDITIONS_NOT_SATISFIED = 0x6985


@dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: absent; a present Le of 00 means 256

    @property
    def case(self) -> int:
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    def header(self) -> str:
        return f"{self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}"


def parse_command(apdu: bytes) -> Command:
    """Split a short command APDU; any inconsistency of Lc with the length is SW 6700."""
    if len(apdu) < 4:
        raise SwError(SW_WRONG_LENGTH, f"command of {len(apdu)} bytes has no full header")
    cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
    if len(apdu) == 4:
        return Command(cla, ins, p1, p2)
    if len(apdu) == 5:
        return Command(cla, ins, p1, p2, le=apdu[4] or 256)
    lc = apdu[4]
    if lc == 0:
        raise SwError(SW_WRONG_LENGTH, "extended length is not supported")
    if len(apdu) == 5 + lc:
        return Command(cla, ins, p1, p2, data=apdu[5:])
    if len(apdu) == 6 + lc:
        return Command(cla, ins, p1, p2, data=apdu[5:-1], le=apdu[-1] or 256)
    raise SwError(SW_WRONG_LENGTH, f"Lc {lc} does not match a command of {len(apdu)} bytes")


def _is_warning(sw: int) -> bool:
    return sw >> 8 in (0x62, 0x63)


class TransmissionProtocol:
    """Turns (data, SW) into response APDUs; holds the data a T=0 card keeps for GET RESPONSE."""

    def __init__(self, t0: bool) -> None:
        self.t0 = t0
        self._pending = b""

    def reset(self) -> None:
        self._pending = b""

    def get_response(self, command: Command) -> bytes:
        """Answer GET RESPONSE (T=0 only): part or all of the data kept back."""
        pending, self._pending = self._pending, b""
        if not pending:
            raise SwError(SW_CONDITIONS_NOT_SATISFIED, "no response data waiting")
        if command.data or command.le is None:
            raise SwError(SW_WRONG_LENGTH, "GET RESPONSE is a case 2 command")
        if command.le > len(pending):
            self._pending = pending
            return _sw(0x6C00 | (len(pending) & 0xFF))
        out, rest = pending[: command.le], pending[command.le :]
        if rest:
            self._pending = rest
            return out + _sw(0x6100 | (len(rest) & 0xFF))
        return out + _sw(SW_OK)

    def deliver(self, command: Command, data: bytes, sw: int) -> bytes:
        self._pending = b""
        if not data:
            return _sw(sw)
        if self.t0:
            return self._deliver_t0(command, data, sw)
        if command.le is not None and command.le < len(data):
            return _sw(0x6C00 | (len(data) & 0xFF))
        return data + _sw(sw)

    def _deliver_t0(self, command: Command, data: bytes, sw: int) -> bytes:
        if command.data:
            # A T=0 case 4 command is sent without Le: the data waits for GET RESPONSE.
            self._pending = data
            if _is_warning(sw):
                return _sw(sw)
            return _sw(0x6100 | (len(data) & 0xFF))
        if command.le != len(data):
            return _sw(0x6C00 | (len(data) & 0xFF))
        return data + _sw(sw)


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")
