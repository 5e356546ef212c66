"""The EMV kernel's terminal parameters (Book 4 Annex A data elements, Book 3 10.6/10.7).

Loaded from `firmware/data/kernel.json`. Per-AID parameters (terminal action
codes, floor limit, random selection, application version 9F09, default
TDOL/DDOL) live under `applications`; terminal-wide ones (9F33, 9F40, 9F35,
9F1A, 5F2A, merchant and terminal identity, the host's approval codes, the
tags of field 55 when the scheme asks for others than the default) at the top. The exception file
holds salted SHA-256 fingerprints of PANs, never a clear PAN.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.emv.transaction import bcd_digits
from firmware.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_FIELD55_TAGS",
    "ApplicationParameters",
    "ExceptionFile",
    "KernelConfig",
    "kernel_config_from_dict",
    "load_kernel_config",
    "pan_fingerprint",
]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "data" / "kernel.json"

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
class ApplicationParameters:
    """Terminal parameters of one AID (partial selection: the terminal AID is a prefix of the card's)."""

    aid: bytes
    version: bytes
    tac_denial: bytes
    tac_online: bytes
    tac_default: bytes
    floor_limit: int
    random_selection_threshold: int
    random_target_percent: int
    random_max_target_percent: int
    velocity_checking: bool = True
    default_tdol: bytes = b""
    default_ddol: bytes = bytes.fromhex("9F3704")


@dataclass(frozen=True)
class KernelConfig:
    terminal_type: int
    capabilities: bytes
    additional_capabilities: bytes
    country_code: int
    currency_code: int
    currency_exponent: int
    merchant_category_code: int
    merchant_id: str
    merchant_name_location: str
    terminal_id: str
    ifd_serial: str
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
        return {
            0x9F33: self.capabilities,
            0x9F40: self.additional_capabilities,
            0x9F35: bcd_digits(self.terminal_type, 1),
            0x9F1A: bcd_digits(self.country_code, 2),
            0x5F2A: bcd_digits(self.currency_code, 2),
            0x5F36: bcd_digits(self.currency_exponent, 1),
            0x9F15: bcd_digits(self.merchant_category_code, 2),
            0x9F16: self.merchant_id.encode("ascii"),
            0x9F4E: self.merchant_name_location.encode("ascii"),
            0x9F1C: self.terminal_id.encode("ascii"),
            0x9F1E: self.ifd_serial.encode("ascii"),
        }


def _hex(raw: Mapping[str, Any], key: str, length: int | None = None) -> bytes:
    value = raw.get(key)
    if not isinstance(value, str):
        raise ConfigError(f"kernel config: '{key}' must be a hex string")
    try:
        data = bytes.fromhex(value)
    except ValueError as exc:
        raise ConfigError(f"kernel config: '{key}' is not hex") from exc
    if length is not None and len(data) != length:
        raise ConfigError(f"kernel config: '{key}' must be {length} bytes")
    return data


def _int(raw: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"kernel config: '{key}' must be a non-negative integer")
    return value


def _str(raw: Mapping[str, Any], key: str, length: int | None = None) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.isascii():
        raise ConfigError(f"kernel config: '{key}' must be an ASCII string")
    if length is not None and len(value) != length:
        raise ConfigError(f"kernel config: '{key}' must be {length} characters")
    return value


def _application(raw: Mapping[str, Any]) -> ApplicationParameters:
    app = ApplicationParameters(
        aid=_hex(raw, "aid"),
        version=_hex(raw, "version", 2),
        tac_denial=_hex(raw, "tac_denial", 5),
        tac_online=_hex(raw, "tac_online", 5),
        tac_default=_hex(raw, "tac_default", 5),
        floor_limit=_int(raw, "floor_limit"),
        random_selection_threshold=_int(raw, "random_selection_threshold", 0),
        random_target_percent=_int(raw, "random_target_percent", 0),
        random_max_target_percent=_int(raw, "random_max_target_percent", 0),
        velocity_checking=bool(raw.get("velocity_checking", True)),
        default_tdol=_hex(raw, "default_tdol") if "default_tdol" in raw else b"",
        default_ddol=_hex(raw, "default_ddol") if "default_ddol" in raw else bytes.fromhex("9F3704"),
    )
    if not 5 <= len(app.aid) <= 16:
        raise ConfigError(f"kernel config: AID {app.aid.hex()} must be 5..16 bytes")
    if not app.random_target_percent <= app.random_max_target_percent <= 99:
        raise ConfigError(f"kernel config: AID {app.aid.hex()}: need target% <= max target% <= 99")
    if app.random_selection_threshold > app.floor_limit:
        raise ConfigError(f"kernel config: AID {app.aid.hex()}: threshold above floor limit")
    return app


def _response_codes(raw: Mapping[str, Any], key: str, default: list[str]) -> frozenset[str]:
    codes = raw.get(key, default)
    if not isinstance(codes, list) or not all(isinstance(c, str) and len(c) == 2 for c in codes):
        raise ConfigError(f"kernel config: '{key}' must be 2-character strings")
    return frozenset(codes)


def _tags(raw: Mapping[str, Any], key: str) -> tuple[int, ...]:
    """A list of tags as hex strings ("9F26", "8A"): one or two bytes each, no repeats."""
    values = raw.get(key)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"kernel config: '{key}' must be a list of hex tags")
    tags: list[int] = []
    for value in values:
        try:
            tag = bytes.fromhex(value)
        except ValueError:
            raise ConfigError(f"kernel config: '{key}': {value!r} is not a hex tag") from None
        two_byte = len(tag) == 2 and tag[0] & 0x1F == 0x1F and not tag[1] & 0x80
        if not (two_byte or (len(tag) == 1 and tag[0] & 0x1F != 0x1F)):
            raise ConfigError(f"kernel config: '{key}': {value!r} is not a one- or two-byte tag")
        tags.append(int.from_bytes(tag, "big"))
    if len(set(tags)) != len(tags):
        raise ConfigError(f"kernel config: '{key}' lists a tag twice")
    return tuple(tags)


