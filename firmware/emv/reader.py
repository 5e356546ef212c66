"""Card readers: the `CardReader` boundary and its PC/SC implementation.

This is the only module that imports `smartcard` (pyscard). Every pyscard
failure leaves it as a firmware `ReaderError` subclass with a message a
technician can act on.
"""

from __future__ import annotations

from typing import Any, Protocol

from smartcard import scard
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException, NoCardException, SmartcardException
from smartcard.pcsc.PCSCExceptions import BaseSCardException
from smartcard.System import readers as _pcsc_readers

from firmware.errors import CardRemovedError, NoCardError, NoReaderError, ReaderError

__all__ = ["CardReader", "PcscReader", "list_pcsc_readers", "open_pcsc_reader"]


class CardReader(Protocol):
    """A slot holding (or not) a chip card.

    Errors (what `firmware.emv.transport.Transport` relies on):

    - A link failure (no card, the card pulled out, the reader or the PC/SC
      service gone) raises either a `ReaderError` subclass (`NoCardError`,
      `CardRemovedError`, `NoReaderError`, or `ReaderError` itself), which
      `Transport` lets through unchanged, or an `OSError` (the simulated
      reader and the test fakes raise `ConnectionError`s), which `Transport`
      turns into `NoCardError` at `power_on` and `CardRemovedError` at
      `transmit`. `PcscReader` raises only `ReaderError` subclasses.
    - A status word is never an exception: `transmit` returns what the card
      answered. An answer shorter than SW1 SW2 becomes `ApduError` in
      `Transport`.
    - `power_off` is for cleaning up, even after a failure: it should not
      raise when the card or the reader is already gone, and `Transport`
      ignores an `OSError` or `ReaderError` from it.

    Any other exception is a bug in the reader and is not translated.
    """

    @property
    def name(self) -> str: ...

    def power_on(self) -> bytes:
        """Power the card (cold reset) and return its ATR."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Send a command APDU; return the response data followed by SW1 SW2."""
        ...

    def power_off(self) -> None: ...


_PYSCARD_ERRORS = (SmartcardException, BaseSCardException, scard.error)

_CARD_GONE = {
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
}
_NO_SERVICE = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_E_NO_READERS_AVAILABLE,
}
_READER_GONE = {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE}


def _hresult(exc: BaseException) -> int:
    value = getattr(exc, "hresult", None)
    return value if isinstance(value, int) else -1


def _describe(exc: BaseException) -> str:
    hresult = _hresult(exc)
    if hresult not in (-1, 0):
        try:
            return str(scard.SCardGetErrorMessage(hresult)).strip()
        except _PYSCARD_ERRORS:
            pass
    return str(exc).strip() or type(exc).__name__


def list_pcsc_readers() -> list[str]:
    """Names of the readers pcscd knows; NoReaderError if pcscd cannot be reached."""
    try:
        return [str(reader) for reader in _pcsc_readers()]
    except _PYSCARD_ERRORS as exc:
        if _hresult(exc) == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        raise NoReaderError(f"PC/SC service unavailable (is pcscd running?): {_describe(exc)}") from exc


def _card_present(reader_name: str) -> bool:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    try:
        hresult, states = scard.SCardGetStatusChange(context, 0, [(reader_name, scard.SCARD_STATE_UNAWARE)])
        if hresult != scard.SCARD_S_SUCCESS or not states:
            return False
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


class PcscReader:
    """A PC/SC reader through pcscd; T=0 or T=1, whichever the card offers."""

    def __init__(self, reader_name: str) -> None:
        self._name = reader_name
        self._connection: Any = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def protocol(self) -> str | None:
        """'T=0' or 'T=1' once powered on; None before."""
        if self._connection is None:
            return None
        active = self._connection.getProtocol()
        if active == CardConnection.T0_protocol:
            return "T=0"
        if active == CardConnection.T1_protocol:
            return "T=1"
        return None

    def power_on(self) -> bytes:
        self.power_off()
        reader = self._find_reader()
        try:
            connection = reader.createConnection()
            connection.connect(CardConnection.T0_protocol | CardConnection.T1_protocol)
            atr = bytes(connection.getATR())
        except NoCardException as exc:
            raise NoCardError(f"no card in reader '{self._name}'") from exc
        except _PYSCARD_ERRORS as exc:
            if _hresult(exc) in _CARD_GONE:
                raise NoCardError(f"no card in reader '{self._name}'") from exc
            if _hresult(exc) in _READER_GONE:
                raise NoReaderError(f"reader '{self._name}' is gone: {_describe(exc)}") from exc
            raise ReaderError(f"cannot power on the card in '{self._name}': {_describe(exc)}") from exc
        self._connection = connection
        return atr

    def transmit(self, apdu: bytes) -> bytes:
        if self._connection is None:
            raise ReaderError(f"reader '{self._name}': transmit before power on")
        try:
            data, sw1, sw2 = self._connection.transmit(list(apdu))
        except _PYSCARD_ERRORS as exc:
            if _hresult(exc) in _CARD_GONE or isinstance(exc, NoCardException):
                # A card that has left cannot be powered down: leave it at disconnect.
                self._connection.disposition = scard.SCARD_LEAVE_CARD
                raise CardRemovedError(f"card left reader '{self._name}'") from exc
            if _hresult(exc) in _READER_GONE:
                raise CardRemovedError(f"reader '{self._name}' went away: {_describe(exc)}") from exc
            if isinstance(exc, CardConnectionException) and _hresult(exc) == -1:
                # pyscard raises this without an hresult for a response shorter than SW1 SW2.
                raise ReaderError(f"reader '{self._name}': {_describe(exc)}") from exc
            raise ReaderError(f"reader '{self._name}': transmit failed: {_describe(exc)}") from exc
        return bytes(data) + bytes((sw1 & 0xFF, sw2 & 0xFF))

    def power_off(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.disconnect()
        except _PYSCARD_ERRORS:
            pass  # the card or the reader is already gone: nothing left to power off
        try:
            connection.release()
        except (*_PYSCARD_ERRORS, AttributeError):
            pass

    def _find_reader(self) -> Any:
        try:
            for reader in _pcsc_readers():
                if str(reader) == self._name:
                    return reader
        except _PYSCARD_ERRORS as exc:
            raise NoReaderError(f"PC/SC service unavailable (is pcscd running?): {_describe(exc)}") from exc
        raise NoReaderError(f"reader '{self._name}' is not connected")

    def __repr__(self) -> str:
        return f"PcscReader({self._name!r})"


def open_pcsc_reader(name: str | None = None) -> PcscReader:
    """The reader named `name` (exact name, else a unique or first substring match),
    or with no name the first reader holding a card.

    The card is not powered here; `power_on()` does that.
    """
    available = list_pcsc_readers()
    if not available:
        raise NoReaderError("no PC/SC reader connected")
    if name is None:
        for reader_name in available:
            if _card_present(reader_name):
                return PcscReader(reader_name)
        raise NoCardError(f"no card in any reader ({', '.join(available)})")
    if name in available:
        return PcscReader(name)
    matches = [reader_name for reader_name in available if name.lower() in reader_name.lower()]
    if not matches:
        raise NoReaderError(f"no reader named '{name}' (connected: {', '.join(available)})")
    with_card = [reader_name for reader_name in matches if _card_present(reader_name)]
    return PcscReader((with_card or matches)[0])
