"""What a simulated EMV card does with its keys, for the card engine's command handlers.

One :class:`CardCrypto` per card application. The card engine calls it from
its handlers and turns :class:`CardCryptoStatus` exceptions into status words
(``exc.sw``); everything else it returns is data for the response.

- GENERATE AC: :meth:`CardCrypto.generate_ac` takes the command data and the
  DOL that describes it (CDOL1 on the first call of a transaction, CDOL2 on the
  second), picks the cryptogram type (never stronger than requested:
  AAC < ARQC < TC), and returns ``(cid, cryptogram, iad)``. The cryptogram
  input and the IAD layout are defined per CVN in :mod:`sim.cvn`; the CDOLs
  must hold the eight terminal tags of ``sim.cvn.TERMINAL_AC_TAGS`` (CDOL2 may
  omit some, their CDOL1 values are used). In the second GENERATE AC, tag 8A
  'Y3' / 'Z3' marks "unable to go online", and a tag 91 in CDOL2 is checked as
  issuer authentication data when EXTERNAL AUTHENTICATE did not come.
- EXTERNAL AUTHENTICATE: :meth:`CardCrypto.external_authenticate` (tag 91
  contents) returns whether the ARPC verified (the engine answers 9000 or
  6300); :meth:`CardCrypto.verify_arpc` is the same from its parts.
- Issuer scripts: :meth:`CardCrypto.check_script_command` checks the secure
  messaging MAC of a script command, deciphers the PIN of PIN CHANGE, and
  returns what the engine should apply.
- VERIFY: :meth:`CardCrypto.note_offline_pin` tells the card what offline PIN
  verification gave, for the CVR.

A transaction starts with :meth:`CardCrypto.begin_transaction` (call it at
GET PROCESSING OPTIONS with the incremented ATC), or implicitly when GENERATE
AC comes with an ATC other than the current transaction's.

Card Verification Results (inside the IAD):

- Visa / PBOC (4 bytes, first the length '03'): byte 2 = AC type of the 2nd
  GENERATE AC (b8-7: 00 AAC, 01 TC, 10 not requested) and of the 1st (b6-5:
  00 AAC, 01 TC, 10 ARQC), b4 issuer authentication performed and failed,
  b3 offline PIN performed, b2 offline PIN failed, b1 unable to go online;
  byte 3 = b8 last online transaction not completed, b7 PIN try limit
  exceeded, b5 new card (never online yet), b4 issuer authentication failed
  on the last online transaction, b3 issuer authentication not performed after
  the last online authorisation; byte 4 = b8-5 script commands processed on
  the last transaction, b4 script processing failed on the last transaction.
- M/Chip (6 bytes): byte 1 = 2nd / 1st AC types as above, b3 offline PIN
  performed, b2 enciphered offline PIN performed, b1 offline PIN successful;
  byte 2 = b5 issuer authentication performed; byte 3 = script counter (low
  nibble) || PIN try counter (low nibble); byte 4 = b8 last online transaction
  not completed, b7 unable to go online, b6 offline PIN not performed, b5
  offline PIN failed, b4 PIN try limit exceeded; byte 5 = for the last online
  transaction, b3 issuer authentication failed, b2 script received, b1 script
  failed. Counters (IAD bytes 11-18): cumulative offline amount || consecutive
  offline transactions || 'FF', reset by an online approval.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from sim import cvn, emvcrypto, tlv
from sim.errors import (
    CardCryptoStatus,
    ConditionsNotSatisfied,
    IncorrectP1P2,
    SecureMessagingFailed,
    TlvError,
    WrongData,
    WrongLength,
)

__all__ = [
    "CID",
    "AcResult",
    "CardCrypto",
    "CardCryptoStatus",
    "ConditionsNotSatisfied",
    "IncorrectP1P2",
    "ScriptCommand",
    "SecureMessagingFailed",
    "WrongData",
    "WrongLength",
]

CID: Mapping[str, int] = {"AAC": 0x00, "TC": 0x40, "ARQC": 0x80}
_STRENGTH = {"AAC": 0, "ARQC": 1, "TC": 2}
_UNABLE_TO_GO_ONLINE_ARCS = frozenset({b"Y3", b"Z3"})
_SCRIPT_NAMES = {
    0x1E: "APPLICATION BLOCK",
    0x18: "APPLICATION UNBLOCK",
    0x16: "CARD BLOCK",
    0x24: "PIN CHANGE/UNBLOCK",
    0xDA: "PUT DATA",
    0xDC: "UPDATE RECORD",
}


class AcResult(NamedTuple):
    """GENERATE AC response data: CID (9F27), AC (9F26), IAD (9F10)."""

    cid: int
    cryptogram: bytes
    iad: bytes


@dataclass(frozen=True)
class ScriptCommand:
    """A script command whose MAC verified: what the card engine should now apply.

    ``data`` is the command data without the MAC (still enciphered for a PIN
    CHANGE); ``new_pin`` is the deciphered new PIN of a PIN CHANGE.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    name: str
    data: bytes
    new_pin: str | None = field(default=None, repr=False)


