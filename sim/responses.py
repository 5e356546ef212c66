"""Pure pieces of the card's answers: response templates, the CDA hash, log records, PIN blocks."""

from __future__ import annotations

from collections.abc import Mapping

from sim import odasign, tlv
from sim.errors import SwError

__all__ = [
    "ac_response_items",
    "cda_transaction_data_hash",
    "encode_ac_response",
    "gpo_response",
    "log_record",
    "parse_pin_block",
]

SW_WRONG_DATA = 0x6A80


def gpo_response(response_format: int, aip: bytes, afl: bytes) -> bytes:
    """Format 1: '80' AIP || AFL; format 2: '77' with '82' AIP and '94' AFL."""
    if response_format == 1:
        return tlv.encode(0x80, aip + afl)
    return tlv.encode(0x77, tlv.encode(0x82, aip) + tlv.encode(0x94, afl))


def ac_response_items(cid: int, atc: int, cryptogram: bytes, iad: bytes) -> list[tuple[int, bytes]]:
    """The GENERATE AC data objects in response order (9F27, 9F36, 9F26, 9F10)."""
    return [(0x9F27, bytes([cid])), (0x9F36, atc.to_bytes(2, "big")), (0x9F26, cryptogram), (0x9F10, iad)]


def encode_ac_response(response_format: int, items: list[tuple[int, bytes]]) -> bytes:
    """Format 1: '80' with the values concatenated; format 2: '77' with the TLV objects.

    With CDA, `items` has 9F4B (the signature) in place of 9F26; only format 2 carries it.
    """
    if response_format == 1:
        return tlv.encode(0x80, b"".join(value for _, value in items))
    return tlv.encode(0x77, tlv.encode_all(items))


def cda_transaction_data_hash(
    pdol_data: bytes, cdol_data: list[bytes], response_items: list[tuple[int, bytes]]
) -> bytes:
    """Book 2 6.6.1: SHA-1 of the PDOL data, the CDOL1 (and CDOL2) data and the response TLVs but 9F4B."""
    returned = tlv.encode_all((tag, value) for tag, value in response_items if tag != 0x9F4B)
    return odasign.sha1(pdol_data + b"".join(cdol_data) + returned)


def log_record(log_format: bytes, values: Mapping[int, bytes]) -> bytes:
    """One transaction log record: the values the log format names, concatenated; zeros when unknown."""
    parts = []
    for tag, length in tlv.parse_dol(log_format):
        value = values.get(tag, b"")
        parts.append(value if len(value) == length else bytes(length))
    return b"".join(parts)


def parse_pin_block(block: bytes) -> str:
    """ISO 9564 format 2 (2L PPPP... F padding), 8 bytes; anything else is SW 6A80."""
    digits = block.hex().upper()
    if len(block) != 8 or digits[0] != "2":
        raise SwError(SW_WRONG_DATA, "not an ISO 9564 format 2 PIN block")
    length = int(digits[1], 16)
    pin = digits[2 : 2 + length]
    if not 4 <= length <= 12 or not pin.isdigit() or set(digits[2 + length :]) - {"F"}:
        raise SwError(SW_WRONG_DATA, "not an ISO 9564 format 2 PIN block")
    return pin
