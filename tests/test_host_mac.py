"""Message MACs: published vectors, and the terminal's and the simulated host's separate code agreeing."""

from __future__ import annotations

import psec.mac
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import MacMismatchError, MessageFormatError, VerificationError
from firmware.host.channel import frame
from firmware.host.mac import (
    UNMACED_DECLINE_CODES,
    KeyMac,
    mac_block,
    mac_checked,
    mac_field,
    open_answer,
    seal,
)
from firmware.host.messages import send
from firmware.host.spec import pack, unpack
from firmware.keys.blockcipher import tdes_decrypt_ecb
from firmware.keys.mac import MacProfile
from firmware.keys.mac import compute_mac as terminal_mac
from sim import emvcrypto, hostcodec, hostkeys
from sim.errors import MacMismatchError as HostMacMismatchError
from sim.hostkeys import MacProfile as HostMacProfile

# cnblogs q/128930: a packed 0200 (length first), its TAK, and the MAC its host computed: "B3A092AE".
PUBLISHED_FRAME = bytes.fromhex(
    (
        "00:7f:60:00:03:00:00:60:32:10:32:00:72:02:00:30:20:04:80:00:c0:80:15:00:00:00:00:00:00:00:12:34:00:00"
        ":02:03:00:99:30:30:30:30:30:30:30:31:39:35:32:37:31:38:31:38:32:32:31:37:38:37:35:31:35:36:00:19:26:00"
        ":00:01:00:06:00:00:00:00:00:43:5f:01:12:32:38:34:34:31:32:33:34:35:36:37:38:39:30:31:32:33:34:5f:03:06"
        ":31:36:30:30:33:36:5f:04:06:32:30:30:38:32:36:5c:02:30:31:42:33:41:30:39:32:41:45"
    ).replace(":", "")
)
PUBLISHED_TAK = bytes.fromhex("0723C80DB5F4CD3D0723C80DB5F4CD3D")

# CSDN 80005341 ("MAC算法演示"): a TAK under a TMK, and its clear value.
PUBLISHED_TMK = bytes.fromhex("70F2A84CCBC2AE8625CBB0F2C22AB923")
PUBLISHED_TAK_UNDER_TMK = bytes.fromhex("96D605EA176B7E9E")
PUBLISHED_TAK_CLEAR = bytes.fromhex("C24A8FB57AA20123")


def test_published_frame_reads_with_the_terminal_packager_and_framing() -> None:
    payload = PUBLISHED_FRAME[2:]
    assert frame(payload) == PUBLISHED_FRAME  # the length prefix the poster's channel sent
    message = unpack(payload)
    assert (message["tpdu"], message["header"], message["t"]) == ("6000030000", "603210320072", "0200")
    assert (message["4"], message["11"], message["41"]) == ("000000001234", "000002", "00000001")
    assert bytes.fromhex(message["64"]) == b"B3A092AE"  # the MAC, as the 8 characters UnionPay sends
    assert mac_block(payload) == payload[5 + 6 : -8]  # from the message type to the end of field 63


def test_published_unionpay_mac_on_the_terminal_side() -> None:
    payload = PUBLISHED_FRAME[2:]
    assert KeyMac(MacProfile.UNIONPAY_ECB, PUBLISHED_TAK).compute(mac_block(payload)) == b"B3A092AE"
    assert open_answer(payload, KeyMac(MacProfile.UNIONPAY_ECB, PUBLISHED_TAK))["4"] == "000000001234"
    KeyMac(MacProfile.UNIONPAY_ECB, PUBLISHED_TAK).verify(mac_block(payload), b"B3A092AE")
    with pytest.raises(VerificationError):
        KeyMac(MacProfile.UNIONPAY_ECB, PUBLISHED_TAK).verify(mac_block(payload), b"B3A092AF")


def test_published_unionpay_mac_on_the_host_side() -> None:
    payload = PUBLISHED_FRAME[2:]
    message = hostcodec.decode(payload)
    assert message.raw(64) == b"B3A092AE"
    assert hostkeys.unionpay_ecb_mac(PUBLISHED_TAK, hostcodec.mac_block(payload)) == b"B3A092AE"
    mab = hostcodec.mac_block(payload)
    hostkeys.verify_mac(HostMacProfile.UNIONPAY_ECB, PUBLISHED_TAK, mab, b"B3A092AE")
    with pytest.raises(HostMacMismatchError, match="unionpay-ecb"):
        hostkeys.verify_mac(HostMacProfile.UNIONPAY_ECB, PUBLISHED_TAK, mab, b"B3A092AF")


def test_published_working_key_decrypts_on_both_sides() -> None:
    assert tdes_decrypt_ecb(PUBLISHED_TMK, PUBLISHED_TAK_UNDER_TMK) == PUBLISHED_TAK_CLEAR
    assert emvcrypto.tdes_decrypt_ecb(PUBLISHED_TMK, PUBLISHED_TAK_UNDER_TMK) == PUBLISHED_TAK_CLEAR