def _dol_values(dol: bytes, data: bytes, which: str) -> dict[int, bytes]:
    try:
        entries = tlv.parse_dol(dol)
    except TlvError as error:
        raise emvcrypto.CryptoInputError(f"{which} is malformed: {error}") from None
    expected = sum(length for _, length in entries)
    if len(data) != expected:
        raise WrongLength(f"{which} data is {len(data)} bytes, the DOL describes {expected}")
    return tlv.split_dol_data(dol, data)


def _bcd_amount(value: bytes) -> int:
    digits = value.hex()
    return int(digits) if digits.isdigit() else 0


@dataclass
class _Transaction:
    atc: int
    phase: Literal["new", "online", "complete"] = "new"
    first_ac: str | None = None
    second_ac: str | None = None
    arqc: bytes | None = field(default=None, repr=False)
    terminal: dict[int, bytes] = field(default_factory=dict, repr=False)
    issuer_auth: cvn.IssuerAuthentication | None = None
    unable_to_go_online: bool = False
    offline_pin_performed: bool = False
    offline_pin_failed: bool = False
    offline_pin_enciphered: bool = False
    script_commands: int = 0
    scripts_processed: int = 0
    script_failed: bool = False


@dataclass
class _History:
    last_online_not_completed: bool = False
    issuer_auth_failed_last_online: bool = False
    issuer_auth_not_performed_last_online: bool = False
    scripts_processed_last: int = 0
    script_failed_last: bool = False
    script_received_last: bool = False
    script_counter: int = 0
    been_online: bool = False
    cumulative_offline_amount: int = 0
    consecutive_offline: int = 0


@dataclass
class _PendingPin:
    performed: bool = False
    failed: bool = False
    enciphered: bool = False


