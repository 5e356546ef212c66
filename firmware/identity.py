"""The terminal's identity: who it is and for whom it works (`firmware/data/identity.json`).

One file, one object, read by both sides that need it: the EMV kernel takes
its terminal data objects from it (9F1C terminal id, 9F16 merchant id, 9F4E
merchant name and location, 9F15 merchant category code, 9F1A country,
5F2A/5F36 currency, 9F1E IFD serial number, EMV Book 4 Annex A) and the host
messages their fields 41 and 42 (`firmware.host.messages.TerminalIdentity.of`).
`firmware/emv` and `firmware/host` never import each other; both import this.

    identity = load_identity()            # the shipped file; load_identity(path) another one

A missing or wrong value raises ConfigError naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.config import Section, read_config

__all__ = [
    "IDENTITY_FILE",
    "Identity",
    "identity_from_section",
    "load_identity",
]

IDENTITY_FILE: Final = "identity.json"


@dataclass(frozen=True)
class Identity:
    terminal_id: str  # an8, ISO 8583 field 41, 9F1C
    merchant_id: str  # ans15, field 42, 9F16
    merchant_name_location: str  # 9F4E
    merchant_category_code: int  # ISO 18245, 9F15
    country_code: int  # ISO 3166 numeric, 9F1A
    currency_code: int  # ISO 4217 numeric, 5F2A
    currency_exponent: int  # 5F36
    ifd_serial: str  # an8, 9F1E


def identity_from_section(section: Section) -> Identity:
    section.only(
        "terminal_id",
        "merchant_id",
        "merchant_name_location",
        "merchant_category_code",
        "country_code",
        "currency_code",
        "currency_exponent",
        "ifd_serial",
    )
    return Identity(
        terminal_id=section.text("terminal_id", length=8, ascii_only=True),
        merchant_id=section.text("merchant_id", length=15, ascii_only=True),
        merchant_name_location=section.text("merchant_name_location", ascii_only=True),
        merchant_category_code=section.integer("merchant_category_code", maximum=9999),
        country_code=section.integer("country_code", maximum=999),
        currency_code=section.integer("currency_code", maximum=999),
        currency_exponent=section.integer("currency_exponent", maximum=9),
        ifd_serial=section.text("ifd_serial", length=8, ascii_only=True),
    )


def load_identity(path: Path | str | None = None) -> Identity:
    """The identity at `path`, or the shipped `firmware/data/identity.json`."""
    return identity_from_section(read_config(IDENTITY_FILE, path))