def test_host_x919_against_the_published_example_and_psec() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    data = b"Now is the time for all "
    assert hostkeys.x919_mac(key, data) == bytes.fromhex("A1C72E74EA3FA9B6")
    for sample in (b"", b"1", b"12345678", b"123456789"):
        assert hostkeys.x919_mac(key, sample) == psec.mac.generate_retail_mac(key[:8], key[8:], sample, 1)


@pytest.mark.parametrize(
    ("message", "mac"),
    [  # RFC 4493 section 4, leftmost 8 bytes
        ("", "bb1d6929e9593728"),
        ("6bc1bee22e409f96e93d7e117393172a", "070a16b46b4d4144"),
        (
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411",
            "dfa66747de9ae630",
        ),
    ],
)
def test_host_aes_cmac_against_rfc4493(message: str, mac: str) -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert hostkeys.aes_cmac_mac(key, bytes.fromhex(message)) == bytes.fromhex(mac)


_PROFILES = {"unionpay-ecb": (8, 16), "x9.19": (16,), "aes-cmac": (16,)}


@settings(max_examples=60, deadline=None)
@given(
    profile=st.sampled_from(sorted(_PROFILES)),
    key=st.binary(min_size=16, max_size=16),
    short_key=st.booleans(),
    data=st.binary(max_size=300),
)
def test_terminal_and_host_compute_the_same_mac(
    profile: str, key: bytes, short_key: bool, data: bytes
) -> None:
    if short_key and 8 in _PROFILES[profile]:
        key = key[:8]
    # Each side by its own table, the two linked by the profile's name only.
    terminal_side = terminal_mac(MacProfile(profile), key, data)
    assert terminal_side == hostkeys.compute_mac(HostMacProfile(profile), key, data)


def test_mac_field_follows_the_bitmap() -> None:
    assert mac_field({"t": "0200", "4": "000000000001"}) == "64"
    assert mac_field({"t": "0400", "90": "0" * 42}) == "128"


SALE = {
    "t": "0200",
    "3": "000000",
    "4": "000000000100",
    "11": "000001",
    "41": "00000001",
    "42": "123456789012345",
}


def test_sealed_message_is_accepted_by_the_host_code() -> None:
    mac = KeyMac(MacProfile.UNIONPAY_ECB, PUBLISHED_TAK_CLEAR)
    packed = seal(SALE, mac)
    mab = hostcodec.mac_block(packed)
    hostkeys.verify_mac(HostMacProfile.UNIONPAY_ECB, PUBLISHED_TAK_CLEAR, mab, packed[-8:])


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=11, max_value=200), flip=st.integers(min_value=1, max_value=255))
def test_any_altered_byte_is_refused(position: int, flip: int) -> None:
    mac = KeyMac(MacProfile.X919, bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    packed = bytearray(seal({**SALE, "39": "00"}, mac))
    position %= len(packed)
    packed[max(position, 11)] ^= flip
    with pytest.raises((MacMismatchError, MessageFormatError)):
        open_answer(bytes(packed), mac)


# UnionPay response codes the terminal treats as success (10 partial amount, 11 VIP, 16 update
# track 3), a plain decline the host can MAC (05), and codes no table lists.
@pytest.mark.parametrize("code", ["00", "10", "11", "16", "05", "51", "Z9", ""])
def test_answer_without_mac_is_refused_unless_an_unmaced_decline(code: str) -> None:
    mac = KeyMac(MacProfile.UNIONPAY_ECB, PUBLISHED_TAK_CLEAR)
    answer = {**SALE, "t": "0210", "38": "123456", "37": "000000000001"}
    unmaced = pack({**answer, "39": code} if code else answer)
    with pytest.raises(MacMismatchError, match="carries no MAC"):
        open_answer(unmaced, mac)

    class ForgingLink:
        def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
            return unmaced

    with pytest.raises(MacMismatchError):
        send(ForgingLink(), SALE, mac)


@pytest.mark.parametrize("code", sorted(UNMACED_DECLINE_CODES))
def test_unmaced_decline_is_read_as_an_unauthenticated_decline(code: str) -> None:
    mac = KeyMac(MacProfile.UNIONPAY_ECB, PUBLISHED_TAK_CLEAR)
    declined = open_answer(pack({**SALE, "t": "0210", "39": code}), mac)
    assert declined["39"] == code and not mac_checked(declined)
    with pytest.raises(MacMismatchError):
        open_answer(pack({**SALE, "t": "0210", "39": code}), mac, allow_unmaced_decline=False)
    assert mac_checked(open_answer(seal({**SALE, "t": "0210", "39": "00"}, mac), mac))
    assert unpack(pack(SALE))["t"] == "0200"
