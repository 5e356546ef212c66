"""Sign-on end to end over loopback TCP: the terminal's key store against the simulated host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.errors import (
    CryptoError,
    KeyStoreError,
    MacMismatchError,
    MessageFieldError,
    MessageFormatError,
    VerificationError,
)
from firmware.host.channel import TcpHostLink
from firmware.host.codes import TransactionCode
from firmware.host.mac import StoreMac
from firmware.host.messages import TerminalIdentity, check_answer, field60, format_amount, send
from firmware.host.signon import (
    KEYS_DOUBLE,
    KEYS_DOUBLE_WITH_TDK,
    KEYS_SINGLE,
    build_sign_on,
    read_sign_on_answer,
    sign_on,
)
from firmware.host.spec import pack, unpack
from firmware.keys.device import DeviceKey
from firmware.keys.kcv import KIND_TDES
from firmware.keys.key_history import WorkingKeyHistory
from firmware.keys.mac import MacProfile
from firmware.keys.store import KeyStore
from sim.host import AcquirerHost, RegisteredTerminal, SimHost

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
TERMINAL = TerminalIdentity("00000001", "123456789012345")


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    keys = KeyStore(tmp_path, DeviceKey(bytes(range(32))))
    keys.put("TMK", TMK, KIND_TDES, 1)
    return keys


@pytest.fixture
def sim() -> Iterator[SimHost]:
    with SimHost(AcquirerHost((RegisteredTerminal("00000001", "123456789012345", TMK),))) as running:
        yield running


def _link(sim: SimHost) -> TcpHostLink:
    return TcpHostLink("127.0.0.1", sim.port, connect_timeout=2.0, read_timeout=3.0)


def _sale(stan: int, amount: int = 1000) -> dict[str, str]:
    return {
        **TERMINAL.fields(),
        "t": "0200",
        "3": "000000",
        "4": format_amount(amount),
        "11": f"{stan:06d}",
        "60": field60(TransactionCode.SALE, 1),
    }


def test_sign_on_installs_the_keys_the_host_issued(sim: SimHost, store: KeyStore) -> None:
    result = sign_on(_link(sim), store, TERMINAL, stan=1, batch_number=0)
    assert result.approved
    assert result.batch_number == "000001"
    issued = sim.host.working_key_kcvs("00000001")
    assert set(result.kcvs) == {"PIK", "MAK"}
    for name, kcv in result.kcvs.items():
        assert issued[name].startswith(kcv)
        assert store.kcv(name) == kcv
    assert len(store.get("PIK")) == 16 and len(store.get("MAK")) == 16  # X9.19: double-length MAK
    answer = send(_link(sim), _sale(2), StoreMac(store, MacProfile.X919))
    assert answer["39"] == "00"


def test_the_key_scheme_with_a_track_key(sim: SimHost, store: KeyStore) -> None:
    result = sign_on(_link(sim), store, TERMINAL, stan=7, batch_number=0, key_scheme=KEYS_DOUBLE_WITH_TDK)
    assert set(result.kcvs) == {"PIK", "MAK", "TDK"}
    assert send(_link(sim), _sale(8), StoreMac(store, MacProfile.X919))["39"] == "00"


@pytest.fixture
def unionpay_sim() -> Iterator[SimHost]:
    """A host of UnionPay's own scheme: 001 single-length keys, 003's MAK of 8 bytes + 8 zero bytes."""
    terminal = RegisteredTerminal("00000001", "123456789012345", TMK, mac_profile="unionpay-ecb")
    with SimHost(AcquirerHost((terminal,))) as running:
        yield running


@pytest.mark.parametrize(("scheme", "names"), [(KEYS_SINGLE, {"PIK", "MAK"}), (KEYS_DOUBLE, {"PIK", "MAK"})])
def test_single_des_keys_only_in_the_legacy_mode(
    unionpay_sim: SimHost, store: KeyStore, scheme: str, names: set[str]
) -> None:
    with pytest.raises(CryptoError, match=r"single-length .*legacy_single_des"):
        sign_on(_link(unionpay_sim), store, TERMINAL, stan=7, batch_number=0, key_scheme=scheme)
    assert [info.name for info in store.list()] == ["TMK"]
    result = sign_on(
        _link(unionpay_sim), store, TERMINAL, stan=8, batch_number=0, key_scheme=scheme, allow_single_des=True
    )
    assert set(result.kcvs) == names and len(store.get("MAK")) == 8
    assert send(_link(unionpay_sim), _sale(9), StoreMac(store, MacProfile.UNIONPAY_ECB))["39"] == "00"


class ReplayingLink:
    """The line between terminal and host, held by someone who keeps the answers and can send one back."""

    def __init__(self, link: TcpHostLink) -> None:
        self.link = link
        self.answers: list[bytes] = []
        self.replay: bytes | None = None

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        if self.replay is None:
            answer = self.link.exchange(packed, timeout)
            self.answers.append(answer)
            return answer
        old = unpack(self.replay)
        return pack({**old, "11": unpack(packed)["11"]})  # the old keys, with this request's trace


def test_a_replayed_sign_on_answer_is_refused(sim: SimHost, store: KeyStore, tmp_path: Path) -> None:
    history = WorkingKeyHistory(tmp_path, DeviceKey(bytes(range(32))))
    line = ReplayingLink(_link(sim))
    sign_on(line, store, TERMINAL, stan=1, batch_number=0, history=history)
    first = {name: store.kcv(name) for name in ("PIK", "MAK")}
    sign_on(line, store, TERMINAL, stan=2, batch_number=0, history=history)
    current = {name: (store.kcv(name), store.info(name).version) for name in ("PIK", "MAK")}
    assert {name: kcv for name, (kcv, _) in current.items()} != first
    line.replay = line.answers[0]
    with pytest.raises(VerificationError, match="earlier session"):
        sign_on(line, store, TERMINAL, stan=3, batch_number=0, history=history)
    assert {name: (store.kcv(name), store.info(name).version) for name in ("PIK", "MAK")} == current
    line.replay = None
    assert sign_on(
        line, store, TERMINAL, stan=4, batch_number=0, history=history
    ).approved  # fresh keys: fine


def test_an_edited_key_history_is_refused_not_forgotten(
    sim: SimHost, store: KeyStore, tmp_path: Path
) -> None:
    history = WorkingKeyHistory(tmp_path, DeviceKey(bytes(range(32))))
    sign_on(_link(sim), store, TERMINAL, stan=1, batch_number=0, history=history)
    document = json.loads(history.path.read_text())
    document["sealed"] = document["sealed"][:-2] + ("00" if document["sealed"][-2:] != "00" else "11")
    history.path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match="tampered"):
        sign_on(_link(sim), store, TERMINAL, stan=2, batch_number=0, history=history)


def test_a_later_sign_on_without_tdk_leaves_no_stale_tdk(sim: SimHost, store: KeyStore) -> None:
    sign_on(_link(sim), store, TERMINAL, stan=1, batch_number=0, key_scheme=KEYS_DOUBLE_WITH_TDK)
    assert "TDK" in store
    result = sign_on(_link(sim), store, TERMINAL, stan=2, batch_number=0, key_scheme=KEYS_DOUBLE)
    issued = sim.host.working_key_kcvs("00000001")
    assert set(issued) == {"PIK", "MAK"}
    working = {info.name: info.kcv for info in store.list() if info.name != "TMK"}
    assert set(working) == set(issued) == set(result.kcvs)
    assert all(issued[name].startswith(kcv) for name, kcv in working.items())


def test_wrong_check_value_keeps_the_old_keys(sim: SimHost, store: KeyStore) -> None:
    sign_on(_link(sim), store, TERMINAL, stan=1, batch_number=0)
    before = {info.name: (info.kcv, info.version) for info in store.list()}
    old_mak = store.get("MAK")
    sim.host.set_faults("bad_kcv")
    with pytest.raises(VerificationError):
        sign_on(_link(sim), store, TERMINAL, stan=2, batch_number=1)
    assert {info.name: (info.kcv, info.version) for info in store.list()} == before
    assert store.get("MAK") == old_mak


def test_refused_sign_on_is_an_outcome_and_installs_nothing(sim: SimHost, store: KeyStore) -> None:
    stranger = TerminalIdentity("00000099", "123456789012345")
    result = sign_on(_link(sim), store, stranger, stan=1, batch_number=0)
    assert not result.approved
    assert result.response_code == "97"
    assert [info.name for info in store.list()] == ["TMK"]


def test_bad_mac_on_the_answer(sim: SimHost, store: KeyStore) -> None:
    sign_on(_link(sim), store, TERMINAL, stan=1, batch_number=0)
    sim.host.set_faults("bad_mac")
    with pytest.raises(MacMismatchError):
        send(_link(sim), _sale(2), StoreMac(store, MacProfile.X919))


def test_garbage_answer_to_sign_on(sim: SimHost, store: KeyStore) -> None:
    sim.host.set_faults("garbage")
    with pytest.raises(MessageFormatError):
        sign_on(_link(sim), store, TERMINAL, stan=1, batch_number=0)
    assert [info.name for info in store.list()] == ["TMK"]


def test_batch_number_follows_settlement(sim: SimHost, store: KeyStore) -> None:
    assert sign_on(_link(sim), store, TERMINAL, stan=1, batch_number=0).batch_number == "000001"
    mac = StoreMac(store, MacProfile.X919)
    send(_link(sim), _sale(2, 1500), mac)
    totals = f"{1500:012d}{1:03d}{0:012d}{0:03d}0"
    settle = {
        **TERMINAL.fields(),
        "t": "0500",
        "11": "000003",
        "48": totals,
        "60": field60(TransactionCode.MANAGEMENT, 1, "201"),
    }
    assert send(_link(sim), settle, mac)["48"].endswith("1")
    assert sign_on(_link(sim), store, TERMINAL, stan=4, batch_number=1).batch_number == "000002"


# ----- the checks on the answer, without a host ----------------------------------------------------------

REQUEST = build_sign_on(TERMINAL, stan=5, batch_number=1, operator="001")
GOOD = {
    "t": "0810",
    "11": "000005",
    "41": "00000001",
    "42": "123456789012345",
    "39": "00",
    "60": "00000002003",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"t": "0830"}, "t"),
        ({"11": "000006"}, "11"),
        ({"41": "00000002"}, "41"),
        ({"42": "999999999999999"}, "42"),
        ({"60": "00000002001"}, "60"),  # keys for another scheme than asked
        ({"60": "00"}, "60"),
    ],
)
def test_answer_not_to_this_request(store: KeyStore, change: dict[str, str], field: str) -> None:
    with pytest.raises(MessageFieldError) as caught:
        read_sign_on_answer(REQUEST, {**GOOD, **change}, store)
    assert caught.value.field == field


@pytest.mark.parametrize(("scheme", "length"), [("003", 60), ("003", 24), ("004", 40), ("001", 40)])
def test_field62_length_is_tied_to_the_requested_code(store: KeyStore, scheme: str, length: int) -> None:
    request = build_sign_on(TERMINAL, stan=5, batch_number=1, operator="001", key_scheme=scheme)
    answer = {**GOOD, "60": "00000002" + scheme, "62": "11" * length}
    with pytest.raises(MessageFieldError) as caught:
        read_sign_on_answer(request, answer, store)
    assert caught.value.field == "62"
    assert [info.name for info in store.list()] == ["TMK"]


def test_approved_answer_without_keys(store: KeyStore) -> None:
    with pytest.raises(MessageFieldError) as caught:
        read_sign_on_answer(REQUEST, GOOD, store)
    assert caught.value.field == "62"
    without_code = {k: v for k, v in GOOD.items() if k != "39"}
    with pytest.raises(MessageFieldError):
        read_sign_on_answer(REQUEST, without_code, store)


def test_sign_on_request_fields() -> None:
    assert REQUEST["t"] == "0800"
    assert (REQUEST["11"], REQUEST["60"], REQUEST["63"]) == ("000005", "00000001003", "001")
    with pytest.raises(MessageFieldError):
        build_sign_on(TERMINAL, stan=5, batch_number=1, operator="001", key_scheme="009")
    check_answer(REQUEST, GOOD)
