"""Card readers: the `CardReader` boundary and its PC/SC implementation.

This is the only module that imports `smartcard` (pyscard). `PcscReader`
talks to pcscd through pyscard's low-level `smartcard.scard` layer (the
PC/SC calls themselves: SCardConnect, SCardTransmit, SCardDisconnect on the
card handle), so that what PC/SC answers is seen as it is: a transmit that
returns no bytes at all, and how the connection is left when it ends. Every
pyscard failure leaves this module as a firmware `ReaderError` subclass with
a message a technician can act on.

A card that has left the reader is a normal event on a terminal: the
dialogue ends with `CardRemovedError`, and the connection to the gone card is
left (SCARD_LEAVE_CARD), never powered down. Powering down a card that is
not there makes pcscd mark the reader empty behind the back of its own
card-event thread; a card inserted before that thread has looked again is
then never reported (pcsc-lite 1.9.9, winscard.c and eventhandler.c).
"""

from __future__ import annotations

from typing import Any, Protocol

from smartcard import scard
from smartcard.Exceptions import SmartcardException
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
      `Transport`; `PcscReader` raises `CardRemovedError` for an answer of
      no bytes at all (PC/SC success with nothing: the card went away in
      the middle of the command).
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


_PROTOCOL_NAMES = {scard.SCARD_PROTOCOL_T0: "T=0", scard.SCARD_PROTOCOL_T1: "T=1"}
_PROTOCOL_HEADERS = {scard.SCARD_PROTOCOL_T0: scard.SCARD_PCI_T0, scard.SCARD_PROTOCOL_T1: scard.SCARD_PCI_T1}


def _message(hresult: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(hresult)).strip()
    except _PYSCARD_ERRORS:
        return f"PC/SC error 0x{hresult & 0xFFFFFFFF:08X}"


def _describe(exc: BaseException) -> str:
    hresult = _hresult(exc)
    if hresult not in (-1, 0):
        return _message(hresult)
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
    """A PC/SC reader through pcscd; T=0 or T=1, whichever the card offers.

    One PC/SC context and one card handle per `power_on`, released by
    `power_off`. The card is powered down at `power_off` unless it has gone:
    a transmit that fails with "card removed" (or "no card", "reset",
    "unpowered", "unresponsive", the reader gone) or that returns no bytes at
    all (vsmartcard's vpcd answers a transmit to a card that left in the
    middle of the command with success and nothing) raises `CardRemovedError`,
    and the connection is then left as it is (SCARD_LEAVE_CARD).
    """

    def __init__(self, reader_name: str) -> None:
        self._name = reader_name
        self._context: Any = None
        self._card: Any = None
        self._protocol: int | None = None
        self._card_gone = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def protocol(self) -> str | None:
        """'T=0' or 'T=1' once powered on; None before."""
        if self._card is None:
            return None
        return _PROTOCOL_NAMES.get(self._protocol or 0)

    def power_on(self) -> bytes:
        self.power_off()
        try:
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        except _PYSCARD_ERRORS as exc:
            raise NoReaderError(f"PC/SC service unavailable (is pcscd running?): {_describe(exc)}") from exc
        if hresult != scard.SCARD_S_SUCCESS:
            raise NoReaderError(f"PC/SC service unavailable (is pcscd running?): {_message(hresult)}")
        self._context = context
        try:
            return self._connect()
        except BaseException:
            self.power_off()
            raise

    def _connect(self) -> bytes:
        try:
            hresult, card, protocol = scard.SCardConnect(
                self._context,
                self._name,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
        except _PYSCARD_ERRORS as exc:
            raise ReaderError(f"cannot power on the card in '{self._name}': {_describe(exc)}") from exc
        if hresult != scard.SCARD_S_SUCCESS:
            if hresult in _CARD_GONE:
                raise NoCardError(f"no card in reader '{self._name}'")
            if hresult in _READER_GONE:
                raise NoReaderError(f"reader '{self._name}' is not connected")
            if hresult in _NO_SERVICE:
                raise NoReaderError(f"PC/SC service unavailable (is pcscd running?): {_message(hresult)}")
            raise ReaderError(f"cannot power on the card in '{self._name}': {_message(hresult)}")
        self._card, self._protocol = card, protocol
        try:
            hresult, _reader, _state, _protocol, atr = scard.SCardStatus(card)
        except _PYSCARD_ERRORS as exc:
            raise ReaderError(f"cannot read the ATR in '{self._name}': {_describe(exc)}") from exc
        if hresult != scard.SCARD_S_SUCCESS:
            if hresult in _CARD_GONE:
                self._card_gone = True
                raise NoCardError(f"no card in reader '{self._name}'")
            raise ReaderError(f"cannot read the ATR in '{self._name}': {_message(hresult)}")
        return bytes(atr)

    def transmit(self, apdu: bytes) -> bytes:
        if self._card is None:
            raise ReaderError(f"reader '{self._name}': transmit before power on")
        header = _PROTOCOL_HEADERS.get(self._protocol or 0)
        if header is None:
            raise ReaderError(f"reader '{self._name}': the card speaks neither T=0 nor T=1")
        try:
            hresult, response = scard.SCardTransmit(self._card, header, list(apdu))
        except _PYSCARD_ERRORS as exc:
            raise ReaderError(f"reader '{self._name}': transmit failed: {_describe(exc)}") from exc
        if hresult in _CARD_GONE:
            self._card_gone = True
            raise CardRemovedError(f"card left reader '{self._name}'")
        if hresult in _READER_GONE:
            self._card_gone = True
            raise CardRemovedError(f"reader '{self._name}' went away: {_message(hresult)}")
        if hresult != scard.SCARD_S_SUCCESS:
            raise ReaderError(f"reader '{self._name}': transmit failed: {_message(hresult)}")
        if not response:
            # No status word at all: nothing answered. A reader that lost the
            # card in the middle of the command says so this way (vpcd).
            self._card_gone = True
            raise CardRemovedError(f"card left reader '{self._name}' (the command got no answer)")
        return bytes(byte & 0xFF for byte in response)

    def power_off(self) -> None:
        """Power the card down and release the PC/SC context; a gone card is left as it is.

        Quiet when the card or the reader or pcscd is already gone.
        """
        card, context, gone = self._card, self._context, self._card_gone
        self._card, self._context, self._protocol, self._card_gone = None, None, None, False
        if card is not None:
            disposition = scard.SCARD_LEAVE_CARD if gone else scard.SCARD_UNPOWER_CARD
            try:
                scard.SCardDisconnect(card, disposition)
            except _PYSCARD_ERRORS:
                pass  # the card or the reader is already gone: nothing left to power off
        if context is not None:
            try:
                scard.SCardReleaseContext(context)
            except _PYSCARD_ERRORS:
                pass

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
