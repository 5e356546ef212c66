"""The EMV transaction on the terminal side, from application selection to the last script (Book 3 10).

    selection, GPO, READ RECORD           firmware.emv.application
    offline data authentication           firmware.emv.oda (SDA, DDA, CDA)
    processing restrictions               firmware.emv.restrictions
    cardholder verification               firmware.emv.cvm
    terminal risk management              firmware.emv.risk
    terminal action analysis              firmware.emv.action
    first GENERATE AC, card action        firmware.emv.genac, firmware.emv.action
    online authorisation                  the caller's `online` callback
    issuer authentication, scripts 71     EXTERNAL AUTHENTICATE / 91 in CDOL2, firmware.emv.scripts
    second GENERATE AC, scripts 72

Everything from outside comes in as a parameter: the reader, the clock and
unpredictable number (in `TransactionInput`), random padding bytes, the PIN
pad (`pin_entry`), the online PIN block encryption (`online_pin_block`), the
host (`online`). A decline is an outcome; a card that breaks the protocol
or leaves ends the transaction as TERMINATED (or, after the host approved,
HOST_APPROVED_CARD_DECLINED so the caller reverses it). Only errors of the
caller's own making (configuration) raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from firmware.clocks import MonotonicClock
from firmware.emv import apdu, tlv
from firmware.emv.action import (
    ActionCodes,
    CardDecision,
    card_action_analysis,
    default_action_analysis,
    issuer_action_codes,
    second_ac_decision,
    terminal_action_analysis,
)
from firmware.emv.application import ApplicationData, read_application
from firmware.emv.capk import CapkStore
from firmware.emv.carddata import pan_digits, pan_sequence_number, track2_equivalent_data
from firmware.emv.certificates import RecoveredKey, recover_icc_key
from firmware.emv.cvm import (
    CvmContext,
    OnlinePinBlock,
    PinEntry,
    RsaPublicKey,
    perform_cardholder_verification,
)
from firmware.emv.genac import (
    CryptogramType,
    GenerateAcResponse,
    build_cdol_data,
    generate_ac_command,
    parse_generate_ac_response,
    tc_hash_value,
)
from firmware.emv.kernel_config import ApplicationParameters, KernelConfig, pan_fingerprint
from firmware.emv.oda import (
    OdaMethod,
    OdaResult,
    StaticData,
    build_static_data,
    perform_dda,
    perform_sda,
    prepare_cda,
    record_not_performed,
    select_method,
    verify_cda,
)
from firmware.emv.online import HostDecision, OnlineHandler, OnlineRequest, OnlineResponse, host_decision
from firmware.emv.reader import CardReader
from firmware.emv.restrictions import RestrictionContext, check_processing_restrictions
from firmware.emv.result import Outcome, TransactionResult
from firmware.emv.risk import RiskInputs, exception_file_bits, terminal_risk_management
from firmware.emv.scripts import (
    AFTER_FINAL_GENERATE_AC,
    BEFORE_FINAL_GENERATE_AC,
    ScriptResult,
    ScriptStatus,
    issuer_script_results,
    parse_issuer_scripts,
    run_script,
)
from firmware.emv.selection import Chooser
from firmware.emv.terminal_config import TerminalConfig
from firmware.emv.transaction import (
    TransactionInput,
    TransactionType,
    amount_n12,
    bcd_digits,
    date_n6,
    time_n6,
)
from firmware.emv.transport import Transport
from firmware.emv.tvr import Tsi, TsiBit, Tvr, TvrBit
from firmware.errors import (
    CardRemovedError,
    EmvError,
    NoCardError,
    ReaderError,
    SelectionError,
    StatusWordError,
)

__all__ = [
    "KernelServices",
    "build_field55",
    "process_transaction",
    "run_transaction",
]

TransactionLog = Callable[[str], int]

# Application Interchange Profile (82) byte 1, Book 3 Annex C1.
AIP_CARDHOLDER_VERIFICATION = 0x10
AIP_TERMINAL_RISK_MANAGEMENT = 0x08
AIP_ISSUER_AUTHENTICATION = 0x04

# Authorisation Response Codes the terminal sets itself (Book 4 Annex A6).
OFFLINE_APPROVED = "Y1"
OFFLINE_DECLINED = "Z1"
UNABLE_ONLINE_APPROVED = "Y3"
UNABLE_ONLINE_DECLINED = "Z3"

TAG_TC_HASH = 0x98
TAG_SIGNED_DYNAMIC_DATA = 0x9F4B


@dataclass(frozen=True)
class KernelServices:
    """What the kernel needs besides the card: configuration, keys and the caller's callbacks.

    `random_bytes` pads an enciphered PIN (Book 2 7.1). `pin_entry` None
    means no PIN pad; `online` None means the terminal cannot go online.
    `transaction_log(pan_fingerprint) -> amount` gives the amount already
    approved offline for this card (floor limit check, Book 3 10.6.1).
    """

    terminal: TerminalConfig
    config: KernelConfig
    capks: CapkStore
    random_bytes: Callable[[int], bytes]
    pin_entry: PinEntry | None = None
    online_pin_block: OnlinePinBlock | None = None
    online: OnlineHandler | None = None
    transaction_log: TransactionLog | None = None
    choose: Chooser | None = None


def build_field55(source: Mapping[int, bytes], tags: tuple[int, ...]) -> bytes:
    """ICC data for ISO 8583 field 55: each listed tag present in `source`, in list order."""
    return b"".join(tlv.encode(tag, source[tag]) for tag in tags if tag in source)


class _Stop(Exception):
    """Internal: end the transaction now with this outcome."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass
