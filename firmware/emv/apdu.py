"""Command and response APDUs of the EMV card dialogue (Book 1 9, Book 3 6.5).

Commands are values (`Command`) built by one function per EMV command; the
transport turns them into bytes. Only short APDUs exist in EMV: data up to
255 bytes, and `le` is the raw Le byte where 0 means "up to 256 bytes".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from firmware.errors import ApduError

__all__ = [
    "CDA_REQUESTED",
    "CRYPTOGRAM_AAC",
    "CRYPTOGRAM_ARQC",
    "CRYPTOGRAM_TC",
    "PIN_BEARING_INS",
    "PIN_ENCIPHERED",
    "PIN_PLAINTEXT",
    "SW_OK",
    "Command",
    "Response",
    "describe_sw",
    "external_authenticate",
    "generate_ac",
    "get_challenge",
    "get_data",
    "get_processing_options",
    "get_response",
    "internal_authenticate",
    "read_record",
    "select_by_name",
    "verify",
]

SW_OK = 0x9000

# GENERATE AC reference control parameter (Book 3 Table 12): bits 8-7 the
# cryptogram asked for, bit 5 a CDA signature.
CRYPTOGRAM_AAC = 0x00
CRYPTOGRAM_TC = 0x40
CRYPTOGRAM_ARQC = 0x80
CDA_REQUESTED = 0x10

# VERIFY P2 (Book 3 Table 23).
PIN_PLAINTEXT = 0x80
PIN_ENCIPHERED = 0x88

# Instructions whose command data carries PIN material: never shown.
PIN_BEARING_INS = frozenset({0x20, 0x24, 0x2C})


@dataclass(frozen=True)
class Command:
    """One command APDU. `le` is None when the command expects no data."""

    name: str
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for field_name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, field_name)
            if not 0 <= value <= 0xFF:
                raise ApduError(f"{self.name}: {field_name.upper()} {value} is not one byte")
        if len(self.data) > 255:
            raise ApduError(f"{self.name}: {len(self.data)} bytes of command data (at most 255)")
        if self.le is not None and not 0 <= self.le <= 0xFF:
            raise ApduError(f"{self.name}: Le {self.le} is not one byte")

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 no data either way, 2 data out, 3 data in, 4 both."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    def encode(self) -> bytes:
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out.append(len(self.data))
            out += self.data
        if self.le is not None:
            out.append(self.le)
        return bytes(out)

    def with_le(self, le: int) -> Command:
        return replace(self, le=le)


@dataclass(frozen=True)
class Response:
    """A response APDU: data then the status word SW1 SW2."""

    data: bytes
    sw1: int
    sw2: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise ApduError(f"response of {len(raw)} byte(s): no status word")
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def encode(self) -> bytes:
        return self.data + bytes((self.sw1, self.sw2))

    def describe(self) -> str:
        return describe_sw(self.sw)


_SW_MEANINGS: dict[int, str] = {
    0x9000: "normal processing",
    0x6200: "warning: state of non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file reached before Le bytes",
    0x6283: "warning: selected file invalidated (blocked)",
    0x6284: "warning: FCI not formatted as expected",
    0x6300: "warning: authentication failed",
    0x6400: "error: state of non-volatile memory unchanged",
    0x6500: "error: state of non-volatile memory changed",
    0x6581: "error: memory failure",
    0x6700: "wrong length",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "secure messaging data objects incorrect",
    0x6A80: "incorrect parameters in the data field",
    0x6A81: "function not supported (card or application blocked)",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1 P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1 P2",
    0x6D00: "instruction code not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def describe_sw(sw: int) -> str:
    """A short English meaning of a status word (ISO 7816-4, EMV Book 3 Annex)."""
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw in _SW_MEANINGS:
        return _SW_MEANINGS[sw]
    if sw1 == 0x61:
        return f"{sw2 or 256} response bytes still available"
    if sw1 == 0x6C:
        return f"wrong Le: {sw2 or 256} bytes available"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"warning: counter at {sw2 & 0x0F} (tries left)"
    if sw1 in (0x62, 0x63):
        return "warning"
    if sw1 == 0x64 or sw1 == 0x65:
        return "execution error"
    if sw1 == 0x67:
        return "wrong length"
    if sw1 == 0x68 or sw1 == 0x69 or sw1 == 0x6A:
        return "checking error"
    return "unknown status"


# --- command builders (Book 3 6.5; Book 1 11.3 for SELECT) ------------------


def select_by_name(name: bytes, *, next_occurrence: bool = False) -> Command:
    """SELECT by DF name (PSE or AID); P2 = 02 asks for the next occurrence."""
    if not 1 <= len(name) <= 16:
        raise ApduError(f"SELECT: DF name of {len(name)} bytes (1 to 16)")
    return Command("SELECT", 0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, bytes(name), 0x00)


def read_record(sfi: int, record: int) -> Command:
    """READ RECORD of `record` in the file `sfi` (P2 = SFI << 3 | 100b)."""
    if not 1 <= sfi <= 30:
        raise ApduError(f"READ RECORD: SFI {sfi} out of range 1-30")
    if not 1 <= record <= 0xFF:
        raise ApduError(f"READ RECORD: record number {record} out of range 1-255")
    return Command("READ RECORD", 0x00, 0xB2, record, (sfi << 3) | 0x04, b"", 0x00)


def get_processing_options(pdol_data: bytes) -> Command:
    """GET PROCESSING OPTIONS; the PDOL values are wrapped in the command template '83'."""
    if len(pdol_data) > 252:
        raise ApduError(f"GET PROCESSING OPTIONS: PDOL data of {len(pdol_data)} bytes (at most 252)")
    header = bytes((0x83, len(pdol_data))) if len(pdol_data) < 0x80 else bytes((0x83, 0x81, len(pdol_data)))
    return Command("GET PROCESSING OPTIONS", 0x80, 0xA8, 0x00, 0x00, header + pdol_data, 0x00)


def get_data(tag: int) -> Command:
    """GET DATA for a one- or two-byte tag (9F36 ATC, 9F13, 9F17 PIN try counter, 9F4F)."""
    if not 0 <= tag <= 0xFFFF:
        raise ApduError(f"GET DATA: tag {tag:X} longer than two bytes")
    return Command("GET DATA", 0x80, 0xCA, tag >> 8, tag & 0xFF, b"", 0x00)


def get_challenge() -> Command:
    return Command("GET CHALLENGE", 0x00, 0x84, 0x00, 0x00, b"", 0x00)


def verify(pin_data: bytes, qualifier: int = PIN_PLAINTEXT) -> Command:
    """VERIFY: a plaintext PIN block (P2 80) or an enciphered PIN (P2 88)."""
    if not pin_data:
        raise ApduError("VERIFY: no PIN data")
    return Command("VERIFY", 0x00, 0x20, 0x00, qualifier, bytes(pin_data), None)


def internal_authenticate(ddol_data: bytes) -> Command:
    if not ddol_data:
        raise ApduError("INTERNAL AUTHENTICATE: no DDOL data")
    return Command("INTERNAL AUTHENTICATE", 0x00, 0x88, 0x00, 0x00, bytes(ddol_data), 0x00)


def generate_ac(reference_control: int, cdol_data: bytes) -> Command:
    """GENERATE AC; `reference_control` is CRYPTOGRAM_* possibly | CDA_REQUESTED."""
    if reference_control & ~(0xC0 | CDA_REQUESTED):
        raise ApduError(f"GENERATE AC: reference control parameter {reference_control:02X} uses RFU bits")
    if reference_control & 0xC0 == 0xC0:
        raise ApduError("GENERATE AC: cryptogram type 11 is RFU")
    if not cdol_data:
        raise ApduError("GENERATE AC: no CDOL data")
    return Command("GENERATE AC", 0x80, 0xAE, reference_control, 0x00, bytes(cdol_data), 0x00)


def external_authenticate(issuer_authentication_data: bytes) -> Command:
    if not 8 <= len(issuer_authentication_data) <= 16:
        raise ApduError(
            f"EXTERNAL AUTHENTICATE: issuer authentication data of {len(issuer_authentication_data)} "
            "bytes (8 to 16)"
        )
    return Command("EXTERNAL AUTHENTICATE", 0x00, 0x82, 0x00, 0x00, bytes(issuer_authentication_data), None)


def get_response(length: int) -> Command:
    """GET RESPONSE for the bytes a 61xx announced (`length` is SW2; 0 means 256)."""
    return Command("GET RESPONSE", 0x00, 0xC0, 0x00, 0x00, b"", length & 0xFF)
