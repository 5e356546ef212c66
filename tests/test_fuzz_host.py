"""Fuzzing what comes back from the acquirer: ISO 8583 unpacking, the answer's MAC, the frame, the wire.

- `spec.unpack`: random bytes and damaged real answers give a message or a
  MessageFieldError naming the field, never another error;
- `mac.open_answer`: a MessageFieldError or a MacMismatchError; an answer that
  opens is one whose MAC verified (or an unMACed decline when allowed);
- `channel.read_frame` over a socket that sends fuzzed bytes and closes: only
  HostTimeoutError, HostConnectionLostError or MessageFieldError ("length");
- `Wire.exchange` over a HostLink that returns fuzzed bytes or fails as a channel
  does: the checked answer to this very request, or NotSent / NoValidAnswer /
  AnswerMacFailed, each saying whether money may have moved.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware.errors import (
    HostConnectionLostError,
    HostTimeoutError,
    HostUnreachableError,
    MessageFieldError,
)
from firmware.host.channel import read_frame
from firmware.host.mac import KeyMac, mac_checked, open_answer, seal
from firmware.host.spec import IsoMessage, pack, unpack
from firmware.keys.mac import MacProfile
from firmware.txn.wire import AnswerMacFailed, NotSent, NoValidAnswer, Wire
from tests.fuzz_targets import bounded, fuzz_settings

MAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
OTHER_MAK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # TEST key
PROFILES = st.sampled_from(list(MacProfile))

REQUEST: Mapping[str, str] = {
    "t": "0200",
    "3": "000000",
    "4": "000000001234",
    "11": "000042",
    "22": "051",
    "25": "00",
    "41": "TERM0001",
    "42": "123456789012345",
    "49": "156",
    "55": "9F2608" + "11" * 8 + "9F2701" + "80",
    "60": "22000001000",
}


def answer_to(request: Mapping[str, str], code: str = "00", **extra: str) -> IsoMessage:
    answer = {key: request[key] for key in ("3", "4", "11", "41", "42", "49") if key in request}
    answer.update(
        t=f"{int(request['t']) + 10:04d}",
        **{"12": "101112", "13": "0601", "37": "000000123456", "38": "A1B2C3", "39": code},
        **{"55": "910A" + "22" * 8 + "3030", "60": request.get("60", "22000001000")},
        **extra,
    )
    return answer


def _reversal_answer() -> IsoMessage:
    request = {"t": "0400", "3": "000000", "4": "000000001234", "11": "000043", "41": "TERM0001",
               "42": "123456789012345", "39": "98", "90": "0200000042" + "0" * 32}  # fmt: skip
    return answer_to(request, "00", **{"90": request["90"]})


@st.composite
def damaged_answer(draw: Callable[[st.SearchStrategy[Any]], Any], packed: bytes) -> bytes:
    data = bytearray(packed)
    for _ in range(draw(st.integers(1, 3))):
        if len(data) < 21:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == 1:  # the bitmap: announce, or drop, a field
            bit = draw(st.integers(0, 63))
            data[13 + bit // 8] ^= 0x80 >> (bit % 8)
        elif kind == 2:
            del data[at:]
        elif kind == 3:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == 4:  # a length prefix of a variable field, or a digit, made hostile
            data[at] = draw(st.sampled_from([0x00, 0x99, 0xFF, 0x3A, 0x9A, 0xAA]))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


def packed_answers(profile: MacProfile) -> st.SearchStrategy[bytes]:
    mac = KeyMac(profile, MAK if profile is not MacProfile.AES_CMAC else MAK + MAK)
    corpus = [
        seal(answer_to(REQUEST), mac),
        seal(answer_to(REQUEST, "51"), mac),
        seal(_reversal_answer(), mac),
        pack(answer_to(REQUEST, "A0")),
        pack(answer_to(REQUEST, "00")),
    ]
    return st.sampled_from(corpus).flatmap(lambda packed: damaged_answer(packed) | st.just(packed))


answer_bytes = st.binary(max_size=300) | PROFILES.flatmap(packed_answers)


@fuzz_settings(400)
@given(answer_bytes)
def test_unpacking_an_answer_raises_only_message_field_errors(data: bytes) -> None:
    def read() -> None:
        message = unpack(data)
        pack(message)  # what was read can be written again

    outcome = bounded("iso8583 unpack", read)
    assert outcome in (None, "MessageFieldError"), outcome


def _mac_for(profile: MacProfile, key: bytes) -> KeyMac:
    return KeyMac(profile, key if profile is not MacProfile.AES_CMAC else key + key)


@fuzz_settings(400)
@given(PROFILES.flatmap(lambda p: st.tuples(st.just(p), packed_answers(p) | st.binary(max_size=200))),
       st.booleans(), st.booleans())  # fmt: skip
def test_opening_an_answer_raises_only_host_errors(
    case: tuple[MacProfile, bytes], allow_unmaced: bool, other_key: bool
) -> None:
    profile, data = case
    mac = _mac_for(profile, OTHER_MAK if other_key else MAK)
    outcome = bounded("mac open_answer", lambda: open_answer(data, mac, allow_unmaced_decline=allow_unmaced))
    if isinstance(outcome, dict):
        assert mac_checked(outcome) or (allow_unmaced and outcome.get("39") in ("A0", "77", "97"))
        assert not (other_key and mac_checked(outcome))
    else:
        assert outcome in ("MessageFieldError", "MacMismatchError"), outcome


@fuzz_settings(200)
@given(
    st.binary(max_size=40)
    | st.builds(lambda n, body: n.to_bytes(2, "big") + body, st.integers(0, 0xFFFF), st.binary(max_size=64)),
    st.integers(1, 3),
)
def test_reading_a_frame_raises_only_channel_errors(stream: bytes, pieces: int) -> None:
    here, there = socket.socketpair()
    try:
        step = max(1, len(stream) // pieces)
        for at in range(0, len(stream), step):
            there.sendall(stream[at : at + step])
        there.shutdown(socket.SHUT_WR)
        outcome = bounded("channel read_frame", lambda: read_frame(here, time.monotonic() + 2.0, 4096))
    finally:
        here.close()
        there.close()
    if isinstance(outcome, bytes):
        assert 0 < len(outcome) <= 4096 and stream[2 : 2 + len(outcome)] == outcome
    else:
        assert outcome in ("HostConnectionLostError", "HostTimeoutError", "MessageFieldError"), outcome


class FuzzedLink:
    """A HostLink whose answer is the right one, damaged, another request's, noise, or a channel error."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any], mac: KeyMac) -> None:
        self.draw = draw
        self.mac = mac
        self.sent: list[bytes] = []

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        fate = self.draw(
            st.sampled_from(
                ["answer", "damaged", "other", "noise", "unreachable", "timeout", "lost", "unmaced"]
            )
        )
        if fate == "unreachable":
            raise HostUnreachableError("no route (fuzz)")
        self.sent.append(packed)
        if fate == "timeout":
            raise HostTimeoutError("no answer in time (fuzz)")
        if fate == "lost":
            raise HostConnectionLostError("connection reset (fuzz)")
        request = unpack(packed)
        code = self.draw(st.sampled_from(["00", "51", "A0", "94", "10"]))
        right = answer_to(request, code)
        if fate == "other":
            right = {**right, "11": f"{(int(request['11']) + 1) % 1_000_000:06d}"}
        if fate == "unmaced":
            return pack(right)
        sealed = seal(right, self.mac)
        if fate == "damaged":
            return bytes(self.draw(damaged_answer(sealed)))
        if fate == "noise":
            return bytes(self.draw(st.binary(max_size=120)))
        return sealed


@fuzz_settings(300)
@given(st.data(), PROFILES)
def test_the_wire_says_whether_money_may_have_moved(data: st.DataObject, profile: MacProfile) -> None:
    mac = _mac_for(profile, MAK)
    link = FuzzedLink(data.draw, mac)
    wire = Wire(link, mac, 1.0)
    outcome = bounded("txn wire", lambda: wire.exchange(REQUEST))
    if isinstance(outcome, dict):
        assert outcome["11"] == REQUEST["11"] and mac_checked(outcome)
        return
    assert outcome in (NotSent.__name__, NoValidAnswer.__name__, AnswerMacFailed.__name__), outcome
    if outcome == NotSent.__name__:
        assert not link.sent  # nothing left the terminal: no reversal needed
    else:
        assert link.sent  # the request left: the caller arms a reversal (98 / A0)


def test_wire_errors_carry_their_reversal_reason() -> None:
    assert NotSent.reversal_reason is None
    assert NoValidAnswer.reversal_reason is not None and AnswerMacFailed.reversal_reason is not None
    assert issubclass(MessageFieldError, Exception)
