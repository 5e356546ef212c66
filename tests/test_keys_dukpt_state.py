"""The DUKPT device at rest: loaded from TR-31, one counter per transaction, never twice, across restarts.

Vectors: the published X9.24-1 A.4 and X9.24-3 tables of test_keys_dukpt.py.
Key blocks: two published B1 blocks (a Castles key injection guide's block
carrying the X9.24-1 test IPEK under KBPK 0123..3210, KCV AF8C07 given there;
openemv/tr31's README block with KS, KC 0169E3 and KP optional blocks) and
blocks wrapped by psec, an independent TR-31 implementation.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psec
import pytest

from firmware.cli.keys import main as pos_keys
from firmware.errors import CryptoError, KeyBlockError, KeyExhaustedError, KeyStoreError
from firmware.keys import dukpt_aes, dukpt_state, dukpt_tdes, monotonic
from firmware.keys.device import load_device_key
from firmware.keys.dukpt import AesTransactionKeys, KeyType, KeyUsage, TdesTransactionKeys
from firmware.keys.dukpt_load import unwrap_initial_dukpt_key
from firmware.keys.dukpt_registers import lowest_set_bit
from firmware.keys.dukpt_state import DukptState, PersistentDukptTerminal, take_transaction
from firmware.keys.layout import KeyLayout, open_dukpt_terminal
from firmware.keys.pinblock import encrypt_pin_block
from tests.dukpt_vectors import (
    AES_DERIVATION_KEYS,
    AES_IK,
    AES_LAST_COUNTERS,
    AES_WORKING_KEYS,
    IKID,
    IKSN,
    INITIAL_SEQUENCE,
    IPEK,
    PAN,
    PIN,
    ROLLOVER_SEQUENCE,
    no_rng,
)

REPO = Path(__file__).resolve().parent.parent

# Published: the X9.24-1 test IPEK for KSN FFFF9876543210E00000 under KBPK 0123456789ABCDEFFEDCBA9876543210.
CASTLES_KBPK = "0123456789ABCDEFFEDCBA9876543210"
CASTLES_BLOCK = (
    "B0104B1TX00N0100KS18FFFF9876543210E000005FADFB6F7189125ACE10CA0DF7C553FA5179643877EBB237DFBB3844407913DC"
)
# Published (openemv/tr31 README): a B1 block with KS, KC (KCV 0169E3) and KP (KBPK KCV ECAD62).
OPENEMV_KBPK = "AB2E09DB3EF0BA71E0CE6CD755C23A3B"
OPENEMV_BLOCK = (
    "B0128B1TX00N0300KS18FFFF00A0200001E00000KC0C000169E3KP0C00ECAD626F9F1A826814AA066D86C8C18BD0E14033E1EBEC"
    "75BEDF586E6E325F3AA8C0E5"
)
TDES_KBPK = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")  # TEST key
AES_KBPK = bytes.fromhex("3C9A1E5D7B2F4806A1C3E5F70819B2D4C6E8F0A1B3C5D7E9F1A2B4C6D8E0F213")  # TEST key


# ----- helpers ----------------------------------------------------------------------------------


def cli(data_dir: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = pos_keys(
        ["--data-dir", str(data_dir), *args], env={}, stdin=io.StringIO(stdin), stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def layout(tmp_path: Path) -> KeyLayout:
    data_dir = tmp_path / "data"
    code, _, err = cli(data_dir, "provision")
    assert code == 0, err
    return KeyLayout.under(data_dir)


def load_block(layout: KeyLayout, block: str, kbpk: bytes | str, *extra: str) -> tuple[int, str, str]:
    kbpk_file = layout.data_dir.parent / "kbpk.hex"
    kbpk_file.write_text(kbpk if isinstance(kbpk, str) else kbpk.hex())
    args = ["load-dukpt", "--block", "-", "--kbpk-file", str(kbpk_file), *extra]
    return cli(layout.data_dir, *args, stdin=block)


def loaded(layout: KeyLayout, block: str, kbpk: bytes | str, *extra: str) -> str:
    code, out, err = load_block(layout, block, kbpk, *extra)
    assert (code, err) == (0, ""), err
    return out


def restarted(layout: KeyLayout) -> PersistentDukptTerminal:
    """A terminal as after a restart: the device key and the DUKPT state read from disk again."""
    return open_dukpt_terminal(layout)


def tdes_tx(layout: KeyLayout) -> TdesTransactionKeys:
    tx = restarted(layout).next_transaction()
    assert isinstance(tx, TdesTransactionKeys)
    return tx


def aes_tx(layout: KeyLayout) -> AesTransactionKeys:
    tx = restarted(layout).next_transaction()
    assert isinstance(tx, AesTransactionKeys)
    return tx


def aes_block(initial_key: bytes, optional: str = "IK141234567890123456", key_version: str = "00") -> str:
    count = "01" if optional else "00"
    return str(psec.tr31.wrap(AES_KBPK, f"D0000B1AX{key_version}N{count}00{optional}", initial_key))


def tdes_block(key: bytes, header: str) -> str:
    return str(psec.tr31.wrap(TDES_KBPK, header, key))


def expected_register_value(counter: int, position: int) -> int:
    """The counter whose key register `position` holds at `counter`: its bits above, and its own."""
    return (counter >> (position + 1) << (position + 1)) | (1 << position)


def assert_registers_hold_only_future_keys(state: DukptState, key_for: Callable[[int], bytes]) -> None:
    for position in state.live_registers:
        value = expected_register_value(state.counter, position)
        assert value >= state.counter, f"register {position} holds the key of spent counter {value:#x}"
        assert state.registers[position] == key_for(value), f"register {position}"


def tdes_key_for(counter: int) -> bytes:
    return dukpt_tdes.derive_transaction_key(IPEK, dukpt_tdes.ksn_with_counter(IKSN, counter))


def aes_key_for(counter: int) -> bytes:
    return dukpt_aes.derive_intermediate_key(AES_IK, IKID, counter)


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


# ----- TDES (X9.24-1) ---------------------------------------------------------------------------


def test_published_block_loads_and_every_restart_continues_the_published_sequence(layout: KeyLayout) -> None:
    out = loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    assert "next KSN FFFF9876543210E00001" in out and "21 registers" in out and "KCV AF8C07" in out
    state = restarted(layout).read_state()
    assert (state.counter, state.live_registers) == (1, tuple(range(21)))
    assert_registers_hold_only_future_keys(state, tdes_key_for)
    for ksn, key, epb in INITIAL_SEQUENCE:
        tx = tdes_tx(layout)
        assert (tx.ksn.hex().upper(), tx.transaction_key.hex().upper()) == (ksn, key)
        assert encrypt_pin_block(tx.pin_key(), PIN, PAN, 0, no_rng).hex().upper() == epb
        state = restarted(layout).read_state()
        assert state.counter == tx.counter + 1  # the initial sequence's counters have few one bits
        assert state.registers[lowest_set_bit(tx.counter)] is None, "the used register was not erased"
        assert_registers_hold_only_future_keys(state, tdes_key_for)


def test_rollover_sequence_across_restarts(layout: KeyLayout) -> None:
    first = dukpt_tdes.ksn_counter(bytes.fromhex(ROLLOVER_SEQUENCE[0][0]))
    restarted(layout).install(DukptState.at_counter("tdes", IPEK, IKSN, first))
    for ksn, key, epb in ROLLOVER_SEQUENCE:
        tx = tdes_tx(layout)
        assert (tx.ksn.hex().upper(), tx.transaction_key.hex().upper()) == (ksn, key)
        assert encrypt_pin_block(tx.pin_key(), PIN, PAN, 0, no_rng).hex().upper() == epb
        assert_registers_hold_only_future_keys(restarted(layout).read_state(), tdes_key_for)


def test_exhaustion_is_kept_across_restarts(layout: KeyLayout) -> None:
    restarted(layout).install(DukptState.at_counter("tdes", IPEK, IKSN, 0x1FF800))  # the last usable counter
    tx = tdes_tx(layout)
    assert tx.counter == 0x1FF800 and tx.transaction_key == tdes_key_for(0x1FF800)
    for _ in range(2):
        terminal = restarted(layout)
        info = terminal.info()
        assert info.exhausted and info.next_ksn is None and info.live_registers == ()
        before = terminal.path.read_bytes()
        with pytest.raises(KeyExhaustedError, match="load a new initial key"):
            terminal.next_transaction()
        assert terminal.path.read_bytes() == before
    code, out, _ = cli(layout.data_dir, "list")
    assert code == 0 and "DUKPT      tdes     KSN FFFF9876543210E00000 counter exhausted KCV AF8C07" in out


def test_published_block_with_kc_and_kp_blocks(layout: KeyLayout) -> None:
    out = loaded(layout, OPENEMV_BLOCK, OPENEMV_KBPK)
    assert "next KSN FFFF00A0200001E00001" in out and "KCV 0169E3" in out
    assert restarted(layout).next_transaction().ksn.hex().upper() == "FFFF00A0200001E00001"


# ----- AES (X9.24-3) ----------------------------------------------------------------------------


def test_aes_block_loads_and_every_restart_continues_the_published_sequence(layout: KeyLayout) -> None:
    out = loaded(layout, aes_block(AES_IK), AES_KBPK)
    assert "next KSN 123456789012345600000001" in out and "32 registers" in out
    working = {counter: (pin, mac, data) for counter, pin, mac, data in AES_WORKING_KEYS}
    for counter, derivation_key in enumerate(AES_DERIVATION_KEYS, start=1):
        tx = aes_tx(layout)
        assert (tx.counter, tx.derivation_key.hex().upper()) == (counter, derivation_key)
        assert tx.ksn.hex().upper() == f"1234567890123456{counter:08X}"
        if counter in working:
            usages = (KeyUsage.PIN_ENCRYPTION, KeyUsage.MAC_GENERATION, KeyUsage.DATA_ENCRYPT)
            assert tuple(tx.working_key(u).hex().upper() for u in usages) == working[counter]
        state = restarted(layout).read_state()
        assert state.registers[lowest_set_bit(counter)] is None
        assert_registers_hold_only_future_keys(state, aes_key_for)


def test_aes_skips_a_counter_with_seventeen_one_bits_across_a_restart(layout: KeyLayout) -> None:
    restarted(layout).install(DukptState.at_counter("aes", AES_IK, IKID, 0x1FFFE))
    working = {counter: pin for counter, pin, _, _ in AES_WORKING_KEYS}
    for counter in (0x1FFFE, 0x20000):  # 0x1FFFF has 17 one bits
        tx = aes_tx(layout)
        assert tx.counter == counter
        assert tx.working_key(KeyUsage.PIN_ENCRYPTION).hex().upper() == working[counter]


def test_aes_last_counters_then_exhausted_after_restart(layout: KeyLayout) -> None:
    restarted(layout).install(DukptState.at_counter("aes", AES_IK, IKID, AES_LAST_COUNTERS[0][0]))
    for counter, derivation_key in AES_LAST_COUNTERS:
        tx = aes_tx(layout)
        assert (tx.counter, tx.derivation_key.hex().upper()) == (counter, derivation_key)
    with pytest.raises(KeyExhaustedError):
        restarted(layout).next_transaction()
    assert restarted(layout).info().live_registers == ()


def test_aes256_initial_key_with_the_key_id_given_as_a_ksn(layout: KeyLayout) -> None:
    # X9.24-3 supplement: the AES-256 BDK's initial key for ID 1234567890123456, working keys at counter 1.
    ik = bytes.fromhex("CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F")
    loaded(layout, aes_block(ik, optional=""), AES_KBPK, "--ksn", "123456789012345600000000")
    tx = aes_tx(layout)
    assert tx.working_key(KeyUsage.PIN_ENCRYPTION, KeyType.AES256).hex().upper() == (
        "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502"
    )
    assert tx.working_key(KeyUsage.MAC_GENERATION, KeyType.AES128).hex().upper() == (
        "F04A1FABD4176E15490CEC82E217A96D"
    )


# ----- ordering: the counter is spent on disk before the keys leave ---------------------------------


def test_a_failed_state_write_returns_no_keys(layout: KeyLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)

    real_write = monotonic.write_atomically

    def disk_full(path: Path, data: bytes, *, exclusive: bool = False) -> None:
        if Path(path).name != "dukpt.json":  # the anti-rollback record's own writes
            return real_write(path, data, exclusive=exclusive)
        raise KeyStoreError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(monotonic, "write_atomically", disk_full)
    with pytest.raises(KeyStoreError, match="No space"):
        restarted(layout).next_transaction()
    monkeypatch.undo()
    assert tdes_tx(layout).ksn.hex().upper() == INITIAL_SEQUENCE[0][0]  # counter 1 was never handed out


class PowerCut(BaseException):
    pass


def test_a_cut_after_the_write_skips_the_counter(layout: KeyLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    real_write = monotonic.write_atomically

    def write_then_cut(path: Path, data: bytes, *, exclusive: bool = False) -> None:
        real_write(path, data, exclusive=exclusive)
        if Path(path).name == "dukpt.json":  # after the state, before the record's commit
            raise PowerCut

    monkeypatch.setattr(monotonic, "write_atomically", write_then_cut)
    with pytest.raises(PowerCut):
        restarted(layout).next_transaction()
    monkeypatch.undo()
    assert restarted(layout).info().counter == 2
    assert tdes_tx(layout).ksn.hex().upper() == INITIAL_SEQUENCE[1][0]


# A child that runs transactions and loses power (os._exit, nothing cleaned up): in mode "write" right
# after the CUT-th state write returned, before its keys do; in mode "durable" just before the CUT-th
# call that makes something durable or moves a name. Each transaction it completes is printed.
POWER_CUT = """
import os, sys
from pathlib import Path
cut_at, data, mode, count = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
calls = [0]
def cut_now():
    calls[0] += 1
    if calls[0] == cut_at:
        os._exit(137)
