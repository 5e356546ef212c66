"""Offline data authentication on the terminal side: SDA, DDA and CDA (EMV Book 2, Book 3 10.3).

Pure functions over bytes and small result objects; the only I/O is the
INTERNAL AUTHENTICATE callable the kernel passes in. Nothing here raises for
bad card data: every failed check is an `OdaResult` / `CdaResult` whose
`failure` names the stage and check, and whose TVR bits are set on the
`Tvr` passed in (and the TSI bit 'offline data authentication was
performed' on the `Tsi`, when one is passed).

How the kernel uses it:

    method = select_method(aip, terminal_capabilities)      # Book 3 10.3
    if method is OdaMethod.NONE:
        record_not_performed(tvr)
    static = build_static_data(afl, records, aip, card_data.get(0x9F4A))
    SDA:  perform_sda(capks, card_data, static, tvr, today, tsi=tsi)
    DDA:  perform_dda(capks, card_data, static, internal_authenticate,
                      {0x9F37: un, ...terminal data}, tvr, today,
                      default_ddol=config.default_ddol, tsi=tsi)
    CDA:  prep = prepare_cda(capks, card_data, static, tvr, today, tsi=tsi)
          ... GENERATE AC asking for CDA, only if prep.ok ...
          verify_cda(prep.icc_key, gen_ac_response, pdol_data, cdol_data,
                     unpredictable_number, tvr=tvr)

For an enciphered offline PIN, `recover_pin_key(capks, card_data, static,
today, known=oda_result)` gives the key to encipher it with (Book 2 7.1),
reusing what ODA recovered and setting no TVR or TSI bit.

`card_data` maps tags to values read from the card: 5A (PAN), 8F, 90, 92,
9F32, 93 (SDA), 9F46, 9F47, 9F48, 9F49 (DDA/CDA), and the application's AID
(4F or 84) whose first five bytes are the RID, unless `rid` is given.

TVR bits (Book 3 Annex C5) set on failure:

| outcome | bits |
|---|---|
| SDA performed (pass or fail) | 'SDA selected' |
| SDA failed | 'SDA failed' |
| DDA failed | 'DDA failed' |
| CDA failed (key recovery or GENERATE AC check) | 'CDA failed' |
| a data object the method needs is missing | 'ICC data missing' and the method's failed bit |
| CA public key not held (or withdrawn) | the method's failed bit |
| neither side supports a common method | 'offline data authentication was not performed' |
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from firmware.emv import tlv
from firmware.emv.capk import CapkStore
from firmware.emv.certificates import (
    Check,
    OdaFailure,
    RecoveredKey,
    Stage,
    recover_icc_key,
    recover_issuer_key,
    verify_cda_signature,
    verify_dda_signature,
    verify_signed_static_data,
)
from firmware.emv.tags import format_of
from firmware.emv.tvr import Tsi, TsiBit, Tvr, TvrBit
from firmware.errors import CardDataError, ConfigError, StatusWordError, TlvError

__all__ = [
    "CdaResult",
    "Check",
    "OdaFailure",
    "OdaMethod",
    "OdaResult",
    "RecoveredKey",
    "Stage",
    "StaticData",
    "build_static_data",
    "perform_dda",
    "perform_sda",
    "prepare_cda",
    "record_not_performed",
    "recover_pin_key",
    "select_method",
    "verify_cda",
]

# AIP (82) byte 1, Book 3 Annex C1
AIP_SDA = 0x40
AIP_DDA = 0x20
AIP_CDA = 0x01
# Terminal Capabilities (9F33) byte 3 'security capability', Book 4 Annex A2
CAPABILITY_SDA = 0x80
CAPABILITY_DDA = 0x40
CAPABILITY_CDA = 0x08

TAG_UNPREDICTABLE_NUMBER = 0x9F37
TAG_SIGNED_DYNAMIC_DATA = 0x9F4B
TAG_CID = 0x9F27
_AID_TAGS = (0x4F, 0x84, 0x9F06)
_NO_BITS = TvrBit(0)
_ICC_KEY_TAGS = (0x9F46, 0x9F47)
_PIN_KEY_TAGS = (0x9F2D, 0x9F2E)


class OdaMethod(enum.Enum):
    NONE = "none"
    SDA = "SDA"
    DDA = "DDA"
    CDA = "CDA"


_FAILED_BIT = {
    OdaMethod.SDA: TvrBit.SDA_FAILED,
    OdaMethod.DDA: TvrBit.DDA_FAILED,
    OdaMethod.CDA: TvrBit.CDA_FAILED,
}


@dataclass(frozen=True)
class StaticData:
    """The static data to be authenticated, or why it could not be built (then ODA fails)."""

    data: bytes
    failure: OdaFailure | None = None


@dataclass(frozen=True)
class OdaResult:
    """Outcome of SDA, DDA, or the key-recovery half of CDA.

    `tvr_bits` are the bits this step set. `data_objects` holds what the
    step produced for the transaction: 9F45 (Data Authentication Code) after
    SDA, 9F4C (ICC Dynamic Number) after DDA.
    """

    method: OdaMethod
    failure: OdaFailure | None
    tvr_bits: TvrBit
    issuer_key: RecoveredKey | None = None
    icc_key: RecoveredKey | None = None
    data_objects: Mapping[int, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class CdaResult:
    """Outcome of checking a GENERATE AC response under CDA (Book 2 6.6.2). True when it passed.

    On success the cryptogram to use is `application_cryptogram` (recovered
    from the signature, since a CDA response carries no 9F26), and
    `data_objects` holds 9F26, 9F27 and 9F4C for the transaction.
    """

    failure: OdaFailure | None
    tvr_bits: TvrBit
    icc_dynamic_number: bytes = b""
    cryptogram_information_data: int | None = None
    application_cryptogram: bytes = b""
    data_objects: Mapping[int, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def __bool__(self) -> bool:
        return self.ok


# --- method selection ------------------------------------------------------


def select_method(aip: bytes, terminal_capabilities: bytes) -> OdaMethod:
    """Book 3 10.3: CDA if both card (AIP) and terminal (9F33) support it, else DDA, else SDA, else none."""
    if len(aip) != 2:
        raise CardDataError(f"AIP must be 2 bytes, got {len(aip)}", 0x82)
    if len(terminal_capabilities) != 3:
        raise ConfigError(f"terminal capabilities (9F33) must be 3 bytes, got {len(terminal_capabilities)}")
    card, terminal = aip[0], terminal_capabilities[2]
    if card & AIP_CDA and terminal & CAPABILITY_CDA:
        return OdaMethod.CDA
    if card & AIP_DDA and terminal & CAPABILITY_DDA:
        return OdaMethod.DDA
    if card & AIP_SDA and terminal & CAPABILITY_SDA:
        return OdaMethod.SDA
    return OdaMethod.NONE


def record_not_performed(tvr: Tvr) -> None:
    """No common method: set 'offline data authentication was not performed' (TSI stays unset)."""
    tvr.set(TvrBit.OFFLINE_DATA_AUTH_NOT_PERFORMED)


# --- static data to be authenticated ---------------------------------------


def _afl_entries(afl: bytes) -> list[tuple[int, int, int, int]]:
    if not afl or len(afl) % 4:
        raise CardDataError(f"AFL of {len(afl)} bytes is not a non-empty multiple of 4", 0x94)
    entries = []
    for position in range(0, len(afl), 4):
        sfi = afl[position] >> 3
        first, last, oda_count = afl[position + 1], afl[position + 2], afl[position + 3]
        if not 1 <= sfi <= 30 or first == 0 or last < first or oda_count > last - first + 1:
            raise CardDataError(f"AFL entry at offset {position} is malformed", 0x94)
        entries.append((sfi, first, last, oda_count))
    return entries


def build_static_data(
    afl: bytes,
    records: Mapping[tuple[int, int], bytes],
    aip: bytes,
    sda_tag_list: bytes | None,
) -> StaticData:
    """Book 3 10.3: the records the AFL flags for ODA, then the AIP if 9F4A asks for it.

    `records` maps (SFI, record number) to the record as READ RECORD
    returned it (SW stripped). For SFI 1-10 the value of the '70' template
    is used; for SFI 11-30 the whole record, tag and length included. A
    record flagged for ODA that is not coded as one '70' template, whatever
    its SFI, makes ODA performed and failed (Book 3 10.3, as amended by
    Specification Bulletin 12). 9F4A may list only '82'.

    A malformed AFL, or a flagged record missing from `records`, raises
    CardDataError: the kernel reads these records before ODA and would have
    stopped already.
    """
    out = bytearray()
    for sfi, first, _last, oda_count in _afl_entries(afl):
        for number in range(first, first + oda_count):
            record = records.get((sfi, number))
            if record is None:
                raise CardDataError(f"record {number} of SFI {sfi} is flagged for ODA but was not read", 0x94)
            try:
                template = tlv.parse_one(record, expected_tag=0x70)
            except TlvError as error:
                return StaticData(
                    bytes(out),
                    OdaFailure(
                        Stage.STATIC_DATA, Check.RECORD_TEMPLATE, f"SFI {sfi} record {number}: {error}"
                    ),
                )
            out += record if sfi > 10 else template.value
    if sda_tag_list is not None and sda_tag_list not in (b"", b"\x82"):
        return StaticData(
            bytes(out), OdaFailure(Stage.STATIC_DATA, Check.TAG_LIST, f"9F4A = {sda_tag_list.hex().upper()}")
        )
    if sda_tag_list == b"\x82":
        out += aip
    return StaticData(bytes(out))


# --- shared steps ----------------------------------------------------------


def _as_static(static_data: StaticData | bytes) -> StaticData:
    return static_data if isinstance(static_data, StaticData) else StaticData(bytes(static_data))


def _missing(card_data: Mapping[int, bytes], tags: tuple[int, ...]) -> OdaFailure | None:
    absent = [f"{tag:X}" for tag in tags if not card_data.get(tag)]
    if absent:
        return OdaFailure(Stage.CARD_DATA, Check.MISSING, "missing " + ", ".join(absent))
    return None


def _rid(card_data: Mapping[int, bytes], rid: bytes | None) -> bytes | None:
    if rid is not None:
        return bytes(rid)
    for tag in _AID_TAGS:
        aid = card_data.get(tag)
        if aid is not None and len(aid) >= 5:
            return bytes(aid[:5])
    return None


def _issuer_key(
    capk_store: CapkStore,
    card_data: Mapping[int, bytes],
    static: StaticData,
    today: date,
    rid: bytes | None,
    needed: tuple[int, ...],
) -> RecoveredKey | OdaFailure:
    """Book 2 5.1-5.3: the data objects present, the CA key held, the issuer key recovered."""
    missing = _missing(card_data, (0x5A, 0x8F, 0x90, 0x9F32, *needed))
    if missing:
        return missing
    application_rid = _rid(card_data, rid)
    if application_rid is None:
        return OdaFailure(Stage.CARD_DATA, Check.MISSING, "no AID (4F/84) to take the RID from")
    index_field = card_data[0x8F]
    if len(index_field) != 1:
        return OdaFailure(Stage.CA_KEY, Check.MALFORMED, f"8F of {len(index_field)} bytes")
    index = index_field[0]
    ca_key = capk_store.get(application_rid, index, today)
    if ca_key is None:
        return OdaFailure(
            Stage.CA_KEY, Check.NOT_HELD, f"RID {application_rid.hex().upper()} index {index:02X}"
        )
    if static.failure is not None:
        return static.failure
    return recover_issuer_key(
        ca_key,
        card_data[0x90],
        card_data.get(0x92),
        card_data[0x9F32],
        card_data[0x5A],
        today,
        lambda serial: capk_store.is_revoked(application_rid, index, serial),
    )


def _icc_key(
    issuer_key: RecoveredKey, card_data: Mapping[int, bytes], static: StaticData, today: date
) -> RecoveredKey | OdaFailure:
    """Book 2 6.4: the ICC key (9F46, 9F47 already known present)."""
    return recover_icc_key(
        issuer_key,
        card_data[0x9F46],
        card_data.get(0x9F48),
        card_data[0x9F47],
        card_data[0x5A],
        static.data,
        today,
    )


def _failure_bits(method: OdaMethod, failure: OdaFailure | None) -> TvrBit:
    if failure is None:
        return TvrBit(0)
    bits = _FAILED_BIT[method]
    if failure.stage is Stage.CARD_DATA and failure.check is Check.MISSING:
        bits |= TvrBit.ICC_DATA_MISSING
    return bits


def _finish(
    method: OdaMethod,
    failure: OdaFailure | None,
    tvr: Tvr,
    tsi: Tsi | None,
    extra_bits: TvrBit = _NO_BITS,
    issuer_key: RecoveredKey | None = None,
    icc_key: RecoveredKey | None = None,
    data_objects: Mapping[int, bytes] | None = None,
) -> OdaResult:
    bits = extra_bits | _failure_bits(method, failure)
    tvr.set(bits)
    if tsi is not None:
        tsi.set(TsiBit.OFFLINE_DATA_AUTH_PERFORMED)
    return OdaResult(method, failure, bits, issuer_key, icc_key, dict(data_objects or {}))


def _recover_keys(
    method: OdaMethod,
    capk_store: CapkStore,
    card_data: Mapping[int, bytes],
    static_data: StaticData | bytes,
    tvr: Tvr,
    today: date,
    tsi: Tsi | None,
    rid: bytes | None,
) -> tuple[RecoveredKey, RecoveredKey] | OdaResult:
    """Book 2 6.1-6.4, common to DDA and CDA: the issuer key, then the ICC key.

    The finished (failed) result when either cannot be recovered.
    """
    static = _as_static(static_data)
    issuer_key = _issuer_key(capk_store, card_data, static, today, rid, needed=_ICC_KEY_TAGS)
    if isinstance(issuer_key, OdaFailure):
        return _finish(method, issuer_key, tvr, tsi)
    icc_key = _icc_key(issuer_key, card_data, static, today)
    if isinstance(icc_key, OdaFailure):
        return _finish(method, icc_key, tvr, tsi, issuer_key=issuer_key)
    return issuer_key, icc_key


# --- the key for an enciphered PIN -------------------------------------------


def recover_pin_key(
    capk_store: CapkStore,
    card_data: Mapping[int, bytes],
    static_data: StaticData | bytes,
    today: date,
    *,
    rid: bytes | None = None,
    known: OdaResult | None = None,
) -> RecoveredKey | None:
    """Book 2 7.1: the ICC PIN Encipherment Public Key (9F2D, 9F2E, 9F2F), else the ICC public key.

    Keys that offline data authentication already recovered (`known`) are
    reused; the others are recovered here: the issuer key (8F, 90, 92, 9F32),
    then the PIN key, whose certificate covers no static data, or the ICC
    key (9F46...), whose certificate covers `static_data`. None when no key
    can be recovered. Pure: this is not offline data authentication, so no
    TVR or TSI bit is set whatever fails.
    """
    issuer_key = known.issuer_key if known is not None else None
    if issuer_key is None:
        recovered = _issuer_key(capk_store, card_data, StaticData(b""), today, rid, needed=())
        if isinstance(recovered, OdaFailure):
            return None
        issuer_key = recovered
    if all(tag in card_data for tag in _PIN_KEY_TAGS):
        pin_key = recover_icc_key(
            issuer_key,
            card_data[0x9F2D],
            card_data.get(0x9F2F),
            card_data[0x9F2E],
            card_data.get(0x5A, b""),
            b"",
            today,
        )
        return None if isinstance(pin_key, OdaFailure) else pin_key
    if known is not None and known.icc_key is not None:
        return known.icc_key
    static = _as_static(static_data)
    if static.failure is not None or _missing(card_data, _ICC_KEY_TAGS) is not None:
        return None
    icc_key = _icc_key(issuer_key, card_data, static, today)
    return None if isinstance(icc_key, OdaFailure) else icc_key


# --- SDA --------------------------------------------------------------------


def perform_sda(
    capk_store: CapkStore,
    card_data: Mapping[int, bytes],
    static_data: StaticData | bytes,
    tvr: Tvr,
    today: date,
    *,
    tsi: Tsi | None = None,
    rid: bytes | None = None,
) -> OdaResult:
    """Book 2 section 5: recover the issuer key, check Signed Static Application Data (93).

    Sets 'SDA selected', and 'SDA failed' (plus 'ICC data missing' when a
    needed object is absent) on failure. On success `data_objects` holds
    9F45, the Data Authentication Code.
    """
    method = OdaMethod.SDA
    static = _as_static(static_data)
    issuer_key = _issuer_key(capk_store, card_data, static, today, rid, needed=(0x93,))
    if isinstance(issuer_key, OdaFailure):
        return _finish(method, issuer_key, tvr, tsi, TvrBit.SDA_SELECTED)
    dac = verify_signed_static_data(issuer_key, card_data[0x93], static.data)
    if isinstance(dac, OdaFailure):
        return _finish(method, dac, tvr, tsi, TvrBit.SDA_SELECTED, issuer_key)
    return _finish(method, None, tvr, tsi, TvrBit.SDA_SELECTED, issuer_key, data_objects={0x9F45: dac})


# --- DDA --------------------------------------------------------------------


def _signed_dynamic_data(response: bytes) -> bytes | OdaFailure:
    """Signed Dynamic Application Data from an INTERNAL AUTHENTICATE response (format 1 or 2)."""
    stage = Stage.INTERNAL_AUTHENTICATE
    try:
        template = tlv.parse_one(response)
        if template.tag == 0x80:
            return template.value
        if template.tag == 0x77:
            for child in template.children():
                if child.tag == TAG_SIGNED_DYNAMIC_DATA:
                    return child.value
            return OdaFailure(stage, Check.MISSING, "no 9F4B in the '77' template")
    except TlvError as error:
        return OdaFailure(stage, Check.MALFORMED, str(error))
    return OdaFailure(stage, Check.MALFORMED, f"template {template.tag:X} is neither 80 nor 77")


def _ddol_data(
    card_data: Mapping[int, bytes],
    ddol_source: Mapping[int, bytes],
    default_ddol: bytes | None,
) -> bytes | OdaFailure:
    ddol = card_data.get(0x9F49) or default_ddol
    if not ddol:
        return OdaFailure(Stage.DDOL, Check.NO_DDOL)
    try:
        entries = tlv.parse_dol(ddol)
    except TlvError as error:
        return OdaFailure(Stage.DDOL, Check.MALFORMED, str(error))
    if TAG_UNPREDICTABLE_NUMBER not in (tag for tag, _ in entries):
        return OdaFailure(Stage.DDOL, Check.NO_UNPREDICTABLE_NUMBER, ddol.hex().upper())
    if TAG_UNPREDICTABLE_NUMBER not in ddol_source:
        raise ConfigError("DDA needs the unpredictable number (9F37) in ddol_source")
    return tlv.build_dol(entries, {**card_data, **ddol_source}, format_of)


def perform_dda(
    capk_store: CapkStore,
    card_data: Mapping[int, bytes],
    static_data: StaticData | bytes,
    internal_authenticate: Callable[[bytes], bytes],
    ddol_source: Mapping[int, bytes],
    tvr: Tvr,
    today: date,
    *,
    default_ddol: bytes | None = None,
    tsi: Tsi | None = None,
    rid: bytes | None = None,
) -> OdaResult:
    """Book 2 section 6 (6.5 for the dynamic signature): DDA with one INTERNAL AUTHENTICATE.

    Keys are recovered first; the command is sent only when both certificates
    pass. The DDOL is the card's (9F49) or else `default_ddol`; it must ask
    for 9F37, whose value comes from `ddol_source` (terminal data: the
    unpredictable number, amounts...; card data fills the rest).

    `internal_authenticate(ddol_data)` sends INTERNAL AUTHENTICATE and
    returns the response data field (SW stripped, 9000 checked). A
    StatusWordError from it is a DDA failure; reader errors pass through.
    On success `data_objects` holds 9F4C, the ICC Dynamic Number.
    """
    method = OdaMethod.DDA
    keys = _recover_keys(method, capk_store, card_data, static_data, tvr, today, tsi, rid)
    if isinstance(keys, OdaResult):
        return keys
    issuer_key, icc_key = keys
    ddol_data = _ddol_data(card_data, ddol_source, default_ddol)
    if isinstance(ddol_data, OdaFailure):
        return _finish(method, ddol_data, tvr, tsi, issuer_key=issuer_key, icc_key=icc_key)
    try:
        response = internal_authenticate(ddol_data)
    except StatusWordError as error:
        failure = OdaFailure(Stage.INTERNAL_AUTHENTICATE, Check.STATUS_WORD, f"SW {error.sw:04X}")
        return _finish(method, failure, tvr, tsi, issuer_key=issuer_key, icc_key=icc_key)
    signed = _signed_dynamic_data(response)
    if isinstance(signed, OdaFailure):
        return _finish(method, signed, tvr, tsi, issuer_key=issuer_key, icc_key=icc_key)
    idn = verify_dda_signature(icc_key, signed, ddol_data)
    if isinstance(idn, OdaFailure):
        return _finish(method, idn, tvr, tsi, issuer_key=issuer_key, icc_key=icc_key)
    return _finish(method, None, tvr, tsi, issuer_key=issuer_key, icc_key=icc_key, data_objects={0x9F4C: idn})


# --- CDA --------------------------------------------------------------------


def prepare_cda(
    capk_store: CapkStore,
    card_data: Mapping[int, bytes],
    static_data: StaticData | bytes,
    tvr: Tvr,
    today: date,
    *,
    tsi: Tsi | None = None,
    rid: bytes | None = None,
) -> OdaResult:
    """Book 2 6.6: before GENERATE AC, recover the issuer and ICC keys (`result.icc_key`).

    On failure sets 'CDA failed' (and 'ICC data missing' when a needed
    object is absent); the kernel then does not ask the card for a CDA
    signature (Book 3 10.8).
    """
    method = OdaMethod.CDA
    keys = _recover_keys(method, capk_store, card_data, static_data, tvr, today, tsi, rid)
    if isinstance(keys, OdaResult):
        return keys
    issuer_key, icc_key = keys
    return _finish(method, None, tvr, tsi, issuer_key=issuer_key, icc_key=icc_key)


def _raw_objects(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(tag, value, the object's bytes exactly as received) for each object of one level."""
    objects = []
    for obj in tlv.iter_tlv(data):
        tag_length = len(tlv.encode_tag(obj.tag))
        first_length_byte = data[obj.offset + tag_length]
        length_length = 1 if first_length_byte < 0x80 else 1 + (first_length_byte & 0x7F)
        end = obj.offset + tag_length + length_length + len(obj.value)
        objects.append((obj.tag, obj.value, data[obj.offset : end]))
    return objects


