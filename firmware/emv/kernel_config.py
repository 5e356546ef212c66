"""The EMV kernel's terminal parameters (Book 4 Annex A data elements, Book 3 10.6/10.7).

Three files, each fact in one of them (read through `firmware.config`):

* `firmware/data/kernel.json`: what is the kernel's alone: terminal type
  9F35, capabilities 9F33 and 9F40, the host's approval codes, the tags of
  field 55 when the scheme asks for others than the default, the exception
  file (salted SHA-256 fingerprints of PANs, never a clear PAN);
* `firmware/data/identity.json` (`firmware.identity`): terminal and merchant
  ids, merchant name and location, category code, country, currency, IFD serial;
* `firmware/data/applications.json` (`firmware.emv.application_list`): per
  AID the terminal action codes, floor limit, random selection, application
  version 9F09, default TDOL/DDOL.

    config = load_kernel_config()     # the shipped files; each may be replaced by a path

A missing or wrong value raises ConfigError naming the file and the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from firmware.config import Section, read_config
from firmware.emv.application_list import (
    APPLICATIONS_FILE,
    ApplicationList,
    ApplicationParameters,
    load_application_list,
)
from firmware.emv.transaction import bcd_digits
from firmware.errors import ConfigError
from firmware.identity import Identity, load_identity

__all__ = [
    "DEFAULT_FIELD55_TAGS",
    "KERNEL_FILE",
    "ApplicationParameters",
    "ExceptionFile",
    "KernelConfig",
    "kernel_config_from_section",
    "load_kernel_config",
    "pan_fingerprint",
]

KERNEL_FILE: Final = "kernel.json"

# The ICC data of an authorisation / financial request (ISO 8583 field 55) as schemes ask for it.
DEFAULT_FIELD55_TAGS: tuple[int, ...] = (
    0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82,
    0x9F1A, 0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F41, 0x5F34,
)  # fmt: skip


def pan_fingerprint(pan: str, salt: bytes) -> str:
    """Salted SHA-256 of the PAN digits, hex: what the exception file and the log keep instead of a PAN."""
    digits = pan.rstrip("Ff")
    if not digits.isdigit():
        raise ConfigError("a PAN is digits only")
    return hashlib.sha256(salt + digits.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class ExceptionFile:
    """Hot-card list (Book 3 10.6.4) kept as fingerprints."""

    salt: bytes = b""
    fingerprints: frozenset[str] = frozenset()

    def contains(self, pan: str) -> bool:
        return pan_fingerprint(pan, self.salt) in self.fingerprints


@dataclass(frozen=True)
class KernelConfig:
    identity: Identity
    terminal_type: int
    capabilities: bytes
    additional_capabilities: bytes
    applications: tuple[ApplicationParameters, ...]
    exception_file: ExceptionFile = field(default_factory=ExceptionFile)
    floor_limit_uses_transaction_log: bool = False
    # ISO 8583 field 39: approved (00), honour with identification (08), approved VIP (11).
    approval_response_codes: frozenset[str] = frozenset({"00", "08", "11"})
    # Approved for a partial amount (10): an approval of the whole amount only when the host's
    # answer names that amount (firmware.emv.online.host_decision).
    partial_approval_response_codes: frozenset[str] = frozenset({"10"})
    field55_tags: tuple[int, ...] = DEFAULT_FIELD55_TAGS

    @property
    def country_code(self) -> int:
        return self.identity.country_code

    @property
    def currency_code(self) -> int:
        return self.identity.currency_code

    @property
    def currency_exponent(self) -> int:
        return self.identity.currency_exponent

    @property
    def online_capable(self) -> bool:
        """Terminal type second digit 1, 2, 4 or 5 (Book 4 Annex A1); 3 and 6 are offline only."""
        return self.terminal_type % 10 in (1, 2, 4, 5)

    @property
    def online_only(self) -> bool:
        return self.terminal_type % 10 in (1, 4)

    @property
    def is_atm(self) -> bool:
        """Financial-institution unattended terminal (14, 15, 16) with cash capability (Book 4 Annex A1)."""
        return self.terminal_type in (14, 15, 16) and bool(self.additional_capabilities[0] & 0x80)

    def application(self, card_aid: bytes) -> ApplicationParameters | None:
        """Parameters of the longest terminal AID that the card AID starts with."""
        matches = [app for app in self.applications if card_aid.startswith(app.aid)]
        return max(matches, key=lambda app: len(app.aid)) if matches else None

    def terminal_data(self) -> dict[int, bytes]:
        """The terminal-resident data objects a DOL may ask for."""
        identity = self.identity
        return {
            0x9F33: self.capabilities,
            0x9F40: self.additional_capabilities,
            0x9F35: bcd_digits(self.terminal_type, 1),
            0x9F1A: bcd_digits(identity.country_code, 2),
            0x5F2A: bcd_digits(identity.currency_code, 2),
            0x5F36: bcd_digits(identity.currency_exponent, 1),
            0x9F15: bcd_digits(identity.merchant_category_code, 2),
            0x9F16: identity.merchant_id.encode("ascii"),
            0x9F4E: identity.merchant_name_location.encode("ascii"),
            0x9F1C: identity.terminal_id.encode("ascii"),
            0x9F1E: identity.ifd_serial.encode("ascii"),
        }


def _response_codes(section: Section, key: str, default: list[object]) -> frozenset[str]:
    return frozenset(section.texts(key, default=default, length=2))


def _tags(section: Section, key: str) -> tuple[int, ...]:
    """A list of tags as hex strings ("9F26", "8A"): one or two bytes each, no repeats."""
    tags: list[int] = []
    for position, value in enumerate(section.items(key)):
        try:
            tag = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            tag = b""
        two_byte = len(tag) == 2 and tag[0] & 0x1F == 0x1F and not tag[1] & 0x80
        if not (two_byte or (len(tag) == 1 and tag[0] & 0x1F != 0x1F)):
            raise section.item_error(key, position, f"{value!r} is not a one- or two-byte hex tag")
        tags.append(int.from_bytes(tag, "big"))
    if len(set(tags)) != len(tags):
        raise section.error(key, "lists a tag twice")
    return tuple(tags)


def _exception_file(section: Section) -> ExceptionFile:
    section.only("salt", "pan_sha256")
    return ExceptionFile(
        salt=section.binary("salt", default=b""),
        fingerprints=frozenset(f.lower() for f in section.texts("pan_sha256", default=[])),
    )


def kernel_config_from_section(
    section: Section, identity: Identity, applications: ApplicationList
) -> KernelConfig:
    """The kernel's parameters: `section` (kernel.json) with the terminal's identity and applications."""
    section.only(
        "terminal_type",
        "terminal_capabilities",
        "additional_terminal_capabilities",
        "floor_limit_uses_transaction_log",
        "approval_response_codes",
        "partial_approval_response_codes",
        "field55_tags",
        "exception_file",
    )
    terminal_type = section.integer("terminal_type")
    if terminal_type // 10 not in (1, 2, 3) or terminal_type % 10 not in range(1, 7):
        raise section.error("terminal_type", f"{terminal_type} is not a Book 4 terminal type")
    codes = _response_codes(section, "approval_response_codes", ["00", "08", "11"])
    partial_codes = _response_codes(section, "partial_approval_response_codes", ["10"])
    if codes & partial_codes:
        both = ", ".join(sorted(codes & partial_codes))
        raise section.error("partial_approval_response_codes", f"{both} also in approval_response_codes")
    if not applications.parameters:
        raise ConfigError(f"{APPLICATIONS_FILE}: no application has kernel parameters")
    return KernelConfig(
        identity=identity,
        terminal_type=terminal_type,
        capabilities=section.binary("terminal_capabilities", length=3),
        additional_capabilities=section.binary("additional_terminal_capabilities", length=5),
        applications=applications.parameters,
        exception_file=_exception_file(section.section("exception_file", optional=True)),
        floor_limit_uses_transaction_log=section.flag("floor_limit_uses_transaction_log", default=False),
        approval_response_codes=codes,
        partial_approval_response_codes=partial_codes,
        field55_tags=_tags(section, "field55_tags") if section.has("field55_tags") else DEFAULT_FIELD55_TAGS,
    )


def load_kernel_config(
    path: Path | str | None = None,
    *,
    identity: Identity | None = None,
    applications: ApplicationList | None = None,
) -> KernelConfig:
    """The kernel parameters at `path` (or the shipped kernel.json), with the identity and application list
    given (or the shipped identity.json and applications.json)."""
    return kernel_config_from_section(
        read_config(KERNEL_FILE, path),
        load_identity() if identity is None else identity,
        load_application_list() if applications is None else applications,
    )