def kernel_config_from_dict(raw: Mapping[str, Any]) -> KernelConfig:
    apps = raw.get("applications")
    if not isinstance(apps, list) or not apps:
        raise ConfigError("kernel config: 'applications' must be a non-empty list")
    exception = raw.get("exception_file", {})
    if not isinstance(exception, Mapping):
        raise ConfigError("kernel config: 'exception_file' must be an object")
    fingerprints = exception.get("pan_sha256", [])
    if not isinstance(fingerprints, list) or not all(isinstance(f, str) for f in fingerprints):
        raise ConfigError("kernel config: 'exception_file.pan_sha256' must be a list of hex strings")
    codes = _response_codes(raw, "approval_response_codes", ["00", "08", "11"])
    partial_codes = _response_codes(raw, "partial_approval_response_codes", ["10"])
    field55_tags = _tags(raw, "field55_tags") if "field55_tags" in raw else DEFAULT_FIELD55_TAGS
    if codes & partial_codes:
        both = ", ".join(sorted(codes & partial_codes))
        raise ConfigError(f"kernel config: response code(s) {both} both full and partial approval")
    config = KernelConfig(
        terminal_type=_int(raw, "terminal_type"),
        capabilities=_hex(raw, "terminal_capabilities", 3),
        additional_capabilities=_hex(raw, "additional_terminal_capabilities", 5),
        country_code=_int(raw, "country_code"),
        currency_code=_int(raw, "currency_code"),
        currency_exponent=_int(raw, "currency_exponent"),
        merchant_category_code=_int(raw, "merchant_category_code"),
        merchant_id=_str(raw, "merchant_id", 15),
        merchant_name_location=_str(raw, "merchant_name_location"),
        terminal_id=_str(raw, "terminal_id", 8),
        ifd_serial=_str(raw, "ifd_serial", 8),
        applications=tuple(_application(app) for app in apps),
        exception_file=ExceptionFile(
            salt=_hex(exception, "salt") if "salt" in exception else b"",
            fingerprints=frozenset(f.lower() for f in fingerprints),
        ),
        floor_limit_uses_transaction_log=bool(raw.get("floor_limit_uses_transaction_log", False)),
        approval_response_codes=codes,
        partial_approval_response_codes=partial_codes,
        field55_tags=field55_tags,
    )
    if config.terminal_type // 10 not in (1, 2, 3) or config.terminal_type % 10 not in range(1, 7):
        raise ConfigError(f"kernel config: terminal type {config.terminal_type} is not a Book 4 type")
    return config


def load_kernel_config(path: Path | None = None) -> KernelConfig:
    source = path or DEFAULT_CONFIG_PATH
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"kernel config {source}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"kernel config {source}: top level must be an object")
    return kernel_config_from_dict(raw)