def _cda_failure(failure: OdaFailure, tvr: Tvr | None) -> CdaResult:
    if tvr is not None:
        tvr.set(TvrBit.CDA_FAILED)
    return CdaResult(failure, TvrBit.CDA_FAILED)


def verify_cda(
    icc_key: RecoveredKey,
    gen_ac_response: bytes,
    pdol_data: bytes,
    cdol_data: bytes,
    unpredictable_number: bytes,
    *,
    tvr: Tvr | None = None,
) -> CdaResult:
    """Book 2 6.6.2: check the signed dynamic data in a GENERATE AC response.

    `gen_ac_response` is the response data field (SW stripped): a '77'
    template holding 9F27, 9F36, 9F4B and possibly 9F10 and others. A format
    1 ('80') response carries no signature and fails. `pdol_data` is the
    PDOL data sent in GET PROCESSING OPTIONS (the value of '83', b"" if no
    PDOL); `cdol_data` the CDOL1 data of the first GENERATE AC, or CDOL1
    data followed by CDOL2 data for the second. `unpredictable_number` is
    the 9F37 sent in that GENERATE AC.

    The transaction data hash code is SHA-1 over pdol_data || cdol_data ||
    every object of the template except 9F4B, as received, in order.
    Sets 'CDA failed' on `tvr` (when given) if any check fails.
    """
    stage = Stage.GENERATE_AC
    try:
        template = tlv.parse_one(gen_ac_response)
        if template.tag != 0x77:
            return _cda_failure(OdaFailure(stage, Check.FORMAT, f"template {template.tag:X}, not 77"), tvr)
        objects = _raw_objects(template.value)
    except TlvError as error:
        return _cda_failure(OdaFailure(stage, Check.MALFORMED, str(error)), tvr)
    values = {tag: value for tag, value, _ in objects}
    signed = values.get(TAG_SIGNED_DYNAMIC_DATA)
    cid = values.get(TAG_CID)
    if signed is None or cid is None or len(cid) != 1:
        return _cda_failure(OdaFailure(stage, Check.MISSING, "9F4B and a 1-byte 9F27 are needed"), tvr)
    dynamic = verify_cda_signature(icc_key, signed, unpredictable_number, cid[0])
    if isinstance(dynamic, OdaFailure):
        return _cda_failure(dynamic, tvr)
    transaction_data = (
        pdol_data + cdol_data + b"".join(raw for tag, _, raw in objects if tag != TAG_SIGNED_DYNAMIC_DATA)
    )
    if hashlib.sha1(transaction_data, usedforsecurity=False).digest() != dynamic.transaction_data_hash_code:
        return _cda_failure(OdaFailure(stage, Check.TRANSACTION_DATA_HASH), tvr)
    return CdaResult(
        None,
        TvrBit(0),
        icc_dynamic_number=dynamic.icc_dynamic_number,
        cryptogram_information_data=dynamic.cryptogram_information_data,
        application_cryptogram=dynamic.application_cryptogram,
        data_objects={
            0x9F26: dynamic.application_cryptogram,
            0x9F27: bytes([dynamic.cryptogram_information_data]),
            0x9F4C: dynamic.icc_dynamic_number,
        },
    )
