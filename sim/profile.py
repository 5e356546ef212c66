"""Card profiles: the data a simulated card is personalised with (`sim/profiles/NAME.json`).

A profile is plain data; this module reads it into frozen dataclasses and
checks it, so a typo fails at load time with the profile and field named.
Unknown keys are errors, never ignored.

Schema (hex strings unless said otherwise; a record or FCI value may also be
``"ascii:TEXT"`` or a PKI placeholder such as ``"@issuer_cert"``)::

    {
      "description": "one line for `pos-sim profiles`",
      "base": "other-profile",          # optional: start from that profile, override below
      "atr": "3B...",                   # must be a well-formed ATR (TCK checked)
      "transport": "t1" | "t0",         # t0: 61xx / 6Cxx and GET RESPONSE
      "pse": true,                      # false: SELECT 1PAY.SYS.DDF01 answers 6A82
      "pse_fci": {"5F2D": "656E"},      # extra objects of the PSE FCI's A5 template
      "pse_entries_per_record": 1,      # directory entries (61) per PSE record (SFI 1)
      "applications": [ {
          "aid": "A0000000031010",
          "fci": {"50": "ascii:VISA CREDIT", "87": "01", "9F38": "..."},   # the A5 template, in order
          "aip": "3C00", "afl": "08010100...",
          "gpo_format": 1 | 2, "ac_format": 1 | 2, "internal_authenticate_format": 1 | 2,
          "records": [ {"sfi": 1, "record": 1, "data": {"57": "...", ...}}
                       | {"sfi": 1, "record": 2, "raw": "70..."} ],
          "pin": "1234", "pin_try_limit": 3, "pin_tries_left": 3,
          "atc": 1, "last_online_atc": 0,
          "blocked": false,
          "oda": "none" | "sda" | "dda" | "cda",
          "pki": {"ca_index": "F1", "issuer": "visa", "issuer_id_digits": 6,
                  "issuer_cert_expiry": "1235", "issuer_cert_serial": "000001",
                  "icc_cert_expiry": "1235", "icc_cert_serial": "000001", "dac": "DAC1"},
          "crypto": {...},              # handed as is to the cryptogram engine (TEST keys)
          "risk": {"offline_allowed": true, "arqc_if_tvr_nonzero": true,
                   "aac_tvr_mask": "0000000000", "max_consecutive_offline": 5,
                   "offline_amount_limit": 5000, "new_card_online": false,
                   "issuer_auth_required": true},
          "log": {"sfi": 11, "max_records": 10, "format": "9A03..."},
          "get_data": {"9F79": "000000010000"}
      } ],
      "faults": {"remove_before_second_generate_ac": false, "aac_on_first_generate_ac": false,
                 "aac_on_second_generate_ac": false, "bad_dynamic_signature": false,
                 "bad_cryptogram": false,
                 "tamper_record": {"application": 0, "sfi": 2, "record": 1, "tag": "5F28", "value": "0250"},
                 "status_words": {"A8": "6985"}}
    }

With "base", objects are merged key by key, "applications" entry by entry
(by position); any other list or value is replaced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim import tlv
from sim.errors import PkiError, ProfileError, TlvError

__all__ = [
    "PLACEHOLDERS",
    "PROFILE_DIR",
    "AppProfile",
    "CardProfile",
    "Faults",
    "LogSpec",
    "PkiSpec",
    "Placeholder",
    "RecordSpec",
    "RiskRules",
    "TamperSpec",
    "afl_entries",
    "atr_protocols",
    "list_profiles",
    "load_profile",
    "profile_from_dict",
    "profile_names",
    "read_profile_json",
]

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

PLACEHOLDERS = frozenset(
    {
        "@ca_index",
        "@issuer_cert",
        "@issuer_remainder",
        "@issuer_exponent",
        "@icc_cert",
        "@icc_remainder",
        "@icc_exponent",
        "@ssad",
    }
)
ODA_MODES = ("none", "sda", "dda", "cda")
AIP_SDA, AIP_DDA, AIP_CDA = 0x40, 0x20, 0x01

Placeholder = str
Value = bytes | Placeholder


@dataclass(frozen=True)
class RecordSpec:
    """One record of an application file: TLV items of a '70' template, or raw bytes."""

    sfi: int
    number: int
    items: tuple[tuple[int, Value], ...] = ()
    raw: bytes | None = None

    def value(self, tag: int) -> Value | None:
        for item_tag, value in self.items:
            if item_tag == tag:
                return value
        return None

    def encode(self, values: Mapping[str, bytes]) -> bytes:
        """The record as READ RECORD returns it, placeholders replaced by `values`."""
        if self.raw is not None:
            return self.raw
        parts = []
        for tag, value in self.items:
            if isinstance(value, str):
                if value not in values:
                    raise PkiError(
                        f"SFI {self.sfi} record {self.number}: no value for {value}; run `python -m sim.pki`"
                    )
                value = values[value]
            parts.append(tlv.encode(tag, value))
        return tlv.encode(0x70, b"".join(parts))


@dataclass(frozen=True)
class PkiSpec:
    rid: bytes
    ca_index: int
    issuer: str
    issuer_id_digits: int = 6
    issuer_cert_expiry: bytes = bytes.fromhex("1235")
    issuer_cert_serial: bytes = bytes.fromhex("000001")
    icc_cert_expiry: bytes | None = None  # None: the application expiry date's MMYY
    icc_cert_serial: bytes = bytes.fromhex("000001")
    dac: bytes = bytes.fromhex("DAC1")


@dataclass(frozen=True)
class RiskRules:
    """Card risk management: when the card answers ARQC or AAC instead of the requested TC."""

    offline_allowed: bool = True
    arqc_if_tvr_nonzero: bool = True
    aac_tvr_mask: bytes = bytes(5)
    max_consecutive_offline: int | None = None
    offline_amount_limit: int | None = None
    new_card_online: bool = False
    issuer_auth_required: bool = True


@dataclass(frozen=True)
class LogSpec:
    sfi: int
    max_records: int
    format: bytes


@dataclass(frozen=True)
class TamperSpec:
    """After signing: replace the value of `tag` in one record, so offline data authentication fails."""

    application: int
    sfi: int
    record: int
    tag: int
    value: bytes


@dataclass(frozen=True)
class Faults:
    remove_before_second_generate_ac: bool = False
    aac_on_first_generate_ac: bool = False
    aac_on_second_generate_ac: bool = False
    bad_dynamic_signature: bool = False
    bad_cryptogram: bool = False
    tamper_record: TamperSpec | None = None
    status_words: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class AppProfile:
    aid: bytes
    fci: tuple[tuple[int, Value], ...]
    aip: bytes
    afl: bytes
    records: tuple[RecordSpec, ...]
    gpo_format: int = 1
    ac_format: int = 1
    internal_authenticate_format: int = 1
    pin: str = "1234"
    pin_try_limit: int = 3
    pin_tries_left: int = 3
    atc: int = 1
    last_online_atc: int = 0
    blocked: bool = False
    oda: str = "none"
    pki: PkiSpec | None = None
    crypto: Mapping[str, Any] = field(default_factory=dict)
    risk: RiskRules = RiskRules()
    log: LogSpec | None = None
    get_data: tuple[tuple[int, bytes], ...] = ()

    def record(self, sfi: int, number: int) -> RecordSpec | None:
        for spec in self.records:
            if spec.sfi == sfi and spec.number == number:
                return spec
        return None

    def record_value(self, tag: int) -> Value | None:
        """The value of `tag` in the first record that has it (placeholders unresolved)."""
        for spec in self.records:
            value = spec.value(tag)
            if value is not None:
                return value
        return None

    def fci_value(self, tag: int) -> Value | None:
        for item_tag, value in self.fci:
            if item_tag == tag:
                return value
        return None

    def data(self, tag: int) -> bytes | None:
        """A plain (non-placeholder) value from the records or the FCI."""
        value = self.record_value(tag)
        if value is None:
            value = self.fci_value(tag)
        return value if isinstance(value, bytes) else None

    @property
    def pan(self) -> str:
        value = self.data(0x5A)
        return value.hex().upper().rstrip("F") if value else ""

    @property
    def psn(self) -> int:
        value = self.data(0x5F34)
        return value[0] if value else 0

    @property
    def pdol(self) -> bytes:
        return self.data(0x9F38) or b""

    @property
    def cdol1(self) -> bytes:
        return self.data(0x8C) or b""

    @property
    def cdol2(self) -> bytes:
        return self.data(0x8D) or b""

    @property
    def ddol(self) -> bytes:
        return self.data(0x9F49) or b""

    @property
    def label(self) -> bytes | None:
        return self.data(0x50)


@dataclass(frozen=True)
class CardProfile:
    name: str
    description: str
    atr: bytes
    applications: tuple[AppProfile, ...]
    t0: bool = False
    pse: bool = True
    pse_fci: tuple[tuple[int, bytes], ...] = ()
    pse_entries_per_record: int = 1
    faults: Faults = Faults()


def profile_names(directory: Path = PROFILE_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.json"))


def list_profiles(directory: Path = PROFILE_DIR) -> list[tuple[str, str]]:
    """(name, description) of every profile, sorted by name."""
    return [(name, load_profile(name, directory).description) for name in profile_names(directory)]


def read_profile_json(
    name: str, directory: Path = PROFILE_DIR, _seen: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The profile's JSON with its "base" chain merged in."""
    if name in _seen:
        raise ProfileError(name, "base", "profiles inherit from each other in a loop: " + " -> ".join(_seen))
    if not name or "/" in name or name.startswith("."):
        raise ProfileError(name, "name", "not a profile name")
    path = directory / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(profile_names(directory))
        raise ProfileError(name, "name", f"no such profile (known: {known})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(name, "file", f"cannot read {path.name}: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileError(name, "file", "top level must be an object")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ProfileError(name, "base", "must be a profile name")
    return _merge(read_profile_json(base, directory, (*_seen, name)), raw)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _merge(old, value)
        elif key == "applications" and isinstance(old, list) and isinstance(value, list):
            merged[key] = _merge_by_position(old, value)
        else:
            merged[key] = value
    return merged


def _merge_by_position(base: list[Any], override: list[Any]) -> list[Any]:
    merged = list(base)
    for index, value in enumerate(override):
        if index < len(merged) and isinstance(merged[index], dict) and isinstance(value, dict):
            merged[index] = _merge(merged[index], value)
        elif index < len(merged):
            merged[index] = value
        else:
            merged.append(value)
    return merged


def load_profile(name: str, directory: Path = PROFILE_DIR) -> CardProfile:
    return profile_from_dict(name, read_profile_json(name, directory))


class _Reader:
    """Typed access to one JSON object, naming the field on every error."""

    def __init__(self, profile: str, where: str, raw: object, known: set[str]) -> None:
        if not isinstance(raw, dict):
            raise ProfileError(profile, where, "must be an object")
        unknown = set(raw) - known
        if unknown:
            raise ProfileError(profile, where, f"unknown keys {sorted(unknown)}")
        self.profile = profile
        self.where = where
        self.raw: dict[str, Any] = raw

    def error(self, key: str, message: str) -> ProfileError:
        return ProfileError(self.profile, f"{self.where}.{key}" if self.where else key, message)

    def has(self, key: str) -> bool:
        return key in self.raw

    def get(self, key: str, kind: type, default: Any = None, required: bool = False) -> Any:
        if key not in self.raw:
            if required:
                raise self.error(key, "missing")
            return default
        value = self.raw[key]
        if kind is int and isinstance(value, bool):
            raise self.error(key, "must be an integer")
        if not isinstance(value, kind):
            raise self.error(key, f"must be {kind.__name__}")
        return value

    def hex(
        self, key: str, default: bytes | None = None, required: bool = False, length: int | None = None
    ) -> bytes | None:
        text = self.get(key, str, None, required)
        if text is None:
            return default
        value = _hex(text, lambda message: self.error(key, message))
        if length is not None and len(value) != length:
            raise self.error(key, f"must be {length} bytes, got {len(value)}")
        return value

    def tag_map(self, key: str, placeholders: bool) -> tuple[tuple[int, Value], ...]:
        raw = self.get(key, dict, {})
        return tuple(_tag_item(self, key, tag, value, placeholders) for tag, value in raw.items())


def _hex(text: str, error: Any) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise error(f"{text[:40]!r} is not hex") from None


def _tag_item(
    reader: _Reader, key: str, tag_text: object, value: object, placeholders: bool
) -> tuple[int, Value]:
    where = f"{key}.{tag_text}"
    if not isinstance(tag_text, str):
        raise reader.error(where, "tag must be hex text")
    tag_bytes = _hex(tag_text, lambda message: reader.error(where, message))
    if not 1 <= len(tag_bytes) <= 3:
        raise reader.error(where, "tag must be 1 to 3 bytes")
    tag = int.from_bytes(tag_bytes, "big")
    if not isinstance(value, str):
        raise reader.error(where, "value must be a string")
    if value.startswith("@"):
        if not placeholders or value not in PLACEHOLDERS:
            raise reader.error(where, f"unknown placeholder {value} (known: {sorted(PLACEHOLDERS)})")
        return tag, value
    if value.startswith("ascii:"):
        try:
            return tag, value.removeprefix("ascii:").encode("ascii")
        except UnicodeEncodeError:
            raise reader.error(where, "ascii: value has non-ASCII characters") from None
    return tag, _hex(value, lambda message: reader.error(where, message))


def atr_protocols(atr: bytes) -> set[int]:
    """Protocols an ATR offers (ISO 7816-3); raises ValueError if it is malformed or its TCK is wrong."""
    if len(atr) < 2 or atr[0] not in (0x3B, 0x3F):
        raise ValueError("ATR must start with TS 3B or 3F and have T0")
    historical = atr[1] & 0x0F
    y = atr[1] >> 4
    pos = 2
    protocols: set[int] = set()
    while True:
        pos += bin(y & 0x07).count("1")
        if not y & 0x08:
            break
        if pos >= len(atr):
            raise ValueError("ATR truncated in its interface bytes")
        td = atr[pos]
        protocols.add(td & 0x0F)
        y = td >> 4
        pos += 1
    if not protocols:
        protocols.add(0)
    pos += historical
    needs_tck = protocols != {0}
    if len(atr) != pos + (1 if needs_tck else 0):
        raise ValueError(f"ATR is {len(atr)} bytes; its T0 and TD bytes announce {pos + needs_tck}")
    if needs_tck:
        check = 0
        for byte in atr[1:]:
            check ^= byte
        if check:
            raise ValueError("ATR check byte TCK is wrong")
    return protocols


def afl_entries(afl: bytes) -> list[tuple[int, int, int, int]]:
    """(SFI, first record, last record, records for offline data authentication) per AFL entry."""
    if len(afl) % 4 or not afl:
        raise ValueError(f"AFL of {len(afl)} bytes is not a non-empty multiple of 4")
    entries = []
    for pos in range(0, len(afl), 4):
        sfi, first, last, oda = afl[pos] >> 3, afl[pos + 1], afl[pos + 2], afl[pos + 3]
        if afl[pos] & 0x07 or not 1 <= sfi <= 30 or first == 0 or last < first or oda > last - first + 1:
            raise ValueError(f"AFL entry {afl[pos : pos + 4].hex().upper()} is invalid")
        entries.append((sfi, first, last, oda))
    return entries


_TOP_KEYS = {
    "description",
    "atr",
    "transport",
    "pse",
    "pse_fci",
    "pse_entries_per_record",
    "applications",
    "faults",
}
_APP_KEYS = {
    "aid",
    "fci",
    "aip",
    "afl",
    "records",
    "gpo_format",
    "ac_format",
    "internal_authenticate_format",
    "pin",
    "pin_try_limit",
    "pin_tries_left",
    "atc",
    "last_online_atc",
    "blocked",
    "oda",
    "pki",
    "crypto",
    "risk",
    "log",
    "get_data",
}


def profile_from_dict(name: str, raw: Mapping[str, Any]) -> CardProfile:
    """Check and convert a profile's JSON (already merged with its base)."""
    top = _Reader(name, "", dict(raw), _TOP_KEYS)
    atr = top.hex("atr", required=True)
    assert atr is not None
    try:
        protocols = atr_protocols(atr)
    except ValueError as exc:
        raise top.error("atr", str(exc)) from None
    transport = top.get("transport", str, "t1")
    if transport not in ("t0", "t1"):
        raise top.error("transport", "must be 't0' or 't1'")
    if transport == "t0" and protocols != {0}:
        raise top.error("atr", "a t0 profile's ATR must offer T=0 only")
    if transport == "t1" and 1 not in protocols:
        raise top.error("atr", "a t1 profile's ATR must offer T=1")
    apps_raw = top.get("applications", list, required=True)
    if not apps_raw:
        raise top.error("applications", "at least one application")
    apps = tuple(_application(name, f"applications[{i}]", app) for i, app in enumerate(apps_raw))
    pse_fci = tuple((tag, value) for tag, value in top.tag_map("pse_fci", False) if isinstance(value, bytes))
    per_record = top.get("pse_entries_per_record", int, 1)
    if per_record < 1:
        raise top.error("pse_entries_per_record", "at least 1")
    faults = _faults(name, top.get("faults", dict, {}), apps)
    return CardProfile(
        name=name,
        description=top.get("description", str, required=True),
        atr=atr,
        applications=apps,
        t0=transport == "t0",
        pse=top.get("pse", bool, True),
        pse_fci=pse_fci,
        pse_entries_per_record=per_record,
        faults=faults,
    )


def _application(profile: str, where: str, raw: object) -> AppProfile:
    app = _Reader(profile, where, raw, _APP_KEYS)
    aid = app.hex("aid", required=True)
    aip = app.hex("aip", required=True, length=2)
    afl = app.hex("afl", required=True)
    assert aid is not None and aip is not None and afl is not None
    if not 5 <= len(aid) <= 16:
        raise app.error("aid", "an AID is 5 to 16 bytes")
    try:
        entries = afl_entries(afl)
    except ValueError as exc:
        raise app.error("afl", str(exc)) from None
    records = tuple(_record(app, i, r) for i, r in enumerate(app.get("records", list, required=True)))
    seen: set[tuple[int, int]] = set()
    for spec in records:
        if (spec.sfi, spec.number) in seen:
            raise app.error("records", f"SFI {spec.sfi} record {spec.number} appears twice")
        seen.add((spec.sfi, spec.number))
    for sfi, first, last, _ in entries:
        for number in range(first, last + 1):
            if (sfi, number) not in seen:
                raise app.error("afl", f"names SFI {sfi} record {number}, which the records do not have")
    oda = app.get("oda", str, "none")
    if oda not in ODA_MODES:
        raise app.error("oda", f"must be one of {ODA_MODES}")
    _check_aip(app, aip[0], oda)
    pki = _pki(app, aid) if oda != "none" else None
    if oda == "none" and app.has("pki"):
        raise app.error("pki", "given but oda is 'none'")
    formats = {
        key: app.get(key, int, 1) for key in ("gpo_format", "ac_format", "internal_authenticate_format")
    }
    for key, value in formats.items():
        if value not in (1, 2):
            raise app.error(key, "must be 1 or 2")
    if oda == "cda" and formats["ac_format"] != 2:
        raise app.error("ac_format", "CDA needs GENERATE AC format 2")
    pin = app.get("pin", str, "1234")
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise app.error("pin", "4 to 12 digits")
    limit = app.get("pin_try_limit", int, 3)
    tries = app.get("pin_tries_left", int, limit)
    if not 0 <= tries <= limit <= 15:
        raise app.error("pin_tries_left", "0 <= pin_tries_left <= pin_try_limit <= 15")
    atc = app.get("atc", int, 1)
    last_online = app.get("last_online_atc", int, 0)
    if not 0 <= last_online <= atc < 0xFFFF:
        raise app.error("atc", "0 <= last_online_atc <= atc < 65535")
    result = AppProfile(
        aid=aid,
        fci=app.tag_map("fci", False),
        aip=aip,
        afl=afl,
        records=records,
        gpo_format=formats["gpo_format"],
        ac_format=formats["ac_format"],
        internal_authenticate_format=formats["internal_authenticate_format"],
        pin=pin,
        pin_try_limit=limit,
        pin_tries_left=tries,
        atc=atc,
        last_online_atc=last_online,
        blocked=app.get("blocked", bool, False),
        oda=oda,
        pki=pki,
        crypto=app.get("crypto", dict, {}),
        risk=_risk(app),
        log=_log(app),
        get_data=tuple(
            (tag, value) for tag, value in app.tag_map("get_data", False) if isinstance(value, bytes)
        ),
    )
    for tag, key in ((0x5A, "PAN (5A)"), (0x8C, "CDOL1 (8C)"), (0x8D, "CDOL2 (8D)")):
        if result.data(tag) is None:
            raise app.error("records", f"no {key}")
    for tag, dol in (
        (0x9F38, result.pdol),
        (0x8C, result.cdol1),
        (0x8D, result.cdol2),
        (0x9F49, result.ddol),
    ):
        try:
            tlv.parse_dol(dol)
        except TlvError as exc:
            raise app.error("records", f"DOL {tag:X} is malformed: {exc}") from None
    if oda in ("dda", "cda") and not result.ddol:
        raise app.error("records", "a DDA/CDA card needs a default DDOL (9F49)")
    return result


def _check_aip(app: _Reader, byte1: int, oda: str) -> None:
    wanted = {"none": 0, "sda": AIP_SDA, "dda": AIP_DDA, "cda": AIP_CDA}[oda]
    if oda != "none" and not byte1 & wanted:
        raise app.error("aip", f"does not announce {oda.upper()}")
    if oda in ("sda", "dda") and byte1 & AIP_CDA:
        raise app.error("aip", "announces CDA but oda is " + oda)
    if oda == "sda" and byte1 & AIP_DDA:
        raise app.error("aip", "announces DDA but oda is sda")
    if oda == "none" and byte1 & (AIP_SDA | AIP_DDA | AIP_CDA):
        raise app.error("aip", "announces offline data authentication but oda is 'none'")


def _record(app: _Reader, index: int, raw: object) -> RecordSpec:
    rec = _Reader(app.profile, f"{app.where}.records[{index}]", raw, {"sfi", "record", "data", "raw"})
    sfi = rec.get("sfi", int, required=True)
    number = rec.get("record", int, required=True)
    if not 1 <= sfi <= 30 or not 1 <= number <= 254:
        raise rec.error("sfi", "SFI 1..30 and record 1..254")
    if rec.has("raw") == rec.has("data"):
        raise rec.error("data", "give exactly one of 'data' and 'raw'")
    if rec.has("raw"):
        return RecordSpec(sfi, number, raw=rec.hex("raw"))
    return RecordSpec(sfi, number, items=rec.tag_map("data", True))


def _pki(app: _Reader, aid: bytes) -> PkiSpec:
    pki = _Reader(
        app.profile,
        f"{app.where}.pki",
        app.get("pki", dict, required=True),
        {
            "ca_index",
            "issuer",
            "issuer_id_digits",
            "issuer_cert_expiry",
            "issuer_cert_serial",
            "icc_cert_expiry",
            "icc_cert_serial",
            "dac",
        },
    )
    index = pki.hex("ca_index", required=True, length=1)
    assert index is not None
    issuer = pki.get("issuer", str, required=True)
    if not issuer.replace("-", "").isalnum():
        raise pki.error("issuer", "letters, digits and '-' only (it names a key file)")
    defaults = PkiSpec(aid[:5], index[0], issuer)
    spec = PkiSpec(
        rid=aid[:5],
        ca_index=index[0],
        issuer=issuer,
        issuer_id_digits=pki.get("issuer_id_digits", int, 6),
        issuer_cert_expiry=pki.hex("issuer_cert_expiry", defaults.issuer_cert_expiry, length=2) or b"",
        issuer_cert_serial=pki.hex("issuer_cert_serial", defaults.issuer_cert_serial, length=3) or b"",
        icc_cert_expiry=pki.hex("icc_cert_expiry", None, length=2),
        icc_cert_serial=pki.hex("icc_cert_serial", defaults.icc_cert_serial, length=3) or b"",
        dac=pki.hex("dac", defaults.dac, length=2) or b"",
    )
    if not 3 <= spec.issuer_id_digits <= 8:
        raise pki.error("issuer_id_digits", "3 to 8")
    return spec


def _risk(app: _Reader) -> RiskRules:
    risk = _Reader(
        app.profile,
        f"{app.where}.risk",
        app.get("risk", dict, {}),
        {
            "offline_allowed",
            "arqc_if_tvr_nonzero",
            "aac_tvr_mask",
            "max_consecutive_offline",
            "offline_amount_limit",
            "new_card_online",
            "issuer_auth_required",
        },
    )
    defaults = RiskRules()
    return RiskRules(
        offline_allowed=risk.get("offline_allowed", bool, defaults.offline_allowed),
        arqc_if_tvr_nonzero=risk.get("arqc_if_tvr_nonzero", bool, defaults.arqc_if_tvr_nonzero),
        aac_tvr_mask=risk.hex("aac_tvr_mask", defaults.aac_tvr_mask, length=5) or bytes(5),
        max_consecutive_offline=risk.get("max_consecutive_offline", int, None),
        offline_amount_limit=risk.get("offline_amount_limit", int, None),
        new_card_online=risk.get("new_card_online", bool, defaults.new_card_online),
        issuer_auth_required=risk.get("issuer_auth_required", bool, defaults.issuer_auth_required),
    )


def _log(app: _Reader) -> LogSpec | None:
    if not app.has("log"):
        return None
    log = _Reader(app.profile, f"{app.where}.log", app.get("log", dict), {"sfi", "max_records", "format"})
    sfi = log.get("sfi", int, 11)
    if not 11 <= sfi <= 30:
        raise log.error("sfi", "a transaction log lives in SFI 11..30")
    fmt = log.hex("format", required=True) or b""
    try:
        tlv.parse_dol(fmt)
    except TlvError as exc:
        raise log.error("format", str(exc)) from None
    return LogSpec(sfi=sfi, max_records=log.get("max_records", int, 10), format=fmt)


_FAULT_KEYS = {
    "remove_before_second_generate_ac",
    "aac_on_first_generate_ac",
    "aac_on_second_generate_ac",
    "bad_dynamic_signature",
    "bad_cryptogram",
    "tamper_record",
    "status_words",
}


def _faults(profile: str, raw: object, apps: tuple[AppProfile, ...]) -> Faults:
    faults = _Reader(profile, "faults", raw, _FAULT_KEYS)
    tamper = None
    if faults.has("tamper_record"):
        spec = _Reader(
            profile,
            "faults.tamper_record",
            faults.get("tamper_record", dict),
            {"application", "sfi", "record", "tag", "value"},
        )
        index = spec.get("application", int, 0)
        if not 0 <= index < len(apps):
            raise spec.error("application", "no such application")
        sfi, number = spec.get("sfi", int, required=True), spec.get("record", int, required=True)
        record = apps[index].record(sfi, number)
        tag_bytes = spec.hex("tag", required=True) or b""
        tag = int.from_bytes(tag_bytes, "big")
        if record is None or record.value(tag) is None:
            raise spec.error("tag", f"SFI {sfi} record {number} has no tag {tag:X} to tamper with")
        tamper = TamperSpec(index, sfi, number, tag, spec.hex("value", required=True) or b"")
    status_words = []
    for ins_text, sw_text in faults.get("status_words", dict, {}).items():
        ins = _hex(ins_text, lambda message: faults.error("status_words", message))
        sw = _hex(str(sw_text), lambda message: faults.error("status_words", message))
        if len(ins) != 1 or len(sw) != 2:
            raise faults.error("status_words", "maps one INS byte to a two-byte status word")
        status_words.append((ins[0], int.from_bytes(sw, "big")))
    return Faults(
        remove_before_second_generate_ac=faults.get("remove_before_second_generate_ac", bool, False),
        aac_on_first_generate_ac=faults.get("aac_on_first_generate_ac", bool, False),
        aac_on_second_generate_ac=faults.get("aac_on_second_generate_ac", bool, False),
        bad_dynamic_signature=faults.get("bad_dynamic_signature", bool, False),
        bad_cryptogram=faults.get("bad_cryptogram", bool, False),
        tamper_record=tamper,
        status_words=tuple(status_words),
    )