class _Transaction:
    transport: Transport
    txn: TransactionInput
    services: KernelServices
    tvr: Tvr = field(default_factory=Tvr)
    tsi: Tsi = field(default_factory=Tsi)
    app: ApplicationData | None = None
    pan: str = ""
    pan_sequence_number: int | None = None
    params: ApplicationParameters | None = None
    icc: dict[int, bytes] = field(default_factory=dict)
    terminal_data: dict[int, bytes] = field(default_factory=dict)
    dynamic: dict[int, bytes] = field(default_factory=dict)
    # The data objects of the last GENERATE AC answer the card gave (9F27, 9F36, 9F26, 9F10...,
    # 9F26 and 9F4C recovered from a verified CDA signature), replaced whole by each answer so
    # that one answer's CID never stands next to another answer's cryptogram.
    card_answer: dict[int, bytes] = field(default_factory=dict)
    oda_method: OdaMethod = OdaMethod.NONE
    oda: OdaResult | None = None
    static: StaticData | None = None
    cdol1_data: bytes = b""
    cda_failed: bool = False
    signature_required: bool = False
    advice_required: bool = False
    online_pin: bytes | None = None
    host_approved: bool = False
    response: OnlineResponse | None = None
    online_failure: str = ""
    authorisation_field55: bytes | None = None
    scripts: list[ScriptResult] = field(default_factory=list)
    last_ac: GenerateAcResponse | None = None
    reason: str = ""

    # --- data ------------------------------------------------------------------

    @property
    def config(self) -> KernelConfig:
        return self.services.config

    @property
    def refund(self) -> bool:
        return self.txn.transaction_type is TransactionType.REFUND

    @property
    def aip(self) -> bytes:
        assert self.app is not None
        return self.app.options.aip

    def transaction_data(self) -> dict[int, bytes]:
        txn = self.txn
        return {
            0x9F02: amount_n12(txn.amount),
            0x9F03: amount_n12(txn.amount_other),
            0x81: min(txn.amount, 0xFFFFFFFF).to_bytes(4, "big"),
            0x9F04: min(txn.amount_other, 0xFFFFFFFF).to_bytes(4, "big"),
            0x9A: date_n6(txn.now.date()),
            0x9F21: time_n6(txn.now),
            0x9C: bytes([int(txn.transaction_type)]),
            0x9F37: txn.unpredictable_number,
            0x9F41: bcd_digits(txn.sequence_counter, 4),
        }

    def source(self) -> dict[int, bytes]:
        """Every data object a DOL or field 55 may name; later sources win."""
        self.dynamic[0x95] = self.tvr.to_bytes()
        self.dynamic[0x9B] = self.tsi.to_bytes()
        terminal = {**self.terminal_data, **self.transaction_data(), **self.dynamic}
        return {**self.icc, **terminal, **self.card_answer}

    # --- steps -----------------------------------------------------------------

    def read(self) -> None:
        services = self.services
        self.terminal_data = services.config.terminal_data()
        pdol_source = {**self.terminal_data, **self.transaction_data()}
        try:
            app = read_application(
                self.transport,
                services.terminal,
                transaction_data=pdol_source,
                choose=services.choose,
                processable=lambda aid: services.config.application(aid) is not None,
            )
        except SelectionError as exc:
            raise _Stop(Outcome.TERMINATED, f"card not accepted: {exc}") from exc
        self.app = app
        self.icc = app.icc_data
        self.icc.setdefault(0x84, app.selected.aid)
        if app.records.missing_mandatory:
            missing = ", ".join(f"{tag:X}" for tag in app.records.missing_mandatory)
            raise _Stop(Outcome.TERMINATED, f"card data missing mandatory objects {missing} (Book 3 7.2)")
        self.pan = pan_digits(app.records.tags[0x5A])
        psn = self.icc.get(0x5F34)
        self.pan_sequence_number = pan_sequence_number(psn) if psn is not None else None
        if 0x57 in self.icc:
            track2_equivalent_data(self.icc[0x57])
        params = services.config.application(app.selected.aid)
        assert params is not None  # selection leaves out an application without parameters
        self.params = params
        self.terminal_data[0x9F09] = params.version
        self.terminal_data[0x9F1B] = params.floor_limit.to_bytes(4, "big")
        self.terminal_data[0x9F06] = params.aid

    def authenticate_offline(self) -> None:
        assert self.app is not None and self.params is not None
        capks = self.services.capks
        today = self.txn.now.date()
        rid = self.app.selected.aid[:5]
        self.oda_method = select_method(self.aip, self.config.capabilities)
        if self.oda_method is OdaMethod.NONE:
            record_not_performed(self.tvr)
            return
        records = {(record.sfi, record.number): record.data for record in self.app.records.records}
        self.static = build_static_data(self.app.options.afl, records, self.aip, self.icc.get(0x9F4A))
        if self.oda_method is OdaMethod.SDA:
            self.oda = perform_sda(capks, self.icc, self.static, self.tvr, today, tsi=self.tsi, rid=rid)
        elif self.oda_method is OdaMethod.DDA:

            def internal_authenticate(ddol_data: bytes) -> bytes:
                return self.transport.send(apdu.internal_authenticate(ddol_data)).data

            self.oda = perform_dda(
                capks,
                self.icc,
                self.static,
                internal_authenticate,
                {**self.terminal_data, **self.transaction_data()},
                self.tvr,
                today,
                default_ddol=self.params.default_ddol or None,
                tsi=self.tsi,
                rid=rid,
            )
        else:
            self.oda = prepare_cda(capks, self.icc, self.static, self.tvr, today, tsi=self.tsi, rid=rid)
        self.dynamic.update(self.oda.data_objects)

    def check_restrictions(self) -> None:
        assert self.params is not None
        context = RestrictionContext(
            terminal_version=self.params.version,
            terminal_country=bcd_digits(self.config.country_code, 2),
            terminal_is_atm=self.config.is_atm,
            transaction_type=self.txn.transaction_type,
            service=self.txn.service,
            amount_other=self.txn.amount_other,
            today=self.txn.now.date(),
        )
        self.tvr.set(check_processing_restrictions(self.icc, context))

    def _pin_key(self) -> RsaPublicKey | None:
        """The ICC PIN encipherment key (9F2D..) or else the ICC public key (Book 2 7.1)."""
        assert self.app is not None
        today = self.txn.now.date()
        keys = self.oda
        if keys is None or keys.issuer_key is None or (0x9F2D not in self.icc and keys.icc_key is None):
            # Recover on a scratch TVR: this is key recovery for the PIN, not the transaction's ODA.
            static = self.static or StaticData(b"")
            keys = prepare_cda(
                self.services.capks, self.icc, static, Tvr(), today, rid=self.app.selected.aid[:5]
            )
        recovered: RecoveredKey | None
        if 0x9F2D in self.icc and keys.issuer_key is not None and 0x9F2E in self.icc:
            pin_certificate = recover_icc_key(
                keys.issuer_key,
                self.icc[0x9F2D],
                self.icc.get(0x9F2F),
                self.icc[0x9F2E],
                self.icc.get(0x5A, b""),
                b"",
                today,
            )
            recovered = pin_certificate if isinstance(pin_certificate, RecoveredKey) else None
        else:
            recovered = keys.icc_key
        if recovered is None:
            return None
        return RsaPublicKey(recovered.modulus, int.from_bytes(recovered.exponent, "big"))

    def verify_cardholder(self) -> None:
        assert self.app is not None
        if self.refund or not self.aip[0] & AIP_CARDHOLDER_VERIFICATION:
            self.dynamic[0x9F34] = bytes.fromhex("3F0000")
            return
        transport = self.transport
        get_data = self._get_data

        class _Card:
            def get_data(self, tag: int) -> bytes | None:
                return get_data(tag)

            def get_challenge(self) -> bytes | None:
                response = transport.exchange(apdu.get_challenge())
                return response.data if response.ok and len(response.data) == 8 else None

            def verify(self, qualifier: int, data: bytes) -> int:
                return transport.exchange(apdu.verify(data, qualifier)).sw

        context = CvmContext(
            capabilities=self.config.capabilities,
            transaction_type=self.txn.transaction_type,
            amount=self.txn.amount,
            amount_other=self.txn.amount_other,
            unattended=self.config.terminal_type % 10 in (4, 5, 6),
            in_application_currency=self.icc.get(0x9F42) == bcd_digits(self.config.currency_code, 2),
        )
        outcome = perform_cardholder_verification(
            self.icc.get(0x8E),
            context,
            card=_Card(),
            pan=self.pan,
            pin_entry=self.services.pin_entry,
            online_pin_block=self.services.online_pin_block,
            pin_key=self._pin_key,
            random_bytes=self.services.random_bytes,
        )
        self.tvr.set(outcome.tvr)
        if outcome.performed:
            self.tsi.set(TsiBit.CARDHOLDER_VERIFICATION_PERFORMED)
        self.dynamic[0x9F34] = outcome.results
        self.signature_required = outcome.signature_required
        self.online_pin = outcome.online_pin_block

    def manage_risk(self) -> None:
        assert self.app is not None and self.params is not None
        pan = self.pan
        self.tvr.set(exception_file_bits(pan, self.config.exception_file))
        if self.txn.merchant_forced_online:
            self.tvr.set(TvrBit.MERCHANT_FORCED_ONLINE)
        if self.refund or not self.aip[0] & AIP_TERMINAL_RISK_MANAGEMENT:
            return
        params = self.params
        logged = 0
        log = self.services.transaction_log
        if self.config.floor_limit_uses_transaction_log and log is not None:
            logged = log(pan_fingerprint(pan, self.config.exception_file.salt))
        atc = last_online = None
        velocity = params.velocity_checking and 0x9F14 in self.icc and 0x9F23 in self.icc
        if velocity:
            atc = self._get_data(0x9F36)
            last_online = self._get_data(0x9F13)
        inputs = RiskInputs(
            amount=self.txn.amount,
            floor_limit=params.floor_limit,
            random_selection_threshold=params.random_selection_threshold,
            random_target_percent=params.random_target_percent,
            random_max_target_percent=params.random_max_target_percent,
            random_number=self.txn.random_selection_number,
            velocity_checking=velocity,
            logged_amount=logged,
        )
        self.tvr.set(terminal_risk_management(inputs, self.icc, atc, last_online))
        self.tsi.set(TsiBit.TERMINAL_RISK_MANAGEMENT_PERFORMED)

    def _get_data(self, tag: int) -> bytes | None:
        response = self.transport.exchange(apdu.get_data(tag))
        if not response.ok:
            return None
        try:
            return tlv.find(response.data, tag)
        except EmvError:
            return None

    def action_codes(self) -> tuple[ActionCodes, ActionCodes]:
        assert self.params is not None
        tac = ActionCodes(self.params.tac_denial, self.params.tac_online, self.params.tac_default)
        return tac, issuer_action_codes(self.icc)

    def first_cryptogram(self) -> CryptogramType:
        if self.refund:
            return CryptogramType.AAC  # Book 4: a refund asks the card for an AAC
        tac, iac = self.action_codes()
        return terminal_action_analysis(
            self.tvr.to_bytes(),
            tac,
            iac,
            online_capable=self.config.online_capable,
            online_only=self.config.online_only,
        )

    def _tc_hash(self) -> bytes:
        """Book 3 9.2.2: SHA-1 over the TDOL data; the card's TDOL (97) or else the default one."""
        assert self.params is not None
        tdol = self.icc.get(0x97)
        if tdol is None:
            tdol = self.params.default_tdol
            self.tvr.set(TvrBit.DEFAULT_TDOL_USED)
        return tc_hash_value(tdol, self.source())

    def _cda_wanted(self, kind: CryptogramType) -> bool:
        return (
            self.oda_method is OdaMethod.CDA
            and self.oda is not None
            and self.oda.ok
            and not self.cda_failed
            and kind is not CryptogramType.AAC
        )

    def generate_ac(self, kind: CryptogramType, *, second: bool) -> GenerateAcResponse:
        assert self.app is not None
        cdol_tag = 0x8D if second else 0x8C
        cdol = self.icc.get(cdol_tag)
        if cdol is None:
            raise _Stop(Outcome.TERMINATED, f"card has no CDOL{2 if second else 1} ({cdol_tag:X})")
        if TAG_TC_HASH in (tag for tag, _ in tlv.parse_dol(cdol)):
            self.dynamic[TAG_TC_HASH] = self._tc_hash()
        cdol_data = build_cdol_data(cdol, self.source(), cdol_tag)
        if not second:
            self.cdol1_data = cdol_data
            self.tsi.set(TsiBit.CARD_RISK_MANAGEMENT_PERFORMED)
        cda = self._cda_wanted(kind)
        response = self.transport.send(generate_ac_command(kind, cdol_data, cda=cda))
        answer = parse_generate_ac_response(response.data, cda_requested=cda)
        card_answer = {tag: value for tag, value in answer.objects.items() if tag != TAG_SIGNED_DYNAMIC_DATA}
        if cda and answer.cryptogram_type is not CryptogramType.AAC:
            assert self.oda is not None and self.oda.icc_key is not None
            checked = verify_cda(
                self.oda.icc_key,
                response.data,
                self.app.options.pdol_data,
                self.cdol1_data + (cdol_data if second else b""),
                self.txn.unpredictable_number,
                tvr=self.tvr,
            )
            if checked.ok:
                card_answer.update(checked.data_objects)
            else:
                self.cda_failed = True
        self.card_answer = card_answer
        self.last_ac = answer
        self.advice_required = self.advice_required or answer.advice_required
        return answer

    def go_online(self, cryptogram: CryptogramType) -> OnlineResponse | None:
        assert self.app is not None
        handler = self.services.online
        self.authorisation_field55 = build_field55(self.source(), self.config.field55_tags)
        if handler is None:
            return None
        request = OnlineRequest(
            field55=self.authorisation_field55,
            masked_pan=self.app.masked_pan or "",
            amount=self.txn.amount,
            amount_other=self.txn.amount_other,
            currency_code=self.config.currency_code,
            transaction_type=self.txn.transaction_type,
            transmitted_at=self.txn.now,
            sequence_counter=self.txn.sequence_counter,
            aid=self.app.selected.aid,
            cryptogram_type=cryptogram.name,
            expiry=self.app.expiry,
            pan_sequence_number=self.pan_sequence_number,
            pan=self.pan,
            track2=self.icc.get(0x57),
            online_pin_block=self.online_pin,
        )
        try:
            response = handler(request)
        except Exception as exc:
            # Whatever breaks on the host side (link, message building, a bug), the card still holds an
            # open ARQC: the transaction goes on as 'unable to go online' (Book 3 10.7, default action
            # analysis). Only the error's type is kept: its text may carry card data.
            self.online_failure = f"host callback failed ({type(exc).__name__})"
            return None
        if response is not None:
            self.response = response
            self._set_response_code(response.response_code)
            if response.authorisation_code is not None:
                self.dynamic[0x89] = response.authorisation_code.encode("ascii")
            if response.issuer_authentication_data is not None:
                self.dynamic[0x91] = response.issuer_authentication_data
        return response

    def authenticate_issuer(self, response: OnlineResponse) -> None:
        """Book 3 10.9: EXTERNAL AUTHENTICATE once, when the AIP says so; else 91 goes in CDOL2."""
        data = response.issuer_authentication_data
        if data is None or not self.aip[0] & AIP_ISSUER_AUTHENTICATION:
            return
        answer = self.transport.exchange(apdu.external_authenticate(data))
        self.tsi.set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
        if not answer.ok:
            self.tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)

    def run_scripts(self, template: int) -> None:
        if self.response is None or not self.response.issuer_scripts:
            return
        scripts = [s for s in parse_issuer_scripts(self.response.issuer_scripts) if s.template == template]
        failed_bit = (
            TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENERATE_AC
            if template == BEFORE_FINAL_GENERATE_AC
            else TvrBit.SCRIPT_FAILED_AFTER_FINAL_GENERATE_AC
        )
        card_gone = False
        for script in scripts:
            self.tsi.set(TsiBit.SCRIPT_PROCESSING_PERFORMED)
            if card_gone:
                result = ScriptResult(script.template, script.identifier, ScriptStatus.NOT_PERFORMED)
            else:
                try:
                    result = run_script(script, lambda command: self.transport.exchange(command).sw)
                except CardRemovedError as exc:
                    if template == BEFORE_FINAL_GENERATE_AC:
                        raise
                    card_gone = True
                    result = ScriptResult(
                        script.template, script.identifier, ScriptStatus.FAILED, 0, str(exc)
                    )
            if result.status is ScriptStatus.FAILED:
                self.tvr.set(failed_bit)
            self.scripts.append(result)
        if self.scripts:
            # Issuer Script Results for the advice, reversal or batch field 55 (Book 4 12)
            self.dynamic[0x9F5B] = issuer_script_results(self.scripts)

    def complete_online(self) -> Outcome:
        """The card said ARQC: online, issuer authentication, scripts, second GENERATE AC."""
        tac, iac = self.action_codes()
        response = self.go_online(CryptogramType.ARQC)
        if response is None:
            decision = default_action_analysis(self.tvr.to_bytes(), tac, iac)
            code = UNABLE_ONLINE_APPROVED if decision is CryptogramType.TC else UNABLE_ONLINE_DECLINED
            self._set_response_code(code)
            try:
                final = self.second_generate_ac(decision)
            except CardRemovedError as exc:
                raise _Stop(Outcome.TERMINATED, f"card removed: {exc}") from exc
            if final is CardDecision.APPROVE:
                self.reason = self._unable_online("card approved")
                return Outcome.APPROVED_OFFLINE
            return self._declined(Outcome.DECLINED_OFFLINE, self._unable_online("card declined"))
        host = self._host_decision(response)
        self.host_approved = host is not HostDecision.DECLINED
        self.authenticate_issuer(response)
        self.run_scripts(BEFORE_FINAL_GENERATE_AC)
        asked = CryptogramType.TC if host is HostDecision.APPROVED else CryptogramType.AAC
        final = self.second_generate_ac(asked)
        self.run_scripts(AFTER_FINAL_GENERATE_AC)
        if final is CardDecision.APPROVE:
            return Outcome.APPROVED_ONLINE
        if host is HostDecision.APPROVED_OTHER_AMOUNT:
            return self._declined(Outcome.HOST_APPROVED_CARD_DECLINED, self._other_amount(response))
        if self.host_approved:
            return self._declined(Outcome.HOST_APPROVED_CARD_DECLINED, "card declined after host approval")
        return self._declined(Outcome.DECLINED_ONLINE, f"host declined ({response.response_code})")

    def _unable_online(self, then: str) -> str:
        failure = f" ({self.online_failure})" if self.online_failure else ""
        return f"unable to go online{failure}; {then}"

    def _host_decision(self, response: OnlineResponse) -> HostDecision:
        config = self.config
        return host_decision(
            response, self.txn.amount, config.approval_response_codes, config.partial_approval_response_codes
        )

    def _other_amount(self, response: OnlineResponse) -> str:
        approved = response.approved_amount
        said = f"{approved} approved" if approved is not None else "no approved amount given"
        return (
            f"host approved another amount than {self.txn.amount} ({response.response_code}, {said}):"
            " the terminal does not complete a partial approval; declined, the authorisation to be reversed"
        )

    def _declined(self, outcome: Outcome, reason: str) -> Outcome:
        self.reason = reason
        return outcome

    def second_generate_ac(self, kind: CryptogramType) -> CardDecision:
        answer = self.generate_ac(kind, second=True)
        decision = second_ac_decision(kind, answer.cryptogram_type)
        if decision is CardDecision.APPROVE and self.cda_failed:
            self.reason = "CDA failed at the second GENERATE AC"
            return CardDecision.DECLINE
        return decision

    def complete_refund(self) -> Outcome:
        """A refund: the card gave its AAC; the host alone approves the credit."""
        response = self.go_online(CryptogramType.AAC)
        if response is None:
            self._set_response_code(UNABLE_ONLINE_DECLINED)
            reason = "refund needs the host: " + self._unable_online("declined")
            return self._declined(Outcome.DECLINED_OFFLINE, reason)
        decision = self._host_decision(response)
        if decision is HostDecision.APPROVED:
            return Outcome.APPROVED_ONLINE
        if decision is HostDecision.APPROVED_OTHER_AMOUNT:
            self.host_approved = True
            return self._declined(Outcome.HOST_APPROVED_CARD_DECLINED, self._other_amount(response))
        return self._declined(Outcome.DECLINED_ONLINE, f"host declined ({response.response_code})")

    def run(self) -> Outcome:
        self.read()
        self.authenticate_offline()
        self.check_restrictions()
        self.verify_cardholder()
        self.manage_risk()
        requested = self.first_cryptogram()
        answer = self.generate_ac(requested, second=False)
        decision = card_action_analysis(requested, answer.cryptogram_type)
        if self.cda_failed and decision is not CardDecision.DECLINE:
            # Book 2 6.6.2: a failed CDA signature declines; an ARQC is closed with an AAC.
            if decision is CardDecision.GO_ONLINE:
                self._set_response_code(UNABLE_ONLINE_DECLINED)
                self.generate_ac(CryptogramType.AAC, second=True)
            else:
                self._set_response_code(OFFLINE_DECLINED)
            return self._declined(Outcome.DECLINED_OFFLINE, "CDA failed at the first GENERATE AC")
        if decision is CardDecision.DECLINE:
            if self.refund:
                return self.complete_refund()
            self._set_response_code(OFFLINE_DECLINED)
            return self._declined(Outcome.DECLINED_OFFLINE, "card declined (AAC)")
        if decision is CardDecision.APPROVE:
            self._set_response_code(OFFLINE_APPROVED)
            return Outcome.APPROVED_OFFLINE
        return self.complete_online()

    def _set_response_code(self, code: str) -> None:
        """Authorisation Response Code (8A): the host's, or the terminal's own (Book 4 Annex A6)."""
        self.dynamic[0x8A] = code.encode("ascii")

    def result(self, outcome: Outcome, reason: str) -> TransactionResult:
        app = self.app
        source = self.source()
        completed = self.last_ac is not None
        cryptogram = source.get(0x9F26) if completed else None
        response = self.response
        return TransactionResult(
            outcome=outcome,
            transaction_type=self.txn.transaction_type,
            amount=self.txn.amount,
            amount_other=self.txn.amount_other,
            currency_code=self.config.currency_code,
            reason=reason,
            tvr=self.tvr.to_bytes(),
            tsi=self.tsi.to_bytes(),
            cid=self.last_ac.cid if self.last_ac is not None else None,
            cryptogram=cryptogram,
            atc=self.last_ac.atc if self.last_ac is not None else None,
            cvm_results=self.dynamic.get(0x9F34),
            masked_pan=app.masked_pan if app is not None else None,
            aid=app.selected.aid if app is not None else None,
            application_label=app.selected.label if app is not None else None,
            field55=build_field55(source, self.config.field55_tags) if completed else b"",
            authorisation_field55=self.authorisation_field55,
            script_results=tuple(self.scripts),
            response_code=self.dynamic[0x8A].decode("ascii") if 0x8A in self.dynamic else None,
            authorisation_code=response.authorisation_code if response is not None else None,
            approved_amount=response.approved_amount if response is not None else None,
            oda_method=self.oda_method.value if app is not None else None,
            oda_failure=str(self.oda.failure) if self.oda is not None and self.oda.failure else None,
            signature_required=self.signature_required and outcome is not Outcome.TERMINATED,
            advice_required=self.advice_required,
            online_pin_block=self.online_pin,
            trace=tuple(self.transport.display_trace()),
        )


