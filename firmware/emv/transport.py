"""The terminal transport layer (EMV Book 1 9.3): one command in, one response out.

`Transport` wraps a `CardReader`. It fetches data announced by '61xx' with
GET RESPONSE, resends a command answered '6Cxx' with the corrected Le, and
fetches the data of a case 4 command answered by a bare warning ('62xx',
'63xx'), so nothing above ever sees those status words. Every exchange with
the card is kept in a trace with its response time; the trace is shown only
through `firmware.emv.mask`.

Reader errors follow the contract of `CardReader`: a `ReaderError`
(`NoCardError`, `CardRemovedError`, `NoReaderError`) passes through
unchanged; an `OSError` (the simulated reader raises `ConnectionError`
subclasses) is turned into `NoCardError` at power on and `CardRemovedError`
afterwards; at power off neither is an error. A response without SW1 SW2
is an `ApduError`. Every loop is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from firmware.clocks import MonotonicClock
from firmware.emv.apdu import SW_OK, Command, Response, describe_sw, get_response
from firmware.emv.mask import display_command, display_tlv
from firmware.emv.reader import CardReader
from firmware.errors import ApduError, CardRemovedError, NoCardError, ReaderError, StatusWordError

__all__ = ["MAX_EXCHANGES_PER_COMMAND", "MAX_RESPONSE_LENGTH", "TraceEntry", "Transport"]

# A card that answers 61xx (or 6Cxx) forever must not hang the terminal.
MAX_EXCHANGES_PER_COMMAND = 16
MAX_RESPONSE_LENGTH = 4096


@dataclass(frozen=True)
class TraceEntry:
    """One exchange with the card: the bytes sent, the bytes received, the time it took."""

    name: str
    command: bytes
    response: bytes
    elapsed: float

    @property
    def sw(self) -> int | None:
        return int.from_bytes(self.response[-2:], "big") if len(self.response) >= 2 else None

    def display(self) -> dict[str, object]:
        """This exchange for people and logs: PAN, track data and PIN masked."""
        sw = self.sw
        return {
            "name": self.name,
            "command": display_command(self.command),
            "response": display_tlv(self.response[:-2]) if sw is not None else "",
            "sw": f"{sw:04X}" if sw is not None else "",
            "meaning": describe_sw(sw) if sw is not None else "no status word",
            "ms": round(self.elapsed * 1000.0, 3),
        }


class Transport:
    """Commands to one card through one reader, with the T=0 status words handled."""

    def __init__(
        self,
        reader: CardReader,
        *,
        clock: MonotonicClock = time.perf_counter,
        max_exchanges_per_command: int = MAX_EXCHANGES_PER_COMMAND,
    ) -> None:
        self._reader = reader
        self._clock = clock
        self._max_exchanges = max_exchanges_per_command
        self._trace: list[TraceEntry] = []
        self._atr: bytes | None = None

    @property
    def reader(self) -> CardReader:
        return self._reader

    @property
    def reader_name(self) -> str:
        return self._reader.name

    @property
    def atr(self) -> bytes | None:
        """The ATR of the last power on; None before."""
        return self._atr

    @property
    def trace(self) -> tuple[TraceEntry, ...]:
        return tuple(self._trace)

    def display_trace(self) -> list[dict[str, object]]:
        return [entry.display() for entry in self._trace]

    def clear_trace(self) -> None:
        self._trace.clear()

    # --- power ---------------------------------------------------------------

    def power_on(self) -> bytes:
        try:
            atr = self._reader.power_on()
        except OSError as exc:
            raise NoCardError(f"no card in reader '{self._reader.name}': {exc}") from exc
        self._atr = bytes(atr)
        return self._atr

    def power_off(self) -> None:
        """Power the card off; a card or reader already gone is not an error here."""
        try:
            self._reader.power_off()
        except (OSError, ReaderError):
            pass

    @contextmanager
    def session(self) -> Iterator[Transport]:
        """Power on for the length of a `with` block, and always power off after it."""
        self.power_on()
        try:
            yield self
        finally:
            self.power_off()

    # --- commands ------------------------------------------------------------

    def exchange(self, command: Command) -> Response:
        """Send `command`; return the final response with 61xx/6Cxx resolved.

        The status word is not checked: see `send` for that.
        """
        response = self._exchange_resolved(command)
        if command.case == 4 and not response.data and response.sw1 in (0x62, 0x63):
            # Book 1 9.3.1.3: a case 4 command answered by a warning alone has its
            # data waiting for a GET RESPONSE; the warning is what the caller sees.
            fetched = self._exchange_resolved(get_response(0x00))
            if fetched.ok and fetched.data:
                return Response(fetched.data, response.sw1, response.sw2)
        return response

    def send(self, command: Command, *, allowed: Collection[int] = (SW_OK,)) -> Response:
        """`exchange`, then StatusWordError unless the status word is in `allowed`."""
        response = self.exchange(command)
        if response.sw not in allowed:
            raise StatusWordError(command.name, response.sw, describe_sw(response.sw))
        return response

    def _exchange_resolved(self, command: Command) -> Response:
        collected = bytearray()
        current = command
        for _ in range(self._max_exchanges):
            response = self._transmit(current)
            if response.sw1 == 0x6C:
                if current.le is None:
                    raise ApduError(
                        f"{command.name}: card asked for Le {response.sw2:02X} on a command without Le"
                    )
                if current.le == response.sw2:
                    raise ApduError(
                        f"{command.name}: card answered 6C{response.sw2:02X} to the Le it asked for"
                    )
                current = current.with_le(response.sw2)
                continue
            collected += response.data
            if len(collected) > MAX_RESPONSE_LENGTH:
                raise ApduError(f"{command.name}: response longer than {MAX_RESPONSE_LENGTH} bytes")
            if response.sw1 == 0x61:
                current = get_response(response.sw2)
                continue
            return Response(bytes(collected), response.sw1, response.sw2)
        raise ApduError(f"{command.name}: no final status word after {self._max_exchanges} exchanges")

    def _transmit(self, command: Command) -> Response:
        apdu = command.encode()
        start = self._clock()
        try:
            raw = self._reader.transmit(apdu)
        except OSError as exc:
            raise CardRemovedError(
                f"card left reader '{self._reader.name}' during {command.name}: {exc}"
            ) from exc
        elapsed = self._clock() - start
        raw = bytes(raw)
        self._trace.append(TraceEntry(command.name, apdu, raw, elapsed))
        return Response.from_bytes(raw)