if mode == "durable":
    def power_cut_before(function):
        def call(*args, **kwargs):
            cut_now()
            return function(*args, **kwargs)
        return call
    for name in ("fsync", "rename", "replace", "link", "unlink"):
        setattr(os, name, power_cut_before(getattr(os, name)))
from firmware.keys import monotonic
from firmware.keys.device import load_device_key
from firmware.keys.layout import KeyLayout, open_dukpt_terminal
if mode == "write":
    real_write = monotonic.write_atomically
    def write_then_cut(path, data, *, exclusive=False):
        real_write(path, data, exclusive=exclusive)
        if Path(path).name == "dukpt.json":
            cut_now()
    monotonic.write_atomically = write_then_cut
terminal = open_dukpt_terminal(KeyLayout.under(data))
for _ in range(count):
    tx = terminal.next_transaction()
    print(tx.ksn.hex().upper(), tx.transaction_key.hex().upper(), flush=True)
"""


def run_child(layout: KeyLayout, mode: str, cut_at: int, count: int) -> tuple[int, list[tuple[str, str]]]:
    result = subprocess.run(
        [sys.executable, "-c", POWER_CUT, str(cut_at), str(layout.data_dir), mode, str(count)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode in (0, 137), result.stderr
    return result.returncode, [(line.split()[0], line.split()[1]) for line in result.stdout.splitlines()]


def test_power_cuts_never_hand_out_a_counter_twice(layout: KeyLayout) -> None:
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    published = {ksn: key for ksn, key, _ in INITIAL_SEQUENCE}
    handed_out: list[tuple[str, str]] = []
    # one transaction is 3 crash-safe writes (the record's intent, the state, the record's commit),
    # each of 3 durable steps (fsync the temp file, rename, fsync the directory): a cut before each
    cuts = [("write", 1), ("write", 2), ("write", 3)] + [("durable", n) for n in range(1, 13)]
    for mode, cut_at in cuts:
        code, transactions = run_child(layout, mode, cut_at, count=3)
        assert code == 137, f"{mode} cut {cut_at} did not land"
        handed_out += transactions
    code, transactions = run_child(layout, "none", 0, count=2)
    assert code == 0
    handed_out += transactions
    ksns = [ksn for ksn, _ in handed_out]
    assert len(set(ksns)) == len(ksns), f"a counter was handed out twice: {ksns}"
    assert ksns == sorted(ksns)
    for ksn, key in handed_out:
        assert published[ksn] == key, ksn
    counters = [dukpt_tdes.ksn_counter(bytes.fromhex(ksn)) for ksn in ksns]
    skipped = set(range(1, counters[-1] + 1)) - set(counters)
    assert len(skipped) >= 3  # each cut right after a write cost its counter: the cuts landed there
    assert not [path.name for path in files_under(layout.data_dir) if path.name.endswith(".tmp")]
    assert all(path.stat().st_nlink == 1 for path in files_under(layout.data_dir))


def test_two_processes_at_once_never_share_a_counter(layout: KeyLayout) -> None:
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    counters: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        terminal = restarted(layout)  # each its own lock file descriptor, as two processes have
        for _ in range(8):
            counter = terminal.next_transaction().counter
            with lock:
                counters.append(counter)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(counters) == list(range(1, 17))
    assert restarted(layout).info().counter == 17


# ----- secrecy ----------------------------------------------------------------------------------


def needles(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().upper().encode(), secret.hex().lower().encode()]


@pytest.mark.parametrize("algorithm", ["tdes", "aes"])
def test_the_initial_key_is_in_no_file_log_or_output(
    layout: KeyLayout, algorithm: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if algorithm == "tdes":
        out = loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
        initial_key, key_for, kbpk = IPEK, tdes_key_for, bytes.fromhex(CASTLES_KBPK)
    else:
        out = loaded(layout, aes_block(AES_IK), AES_KBPK)
        initial_key, key_for, kbpk = AES_IK, aes_key_for, AES_KBPK
    for _ in range(5):
        restarted(layout).next_transaction()
    out += cli(layout.data_dir, "list")[1]
    secrets = {"initial key": initial_key, "KBPK": kbpk}
    bits = dukpt_tdes.COUNTER_BITS if algorithm == "tdes" else dukpt_aes.COUNTER_BITS
    counters = set(range(1, 40)) | {1 << position for position in range(bits)}  # used, next, registers
    secrets |= {f"key of counter {counter:#x}": key_for(counter) for counter in sorted(counters)}
    haystacks = {str(path): path.read_bytes() for path in files_under(layout.data_dir)}
    assert {Path(name).name for name in haystacks} >= {"dukpt.json", "keystore.json", "device.key"}
    haystacks["logs"] = caplog.text.encode()
    haystacks["output"] = out.encode()
    assert "KCV" in caplog.text  # the logs were captured
    found = [
        f"{name} in {where}"
        for name, secret in secrets.items()
        for where, content in haystacks.items()
        if any(needle in content for needle in needles(secret))
    ]
    assert found == []


@pytest.mark.parametrize("algorithm", ["tdes", "aes"])
def test_the_sealed_record_holds_the_live_registers_only(layout: KeyLayout, algorithm: str) -> None:
    if algorithm == "tdes":
        loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
        initial_key, key_for = IPEK, tdes_key_for
    else:
        loaded(layout, aes_block(AES_IK), AES_KBPK)
        initial_key, key_for = AES_IK, aes_key_for
    for _ in range(3):
        restarted(layout).next_transaction()
    document = json.loads((layout.keys_dir / "dukpt.json").read_text())
    plain = load_device_key(layout.device_key_path).open(
        bytes.fromhex(document["sealed"]),
        dukpt_state._aad(document["device_key_id"], document),
        bytes.fromhex(document["nonce"]),
    )
    state = restarted(layout).read_state()
    bitmap = sum(1 << position for position in state.live_registers)
    live = state.live_registers
    registers = [key_for(expected_register_value(state.counter, position)) for position in live]
    assert plain == bitmap.to_bytes(4, "big") + b"".join(registers)
    assert initial_key not in plain
    assert document["counter"] == 4 and document["kcv"] == restarted(layout).info().kcv


# ----- the sealed record refuses changes ----------------------------------------------------------


def edit(field: str, value: object) -> Callable[[dict[str, object]], None]:
    def change(document: dict[str, object]) -> None:
        document[field] = value

    return change


def flip_sealed_byte(document: dict[str, object]) -> None:
    sealed = bytearray(bytes.fromhex(str(document["sealed"])))
    sealed[5] ^= 0x01
    document["sealed"] = sealed.hex()


TAMPERING = [
    pytest.param(edit("counter", 1), id="counter put back"),
    pytest.param(edit("counter", 9), id="counter moved on"),
    pytest.param(edit("kcv", "000000"), id="kcv"),
    pytest.param(edit("initial_key_id", "FFFF9876543211E00000"), id="initial KSN"),
    pytest.param(edit("retired", []), id="retired IDs forgotten"),
    pytest.param(edit("key_version", "01"), id="key version"),
    pytest.param(edit("algorithm", "aes"), id="algorithm"),
    pytest.param(edit("key_length", 24), id="key length"),
    pytest.param(edit("nonce", "00" * 12), id="nonce"),
    pytest.param(flip_sealed_byte, id="sealed registers"),
    pytest.param(edit("device_key_id", "00000000"), id="device key id"),
    pytest.param(edit("format", "pos-dukpt-0"), id="format"),
    pytest.param(edit("counter", True), id="counter type"),
    pytest.param(lambda document: document.pop("sealed"), id="field missing"),
]


@pytest.mark.parametrize("tamper", TAMPERING)
def test_a_tampered_state_is_refused(layout: KeyLayout, tamper: Callable[[dict[str, object]], None]) -> None:
    loaded(layout, aes_block(AES_IK), AES_KBPK)  # an earlier key, so the state has a retired ID
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    for _ in range(3):
        restarted(layout).next_transaction()
    path = restarted(layout).path
    document = json.loads(path.read_text())
    assert document["retired"] == [IKID.hex().upper()]
    tamper(document)
    path.write_text(json.dumps(document))
    terminal = restarted(layout)
    with pytest.raises(KeyStoreError):
        terminal.next_transaction()
    with pytest.raises(KeyStoreError):
        terminal.info()
    code, out, err = cli(layout.data_dir, "list")
    assert code == 1 and out == "" and err.count("\n") == 1
    # A damaged state is not silently replaced by a new load (its retired IDs would be lost).
    code, _, err = load_block(layout, tdes_block(IPEK, "B0000B1TX00N0100KS18FFFF9876543299E00000"), TDES_KBPK)
    assert code == 1 and err.count("\n") == 1
    assert json.loads(path.read_text()) == document


def test_damaged_json_is_refused(layout: KeyLayout) -> None:
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    path = restarted(layout).path
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(KeyStoreError, match="not valid JSON"):
        restarted(layout).next_transaction()


def test_an_authentic_record_a_device_could_not_be_in_is_refused(layout: KeyLayout) -> None:
    # Sealed under the right device key, but register 0, which counter 1 needs, is empty.
    state = DukptState.from_initial_key("tdes", IPEK, IKSN)
    emptied = DukptState(
        state.algorithm, state.initial_key_id, state.key_length, state.counter,
        (None, *state.registers[1:]), state.kcv,
    )  # fmt: skip
    terminal = restarted(layout)
    with pytest.raises(CryptoError, match="register 0"):
        terminal.install(emptied)  # never written in the first place
    assert not terminal.is_loaded()
    document = dukpt_state._seal(terminal._device_key, dukpt_state._Record(emptied, ()), bytes(12))
    terminal.path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match="register 0"):
        restarted(layout).next_transaction()


def test_a_state_under_another_device_key_is_refused(layout: KeyLayout, tmp_path: Path) -> None:
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    other = tmp_path / "other"
    assert cli(other, "provision")[0] == 0
    code, _, err = cli(layout.data_dir, "--device-key", str(other / "device.key"), "list")
    assert code == 1 and "another device key" in err and err.count("\n") == 1


# ----- what may be loaded -------------------------------------------------------------------------


def test_list_shows_the_device_by_ksn_counter_and_kcv_only(layout: KeyLayout) -> None:
    assert cli(layout.data_dir, "list")[1].splitlines()[-1].startswith("SIGNING")  # no DUKPT line yet
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    restarted(layout).next_transaction()
    restarted(layout).next_transaction()
    code, out, _ = cli(layout.data_dir, "list")
    assert code == 0
    assert out.splitlines()[-1] == "DUKPT      tdes     KSN FFFF9876543210E00003 counter 3 KCV AF8C07"
    state = restarted(layout).read_state()
    assert all(key.hex() not in out.lower() for key in state.registers if key is not None)
    assert IPEK.hex() not in out.lower() and IPEK.hex() not in repr(state).lower()


def test_the_same_or_an_earlier_initial_ksn_is_never_loaded_again(layout: KeyLayout) -> None:
    loaded(layout, CASTLES_BLOCK, CASTLES_KBPK)
    restarted(layout).next_transaction()
    code, out, err = load_block(layout, CASTLES_BLOCK, CASTLES_KBPK)
    assert code == 1 and out == "" and "loaded on this device before" in err and err.count("\n") == 1
    assert restarted(layout).info().counter == 2  # not started over
    loaded(layout, aes_block(AES_IK), AES_KBPK)  # a new device identity replaces it
    code, _, err = load_block(layout, CASTLES_BLOCK, CASTLES_KBPK)
    assert code == 1 and "FFFF9876543210E00000 was loaded on this device before" in err
    assert restarted(layout).info().algorithm == "aes"


def test_a_versioned_initial_key_gives_way_only_to_a_newer_one(layout: KeyLayout) -> None:
    ik = dukpt_aes.derive_initial_key(bytes(16), bytes(8))

    def block(key_version: str, key_id: str) -> str:
        return aes_block(ik, optional=f"IK14{key_id}", key_version=key_version)

    loaded(layout, block("02", "00000000000000A1"), AES_KBPK)
    for key_version, message in (("01", "not newer"), ("02", "not newer"), ("00", "no key version")):
        code, _, err = load_block(layout, block(key_version, "00000000000000A2"), AES_KBPK)
        assert code == 1 and message in err
    out = loaded(layout, block("03", "00000000000000A3"), AES_KBPK)
    assert "key version 03" in out and "next KSN 00000000000000A300000001" in out


@pytest.mark.parametrize(
    ("header", "extra", "message"),
    [
        ("B0000B0TX00N0100KS18FFFF9876543210E00000", (), "not an initial DUKPT key"),
        ("B0000K0TX00N0100KS18FFFF9876543210E00000", (), "not an initial DUKPT key"),
        ("B0000B1TE00N0100KS18FFFF9876543210E00000", (), "mode of use 'E'"),
        ("B0000B1TXc1N0100KS18FFFF9876543210E00000", (), "component"),
        ("B0000B1TX00N0000", (), "give the initial KSN with --ksn"),
        ("B0000B1TX00N0100KS18FFFF9876543210E00000", ("--ksn", "FFFF9876543210E11111"), "--ksn says"),
        ("B0000B1TX00N0100KS18FFFF9876543210E00001", (), "non-zero transaction counter"),
        ("B0000B1TX00N0100KS14FFFF9876543210E0", (), "expected 20 hex digits"),
        ("B0000B1TX00N0100IK141234567890123456", (), "does not belong"),
        ("B0000B1TX00N0200KS18FFFF9876543210E00000KC0C00FFFFFF", (), "does not match its check value"),
        ("B0000B1TX00N0000", ("--ksn", "FFFF9876543210E0"), "--ksn gives 8"),
        ("B0000B1TX00N0000", ("--ksn", "not-hex"), "not hex"),
    ],
)
def test_blocks_that_may_not_be_loaded(
    layout: KeyLayout, header: str, extra: tuple[str, ...], message: str
) -> None:
    code, out, err = load_block(layout, tdes_block(IPEK, header), TDES_KBPK, *extra)
    assert code == 1 and out == "" and err.count("\n") == 1 and message in err, err
    assert not restarted(layout).is_loaded()


def test_ksn_given_for_a_block_without_ks(layout: KeyLayout) -> None:
    out = loaded(layout, tdes_block(IPEK, "B0000B1TN00N0000"), TDES_KBPK, "--ksn", "ffff9876543210e00000")
    assert "KCV AF8C07" in out
    assert tdes_tx(layout).transaction_key.hex().upper() == INITIAL_SEQUENCE[0][1]


def test_wrong_kbpk_and_a_tdes_key_of_the_wrong_length(layout: KeyLayout) -> None:
    code, _, err = load_block(layout, CASTLES_BLOCK, "00" * 16)
    assert code == 1 and "MAC does not verify" in err
    with pytest.raises(KeyBlockError, match="must be 16 bytes"):
        unwrap_initial_dukpt_key(TDES_KBPK, tdes_block(IPEK + IPEK[:8], "B0000B1TX00N0000"), IKSN)
    with pytest.raises(KeyBlockError, match="initial key ID is 8 bytes"):
        unwrap_initial_dukpt_key(AES_KBPK, aes_block(AES_IK, optional=""), bytes(5))
    with pytest.raises(KeyBlockError, match="counter is not zero"):
        unwrap_initial_dukpt_key(AES_KBPK, aes_block(AES_IK, optional=""), IKID + bytes.fromhex("00000001"))


@pytest.mark.parametrize(
    ("header", "ksn", "field"),
    [
        ("B0000B0TX00N0100KS18FFFF9876543210E00000", None, "key usage"),
        ("B0000B1TE00N0100KS18FFFF9876543210E00000", None, "mode of use"),
        ("B0000B1TXc1N0100KS18FFFF9876543210E00000", None, "key version number"),
        ("B0000B1TX00N0000", None, "KS"),
        ("B0000B1TX00N0100KS18FFFF9876543210E00000", bytes.fromhex("FFFF9876543210E11111"), "KS"),
        ("B0000B1TX00N0100KS14FFFF9876543210E0", None, "KS"),
        ("B0000B1TX00N0100IK141234567890123456", None, "IK"),
        ("B0000B1TX00N0200KS18FFFF9876543210E00000KC0C00FFFFFF", None, "KC"),
        ("B0000B1TX00N0000", bytes.fromhex("FFFF9876543210E0"), "ksn"),
    ],
)
def test_blocks_that_may_not_be_loaded_name_the_field(header: str, ksn: bytes | None, field: str) -> None:
    with pytest.raises(KeyBlockError) as caught:
        unwrap_initial_dukpt_key(TDES_KBPK, tdes_block(IPEK, header), ksn)
    assert caught.value.field == field


def test_an_initial_key_id_loaded_before_names_its_optional_block(layout: KeyLayout) -> None:
    loaded(layout, tdes_block(IPEK, "B0000B1TX00N0100KS18FFFF9876543210E00000"), TDES_KBPK)
    loaded(layout, aes_block(AES_IK), AES_KBPK)
    with pytest.raises(KeyBlockError) as caught:
        restarted(layout).install(DukptState.from_initial_key("tdes", IPEK, IKSN, "00"))
    assert caught.value.field == "KS"


def test_take_transaction_is_pure() -> None:
    state = DukptState.from_initial_key("tdes", IPEK, IKSN)
    after, tx = take_transaction(state)
    assert (state.counter, after.counter, tx.counter) == (1, 2, 1)
    assert state.registers[0] is not None and after.registers[0] is None
    assert take_transaction(state)[1].ksn == tx.ksn  # the same input gives the same output
