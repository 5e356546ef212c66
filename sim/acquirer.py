"""The simulated acquirer's decisions: sign-on keys, MAC checks, ledger, faults (no sockets).

`AcquirerHost.handle(payload) -> Reply` takes one request as it came off the
wire (TPDU first) and says what to send back. `sim.host` puts it behind TCP.

What it answers:
- 0800 sign-on (60.3 ``001``/``003``/``004``): fresh random working keys
  under the terminal's TMK, with check values, in field 62; the batch number
  in 60.2. 0820 sign-off / echo: ``00``. Network management is not MACed.
- Every other message must carry a MAC under the session MAK (``A0``
  otherwise; ``77`` before any sign-on; ``97`` for an unknown terminal or a
  merchant id that is not its own); answers to MACed requests carry the
  host's MAC. A signed record in field 62 is checked first (`sim.uploads`:
  ``63`` when it does not verify, or is missing from a 0320 of a terminal
  with a registered device key).
- 60.1 (`TransactionCode`) by message type: 0100 takes 10 (pre-authorisation)
  and 11 (its void); 0200 takes 22 (sale; a request without 60.1 is a sale),
  01 (balance inquiry, not booked), 20 (completion), 21 (completion void), 23
  (void); 0220 takes 25 (refund) and 32 (tip adjust). Any other code: ``40``.
- Decisions (0100/10, 0200 sales, balance inquiries and completions with
  field 55): with field 55 and an issuer (`sim.issuer.Issuer`;
  `issuer_from_profiles` knows every simulated card) the issuer checks the
  ARQC and decides, and its tag 91 and scripts go back in field 55 (no answer
  at all when its ``no_answer`` fault is on); otherwise the amount's last two
  digits do, with the issuer's table (``..05`` -> 05, ``..51`` -> 51, ``..55``
  -> 55, ...), a zero amount -> 13, anything else 00. ``decline=CODE`` forces
  the code (and the issuer's ARPC is computed for it).
- Voids, refunds, tip adjusts (0220/32: 61 names the sale, field 4 is its new
  total) and keyed completions (0200/20 without field 55: 61 and 38 name the
  pre-authorisation; at most its amount plus `completion_tolerance` percent,
  15 by default) are checked against the ledger: the rules and their codes
  are in `sim.ledger`. Each approved request is booked (`LedgerEntry`, with
  its `LedgerStatus`); ``ledger_path`` gets the ledger's JSON view
  (`AcquirerHost.ledger_view`) rewritten crash-safe after every change.
- 0400 reversal: the transaction with the trace of 90 (or 11) is reversed if
  approved (a reversed void gives its original back, a reversed refund its
  amount, a reversed tip adjust the sale's amount); answered ``00``.
- 0400, 0220 and 0320 are answered once per terminal, type and trace number:
  the same request again, or its repeat (0401, 0221: answered 0410, 0230),
  with the same content (every field but the MAC) gets the first answer
  again (same RRN, same code); other content under a used trace number gets
  ``94``. A repeat of a request never seen is handled as the first one.
- 0500 settlement compares field 48 (debit amount n12, count n3, credit
  amount n12, count n3, flag n1) with the host's own totals for the batch
  and answers flag 1 (balanced, batch closed) or 2.
- 0320 uploads (`sim.uploads`): customer notices (60.3 801) are kept in
  `AcquirerHost.notices` (``notices_path`` gets them as JSON), batch-upload
  records (203) in `AcquirerHost.batch_uploads`, and the batch upload end
  (207) closes the terminal's open batch.
- Any other message type: ``30``.

Faults (at construction, `set_faults` at run time, or ``faults SPEC`` on the
CLI's standard input), comma-separated: ``drop`` (handle, answer nothing, keep
the socket open), ``close`` (handle, close without answer), ``garbage``
(random bytes as answer), ``bad_mac``, ``bad_kcv`` (a sign-on answer whose PIK
check value is wrong), ``delay=S``, ``decline=CODE``, and to
aim them ``only=0200+0400`` (message types) and ``times=N``. What the
server then does is a `Reply` with its `ReplyAction`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from sim.emvcrypto import SimCryptoError
from sim.errors import HostCodecError, HostConfigError, MacMismatchError, ProfileError
from sim.hostcodec import HostMessage, decode, encode, mac_block
from sim.hostkeys import (
    KEY_SCHEMES,
    MacProfile,
    check_value,
    compute_mac,
    issue_working_keys,
    verify_mac,
)
from sim.issuer import DEFAULT_DECLINE_RULES, Field55Error, Issuer, encode_tlv
from sim.ledger import (
    NO_CODE,
    VOIDS,
    Check,
    Ledger,
    LedgerEntry,
    LedgerStatus,
    TransactionCode,
    write_json_atomic,
)
from sim.randomness import Rng
from sim.uploads import RecordUploads, UploadedRecord, signature_ok, signed_record_field

__all__ = [
    "DEFAULT_COMPLETION_TOLERANCE",
    "DEFAULT_TERMINALS",
    "AcquirerHost",
    "Faults",
    "IssuerDecision",
    "Ledger",
    "LedgerEntry",
    "LedgerStatus",
    "RegisteredTerminal",
    "Reply",
    "ReplyAction",
    "TransactionCode",
    "UploadedRecord",
    "amount_rules",
    "issuer_from_profiles",
    "load_terminals",
    "signed_record_field",
]

log = logging.getLogger("sim.acquirer")

_ACQUIRER_ID: Final = "48020000"
_NOT_MACED: Final = frozenset({"0800", "0820"})
# A repeat (0401, 0221) is the original type sent again: answered as that type (0410, 0230).
_REPEATS: Final = {"0401": "0400", "0221": "0220"}
# Answered once per terminal, original type and trace: a repeat gets the first answer again.
_IDEMPOTENT: Final = frozenset({"0400", "0220", "0320"})
# Authorisation answers that approve (and are booked): 00, 08 honour with identification, 11 VIP; 10 a
# partial approval (half the amount here; the terminal reverses it, it does not complete partial approvals).
_PARTIAL_APPROVAL: Final = "10"
_APPROVALS: Final = frozenset({"08", "11", _PARTIAL_APPROVAL})
# 60.1 codes each financial message type takes (a request without 60.1 is a sale); others: 40.
_ACCEPTED: Final[dict[str, tuple[str, ...]]] = {
    "0100": (TransactionCode.PREAUTH, TransactionCode.PREAUTH_VOID),
    "0200": (TransactionCode.SALE, NO_CODE, TransactionCode.BALANCE_INQUIRY, TransactionCode.COMPLETION,
             TransactionCode.COMPLETION_VOID, TransactionCode.VOID),
    "0220": (TransactionCode.REFUND, TransactionCode.TIP_ADJUST),
}  # fmt: skip
# What the issuer (or the amount rules) decides; the other codes are checked against the ledger.
_DECIDED: Final = (TransactionCode.SALE, TransactionCode.PREAUTH, TransactionCode.BALANCE_INQUIRY, NO_CODE)
_NOT_SUPPORTED: Final = "40"
DEFAULT_COMPLETION_TOLERANCE: Final = 15  # percent above the pre-authorised amount


@dataclass(frozen=True)
class RegisteredTerminal:
    """A terminal as provisioned at the acquirer: ids, TMK, MAC profile, device signing key."""

    terminal_id: str
    merchant_id: str
    tmk: bytes
    mac_profile: MacProfile = MacProfile.X919  # double-length MAK; unionpay-ecb with 003 is single DES
    device_public_key: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.terminal_id) != 8 or len(self.merchant_id) != 15:
            raise HostConfigError("terminal id must be 8 characters and merchant id 15")
        if len(self.tmk) not in (8, 16, 24):
            raise HostConfigError(f"terminal {self.terminal_id}: TMK must be 8, 16 or 24 bytes")
        try:
            # A profile given by its name (a terminal table, a test) is kept as the enum member.
            object.__setattr__(self, "mac_profile", MacProfile(self.mac_profile))
        except ValueError:
            raise HostConfigError(
                f"terminal {self.terminal_id}: unknown MAC profile {self.mac_profile!r}"
            ) from None
        if self.device_public_key is not None and len(self.device_public_key) != 32:
            raise HostConfigError(f"terminal {self.terminal_id}: Ed25519 public key must be 32 bytes")

    def __repr__(self) -> str:
        kcv = check_value(self.tmk, 3).hex().upper()
        return (
            f"RegisteredTerminal({self.terminal_id}, {self.merchant_id}, TMK KCV {kcv}, {self.mac_profile})"
        )


# TEST key only, labelled as such: the TMK of the simulator's default terminal.
TEST_TMK: Final = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
DEFAULT_TERMINALS: Final = (RegisteredTerminal("00000001", "123456789012345", TEST_TMK),)


def load_terminals(path: Path) -> list[RegisteredTerminal]:
    """Terminals from JSON: ``[{"terminal_id", "merchant_id", "tmk" (hex, TEST keys), ...}]``."""
    try:
        entries = json.loads(path.read_text())
        return [
            RegisteredTerminal(
                terminal_id=entry["terminal_id"],
                merchant_id=entry["merchant_id"],
                tmk=bytes.fromhex(entry["tmk"]),
                mac_profile=entry.get("mac_profile", MacProfile.X919),
                device_public_key=(
                    bytes.fromhex(entry["device_public_key"]) if entry.get("device_public_key") else None
                ),
            )
            for entry in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HostConfigError(f"{path}: {error}") from None


@dataclass(frozen=True)
class Faults:
    """What goes wrong with the next answers."""

    drop: bool = False
    close: bool = False
    garbage: bool = False
    bad_mac: bool = False
    bad_kcv: bool = False
    delay: float = 0.0
    decline: str | None = None
    only: frozenset[str] | None = None
    times: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """``drop,delay=1.5,decline=51,only=0200+0400,times=1``; ``""`` or ``none`` for no faults."""
        values: dict[str, Any] = {}
        for item in (part.strip() for part in spec.split(",")):
            if not item or item == "none":
                continue
            name, _, value = item.partition("=")
            try:
                if name in ("drop", "close", "garbage", "bad_mac", "bad_kcv") and not value:
                    values[name] = True
                elif name == "delay":
                    values[name] = float(value)
                elif name == "decline" and len(value) == 2:
                    values[name] = value
                elif name == "only" and value:
                    values[name] = frozenset(value.split("+"))
                elif name == "times":
                    values[name] = int(value)
                else:
                    raise ValueError(item)
            except ValueError:
                raise HostConfigError(f"bad fault switch {item!r}") from None
        return cls(**values)

    def applies_to(self, mti: str) -> bool:
        return (self.only is None or mti in self.only) and (self.times is None or self.times > 0)


class ReplyAction(StrEnum):
    """What the server does with one request."""

    ANSWER = "answer"  # send the answer
    DROP = "drop"  # send nothing, keep the connection open
    CLOSE = "close"  # send nothing, close the connection


@dataclass(frozen=True)
class Reply:
    """What the server does with one request: send `answer`, or drop / close; after `delay` s."""

    action: ReplyAction
    answer: bytes = b""
    delay: float = 0.0


@dataclass(frozen=True)
class IssuerDecision:
    """An authorisation decision; `field55` goes back in the answer (91, 71/72)."""

    response_code: str
    field55: bytes = b""


Authoriser = Callable[[HostMessage], IssuerDecision]


def amount_rules(request: HostMessage) -> IssuerDecision:
    """The decision without card data: by the amount's last two digits (the issuer's table)."""
    amount = int(request.text(4, "0") or "0")
    if amount == 0:
        return IssuerDecision("13")
    return IssuerDecision(DEFAULT_DECLINE_RULES.get(amount % 100, "00"))


def issuer_from_profiles() -> Issuer:
    """An issuer holding the keys of every simulated card profile (by PAN)."""
    from sim.profile import load_profile, profile_names

    ranges: dict[str, Any] = {}
    for name in profile_names():
        try:
            profile = load_profile(name)
        except ProfileError as error:
            log.warning("profile %s left out of the issuer: %s", name, error)
            continue
        for application in profile.applications:
            if application.crypto:
                ranges.setdefault(application.pan, application.crypto)
    return Issuer(ranges)


def _mac_field(message: HostMessage) -> int:
    """Field 128 carries the MAC of a message with a secondary bitmap, field 64 otherwise."""
    return 128 if any(64 < number < 128 for number in message.fields) else 64


class _NoAnswer(Exception):
    """The issuer did not answer: the host sends nothing back."""


@dataclass
class _Session:
    mak: bytes
    pik: bytes
    tdk: bytes | None


@dataclass
class _TerminalState:
    registered: RegisteredTerminal
    batch: int = 1
    session: _Session | None = None
    answered: dict[tuple[str, str], tuple[str, HostMessage]] = field(default_factory=dict)


class AcquirerHost:
    """The host's decisions, keys and ledger. Thread-safe; no sockets."""

    def __init__(
        self,
        terminals: Iterable[RegisteredTerminal] = DEFAULT_TERMINALS,
        *,
        faults: Faults | None = None,
        authorise: Authoriser | None = None,
        issuer: Issuer | None = None,
        token_bytes: Rng = secrets.token_bytes,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = datetime.now,
        completion_tolerance: int = DEFAULT_COMPLETION_TOLERANCE,
        ledger_path: Path | None = None,
        notices_path: Path | None = None,
    ) -> None:
        if completion_tolerance < 0:
            raise HostConfigError("the completion tolerance is a percentage of 0 or more")
        self._terminals = {t.terminal_id: _TerminalState(t) for t in terminals}
        self._faults = faults or Faults()
        self._authorise = authorise or amount_rules
        self.issuer = issuer
        self._token_bytes = token_bytes
        self._rng = rng or random.Random()  # garbage answers only, not secrets
        self._clock = clock
        self._lock = threading.RLock()
        self._sequence = 0
        self._completion_tolerance = completion_tolerance
        self.ledger = Ledger()
        self._uploads = RecordUploads()
        self._ledger_path = ledger_path
        self._notices_path = notices_path
        self._written_ledger: list[dict[str, Any]] | None = None
        self._written_notices: list[dict[str, Any]] | None = None
        self._write_files()

    # ----- control --------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults | str | None) -> None:
        with self._lock:
            self._faults = Faults.parse(faults) if isinstance(faults, str) else (faults or Faults())

    def working_key_kcvs(self, terminal_id: str) -> dict[str, str]:
        """KCVs (4 bytes, hex) of the session keys the host issued to a terminal; {} before sign-on."""
        with self._lock:
            session = self._terminals[terminal_id].session
            if session is None:
                return {}
            keys = {"PIK": session.pik, "MAK": session.mak}
            if session.tdk is not None:
                keys["TDK"] = session.tdk
            kcvs = {name: check_value(key).hex().upper() for name, key in keys.items()}
            return kcvs

    @property
    def notices(self) -> list[UploadedRecord]:
        """The customer notices received (0320, 60.3 801), one per record id and terminal."""
        return self._uploads.notices

    @property
    def batch_uploads(self) -> list[UploadedRecord]:
        """The batch-upload records received (0320, 60.3 203), one per record id and terminal."""
        return self._uploads.batch_uploads

    def ledger_view(self) -> list[dict[str, Any]]:
        """The ledger as JSON data (`sim.ledger`: what ``--ledger FILE`` holds)."""
        with self._lock:
            return self.ledger.view()

    def batch_number(self, terminal_id: str) -> str:
        with self._lock:
            return f"{self._terminals[terminal_id].batch:06d}"

    def mac_for(self, terminal_id: str, data: bytes) -> bytes:
        """The MAC this host puts on (or expects over) a MAC block, under the session MAK."""
        with self._lock:
            state = self._terminals[terminal_id]
            if state.session is None:
                raise HostConfigError(f"terminal {terminal_id} has not signed on")
            return compute_mac(state.registered.mac_profile, state.session.mak, data)

    # ----- one request ----------------------------------------------------------------
    def handle(self, request: bytes) -> Reply:
        """Decide the reply to one framed payload. Undecodable requests get no answer (close)."""
        try:
            message = decode(request)
        except HostCodecError as error:
            log.warning("undecodable request: %s", error)
            return Reply(ReplyAction.CLOSE)
        with self._lock:
            faults = self._faults
            applies = faults.applies_to(message.mti)
            if applies and faults.times is not None:
                self._faults = replace(faults, times=faults.times - 1)
            try:
                answer = self._answer(message, request, faults if applies else Faults())
            except _NoAnswer:
                return Reply(ReplyAction.DROP)
            finally:
                self._write_files()
            if not applies:
                return Reply(ReplyAction.ANSWER, answer)
            if faults.bad_mac and len(answer) > 8:
                answer = answer[:-1] + bytes([answer[-1] ^ 0x01])
            if faults.garbage:
                answer = bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(12, 64)))
            action = (
                ReplyAction.DROP if faults.drop else ReplyAction.CLOSE if faults.close else ReplyAction.ANSWER
            )
            return Reply(action, answer, faults.delay)

    def _answer(self, request: HostMessage, raw: bytes, faults: Faults) -> bytes:
        original_type = _REPEATS.get(request.mti, request.mti)
        answer = HostMessage(
            mti=f"{int(original_type) + 10:04d}",
            tpdu=request.tpdu[:1] + request.tpdu[3:5] + request.tpdu[1:3],
            header=request.header,
        )
        for number in (2, 3, 4, 11, 22, 25, 41, 42, 49, 60, 90):
            if number in request.fields:
                answer.fields[number] = request.fields[number]
        now = self._clock()
        answer.fields[12] = f"{now:%H%M%S}"
        answer.fields[13] = f"{now:%m%d}"
        answer.fields[32] = _ACQUIRER_ID
        terminal_id = request.text(41)
        state = self._terminals.get(terminal_id)
        if state is None or request.text(42) != state.registered.merchant_id:
            return self._finish(answer, "97", None)
        if request.mti in _NOT_MACED:
            return self._network_management(request, answer, state, faults.bad_kcv)
        if state.session is None:
            return self._finish(answer, "77", None)
        mac_field = _mac_field(request)
        try:
            if mac_field not in request.fields:
                raise MacMismatchError(f"no MAC (field {mac_field})")
            mak = state.session.mak
            verify_mac(state.registered.mac_profile, mak, mac_block(raw), request.raw(mac_field))
        except MacMismatchError as error:
            log.info("%s %s: bad MAC: %s", terminal_id, request.mti, error)
            return self._finish(answer, "A0", None)
        if original_type != request.mti:
            request = replace(request, mti=original_type)  # a repeat: handled as the original
        if request.mti in _IDEMPOTENT:
            return self._answer_once(request, answer, state, faults.decline)
        return self._route(request, answer, state, faults.decline)

    def _finish(self, answer: HostMessage, code: str, state: _TerminalState | None) -> bytes:
        answer.fields[39] = code
        if 37 not in answer.fields:
            answer.fields[37] = self._next_rrn()
        if state is None or state.session is None:
            return encode(answer)
        answer.fields[_mac_field(answer)] = bytes(8)
        packed = encode(answer)
        return packed[:-8] + compute_mac(state.registered.mac_profile, state.session.mak, mac_block(packed))

    def _next_rrn(self) -> str:
        self._sequence += 1
        return f"{self._clock():%H%M%S}{self._sequence % 1_000_000:06d}"

    # ----- network management ---------------------------------------------------------
    def _network_management(
        self, request: HostMessage, answer: HostMessage, state: _TerminalState, bad_kcv: bool
    ) -> bytes:
        field60 = request.text(60)
        code = field60[8:11]
        if request.mti == "0820":
            if code == "002":
                state.session = None
            return self._finish(answer, "00", None)
        if code not in KEY_SCHEMES or len(field60) < 11:
            return self._finish(answer, "30", None)
        profile = state.registered.mac_profile
        if profile != MacProfile.UNIONPAY_ECB and code == "001":
            return self._finish(answer, "30", None)
        issued = issue_working_keys(
            state.registered.tmk,
            code,
            self._token_bytes,
            mak_length=8 if profile == MacProfile.UNIONPAY_ECB else 16,
            aes_mak=profile == MacProfile.AES_CMAC,
        )
        state.session = _Session(issued.mak, issued.pik, issued.tdk)
        answer.fields[60] = TransactionCode.MANAGEMENT + f"{state.batch:06d}" + code
        field62 = bytearray(issued.field62)
        if bad_kcv:
            field62[len(issued.pik) + 3] ^= 0xFF  # last byte of the PIK's check value
        answer.fields[62] = bytes(field62)
        log.info("%s signed on (%s): %r", state.registered.terminal_id, code, issued)
        return self._finish(answer, "00", None)

    # ----- MACed requests: authorisation, financial, reversal, upload, settlement --------
    def _answer_once(
        self,
        request: HostMessage,
        answer: HostMessage,
        state: _TerminalState,
        forced_decline: str | None,
    ) -> bytes:
        """0400, 0220, 0320 (and the repeats 0401, 0221, already given their original type): a request
        under a trace already answered gets the first answer again when its content is the same, 94
        otherwise. The content is every field but the MAC."""
        key = (request.mti, request.text(11))
        digest = _content_digest(request)
        seen = state.answered.get(key)
        if seen is not None:
            if seen[0] != digest:
                log.info("%s %s %s: other content under a used trace", state.registered.terminal_id, *key)
                return self._finish(answer, "94", state)
            first = replace(seen[1], tpdu=answer.tpdu, header=answer.header)
            return self._finish(first, first.text(39), state)
        packed = self._route(request, answer, state, forced_decline)
        state.answered[key] = (digest, answer)
        return packed

    def _route(
        self, request: HostMessage, answer: HostMessage, state: _TerminalState, forced_decline: str | None
    ) -> bytes:
        """A MACed request: its signed record (field 62) checked, then handled by message type."""
        mti = request.mti
        if not signature_ok(request, state.registered.device_public_key):
            log.warning("%s %s: signed record does not verify", state.registered.terminal_id, mti)
            return self._finish(answer, "63", state)
        if mti == "0400":
            return self._reverse(request, answer, state)
        if mti == "0500":
            return self._settle(request, answer, state)
        if mti == "0320":
            return self._upload(request, answer, state)
        if mti not in _ACCEPTED:
            return self._finish(answer, "30", state)
        return self._authorise_or_book(request, answer, state, forced_decline)

    def _authorise_or_book(
        self, request: HostMessage, answer: HostMessage, state: _TerminalState, forced_decline: str | None
    ) -> bytes:
        """0100 / 0200 / 0220: decide (issuer, amount rules) or check against the ledger (voids,
        refunds, tip adjusts, keyed completions); an approved one is booked in the ledger."""
        mti = request.mti
        field60 = request.text(60)
        type_code = field60[:2]
        if type_code not in _ACCEPTED[mti]:
            return self._finish(answer, _NOT_SUPPORTED, state)
        open_batch = f"{state.batch:06d}"
        batch = field60[2:8] or open_batch
        terminal_id = state.registered.terminal_id
        amount = int(request.text(4, "0") or "0")
        code, field55 = "00", b""
        check: Check | None = None
        if type_code in _DECIDED or (type_code == TransactionCode.COMPLETION and 55 in request.fields):
            decision = self._decide(request, amount, forced_decline)
            code, field55 = decision.response_code, decision.field55
        elif forced_decline is not None:
            code = forced_decline
        elif type_code in VOIDS:
            check = self.ledger.check_void(terminal_id, open_batch, request, amount)
        elif type_code == TransactionCode.REFUND:
            check = self.ledger.check_refund(terminal_id, request, amount)
        elif type_code == TransactionCode.TIP_ADJUST:
            check = self.ledger.check_tip_adjust(terminal_id, open_batch, request, amount)
        elif type_code == TransactionCode.COMPLETION:
            check = self.ledger.check_completion(terminal_id, request, amount, self._completion_tolerance)
        if check is not None:
            code = check.code
        if field55:
            answer.fields[55] = field55
        decided = type_code in _DECIDED or type_code == TransactionCode.COMPLETION
        if code != "00" and not (decided and code in _APPROVALS):
            return self._finish(answer, code, state)
        if code == _PARTIAL_APPROVAL:
            amount //= 2  # the issuer approved half: field 4 of the answer says how much
            answer.fields[4] = f"{amount:012d}"
        rrn = self._next_rrn()
        auth_code = f"{self._sequence % 1_000_000:06d}"
        answer.fields[37] = rrn
        answer.fields[38] = auth_code
        answer.fields[15] = f"{self._clock():%m%d}"
        if type_code == TransactionCode.BALANCE_INQUIRY:
            return self._finish(answer, "00", state)  # no money moves: nothing to book
        original = check.original if check is not None else self._completed_preauth(request, state)
        self.ledger.append(LedgerEntry(
            terminal_id, batch, request.text(11), mti, type_code, amount, rrn, auth_code,
            f"{self._clock():%m%d}", original=original,
        ))  # fmt: skip
        if original is not None:
            if type_code in VOIDS:
                original.status = LedgerStatus.VOIDED
            elif type_code == TransactionCode.REFUND:
                original.refunded += amount
            elif type_code == TransactionCode.TIP_ADJUST:
                original.adjusted_amount = amount
        return self._finish(answer, code, state)

    def _completed_preauth(self, request: HostMessage, state: _TerminalState) -> LedgerEntry | None:
        """The pre-authorisation an approved chip completion (decided by the issuer) completes, if found."""
        field61 = request.text(61)
        if request.text(60)[:2] != TransactionCode.COMPLETION or len(field61) < 12:
            return None
        preauth = self.ledger.find(state.registered.terminal_id, batch=field61[:6], stan=field61[6:12])
        if preauth is None or preauth.type_code != TransactionCode.PREAUTH:
            return None
        return preauth

    def _decide(self, request: HostMessage, amount: int, forced_decline: str | None) -> IssuerDecision:
        if self.issuer is None or 55 not in request.fields:
            return IssuerDecision(forced_decline) if forced_decline else self._authorise(request)
        pan = request.text(2) or request.text(35).split("D")[0]
        psn = int(request.text(23)) if 23 in request.fields else None
        try:
            answer = self.issuer.authorise(request.raw(55), pan, psn, amount, response_code=forced_decline)
        except Field55Error as error:
            log.info("field 55 refused: %s", error)
            return IssuerDecision("30")
        except SimCryptoError as error:
            log.warning("issuer failed: %s", error)
            return IssuerDecision("96")
        if answer is None:
            raise _NoAnswer
        field55 = answer.scripts
        if answer.issuer_authentication_data:
            field55 = encode_tlv(0x91, answer.issuer_authentication_data) + field55
        return IssuerDecision(answer.response_code, field55)

    def _reverse(self, request: HostMessage, answer: HostMessage, state: _TerminalState) -> bytes:
        stan = request.text(11)
        field90 = request.text(90)
        if field90:
            stan = field90[4:10]
        target = self.ledger.find(state.registered.terminal_id, stan=stan)
        if target is not None and target.status is LedgerStatus.APPROVED:
            target.status = LedgerStatus.REVERSED
            if target.original is not None:
                if target.type_code in VOIDS:
                    target.original.status = LedgerStatus.APPROVED
                elif target.type_code == TransactionCode.REFUND:
                    target.original.refunded -= target.amount
                elif target.type_code == TransactionCode.TIP_ADJUST:
                    target.original.adjusted_amount = None
        return self._finish(answer, "00", state)

    def _settle(self, request: HostMessage, answer: HostMessage, state: _TerminalState) -> bytes:
        batch = request.text(60)[2:8] or f"{state.batch:06d}"
        ours = self.ledger.batch_totals(state.registered.terminal_id, batch)
        theirs = request.text(48)[:30]
        balanced = theirs == ours
        answer.fields[48] = ours + ("1" if balanced else "2")
        if balanced and batch == f"{state.batch:06d}":
            self._close_batch(state)
        return self._finish(answer, "00", state)

    def _upload(self, request: HostMessage, answer: HostMessage, state: _TerminalState) -> bytes:
        outcome = self._uploads.receive(
            state.registered.terminal_id, f"{state.batch:06d}", request, self._clock()
        )
        if outcome.close_batch is not None:
            self._close_batch(state)
        return self._finish(answer, outcome.code, state)

    def _close_batch(self, state: _TerminalState) -> None:
        log.info("%s batch %06d closed", state.registered.terminal_id, state.batch)
        state.batch = state.batch % 999_999 + 1

    # ----- files ----------------------------------------------------------------------
    def _write_files(self) -> None:
        """The ledger and notices files, rewritten when what they hold changed."""
        if self._ledger_path is not None:
            view = self.ledger.view()
            if view != self._written_ledger:
                write_json_atomic(self._ledger_path, view)
                self._written_ledger = view
        if self._notices_path is not None:
            notices = [notice.view() for notice in self._uploads.notices]
            if notices != self._written_notices:
                write_json_atomic(self._notices_path, notices)
                self._written_notices = notices


def _content_digest(request: HostMessage) -> str:
    """What makes two requests under one trace the same request: every field but the MAC."""
    content = {
        str(number): value.hex() if isinstance(value, bytes) else value
        for number, value in sorted(request.fields.items())
        if number not in (64, 128)
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