def process_transaction(
    transport: Transport, txn: TransactionInput, services: KernelServices
) -> TransactionResult:
    """Run one transaction with a card that is already powered on (the caller powers it off)."""
    state = _Transaction(transport, txn, services)
    try:
        outcome = state.run()
        reason = state.reason
    except _Stop as stop:
        outcome, reason = stop.outcome, stop.reason
        if outcome is Outcome.TERMINATED:
            outcome, reason = _broken(state, reason)
    except (CardRemovedError, ReaderError) as exc:
        if state.host_approved:
            outcome, reason = Outcome.HOST_APPROVED_CARD_DECLINED, f"card removed after host approval: {exc}"
        elif state.response is not None:
            outcome, reason = Outcome.DECLINED_ONLINE, f"host declined; card removed: {exc}"
        else:
            outcome, reason = Outcome.TERMINATED, f"card removed: {exc}"
    except StatusWordError as exc:
        outcome, reason = _broken(state, f"card refused a command: {exc}")
    except EmvError as exc:
        outcome, reason = _broken(state, f"card data or dialogue not acceptable: {exc}")
    return state.result(outcome, reason)


def _broken(state: _Transaction, reason: str) -> tuple[Outcome, str]:
    if state.host_approved:
        return Outcome.HOST_APPROVED_CARD_DECLINED, reason
    if state.response is not None:
        return Outcome.DECLINED_ONLINE, reason
    return Outcome.TERMINATED, reason


def run_transaction(
    reader: CardReader,
    txn: TransactionInput,
    services: KernelServices,
    *,
    clock: MonotonicClock = time.perf_counter,
) -> TransactionResult:
    """Power the card on, run one transaction, power it off. `clock` only times the APDU trace."""
    transport = Transport(reader, clock=clock)
    try:
        transport.power_on()
    except NoCardError as exc:
        state = _Transaction(transport, txn, services)
        return state.result(Outcome.TERMINATED, f"no card: {exc}")
    try:
        return process_transaction(transport, txn, services)
    finally:
        transport.power_off()
