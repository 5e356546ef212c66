"""Sign-on (签到): get fresh working keys from the host and the batch number.

0800 with 11 (trace), 41, 42, 60 (``00`` + batch + network management code)
and 63 (operator). Codes: ``001`` single-length keys (PIK, MAK), ``003``
double-length PIK and a MAK (single-length in UnionPay's definition, double
with an X9.19 or AES host), ``004`` as 003 plus a double-length track data
key. Single-DES keys are refused unless the host profile's legacy mode says
so. Network management messages carry no MAC: a replayed answer (an earlier
session's keys, with the new trace number) is refused by the key history.

The 0810 must answer this request (type, trace, terminal, merchant) and echo
the network management code; a refusal (39 not ``00``) is an outcome and
installs nothing. On ``00`` field 62 must have the length of the code asked
for, and `firmware.keys.working_keys` installs its keys in the key store
(each checked by its KCV, all or none: a wrong KCV raises and the old keys
stay; the working keys become exactly these, so no key of an earlier session
is left), and 60.2 gives the batch number the terminal works in now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from firmware.errors import MessageFieldError
from firmware.host.channel import HostLink
from firmware.host.codes import TransactionCode
from firmware.host.messages import TerminalIdentity, check_answer, field60, format_stan, parse_field60
from firmware.host.spec import IsoMessage, pack, unpack
from firmware.keys.key_history import WorkingKeyHistory
from firmware.keys.store import KeyStore
from firmware.keys.working_keys import install_working_keys, parse_unionpay_field62

__all__ = [
    "KEYS_DOUBLE",
    "KEYS_DOUBLE_WITH_TDK",
    "KEYS_SINGLE",
    "SignOnResult",
    "build_sign_on",
    "read_sign_on_answer",
    "sign_on",
]

KEYS_SINGLE: Final = "001"
KEYS_DOUBLE: Final = "003"
KEYS_DOUBLE_WITH_TDK: Final = "004"
_KEY_SCHEMES: Final = (KEYS_SINGLE, KEYS_DOUBLE, KEYS_DOUBLE_WITH_TDK)


@dataclass(frozen=True)
class SignOnResult:
    """What a sign-on came to: approved or the host's response code; batch, host clock, key KCVs."""

    response_code: str
    batch_number: str | None = None
    host_date: str | None = None  # MMDD (field 13)
    host_time: str | None = None  # hhmmss (field 12)
    kcvs: Mapping[str, str] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return self.response_code == "00"


def build_sign_on(
    terminal: TerminalIdentity,
    *,
    stan: int,
    batch_number: int | str,
    operator: str,
    key_scheme: str = KEYS_DOUBLE,
) -> IsoMessage:
    """The 0800 sign-on request."""
    if key_scheme not in _KEY_SCHEMES:
        raise MessageFieldError(f"unknown sign-on key scheme {key_scheme!r}", "60")
    return {
        **terminal.fields(),
        "t": "0800",
        "11": format_stan(stan),
        "60": field60(TransactionCode.MANAGEMENT, batch_number, key_scheme),
        "63": operator,
    }


def read_sign_on_answer(
    request: Mapping[str, str],
    answer: Mapping[str, str],
    store: KeyStore,
    *,
    history: WorkingKeyHistory | None = None,
    allow_single_des: bool = False,
) -> SignOnResult:
    """Check the 0810 against its request and, when approved, install the working keys it carries.

    A set of keys installed before (a replayed answer) raises VerificationError; a single-DES key
    CryptoError unless `allow_single_des` (the host profile's legacy mode). Nothing is installed then.
    """
    check_answer(request, answer)
    if answer.get("42", request["42"]) != request["42"]:
        raise MessageFieldError(f"answer for merchant {answer.get('42')!r}", "42")
    code = answer.get("39")
    if code is None:
        raise MessageFieldError("sign-on answer without a response code", "39")
    if code != "00":
        return SignOnResult(code)
    _, batch, scheme = parse_field60(answer.get("60", ""))
    requested = parse_field60(request["60"])[2]
    if scheme != requested or len(batch) != 6:
        raise MessageFieldError(f"answer 60 {answer.get('60')!r} to a {requested} sign-on", "60")
    if "62" not in answer:
        raise MessageFieldError("approved sign-on without working keys", "62")
    keys = parse_unionpay_field62(bytes.fromhex(answer["62"]), requested)
    install_working_keys(store, keys, history=history, allow_single_des=allow_single_des)
    return SignOnResult(
        code,
        batch_number=batch,
        host_date=answer.get("13"),
        host_time=answer.get("12"),
        kcvs={name: store.kcv(name) for name in keys},
    )


def sign_on(
    link: HostLink,
    store: KeyStore,
    terminal: TerminalIdentity,
    *,
    stan: int,
    batch_number: int | str,
    operator: str = "001",
    key_scheme: str = KEYS_DOUBLE,
    timeout: float | None = None,
    history: WorkingKeyHistory | None = None,
    allow_single_des: bool = False,
) -> SignOnResult:
    """Sign on over `link`: build, exchange, check, install. Errors of `firmware.errors` otherwise."""
    request = build_sign_on(
        terminal, stan=stan, batch_number=batch_number, operator=operator, key_scheme=key_scheme
    )
    answer = unpack(link.exchange(pack(request), timeout))
    return read_sign_on_answer(request, answer, store, history=history, allow_single_des=allow_single_des)
