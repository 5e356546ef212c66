"""GENERATE AC: command data and the card's answer (EMV Book 3 6.5.5, 9.2, 9.3).

The reference control parameter (P1) says which cryptogram the terminal
asks for and whether it wants a CDA signature; the command data is the CDOL
(8C for the first, 8D for the second command) filled from the transaction's
data objects. The answer is format 1 ('80': CID, ATC, AC, IAD) or format 2
('77': the same as tagged objects, plus 9F4B under CDA). The Application
Cryptogram is mandatory in both (Book 3 6.5.5.4); only an answer to a
command that asked for CDA may carry it inside the signature 9F4B instead
(Book 2 6.6.1), where it is recovered when the signature is checked.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from firmware.emv import tags, tlv
from firmware.emv.apdu import CDA_REQUESTED, Command, generate_ac
from firmware.errors import CardDataError, TlvError

__all__ = [
    "CryptogramType",
    "GenerateAcResponse",
    "build_cdol_data",
    "generate_ac_command",
    "parse_generate_ac_response",
    "tc_hash_value",
]

TAG_CID = 0x9F27
TAG_ATC = 0x9F36
TAG_AC = 0x9F26
TAG_IAD = 0x9F10
TAG_SDAD = 0x9F4B


class CryptogramType(enum.IntEnum):
    """Bits 8-7 of P1 and of the Cryptogram Information Data (Book 3 Tables 12 and 14)."""

    AAC = 0x00
    TC = 0x40
    ARQC = 0x80

    @classmethod
    def of(cls, cid_or_p1: int) -> CryptogramType:
        bits = cid_or_p1 & 0xC0
        if bits == 0xC0:
            raise CardDataError("cryptogram type 11 is RFU", TAG_CID)
        return cls(bits)


def build_cdol_data(cdol: bytes, source: Mapping[int, bytes], tag: int = 0x8C) -> bytes:
    """The values a CDOL asks for, from `source` (Book 3 5.4); a malformed CDOL names its tag."""
    try:
        entries = tlv.parse_dol(cdol)
    except TlvError as exc:
        raise CardDataError(f"malformed CDOL: {exc}", tag) from exc
    return tlv.build_dol(entries, source, tags.format_of)


def tc_hash_value(tdol: bytes, source: Mapping[int, bytes]) -> bytes:
    """TC Hash Value (98), Book 3 9.2.2: SHA-1 over the data the TDOL (97) names."""
    try:
        entries = tlv.parse_dol(tdol)
    except TlvError as exc:
        raise CardDataError(f"malformed TDOL: {exc}", 0x97) from exc
    return hashlib.sha1(tlv.build_dol(entries, source, tags.format_of), usedforsecurity=False).digest()


def generate_ac_command(kind: CryptogramType, cdol_data: bytes, *, cda: bool = False) -> Command:
    return generate_ac(int(kind) | (CDA_REQUESTED if cda else 0), cdol_data)


@dataclass(frozen=True)
class GenerateAcResponse:
    """The card's answer. `cryptogram` is None only under CDA (it is inside 9F4B)."""

    response_format: int
    cid: int
    atc: bytes
    cryptogram: bytes | None
    issuer_application_data: bytes | None
    objects: Mapping[int, bytes] = field(default_factory=dict)

    @property
    def cryptogram_type(self) -> CryptogramType:
        return CryptogramType.of(self.cid)

    @property
    def advice_required(self) -> bool:
        return bool(self.cid & 0x08)

    @property
    def reason(self) -> int:
        """CID bits 3-1: 0 none, 1 service not allowed, 2 PIN try limit exceeded, 3 issuer auth failed."""
        return self.cid & 0x07

    @property
    def signed_dynamic_data(self) -> bytes | None:
        return self.objects.get(TAG_SDAD)


def _check_lengths(cid: bytes, atc: bytes, cryptogram: bytes | None, iad: bytes | None) -> None:
    if len(cid) != 1:
        raise CardDataError(f"CID of {len(cid)} bytes", TAG_CID)
    if len(atc) != 2:
        raise CardDataError(f"ATC of {len(atc)} bytes", TAG_ATC)
    if cryptogram is not None and len(cryptogram) != 8:
        raise CardDataError(f"application cryptogram of {len(cryptogram)} bytes", TAG_AC)
    if iad is not None and len(iad) > 32:
        raise CardDataError(f"issuer application data of {len(iad)} bytes", TAG_IAD)
    CryptogramType.of(cid[0])


def parse_generate_ac_response(data: bytes, *, cda_requested: bool = False) -> GenerateAcResponse:
    """Format 1 or 2 (Book 3 6.5.5.4); CardDataError or TlvError when malformed.

    A format 2 answer without 9F26 is malformed unless `cda_requested` (P1
    asked for a CDA signature) and it carries the signature 9F4B.
    """
    template = tlv.parse_one(data)
    if template.tag == 0x80:
        value = template.value
        if len(value) < 11:
            raise CardDataError(f"format 1 response of {len(value)} bytes (at least 11)", 0x80)
        cid, atc, cryptogram = value[0:1], value[1:3], value[3:11]
        iad = value[11:] or None
        _check_lengths(cid, atc, cryptogram, iad)
        fields = {TAG_CID: cid, TAG_ATC: atc, TAG_AC: cryptogram}
        if iad is not None:
            fields[TAG_IAD] = iad
        return GenerateAcResponse(0x80, cid[0], atc, cryptogram, iad, fields)
    if template.tag != 0x77:
        raise CardDataError("GENERATE AC response is neither format 1 ('80') nor 2 ('77')", template.tag)
    objects: dict[int, bytes] = {}
    for obj in template.children():
        if obj.tag in objects:
            raise CardDataError("format 2 response repeats a data object", obj.tag)
        objects[obj.tag] = obj.value
    for required in (TAG_CID, TAG_ATC):
        if required not in objects:
            raise CardDataError("format 2 response without a mandatory data object", required)
    if TAG_AC not in objects and not (cda_requested and TAG_SDAD in objects):
        if cda_requested:
            raise CardDataError("format 2 response has neither a cryptogram nor a CDA signature", TAG_AC)
        raise CardDataError("format 2 response without the application cryptogram (no CDA asked)", TAG_AC)
    tagged_cryptogram = objects.get(TAG_AC)
    tagged_iad = objects.get(TAG_IAD)
    _check_lengths(objects[TAG_CID], objects[TAG_ATC], tagged_cryptogram, tagged_iad)
    return GenerateAcResponse(
        0x77, objects[TAG_CID][0], objects[TAG_ATC], tagged_cryptogram, tagged_iad, objects
    )
