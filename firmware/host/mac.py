"""The MAC of a host message: what it covers, putting it on a request, checking it on an answer.

As in the UnionPay POS rules, the MAC block (MAB) runs from the message type
to the end of field 63: everything after TPDU and header except the MAC
itself, bitmap bit 64 included. The MAC is field 64, or field 128 when the
message has a secondary bitmap (a 0400 with field 90), and is always the last
`MAC_LENGTH` bytes. The algorithm (`MacProfile`: UnionPay ECB, X9.19,
AES-CMAC) belongs to the key: it comes in as a `MessageMac`; `StoreMac` is the
one over the terminal's key store (the MAK installed at sign-on), `KeyMac` one
over key bytes in hand. `MessageMac.verify` raises VerificationError when the
MAC does not verify (one verification shape); `open_answer` turns that into
MacMismatchError, naming the answer.

An answer without a MAC can only ever be read as a decline, and only for the
few response codes a host gives when it has no session key to MAC with
(`UNMACED_DECLINE_CODES`); any other code without a valid MAC (approvals
00, 10, 11, 16, and every code not listed) is a MacMismatchError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from firmware.errors import MacMismatchError, MessageFieldError, VerificationError
from firmware.host.spec import IsoMessage, message_offset, pack, unpack
from firmware.keys.mac import MAC_LENGTH, MacProfile, compute_mac, verify_mac
from firmware.keys.store import KeyStore

__all__ = [
    "UNMACED_DECLINE_CODES",
    "KeyMac",
    "MessageMac",
    "StoreMac",
    "mac_block",
    "mac_checked",
    "mac_field",
    "open_answer",
    "seal",
]

_PLACEHOLDER: Final = "00" * MAC_LENGTH

# Declines a host sends without a MAC because it has no MAK it can use for this terminal:
# A0 the request's MAC failed (MAC 校验错), 77 sign on again (重新签到), 97 terminal not
# registered (终端未登记). Everything else, approvals above all, must carry a valid MAC.
UNMACED_DECLINE_CODES: Final = frozenset({"A0", "77", "97"})


class MessageMac(Protocol):
    """One MAC key with its algorithm."""

    def compute(self, data: bytes) -> bytes: ...

    def verify(self, data: bytes, mac: bytes) -> None:
        """Raise VerificationError unless `mac` is this key's MAC of `data`."""


class KeyMac:
    """A MAC key in hand with its host profile's algorithm."""

    def __init__(self, profile: MacProfile, key: bytes) -> None:
        self.profile = profile
        self._key = key

    def __repr__(self) -> str:
        return f"KeyMac({self.profile!r})"

    def compute(self, data: bytes) -> bytes:
        return compute_mac(self.profile, self._key, data)

    def verify(self, data: bytes, mac: bytes) -> None:
        verify_mac(self.profile, self._key, data, mac)


class StoreMac:
    """The key store's MAC key (read for each use, never kept) with the host profile's algorithm."""

    def __init__(self, store: KeyStore, profile: MacProfile, key_name: str = "MAK") -> None:
        self.store = store
        self.profile = profile
        self.key_name = key_name

    def __repr__(self) -> str:
        return f"StoreMac({self.profile!r}, {self.key_name!r})"

    def compute(self, data: bytes) -> bytes:
        return KeyMac(self.profile, self.store.get(self.key_name)).compute(data)

    def verify(self, data: bytes, mac: bytes) -> None:
        KeyMac(self.profile, self.store.get(self.key_name)).verify(data, mac)


def mac_field(message: Mapping[str, str]) -> str:
    """Field 128 when any field above 64 is present (secondary bitmap), else field 64."""
    return "128" if any(key.isdigit() and 64 < int(key) <= 128 for key in message) else "64"


def mac_block(packed: bytes) -> bytes:
    """The bytes the MAC covers in a packed message that ends with its MAC."""
    start = message_offset()
    if len(packed) < start + 2 + 8 + MAC_LENGTH:
        raise MessageFieldError("message too short to carry a MAC", "64", len(packed))
    return packed[start:-MAC_LENGTH]


def seal(message: Mapping[str, str], mac: MessageMac) -> bytes:
    """Pack `message` with its MAC (field 64 or 128) as the last 8 bytes."""
    fields = {key: value for key, value in message.items() if key not in ("64", "128")}
    packed = pack({**fields, mac_field(fields): _PLACEHOLDER})
    value = mac.compute(mac_block(packed))
    if len(value) != MAC_LENGTH:
        raise MessageFieldError(f"MAC must be {MAC_LENGTH} bytes, got {len(value)}", "64")
    return packed[:-MAC_LENGTH] + value


def mac_checked(answer: Mapping[str, str]) -> bool:
    """Whether an answer returned by `open_answer` carried a MAC that verified (else: an unMACed decline)."""
    return mac_field(answer) in answer


def open_answer(packed: bytes, mac: MessageMac, *, allow_unmaced_decline: bool = True) -> IsoMessage:
    """Unpack an answer and check its MAC; MacMismatchError when it does not verify.

    An answer without a MAC is accepted only when `allow_unmaced_decline` and its
    field 39 is one of `UNMACED_DECLINE_CODES` (the host could not MAC it); it is
    a decline, and `mac_checked` says it was not authenticated. Any other answer
    without a MAC, whatever its code, raises MacMismatchError.
    """
    message = unpack(packed)
    field = mac_field(message)
    if field not in message:
        code = message.get("39")
        if allow_unmaced_decline and code in UNMACED_DECLINE_CODES:
            return message
        raise MacMismatchError(
            f"answer {message.get('t')} with response code {code!r} carries no MAC (field {field})"
        )
    try:
        mac.verify(mac_block(packed), bytes.fromhex(message[field]))
    except VerificationError as error:
        raise MacMismatchError(
            f"answer {message.get('t')} trace {message.get('11', '-')}: MAC does not verify"
        ) from error
    return message
