"""Building blocks of the UnionPay-style POS messages, and one request/answer round trip.

Field 60 (n...): 60.1 transaction type code (`firmware.host.codes.TransactionCode`:
22 sale, 23 void, 25 refund, 30/32/34 adjust, 20 completion, 00 management),
60.2 batch number (6), 60.3 network management code (3: 000 none, 001/003/004
sign-on, 002 sign-off, 201/202/207 settlement and batch upload, 301 echo),
then optional single digits.
Field 61 (n...): original batch (6), original trace (6), original date MMDD (4).
Field 90 (n42): original message type (4), trace (6), transmission date and
time MMDDhhmmss (10), acquirer id (11), forwarding institution id (11).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from firmware.errors import MessageFieldError
from firmware.host.channel import HostLink
from firmware.host.codes import TransactionCode
from firmware.host.mac import MessageMac, open_answer, seal
from firmware.host.spec import DEFAULT_HEADER, DEFAULT_TPDU, IsoMessage, pack, unpack
from firmware.identity import Identity

__all__ = [
    "SIGNED_RECORD_TAG",
    "TerminalIdentity",
    "check_answer",
    "field60",
    "field61",
    "field90",
    "format_amount",
    "format_stan",
    "parse_field60",
    "send",
    "signed_record_field",
]

SIGNED_RECORD_TAG: Final = b"SR"
_SIGNATURE_LENGTH: Final = 64


@dataclass(frozen=True)
class TerminalIdentity:
    """Who the terminal is on the wire: ids (41, 42), TPDU and message header.

    The ids are the terminal's identity (`firmware/data/identity.json`), the
    same the EMV kernel puts in 9F1C and 9F16: build it with `of`.
    """

    terminal_id: str
    merchant_id: str
    tpdu: bytes = DEFAULT_TPDU
    header: bytes = DEFAULT_HEADER

    def __post_init__(self) -> None:
        if len(self.terminal_id) != 8:
            raise MessageFieldError("terminal id must be 8 characters", "41")
        if len(self.merchant_id) != 15:
            raise MessageFieldError("merchant id must be 15 characters", "42")

    @classmethod
    def of(
        cls, identity: Identity, tpdu: bytes = DEFAULT_TPDU, header: bytes = DEFAULT_HEADER
    ) -> TerminalIdentity:
        """The wire identity of the terminal `identity` (`firmware.identity.load_identity()`)."""
        return cls(identity.terminal_id, identity.merchant_id, tpdu, header)

    def fields(self) -> IsoMessage:
        """The envelope and identity fields every request carries."""
        return {
            "tpdu": self.tpdu.hex().upper(),
            "header": self.header.hex().upper(),
            "41": self.terminal_id,
            "42": self.merchant_id,
        }


def _digits(value: int | str, width: int, field: str) -> str:
    text = f"{value:0{width}d}" if isinstance(value, int) else value
    if len(text) != width or not text.isdigit():
        raise MessageFieldError(f"needs {width} digits, got {text!r}", field)
    return text


def format_stan(stan: int) -> str:
    """Field 11: 000001..999999."""
    if not 0 < stan <= 999_999:
        raise MessageFieldError(f"trace number {stan} outside 1..999999", "11")
    return f"{stan:06d}"


def format_amount(minor_units: int) -> str:
    """Field 4: the amount in minor units (fen), 12 digits."""
    return _digits(minor_units, 12, "4")


def field60(type_code: TransactionCode, batch: int | str, network_code: str = "000", extra: str = "") -> str:
    return _digits(type_code, 2, "60") + _digits(batch, 6, "60") + _digits(network_code, 3, "60") + extra


def parse_field60(value: str) -> tuple[str, str, str]:
    """(60.1 type code, 60.2 batch, 60.3 network management code); missing parts are ''."""
    return value[:2], value[2:8], value[8:11]


def field61(original_batch: int | str, original_trace: int | str, original_date: str = "") -> str:
    date = _digits(original_date, 4, "61") if original_date else ""
    return _digits(original_batch, 6, "61") + _digits(original_trace, 6, "61") + date


def field90(
    original_mti: str,
    original_stan: int | str,
    original_transmission: str = "0000000000",
    acquirer_id: str = "00000000000",
    forwarding_id: str = "00000000000",
) -> str:
    return (
        _digits(original_mti, 4, "90")
        + _digits(original_stan, 6, "90")
        + _digits(original_transmission, 10, "90")
        + _digits(acquirer_id, 11, "90")
        + _digits(forwarding_id, 11, "90")
    )


def signed_record_field(record: bytes, signature: bytes) -> str:
    """Field 62 of an upload carrying a signed record: "SR", length (2 bytes), record, Ed25519 signature."""
    if len(signature) != _SIGNATURE_LENGTH:
        raise MessageFieldError(f"signature must be {_SIGNATURE_LENGTH} bytes", "62")
    value = SIGNED_RECORD_TAG + len(record).to_bytes(2, "big") + record + signature
    if len(value) > 999:
        raise MessageFieldError(f"signed record of {len(record)} bytes does not fit field 62", "62")
    return value.hex().upper()


def check_answer(request: Mapping[str, str], answer: Mapping[str, str]) -> None:
    """The answer must be to this request: its answer type (ISO 8583: 0200 -> 0210, repeat 0401 -> 0410),
    same trace number and terminal."""
    mti = request["t"]
    expected_type = f"{mti[:2]}{int(mti[2]) + 1}0"  # 0200 -> 0210; a repeat 0401 -> 0410, 0221 -> 0230
    if answer.get("t") != expected_type:
        raise MessageFieldError(f"answer type {answer.get('t')} to a {request['t']}", "t")
    for field in ("11", "41"):
        if field in request and answer.get(field) != request[field]:
            raise MessageFieldError(f"answer does not match the request ({answer.get(field)!r})", field)


def send(
    link: HostLink,
    request: Mapping[str, str],
    mac: MessageMac | None,
    timeout: float | None = None,
    *,
    allow_unmaced_decline: bool = True,
) -> IsoMessage:
    """Seal (when `mac` is given), exchange, check the MAC and that the answer is to this request.

    `allow_unmaced_decline=False`: an answer without a valid MAC is a MacMismatchError whatever its code
    (for a request whose outcome moves money, an unauthenticated decline proves nothing).
    """
    packed = seal(request, mac) if mac is not None else pack(request)
    raw_answer = link.exchange(packed, timeout)
    answer = (
        open_answer(raw_answer, mac, allow_unmaced_decline=allow_unmaced_decline)
        if mac is not None
        else unpack(raw_answer)
    )
    check_answer(request, answer)
    return answer
