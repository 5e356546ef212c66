"""A simulated EMV contact card: an {INS: handler} table over personalised data.

Handlers take a parsed command and return (response data, status word), or
raise `SwError`; `Card.transmit` turns both into the response APDU in one
place, T=1 style or T=0 style (61xx / 6Cxx, GET RESPONSE) as the profile says.

What the card keeps across power cycles (its non-volatile memory): per
application the ATC, the last online ATC, the PIN try counter, the blocked
flag, records and the transaction log. What a power cycle or a new SELECT
forgets: the transaction in progress.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from sim import odasign, responses, risk, tlv
from sim.apdu import INS_GET_RESPONSE, SW_OK, Command, TransmissionProtocol, parse_command
from sim.cardcrypto import CardCrypto, CardCryptoStatus, ScriptCommand
from sim.emvcrypto import SimCryptoError
from sim.errors import CardPulled, PkiError, ProfileError, SwError, TlvError
from sim.pki import PKI_DIR, load_card_pki
from sim.profile import PROFILE_DIR, AppProfile, CardProfile, load_profile
from sim.randomness import Rng

__all__ = [
    "PSE_NAME",
    "AppState",
    "Card",
    "Session",
    "load_profile_card",
]

PSE_NAME = b"1PAY.SYS.DDF01"
PSE_SFI = 1

Handler = Callable[[Command], tuple[bytes, int]]

SW_WARNING_INVALIDATED = 0x6283
SW_VERIFY_FAILED = 0x63C0
SW_ISSUER_AUTH_FAILED = 0x6300
SW_WRONG_LENGTH = 0x6700
SW_SM_WRONG = 0x6988
SW_AUTH_BLOCKED = 0x6983
SW_CONDITIONS = 0x6985
SW_WRONG_DATA = 0x6A80
SW_FUNCTION_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_WRONG_P1P2 = 0x6A86
SW_DATA_NOT_FOUND = 0x6A88
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

CLA_ISO, CLA_EMV, CLA_SM, CLA_SM_ISO = 0x00, 0x80, 0x84, 0x04
KNOWN_CLASSES = frozenset({CLA_ISO, CLA_EMV, CLA_SM, CLA_SM_ISO})

ICC_DYNAMIC_NUMBER_LENGTH = 8
CDA_REQUESTED = 0x10
INS_APPLICATION_BLOCK, INS_APPLICATION_UNBLOCK, INS_CARD_BLOCK = 0x1E, 0x18, 0x16
INS_PIN_CHANGE, INS_PUT_DATA, INS_UPDATE_RECORD = 0x24, 0xDA, 0xDC
SCRIPT_INSTRUCTIONS = (
    INS_APPLICATION_BLOCK,
    INS_APPLICATION_UNBLOCK,
    INS_CARD_BLOCK,
    INS_PIN_CHANGE,
    INS_PUT_DATA,
    INS_UPDATE_RECORD,
)
CARD_OWNED_DATA = frozenset({0x9F36, 0x9F13, 0x9F17, 0x9F4F})


@dataclass
class AppState:
    """One application as personalised, and what it remembers between transactions."""

    profile: AppProfile
    records: dict[tuple[int, int], bytes]
    fci: bytes
    icc_key: rsa.RSAPrivateKey | None
    atc: int
    last_online_atc: int
    pin_tries_left: int
    blocked: bool
    pin: str
    crypto: CardCrypto
    data_objects: dict[int, bytes] = field(default_factory=dict)
    log: list[bytes] = field(default_factory=list)

    @property
    def aid(self) -> bytes:
        return self.profile.aid


@dataclass
class Session:
    """The transaction in progress; forgotten on reset and on every SELECT."""

    app: AppState | None = None
    pse_selected: bool = False
    selected_index: int | None = None  # position in the card's DF list, for 'next occurrence'
    gpo_done: bool = False
    pdol_data: bytes = b""
    challenge: bytes | None = None
    first_cid: int | None = None
    cdol1_data: bytes = b""
    second_ac_done: bool = False
    external_auth_done: bool = False


class Card:
    """A card personalised from a `CardProfile`; `rng` draws challenges and ICC dynamic numbers."""

    def __init__(
        self,
        profile: CardProfile,
        *,
        rng: Rng = os.urandom,
        pki_dir: Path = PKI_DIR,
    ) -> None:
        self.profile = profile
        self._rng = rng
        self.apps = [self._personalise(app, index, pki_dir) for index, app in enumerate(profile.applications)]
        self.card_blocked = False
        self.powered = False
        self.session = Session()
        self._protocol = TransmissionProtocol(t0=profile.t0)
        self._forced_sw = dict(profile.faults.status_words)
        self._handlers: dict[int, tuple[frozenset[int], Handler]] = {
            0xA4: (frozenset({CLA_ISO}), self._select),
            0xB2: (frozenset({CLA_ISO}), self._read_record),
            0xA8: (frozenset({CLA_EMV}), self._get_processing_options),
            0xCA: (frozenset({CLA_EMV}), self._get_data),
            0x84: (frozenset({CLA_ISO}), self._get_challenge),
            0x20: (frozenset({CLA_ISO}), self._verify),
            0x88: (frozenset({CLA_ISO}), self._internal_authenticate),
            0xAE: (frozenset({CLA_EMV}), self._generate_ac),
            0x82: (frozenset({CLA_ISO}), self._external_authenticate),
        }
        for ins in SCRIPT_INSTRUCTIONS:
            self._handlers[ins] = (frozenset({CLA_SM, CLA_SM_ISO}), self._script_command)

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def atr(self) -> bytes:
        return self.profile.atr

    # --- power -------------------------------------------------------------------------

    def power_on(self) -> bytes:
        """Cold or warm reset: the transaction in progress is forgotten; returns the ATR."""
        self.powered = True
        self.session = Session()
        self._protocol.reset()
        return self.profile.atr

    def power_off(self) -> None:
        self.powered = False
        self.session = Session()
        self._protocol.reset()

    # --- the one place where commands become responses ----------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU. Raises `CardPulled` when a fault switch removes the card."""
        if not self.powered:
            self.power_on()
        try:
            command = parse_command(apdu)
            if self.profile.t0 and command.ins == INS_GET_RESPONSE and command.cla == CLA_ISO:
                return self._protocol.get_response(command)
            data, sw = self._dispatch(command)
        except SwError as error:
            self._protocol.reset()
            return error.sw.to_bytes(2, "big")
        return self._protocol.deliver(command, data, sw)

    def _dispatch(self, command: Command) -> tuple[bytes, int]:
        if command.cla not in KNOWN_CLASSES:
            raise SwError(SW_CLA_NOT_SUPPORTED, f"class {command.cla:02X}")
        forced = self._forced_sw.get(command.ins)
        if forced is not None:
            raise SwError(forced, "fault switch")
        entry = self._handlers.get(command.ins)
        if entry is None:
            raise SwError(SW_INS_NOT_SUPPORTED, f"instruction {command.ins:02X}")
        classes, handler = entry
        if command.cla not in classes:
            raise SwError(SW_CLA_NOT_SUPPORTED, f"class {command.cla:02X} for instruction {command.ins:02X}")
        return handler(command)

    # --- personalisation ----------------------------------------------------------------

    def _personalise(self, app: AppProfile, index: int, pki_dir: Path) -> AppState:
        pki = load_card_pki(self.profile, app, pki_dir)
        records = {(spec.sfi, spec.number): spec.encode(pki.values) for spec in app.records}
        tamper = self.profile.faults.tamper_record
        if tamper is not None and tamper.application == index:
            spec = app.record(tamper.sfi, tamper.record)
            assert spec is not None
            items = tuple((tag, tamper.value if tag == tamper.tag else value) for tag, value in spec.items)
            records[(spec.sfi, spec.number)] = type(spec)(spec.sfi, spec.number, items).encode(pki.values)
        fci_items = [(tag, value) for tag, value in app.fci if isinstance(value, bytes)]
        fci = tlv.encode(0x6F, tlv.encode(0x84, app.aid) + tlv.encode(0xA5, tlv.encode_all(fci_items)))
        return AppState(
            crypto=self._card_crypto(app, index),
            data_objects=dict(app.get_data),
            profile=app,
            records=records,
            fci=fci,
            icc_key=pki.icc_key,
            atc=app.atc,
            last_online_atc=app.last_online_atc,
            pin_tries_left=app.pin_tries_left,
            blocked=app.blocked,
            pin=app.pin,
        )

    def _card_crypto(self, app: AppProfile, index: int) -> CardCrypto:
        where = f"applications[{index}].crypto"
        if not app.crypto:
            raise ProfileError(self.profile.name, where, "missing: every application makes real cryptograms")
        try:
            crypto = CardCrypto(
                app.crypto,
                app.pan,
                app.psn,
                cdol1=app.cdol1,
                cdol2=app.cdol2,
                aip=app.aip,
                pin_try_counter=app.pin_tries_left,
            )
        except SimCryptoError as error:
            raise ProfileError(self.profile.name, where, str(error)) from None
        cdol1_tags = {tag for tag, _ in tlv.parse_dol(app.cdol1)}
        missing = [f"{tag:X}" for tag in crypto.required_cdol_tags if tag not in cdol1_tags]
        if missing:
            raise ProfileError(self.profile.name, f"applications[{index}].records", f"CDOL1 lacks {missing}")
        if app.oda == "cda" and not all(
            0x9F37 in {t for t, _ in tlv.parse_dol(d)} for d in (app.cdol1, app.cdol2)
        ):
            raise ProfileError(
                self.profile.name, f"applications[{index}].records", "CDA needs 9F37 in both CDOLs"
            )
        return crypto

    def _df_names(self) -> list[bytes]:
        """The card's DFs in the order partial selection walks them: PSE first, then the applications."""
        names = [PSE_NAME] if self.profile.pse else []
        return names + [app.aid for app in self.apps]

    def _pse_fci(self) -> bytes:
        proprietary = tlv.encode(0x88, bytes([PSE_SFI])) + tlv.encode_all(self.profile.pse_fci)
        return tlv.encode(0x6F, tlv.encode(0x84, PSE_NAME) + tlv.encode(0xA5, proprietary))

    def _pse_records(self) -> list[bytes]:
        entries = []
        for app in self.apps:
            items = [(0x4F, app.aid)]
            for tag in (0x50, 0x9F12, 0x87):
                value = app.profile.fci_value(tag)
                if isinstance(value, bytes):
                    items.append((tag, value))
            entries.append(tlv.encode(0x61, tlv.encode_all(items)))
        per = self.profile.pse_entries_per_record
        return [tlv.encode(0x70, b"".join(entries[i : i + per])) for i in range(0, len(entries), per)]

    # --- SELECT -------------------------------------------------------------------------

    def _select(self, command: Command) -> tuple[bytes, int]:
        if command.p1 != 0x04 or command.p2 not in (0x00, 0x02):
            raise SwError(SW_WRONG_P1P2, "SELECT by DF name, first or next occurrence only")
        if not command.data:
            raise SwError(SW_WRONG_LENGTH, "SELECT without a DF name")
        if self.card_blocked:
            raise SwError(SW_FUNCTION_NOT_SUPPORTED, "card blocked")
        names = self._df_names()
        start = 0
        if command.p2 == 0x02 and self.session.selected_index is not None:
            start = self.session.selected_index + 1
        self.session = Session()
        for position in range(start, len(names)):
            if names[position].startswith(command.data):
                return self._select_df(position)
        raise SwError(SW_FILE_NOT_FOUND, "no DF with that name")

    def _select_df(self, position: int) -> tuple[bytes, int]:
        self.session.selected_index = position
        offset = 1 if self.profile.pse else 0
        if position < offset:
            self.session.pse_selected = True
            return self._pse_fci(), SW_OK
        app = self.apps[position - offset]
        self.session.app = app
        return app.fci, SW_WARNING_INVALIDATED if app.blocked else SW_OK

    # --- READ RECORD ----------------------------------------------------------------------

    def _read_record(self, command: Command) -> tuple[bytes, int]:
        if command.data:
            raise SwError(SW_WRONG_LENGTH, "READ RECORD carries no data")
        if command.p2 & 0x07 != 0x04 or command.p1 == 0 or command.p2 >> 3 == 0:
            raise SwError(SW_WRONG_P1P2, "READ RECORD by SFI and record number only")
        sfi, number = command.p2 >> 3, command.p1
        if self.session.pse_selected:
            if sfi != PSE_SFI:
                raise SwError(SW_FILE_NOT_FOUND, f"the PSE has no SFI {sfi}")
            records = self._pse_records()
            if number > len(records):
                raise SwError(SW_RECORD_NOT_FOUND, f"the PSE directory has {len(records)} records")
            return records[number - 1], SW_OK
        app = self.session.app
        if app is None:
            raise SwError(SW_FILE_NOT_FOUND, "no application selected")
        log = app.profile.log
        if log is not None and sfi == log.sfi:
            if number > len(app.log):
                raise SwError(SW_RECORD_NOT_FOUND, f"the log holds {len(app.log)} records")
            return app.log[number - 1], SW_OK
        record = app.records.get((sfi, number))
        if record is None:
            if not any(key[0] == sfi for key in app.records):
                raise SwError(SW_FILE_NOT_FOUND, f"no SFI {sfi}")
            raise SwError(SW_RECORD_NOT_FOUND, f"SFI {sfi} has no record {number}")
        return record, SW_OK

    # --- GET PROCESSING OPTIONS -----------------------------------------------------------

    def _get_processing_options(self, command: Command) -> tuple[bytes, int]:
        if command.p1 or command.p2:
            raise SwError(SW_WRONG_P1P2)
        app = self._selected_app()
        if app.blocked:
            raise SwError(SW_CONDITIONS, "application blocked")
        if self.session.gpo_done:
            raise SwError(SW_CONDITIONS, "GET PROCESSING OPTIONS already done for this selection")
        items = _parse_command_data(command.data)
        if len(items) != 1 or items[0][0] != 0x83:
            raise SwError(SW_WRONG_LENGTH, "GPO data must be one '83' object")
        pdol_data = items[0][1]
        if len(pdol_data) != tlv.dol_length(app.profile.pdol):
            raise SwError(SW_WRONG_LENGTH, f"PDOL data of {len(pdol_data)} bytes")
        if app.atc >= 0xFFFF:
            raise SwError(SW_CONDITIONS, "application transaction counter exhausted")
        app.atc += 1
        app.crypto.begin_transaction(app.atc)
        self.session.gpo_done = True
        self.session.pdol_data = pdol_data
        profile = app.profile
        return responses.gpo_response(profile.gpo_format, profile.aip, profile.afl), SW_OK

    def _selected_app(self) -> AppState:
        if self.session.app is None:
            raise SwError(SW_CONDITIONS, "no application selected")
        return self.session.app

    def _transaction_app(self) -> AppState:
        app = self._selected_app()
        if not self.session.gpo_done:
            raise SwError(SW_CONDITIONS, "GET PROCESSING OPTIONS not done")
        return app

    # --- GET DATA -------------------------------------------------------------------------

    def _get_data(self, command: Command) -> tuple[bytes, int]:
        if command.data:
            raise SwError(SW_WRONG_LENGTH, "GET DATA carries no data")
        app = self.session.app
        tag = (command.p1 << 8) | command.p2
        if app is None:
            raise SwError(SW_DATA_NOT_FOUND, "no application selected")
        value = self._data_object(app, tag)
        if value is None:
            raise SwError(SW_DATA_NOT_FOUND, f"no data object {tag:04X}")
        return tlv.encode(tag if command.p1 else command.p2, value), SW_OK

    def _data_object(self, app: AppState, tag: int) -> bytes | None:
        if tag == 0x9F36:
            return app.atc.to_bytes(2, "big")
        if tag == 0x9F13:
            return app.last_online_atc.to_bytes(2, "big")
        if tag == 0x9F17:
            return bytes([app.pin_tries_left])
        if tag == 0x9F4F and app.profile.log is not None:
            return app.profile.log.format
        return app.data_objects.get(tag)

    # --- GET CHALLENGE, VERIFY --------------------------------------------------------------

    def _get_challenge(self, command: Command) -> tuple[bytes, int]:
        if command.p1 or command.p2:
            raise SwError(SW_WRONG_P1P2)
        if command.data:
            raise SwError(SW_WRONG_LENGTH, "GET CHALLENGE carries no data")
        self.session.challenge = self._rng(8)
        return self.session.challenge, SW_OK

    def _verify(self, command: Command) -> tuple[bytes, int]:
        if command.p1 != 0x00 or command.p2 not in (0x80, 0x88):
            raise SwError(SW_WRONG_P1P2, "VERIFY with P2 80 (plaintext) or 88 (enciphered) only")
        app = self._transaction_app()
        challenge, self.session.challenge = self.session.challenge, None
        if app.pin_tries_left == 0:
            raise SwError(SW_AUTH_BLOCKED, "PIN try limit exceeded")
        if command.p2 == 0x80:
            if len(command.data) != 8:
                raise SwError(SW_WRONG_LENGTH, "a plaintext PIN block is 8 bytes")
            block = command.data
        else:
            block = self._decipher_pin(app, command.data, challenge)
        verified = responses.parse_pin_block(block) == app.pin
        app.pin_tries_left = app.profile.pin_try_limit if verified else app.pin_tries_left - 1
        app.crypto.note_offline_pin(verified, app.pin_tries_left, enciphered=command.p2 == 0x88)
        return b"", SW_OK if verified else SW_VERIFY_FAILED | app.pin_tries_left

    def _decipher_pin(self, app: AppState, data: bytes, challenge: bytes | None) -> bytes:
        """Book 2 7.2: 7F || PIN block (8) || ICC unpredictable number (8) || random padding."""
        if app.icc_key is None:
            raise SwError(SW_WRONG_P1P2, "this card has no ICC key for enciphered PIN")
        size = (app.icc_key.key_size + 7) // 8
        if len(data) != size:
            raise SwError(SW_WRONG_LENGTH, f"an enciphered PIN is {size} bytes")
        if challenge is None:
            raise SwError(SW_CONDITIONS, "no GET CHALLENGE before the enciphered PIN")
        try:
            plain = odasign.rsa_private_raw(app.icc_key, data)
        except PkiError as error:
            raise SwError(SW_WRONG_DATA, str(error)) from None
        if plain[0] != 0x7F or plain[9:17] != challenge:
            raise SwError(SW_WRONG_DATA, "enciphered PIN data: wrong header or unpredictable number")
        return plain[1:9]

    # --- INTERNAL AUTHENTICATE (DDA) ------------------------------------------------------

    def _internal_authenticate(self, command: Command) -> tuple[bytes, int]:
        if command.p1 or command.p2:
            raise SwError(SW_WRONG_P1P2)
        app = self._selected_app()
        if app.icc_key is None:
            raise SwError(SW_INS_NOT_SUPPORTED, "this card does not do dynamic data authentication")
        if not command.data:
            raise SwError(SW_WRONG_LENGTH, "INTERNAL AUTHENTICATE needs the DDOL data")
        number = self._rng(ICC_DYNAMIC_NUMBER_LENGTH)
        dynamic_data = bytes([len(number)]) + number
        signature = self._sign(app.icc_key, dynamic_data, command.data)
        if app.profile.internal_authenticate_format == 1:
            return tlv.encode(0x80, signature), SW_OK
        return tlv.encode(0x77, tlv.encode(0x9F4B, signature)), SW_OK

    def _sign(self, key: rsa.RSAPrivateKey, dynamic_data: bytes, terminal_data: bytes) -> bytes:
        try:
            signature = odasign.signed_dynamic_data(key, dynamic_data, terminal_data)
        except PkiError as error:
            raise SwError(SW_WRONG_LENGTH, str(error)) from None
        if self.profile.faults.bad_dynamic_signature:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        return signature

    # --- GENERATE AC, EXTERNAL AUTHENTICATE ---------------------------------------------------

    def _generate_ac(self, command: Command) -> tuple[bytes, int]:
        requested = command.p1 & 0xC0
        if command.p1 & ~(0xC0 | CDA_REQUESTED) & 0xFF or command.p2 or requested not in risk.CID_NAMES:
            raise SwError(SW_WRONG_P1P2, "P1 is AAC, TC or ARQC (+ CDA request), P2 is 00")
        app = self._transaction_app()
        session = self.session
        if session.first_cid is None:
            return self._first_generate_ac(app, command, requested)
        if session.first_cid != risk.ARQC or session.second_ac_done:
            raise SwError(SW_CONDITIONS, "the transaction has its final cryptogram")
        if requested == risk.ARQC:
            raise SwError(SW_WRONG_P1P2, "the second GENERATE AC asks for TC or AAC")
        if self.profile.faults.remove_before_second_generate_ac:
            raise CardPulled("fault switch: card removed before the second GENERATE AC")
        return self._second_generate_ac(app, command, requested)

    def _first_generate_ac(self, app: AppState, command: Command, requested: int) -> tuple[bytes, int]:
        values = _dol_values(app.profile.cdol1, command.data, "CDOL1")
        amount = values.get(0x9F02)
        decision = risk.decide_first_ac(
            app.profile.risk,
            risk.FirstAcInput(
                requested=requested,
                tvr=values.get(0x95),
                amount=int(amount.hex()) if amount and amount.hex().isdigit() else None,
                atc=app.atc,
                last_online_atc=app.last_online_atc,
            ),
        )
        card_decision = decision.cid
        if self.profile.faults.aac_on_first_generate_ac or app.blocked or self.card_blocked:
            card_decision = risk.AAC
        body, cid = self._cryptogram(app, command, requested, card_decision, [command.data])
        self.session.first_cid = cid
        self.session.cdol1_data = command.data
        if cid != risk.ARQC:
            self._log_transaction(app, values, cid)
        return body, SW_OK

    def _second_generate_ac(self, app: AppState, command: Command, requested: int) -> tuple[bytes, int]:
        session = self.session
        values = _dol_values(app.profile.cdol2, command.data, "CDOL2")
        issuer_data = values.get(0x91, b"")
        attempted = session.external_auth_done or any(issuer_data)
        decision = risk.decide_second_ac(app.profile.risk, requested, values.get(0x8A), attempted)
        card_decision = decision.cid
        if self.profile.faults.aac_on_second_generate_ac or app.blocked or self.card_blocked:
            card_decision = risk.AAC
        body, cid = self._cryptogram(
            app, command, requested, card_decision, [session.cdol1_data, command.data]
        )
        session.second_ac_done = True
        if cid == risk.TC and app.crypto.issuer_authentication:
            app.last_online_atc = app.atc
        first_values = _dol_values(app.profile.cdol1, session.cdol1_data, "CDOL1")
        self._log_transaction(app, {**first_values, **values}, cid)
        return body, SW_OK

    def _cryptogram(
        self, app: AppState, command: Command, requested: int, card_decision: int, cdol_data: list[bytes]
    ) -> tuple[bytes, int]:
        """Ask the card's crypto for the AC, then shape the answer (format 1 or 2, CDA signature)."""
        try:
            result = app.crypto.generate_ac(
                risk.CID_NAMES[requested],
                command.data,
                app.atc,
                card_decision=risk.CID_NAMES[card_decision],
            )
        except CardCryptoStatus as error:
            raise SwError(error.sw, str(error)) from None
        except SimCryptoError as error:
            raise SwError(SW_WRONG_DATA, str(error)) from None
        cryptogram = result.cryptogram
        if self.profile.faults.bad_cryptogram:
            cryptogram = bytes([cryptogram[0] ^ 0x01]) + cryptogram[1:]
        items = responses.ac_response_items(result.cid, app.atc, cryptogram, result.iad)
        profile = app.profile
        if command.p1 & CDA_REQUESTED and profile.oda == "cda" and result.cid != risk.AAC:
            assert app.icc_key is not None
            values = _dol_values(profile.cdol2 if len(cdol_data) > 1 else profile.cdol1, command.data, "CDOL")
            items = [item for item in items if item[0] != 0x9F26]
            digest = responses.cda_transaction_data_hash(self.session.pdol_data, cdol_data, items)
            number = self._rng(ICC_DYNAMIC_NUMBER_LENGTH)
            dynamic_data = odasign.cda_dynamic_data(number, result.cid, cryptogram, digest)
            signature = self._sign(app.icc_key, dynamic_data, values[0x9F37])
            items.insert(2, (0x9F4B, signature))
        return responses.encode_ac_response(profile.ac_format, items), result.cid

    def _log_transaction(self, app: AppState, values: dict[int, bytes], cid: int) -> None:
        log = app.profile.log
        if log is None:
            return
        known = {**values, 0x9F36: app.atc.to_bytes(2, "big"), 0x9F27: bytes([cid])}
        app.log.insert(0, responses.log_record(log.format, known))
        del app.log[log.max_records :]

    def _external_authenticate(self, command: Command) -> tuple[bytes, int]:
        if command.p1 or command.p2:
            raise SwError(SW_WRONG_P1P2)
        app = self._transaction_app()
        session = self.session
        if session.first_cid != risk.ARQC or session.second_ac_done or session.external_auth_done:
            raise SwError(SW_CONDITIONS, "EXTERNAL AUTHENTICATE only once, between ARQC and the second AC")
        if not 8 <= len(command.data) <= 16:
            raise SwError(SW_WRONG_LENGTH, "issuer authentication data is 8 to 16 bytes")
        try:
            valid = app.crypto.external_authenticate(command.data)
        except CardCryptoStatus as error:
            raise SwError(error.sw, str(error)) from None
        session.external_auth_done = True
        return b"", SW_OK if valid else SW_ISSUER_AUTH_FAILED

    # --- issuer script commands ---------------------------------------------------------------

    def _script_command(self, command: Command) -> tuple[bytes, int]:
        app = self._transaction_app()
        if self.session.first_cid is None:
            raise SwError(SW_CONDITIONS, "script commands come after the first GENERATE AC")
        apdu = bytes([command.cla, command.ins, command.p1, command.p2, len(command.data)]) + command.data
        try:
            checked = app.crypto.check_script_command(apdu, current_pin=app.pin)
        except CardCryptoStatus as error:
            raise SwError(error.sw, str(error)) from None
        except SimCryptoError as error:
            raise SwError(SW_WRONG_DATA, str(error)) from None
        self._apply_script(app, checked)
        return b"", SW_OK

    def _apply_script(self, app: AppState, script: ScriptCommand) -> None:
        if script.ins == INS_APPLICATION_BLOCK:
            app.blocked = True
        elif script.ins == INS_APPLICATION_UNBLOCK:
            app.blocked = False
        elif script.ins == INS_CARD_BLOCK:
            self.card_blocked = True
        elif script.ins == INS_PIN_CHANGE:
            if script.p2 not in (0x00, 0x01, 0x02):
                raise SwError(SW_WRONG_P1P2, "PIN CHANGE/UNBLOCK P2 is 00, 01 or 02")
            if script.new_pin is not None:
                app.pin = script.new_pin
            app.pin_tries_left = app.profile.pin_try_limit
            app.crypto.pin_try_counter = app.pin_tries_left
        elif script.ins == INS_PUT_DATA:
            tag = (script.p1 << 8) | script.p2
            if tag in CARD_OWNED_DATA or tag not in app.data_objects:
                raise SwError(SW_DATA_NOT_FOUND, f"PUT DATA cannot write {tag:04X}")
            app.data_objects[tag] = script.data
        elif script.ins == INS_UPDATE_RECORD:
            key = (script.p2 >> 3, script.p1)
            if script.p2 & 0x07 != 0x04 or key not in app.records:
                raise SwError(SW_RECORD_NOT_FOUND, f"UPDATE RECORD: no SFI {key[0]} record {key[1]}")
            app.records[key] = script.data


def _dol_values(dol: bytes, data: bytes, which: str) -> dict[int, bytes]:
    try:
        return tlv.split_dol_data(dol, data)
    except TlvError as error:
        raise SwError(SW_WRONG_LENGTH, f"{which} data: {error}") from None


def _parse_command_data(data: bytes) -> list[tuple[int, bytes]]:
    try:
        return tlv.parse(data)
    except TlvError as error:
        raise SwError(SW_WRONG_DATA, str(error)) from None


def load_profile_card(
    name: str, *, rng: Rng = os.urandom, profiles_dir: Path = PROFILE_DIR, pki_dir: Path = PKI_DIR
) -> Card:
    """A fresh card personalised from `sim/profiles/NAME.json` (state starts as the profile says)."""
    return Card(load_profile(name, profiles_dir), rng=rng, pki_dir=pki_dir)
