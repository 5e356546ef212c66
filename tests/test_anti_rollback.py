"""Whole files put back, deleted or edited: the key store, the DUKPT state and the books refuse them.

Each test keeps a copy of a file as an attacker with the storage in hand would, lets the terminal move
on, and puts the copy back (or deletes the file, or edits one flag). The terminal must refuse the file
with an error naming it: never hand out a counter again, never bring back an old key, never send an
acknowledged record again, never start empty in its place. Files are copied and edited as plain bytes
and plain JSON, never through the firmware's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psec
import pytest

from firmware.errors import KeyBlockError, KeyStoreError, StoreError
from firmware.keys.device import provision_device_key
from firmware.keys.dukpt_load import load_dukpt_initial_key
from firmware.keys.dukpt_state import PersistentDukptTerminal
from firmware.keys.kcv import KIND_TDES
from firmware.keys.store import KeyStore
from firmware.keys.tmk import install_tmk
from firmware.store.tables import DocumentTables
from firmware.txn.model import ArmedReversal, RefundMethod, ReversalReason, TxnStatus
from firmware.txn.outbox import Outbox
from firmware.txn.reverse import OriginalRef
from firmware.txn.stored_request import RequestKind, StoredRequest
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.txn_fixtures import DEVICE, SEALED, Clock, edit_on_disk, on_disk, reversal
from tests.txn_rig import Rig, evidence, rig_fixture, supervisor_approves

KBPK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # TEST key
TMK_1 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
TMK_2 = bytes.fromhex("1032547698BADCFEEFCDAB8967452301")  # TEST key
IPEK_KBPK = "0123456789ABCDEFFEDCBA9876543210"  # TEST key (the X9.24-1 test IPEK block below is under it)
IPEK_BLOCK = (
    "B0104B1TX00N0100KS18FFFF9876543210E000005FADFB6F7189125ACE10CA0DF7C553FA5179643877EBB237DFBB3844407913DC"
)


def tmk_block(key: bytes, version: str) -> str:
    return str(psec.tr31.wrap(KBPK, f"B0000K0TD{version}N0000", key))


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    provision_device_key(tmp_path / "device.key", lambda n: bytes(range(7, 7 + n)))
    return tmp_path / "keys"


def key_store(keys_dir: Path) -> KeyStore:
    """The key store as after a restart (device key read from disk again)."""
    from firmware.keys.device import load_device_key

    return KeyStore(keys_dir, load_device_key(keys_dir.parent / "device.key"))


def dukpt(keys_dir: Path) -> PersistentDukptTerminal:
    from firmware.keys.device import load_device_key

    return PersistentDukptTerminal(keys_dir, load_device_key(keys_dir.parent / "device.key"))


# ----- the key store -------------------------------------------------------------------------------


def test_an_older_key_store_put_back_is_refused_and_named(keys_dir: Path) -> None:
    install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_1, "01"))
    key_store(keys_dir).put("MAK", bytes.fromhex("11" * 8 + "22" * 8), KIND_TDES, 1)
    kept = (keys_dir / "keystore.json").read_bytes()
    install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_2, "02"))
    (keys_dir / "keystore.json").write_bytes(kept)
    with pytest.raises(KeyStoreError, match=r"keystore\.json"):
        key_store(keys_dir).get("TMK")
    with pytest.raises(KeyStoreError, match=r"keystore\.json"):
        install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_1, "03"))


def test_a_tmk_entry_cut_out_of_the_file_is_refused(keys_dir: Path) -> None:
    install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_2, "05"))
    key_store(keys_dir).put("MAK", bytes.fromhex("11" * 8 + "22" * 8), KIND_TDES, 1)
    edit_on_disk(keys_dir / "keystore.json", lambda data: data["keys"].pop("TMK"))
    with pytest.raises(KeyStoreError, match=r"keystore\.json"):
        install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_1, "01"))


def test_an_older_tmk_never_follows_a_newer_one_even_once_the_tmk_is_removed(keys_dir: Path) -> None:
    install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_2, "05"))
    key_store(keys_dir).remove("TMK")
    with pytest.raises(KeyBlockError, match="not newer"):
        install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_1, "04"))
    _, info = install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_1, "06"))
    assert info.version == 2  # the second TMK this terminal installed, though the first was removed


def test_a_deleted_key_store_is_refused_not_started_empty(keys_dir: Path) -> None:
    install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_1, "01"))
    (keys_dir / "keystore.json").unlink()
    with pytest.raises(KeyStoreError, match=r"keystore\.json.*missing"):
        key_store(keys_dir).list()
    with pytest.raises(KeyStoreError, match=r"keystore\.json"):
        install_tmk(key_store(keys_dir), KBPK, tmk_block(TMK_1, "02"))


# ----- the DUKPT state -----------------------------------------------------------------------------


def test_an_older_dukpt_state_put_back_never_hands_a_counter_out_again(keys_dir: Path) -> None:
    load_dukpt_initial_key(dukpt(keys_dir), bytes.fromhex(IPEK_KBPK), IPEK_BLOCK)
    kept = (keys_dir / "dukpt.json").read_bytes()
    first = dukpt(keys_dir).next_transaction().counter
    (keys_dir / "dukpt.json").write_bytes(kept)
    with pytest.raises(KeyStoreError, match=r"dukpt\.json"):
        dukpt(keys_dir).next_transaction()
    assert first == 1


def test_a_deleted_dukpt_state_is_refused_and_its_initial_key_never_loads_again(keys_dir: Path) -> None:
    load_dukpt_initial_key(dukpt(keys_dir), bytes.fromhex(IPEK_KBPK), IPEK_BLOCK)
    dukpt(keys_dir).next_transaction()
    (keys_dir / "dukpt.json").unlink()
    with pytest.raises(KeyStoreError, match=r"dukpt\.json.*missing"):
        dukpt(keys_dir).next_transaction()
    with pytest.raises((KeyBlockError, KeyStoreError)):
        load_dukpt_initial_key(dukpt(keys_dir), bytes.fromhex(IPEK_KBPK), IPEK_BLOCK)


# ----- the books and their outbox ------------------------------------------------------------------


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


def _pay(rig: Rig, amount: int, order: str) -> None:
    card = SimReader(load_profile_card("visa-credit"))
    rig.service.sale(card, amount, order=order, pin=lambda k, t: "1234")


def _open_file(rig: Rig) -> Path:
    return rig.data_dir / "txn" / "open.json"


def test_an_older_open_batch_put_back_is_refused_and_acknowledged_requests_stay_done(rig: Rig) -> None:
    _pay(rig, 9000, "RB1")
    rig.link.down_after(0)
    result = rig.service.refund(
        OriginalRef(order="RB1"), 4000, RefundMethod.CARD, evidence("RB1"), supervisor=supervisor_approves
    )
    assert result.waiting_for_host
    rig.service.close()
    kept = _open_file(rig).read_bytes()  # the refund advice still waiting
    rig.service = rig.open()
    assert rig.service.drain().waiting == 0  # the host took it
    rig.service.close()
    _open_file(rig).write_bytes(kept)
    with pytest.raises(StoreError, match=r"open\.json"):
        rig.service = rig.open()
    assert [e.amount for e in rig.acquirer.ledger if e.type_code == "25"] == [4000]


def test_a_deleted_reversal_is_found(rig: Rig) -> None:
    rig.acquirer.set_faults("drop,only=0200,times=1")
    rig.link.down_after(1)
    _pay(rig, 3000, "RB2")
    assert len(rig.service.ctx.book.outbox.armed()) == 1
    rig.service.close()
    edit_on_disk(_open_file(rig), lambda data: data["reversals"].clear())
    with pytest.raises(StoreError, match=r"open\.json"):
        rig.service = rig.open()


def test_a_reversal_flagged_by_hand_is_refused_not_hidden(rig: Rig) -> None:
    rig.acquirer.set_faults("drop,only=0200,times=1")
    rig.link.down_after(1)
    _pay(rig, 3000, "RB3")
    rig.service.close()

    def flag(data: dict[str, object]) -> None:
        for document in data["reversals"].values():  # type: ignore[attr-defined]
            document.update(flagged=True, attempts=3)

    edit_on_disk(_open_file(rig), flag)
    with pytest.raises(StoreError, match=r"open\.json"):
        rig.service = rig.open()


def test_a_missing_open_batch_is_refused_while_the_record_says_it_existed(rig: Rig) -> None:
    _pay(rig, 1000, "RB4")
    rig.service.close()
    _open_file(rig).unlink()
    with pytest.raises(StoreError, match=r"open\.json.*missing"):
        rig.service = rig.open()


# ----- reversals are signed and checked, also where no record guards the file ----------------------


def _outbox(path: Path) -> Outbox:
    clock = Clock()
    return Outbox(DocumentTables(path, clock), DEVICE, DEVICE.public_key(), clock)


def test_a_flag_set_by_hand_on_a_reversal_fails_its_signature(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    _outbox(path).arm(reversal(7))
    edit_on_disk(path, lambda data: data["reversals"]["7"].update(flagged=True))
    with pytest.raises(StoreError, match="signature"):
        _outbox(path).next_to_send()


def test_a_reversal_added_by_hand_is_never_sent(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    _outbox(path).arm(reversal(7))
    forged = dict(on_disk(path)["reversals"]["7"], trace=8)
    forged["fields"] = dict(forged["fields"], **{"11": "000008"})
    edit_on_disk(path, lambda data: data["reversals"].update({"8": forged}))
    with pytest.raises(StoreError, match="signature"):
        _outbox(path).armed()


def test_a_reversal_names_its_own_trace(tmp_path: Path) -> None:
    wrong = reversal(7)
    wrong = type(wrong)(**{**wrong.__dict__, "fields": {**wrong.fields, "11": "000009"}})
    with pytest.raises(StoreError, match="trace"):
        _outbox(tmp_path / "open.json").arm(wrong)


def test_a_reversal_goes_up_only_for_a_request_still_pending(rig: Rig) -> None:
    _pay(rig, 5000, "RB5")
    book = rig.service.ctx.book
    (sale,) = [e for e in book.open_entries() if e.order == "RB5"]
    assert sale.status is TxnStatus.APPROVED
    # a reversal of the approved sale, signed by the terminal itself (e.g. left armed by a bug)
    stored = StoredRequest(RequestKind.SALE, sale.trace, sale.batch, sale.amount)
    armed = ArmedReversal(sale.trace, "0200", sale.amount, stored.to_json(), ReversalReason.NO_ANSWER,
                          sale.created, pan_sealed=sale.pan_sealed or SEALED)  # fmt: skip
    book.outbox.arm(armed)
    rig.service.drain()
    assert [e.status for e in rig.acquirer.ledger if int(e.stan) == sale.trace] == ["approved"]
    assert book.entry(sale.trace).status is TxnStatus.APPROVED  # type: ignore[union-attr]
    assert book.outbox.armed() == []  # set aside, for the technician
    assert any("pending" in s.reason for s in book.outbox.set_aside())


# ----- outbox records are chained ------------------------------------------------------------------


def test_outbox_records_carry_their_place_in_a_chain(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    outbox = _outbox(path)
    for amount in (1, 2, 3):
        outbox.enqueue("notice", {"amount": amount})
    records = [doc["record"] for doc in on_disk(path)["outbox"].values()]
    assert [r["sequence"] for r in records] == [1, 2, 3]
    assert all(len(r["prev"]) == 64 for r in records)
    assert len({r["prev"] for r in records}) == 3


def test_a_record_replayed_into_the_outbox_is_found(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    outbox = _outbox(path)
    first = outbox.enqueue("notice", {"amount": 1})
    outbox.enqueue("notice", {"amount": 2})
    kept = on_disk(path)["outbox"]["1"]
    outbox.acknowledge(first)
    edit_on_disk(path, lambda data: data["outbox"].update({"1": kept}))
    with pytest.raises(StoreError, match="1"):
        _outbox(path).pending()


def test_a_record_cut_out_of_the_outbox_is_found(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    outbox = _outbox(path)
    for amount in (1, 2, 3):
        outbox.enqueue("notice", {"amount": amount})
    edit_on_disk(path, lambda data: data["outbox"].pop("2"))
    with pytest.raises(StoreError, match="missing"):
        _outbox(path).pending()


def test_an_outbox_delivery_flag_set_by_hand_fails_its_signature(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    _outbox(path).enqueue("notice", {"amount": 1})
    edit_on_disk(path, lambda data: data["outbox"]["1"].update(undeliverable=True, attempts=3))
    outbox = _outbox(path)
    assert outbox.undeliverable() == []
    assert [s.reason for s in outbox.set_aside()] and "signature" in outbox.set_aside()[0].reason