class CardCrypto:
    """The cryptography of one card application; see the module docstring.

    ``crypto_cfg`` is the profile's ``"crypto"`` object (see :mod:`sim.cvn`);
    ``cdol1``, ``cdol2`` and ``aip`` may be given once here instead of at each
    GENERATE AC.
    """

    def __init__(
        self,
        crypto_cfg: Mapping[str, object],
        pan: str,
        psn: int | None,
        *,
        cdol1: bytes | None = None,
        cdol2: bytes | None = None,
        aip: bytes | None = None,
        pin_try_counter: int = 3,
    ) -> None:
        self.config = cvn.CryptoConfig.from_mapping(crypto_cfg)
        self._keys = cvn.derive_card_keys(self.config, pan, psn)
        self._masked_pan = pan[:6] + "*" * max(0, len(pan) - 10) + pan[-4:]
        self._cdol1 = cdol1
        self._cdol2 = cdol2
        self._aip = aip
        self.pin_try_counter = pin_try_counter
        self._history = _History()
        self._txn: _Transaction | None = None
        self._pending_pin = _PendingPin()

    def __repr__(self) -> str:
        return f"CardCrypto(cvn={self.config.version.cvn}, pan={self._masked_pan}, {self.config.kcvs()})"

    # --- what the engine may read -------------------------------------------------------

    required_cdol_tags: tuple[int, ...] = tuple(tag for tag, _ in cvn.TERMINAL_AC_TAGS)

    @property
    def last_arqc(self) -> bytes | None:
        """The ARQC of the current transaction, if the card gave one."""
        return self._txn.arqc if self._txn else None

    @property
    def issuer_authentication(self) -> bool | None:
        """None if not performed in this transaction, else whether the ARPC verified."""
        if self._txn is None or self._txn.issuer_auth is None:
            return None
        return self._txn.issuer_auth.valid

    @property
    def script_counter(self) -> int:
        """Script commands processed with a good MAC over the card's life."""
        return self._history.script_counter

    # --- transaction flow ---------------------------------------------------------------

    def begin_transaction(self, atc: int) -> None:
        """Start a transaction (at GET PROCESSING OPTIONS, with the incremented ATC)."""
        previous = self._txn
        history = self._history
        if previous is not None:
            if previous.phase == "online":
                history.last_online_not_completed = True
            history.scripts_processed_last = previous.scripts_processed
            history.script_failed_last = previous.script_failed
            if previous.arqc is not None:
                history.script_received_last = previous.script_commands > 0
        txn = _Transaction(atc=atc)
        pending = self._pending_pin
        txn.offline_pin_performed = pending.performed
        txn.offline_pin_failed = pending.failed
        txn.offline_pin_enciphered = pending.enciphered
        self._pending_pin = _PendingPin()
        self._txn = txn

    def note_offline_pin(self, verified: bool, tries_remaining: int, *, enciphered: bool = False) -> None:
        """What a VERIFY gave: for the CVR of this (or the coming) transaction."""
        self.pin_try_counter = tries_remaining
        txn = self._txn
        target: _Transaction | _PendingPin
        target = self._pending_pin if txn is None or txn.phase == "complete" else txn
        if isinstance(target, _Transaction):
            target.offline_pin_performed = True
            target.offline_pin_failed = not verified
            target.offline_pin_enciphered = enciphered
        else:
            target.performed = True
            target.failed = not verified
            target.enciphered = enciphered

    def _current(self, atc: int) -> _Transaction:
        if self._txn is None or self._txn.atc != atc:
            self.begin_transaction(atc)
        assert self._txn is not None
        return self._txn

    def generate_ac(
        self,
        requested: str,
        cdol_data: bytes,
        atc: int,
        *,
        cdol: bytes | None = None,
        aip: bytes | None = None,
        card_decision: str | None = None,
    ) -> AcResult:
        """GENERATE AC: ``requested`` is 'AAC', 'TC' or 'ARQC' (P1 bits 8-7).

        ``cdol`` is the DOL describing ``cdol_data`` (default: CDOL1 for the
        first call of the transaction, CDOL2 for the second); ``card_decision``
        lets the engine's own card risk management cap the answer.
        """
        if requested not in CID or (card_decision is not None and card_decision not in CID):
            raise IncorrectP1P2(f"no cryptogram type {requested!r}")
        aip = aip if aip is not None else self._aip
        if aip is None:
            raise emvcrypto.CryptoInputError("GENERATE AC needs the AIP (give it here or to CardCrypto)")
        txn = self._current(atc)
        if txn.phase == "new":
            return self._first_ac(txn, requested, cdol_data, cdol or self._cdol1, aip, card_decision)
        if txn.phase == "online":
            return self._second_ac(txn, requested, cdol_data, cdol or self._cdol2, aip, card_decision)
        raise ConditionsNotSatisfied("GENERATE AC after the transaction ended")

    def _terminal_values(self, dol: bytes | None, data: bytes, which: str) -> dict[int, bytes]:
        if dol is None:
            raise emvcrypto.CryptoInputError(f"GENERATE AC needs {which} (give it here or to CardCrypto)")
        return _dol_values(dol, data, which)

    def _first_ac(
        self,
        txn: _Transaction,
        requested: str,
        data: bytes,
        dol: bytes | None,
        aip: bytes,
        card_decision: str | None,
    ) -> AcResult:
        values = self._terminal_values(dol, data, "CDOL1")
        missing = [f"{tag:X}" for tag in self.required_cdol_tags if tag not in values]
        if missing:
            raise cvn.CryptoConfigError(f"CDOL1 lacks tags {missing} that the cryptogram needs")
        txn.terminal = {tag: values[tag] for tag in self.required_cdol_tags}
        result = min(requested, card_decision or requested, key=_STRENGTH.__getitem__)
        txn.first_ac = result
        answer = self._answer(txn, aip, CID[result])
        if result == "ARQC":
            txn.arqc = answer.cryptogram
            txn.phase = "online"
        else:
            txn.phase = "complete"
            if result == "TC":
                self._count_offline_approval(txn)
        return answer

    def _second_ac(
        self,
        txn: _Transaction,
        requested: str,
        data: bytes,
        dol: bytes | None,
        aip: bytes,
        card_decision: str | None,
    ) -> AcResult:
        if requested == "ARQC":
            raise ConditionsNotSatisfied("the second GENERATE AC asks for TC or AAC, not ARQC")
        values = self._terminal_values(dol, data, "CDOL2")
        txn.terminal.update({tag: values[tag] for tag in self.required_cdol_tags if tag in values})
        arc = values.get(0x8A)
        if arc in _UNABLE_TO_GO_ONLINE_ARCS:
            txn.unable_to_go_online = True
        issuer_data = values.get(0x91, b"")
        if txn.issuer_auth is None and any(issuer_data):
            self._authenticate(txn, self._trim_cdol2_issuer_data(issuer_data))
        result = requested
        auth = txn.issuer_auth
        if result == "TC":
            if auth is not None and not auth.valid and self.config.aac_on_issuer_auth_failure:
                result = "AAC"
            elif auth is not None and auth.valid and not auth.issuer_approves:
                result = "AAC"
            elif arc is not None and arc not in cvn.APPROVING_ARCS:
                result = "AAC"
        result = min(result, card_decision or result, key=_STRENGTH.__getitem__)
        txn.second_ac = result
        answer = self._answer(txn, aip, CID[result])
        txn.phase = "complete"
        self._close_online(txn, result)
        return answer

    def _trim_cdol2_issuer_data(self, data: bytes) -> bytes:
        # CDOL2 gives tag 91 a fixed length; the terminal zero-fills what the issuer did not send.
        if self.config.arpc_method == 1:
            return data[:10]
        return data[:8] + data[8:].rstrip(b"\x00")

    def _close_online(self, txn: _Transaction, result: str) -> None:
        history = self._history
        history.last_online_not_completed = False
        auth = txn.issuer_auth
        history.issuer_auth_failed_last_online = auth is not None and not auth.valid
        history.issuer_auth_not_performed_last_online = auth is None and not txn.unable_to_go_online
        if result != "TC":
            return
        if txn.unable_to_go_online:
            self._count_offline_approval(txn)
        else:
            history.been_online = True
            history.cumulative_offline_amount = 0
            history.consecutive_offline = 0

    def _count_offline_approval(self, txn: _Transaction) -> None:
        history = self._history
        amount = _bcd_amount(txn.terminal.get(0x9F02, b""))
        history.cumulative_offline_amount = min(history.cumulative_offline_amount + amount, 10**12 - 1)
        history.consecutive_offline = min(history.consecutive_offline + 1, 0xFF)

    def _answer(self, txn: _Transaction, aip: bytes, cid: int) -> AcResult:
        iad = self._iad(txn)
        cryptogram = cvn.compute_cryptogram(self.config, self._keys, txn.terminal, aip, txn.atc, iad)
        return AcResult(cid, cryptogram, iad)

    # --- issuer authentication ------------------------------------------------------------

    def external_authenticate(self, issuer_authentication_data: bytes) -> bool:
        """EXTERNAL AUTHENTICATE with tag 91 contents: True when the ARPC verifies."""
        txn = self._txn
        if txn is None or txn.phase != "online":
            raise ConditionsNotSatisfied("EXTERNAL AUTHENTICATE without an ARQC pending")
        if txn.issuer_auth is not None:
            raise ConditionsNotSatisfied("EXTERNAL AUTHENTICATE came twice in one transaction")
        try:
            return self._authenticate(txn, issuer_authentication_data, strict=True)
        except emvcrypto.CryptoInputError as exc:
            raise WrongLength(str(exc)) from None

    def verify_arpc(self, arpc: bytes, arc: bytes, proprietary: bytes = b"") -> bool:
        """:meth:`external_authenticate` from parts: ``arc`` is the ARC (method 1) or CSU (method 2)."""
        return self.external_authenticate(arpc + arc + proprietary)

    def _authenticate(self, txn: _Transaction, data: bytes, *, strict: bool = False) -> bool:
        assert txn.arqc is not None
        try:
            result = cvn.check_issuer_authentication_data(
                self.config,
                self._keys,
                arqc=txn.arqc,
                atc=txn.atc,
                unpredictable_number=txn.terminal[0x9F37],
                data=data,
            )
        except emvcrypto.CryptoInputError:
            if strict:
                raise
            result = cvn.IssuerAuthentication(False, False, None, None)
        txn.issuer_auth = result
        return result.valid

    # --- issuer scripts ---------------------------------------------------------------------

    def check_script_command(self, apdu: bytes, *, current_pin: str | None = None) -> ScriptCommand:
        """Check a script command's secure messaging; the card's current PIN reads P2 = '01'."""
        if len(apdu) < 5:
            raise WrongLength(f"a script command of {len(apdu)} bytes has no header")
        cla, ins, p1, p2, lc = apdu[:5]
        if len(apdu) not in (5 + lc, 6 + lc):
            raise WrongLength(f"Lc {lc} but {len(apdu) - 5} bytes follow the header")
        if cla & 0x0C == 0:
            raise SecureMessagingFailed(f"CLA {cla:02X} does not announce secure messaging", sw=0x6987)
        txn = self._txn
        if txn is None or txn.arqc is None:
            raise ConditionsNotSatisfied("no ARQC in this transaction to key secure messaging")
        mac_length = self.config.script_mac_length
        if lc < mac_length:
            raise WrongLength(f"Lc {lc} cannot hold a {mac_length}-byte MAC")
        body = apdu[5 : 5 + lc]
        data, mac = body[:-mac_length], body[-mac_length:]
        index = txn.script_commands
        txn.script_commands += 1
        smi, smc = cvn.sm_session_keys(self.config, self._keys, atc=txn.atc, arqc=txn.arqc, index=index)
        expected = cvn.script_command_mac(
            self.config,
            smi,
            header=apdu[:5],
            atc=txn.atc,
            cryptogram=cvn.sm_cryptogram(self.config.version, txn.arqc, index),
            data=data,
        )
        if not hmac.compare_digest(mac, expected):
            txn.script_failed = True
            raise SecureMessagingFailed(f"script command {index} ({ins:02X}) MAC does not verify")
        new_pin = None
        if ins == 0x24 and p2 in (0x01, 0x02):
            if p2 == 0x01 and current_pin is None and self.config.version.pin_block == "vis":
                raise emvcrypto.CryptoInputError("PIN CHANGE with current PIN needs the card's current PIN")
            try:
                known_pin = current_pin if p2 == 0x01 else None
                new_pin = cvn.decipher_pin(self.config, self._keys, smc, data, known_pin)
            except emvcrypto.CryptoInputError as exc:
                txn.script_failed = True
                raise WrongData(f"PIN CHANGE data: {exc}") from None
        txn.scripts_processed += 1
        self._history.script_counter += 1
        name = _SCRIPT_NAMES.get(ins, f"INS {ins:02X}")
        return ScriptCommand(cla, ins, p1, p2, name, data, new_pin)

    # --- CVR and IAD ------------------------------------------------------------------------

    def _ac_type_bits(self, txn: _Transaction) -> int:
        first = {"AAC": 0x00, "TC": 0x10, "ARQC": 0x20}[txn.first_ac or "AAC"]
        second = 0x80 if txn.second_ac is None else {"AAC": 0x00, "TC": 0x40}[txn.second_ac]
        return first | second

    def _iad(self, txn: _Transaction) -> bytes:
        if self.config.version.scheme == "mchip":
            return cvn.build_iad(self.config, self._mchip_cvr(txn), self._mchip_counters())
        return cvn.build_iad(self.config, self._visa_cvr(txn))

    def _visa_cvr(self, txn: _Transaction) -> bytes:
        history = self._history
        auth = txn.issuer_auth
        byte2 = self._ac_type_bits(txn)
        byte2 |= 0x08 if auth is not None and not auth.valid else 0
        byte2 |= 0x04 if txn.offline_pin_performed else 0
        byte2 |= 0x02 if txn.offline_pin_performed and txn.offline_pin_failed else 0
        byte2 |= 0x01 if txn.unable_to_go_online else 0
        byte3 = 0x80 if history.last_online_not_completed else 0
        byte3 |= 0x40 if self.pin_try_counter == 0 else 0
        byte3 |= 0x10 if not history.been_online else 0
        byte3 |= 0x08 if history.issuer_auth_failed_last_online else 0
        byte3 |= 0x04 if history.issuer_auth_not_performed_last_online else 0
        byte4 = min(history.scripts_processed_last, 15) << 4
        byte4 |= 0x08 if history.script_failed_last else 0
        return bytes([0x03, byte2, byte3, byte4])

    def _mchip_cvr(self, txn: _Transaction) -> bytes:
        history = self._history
        byte1 = self._ac_type_bits(txn)
        byte1 |= 0x04 if txn.offline_pin_performed else 0
        byte1 |= 0x02 if txn.offline_pin_performed and txn.offline_pin_enciphered else 0
        byte1 |= 0x01 if txn.offline_pin_performed and not txn.offline_pin_failed else 0
        byte2 = 0x10 if txn.issuer_auth is not None else 0
        byte3 = ((history.script_counter & 0x0F) << 4) | (self.pin_try_counter & 0x0F)
        byte4 = 0x80 if history.last_online_not_completed else 0
        byte4 |= 0x40 if txn.unable_to_go_online else 0
        byte4 |= 0x20 if not txn.offline_pin_performed else 0
        byte4 |= 0x10 if txn.offline_pin_performed and txn.offline_pin_failed else 0
        byte4 |= 0x08 if self.pin_try_counter == 0 else 0
        byte5 = 0x04 if history.issuer_auth_failed_last_online else 0
        byte5 |= 0x02 if history.script_received_last else 0
        byte5 |= 0x01 if history.script_failed_last else 0
        return bytes([byte1, byte2, byte3, byte4, byte5, 0x00])

    def _mchip_counters(self) -> bytes:
        history = self._history
        amount = bytes.fromhex(f"{history.cumulative_offline_amount:012d}")
        return amount + bytes([history.consecutive_offline, 0xFF])
