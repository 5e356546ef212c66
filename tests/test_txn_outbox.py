"""The outbox's signed records: signed at enqueue, verified before upload, nothing lost, no clear card data.

Records are checked against the file as plain JSON (json.load / dump, never the store's own code) and
their signatures with `cryptography` directly; the simulated acquirer (sim/, its own implementation)
is the other verifier.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware.errors import ConfigError, DamagedStoreError, SensitiveDataError, StoreError
from firmware.host.mac import KeyMac, open_answer, seal
from firmware.host.messages import field60, signed_record_field
from firmware.host.spec import IsoMessage, pack, unpack
from firmware.keys.blockcipher import tdes_decrypt_ecb
from firmware.keys.signing import RecordSigner, private_key_from_bytes
from firmware.store.tables import DocumentTables
from firmware.txn.outbox import DeliveryState, Outbox
from sim.acquirer import AcquirerHost, RegisteredTerminal
from tests.txn_fixtures import Clock, counting_rng

REPO = Path(__file__).resolve().parent.parent
DEVICE = RecordSigner(private_key_from_bytes(bytes(range(32))))  # TEST key
OTHER_DEVICE = RecordSigner(private_key_from_bytes(bytes(range(100, 132))))  # TEST key
MASKED = "622202******1234"
T0 = datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone(timedelta(hours=8)))


def open_outbox(path: Path, signer: RecordSigner = DEVICE, **kwargs: Any) -> Outbox:
    clock = kwargs.pop("clock", Clock())
    return Outbox(DocumentTables(path, clock), signer, signer.public_key(), clock, **kwargs)


def notice(amount: int, trace: str) -> dict[str, Any]:
    return {"type": "refund", "amount": amount, "trace": trace, "pan_masked": MASKED, "applicant": "张三"}


def on_disk(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        data: dict[str, Any] = json.load(file)
    return data


def edit_on_disk(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = on_disk(path)
    change(data)
    with path.open("w", encoding="utf-8") as file:
        json.dump(data, file)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "open.json"


# ----- order, persistence, signatures ------------------------------------------------------------------


def test_enqueue_pending_acknowledge_in_order_and_across_a_reopen(path: Path) -> None:
    clock = Clock()
    outbox = open_outbox(path, clock=clock, rng=counting_rng())
    ids = [
        outbox.enqueue("notice", notice(amount, f"{n:06d}")) for n, amount in enumerate((500, 1250, 90), 1)
    ]
    assert [record.id for record in outbox.pending()] == ids
    assert [record_id[:11] for record_id in ids] == ["0000000001-", "0000000002-", "0000000003-"]
    assert len(set(record_id[11:] for record_id in ids)) == 3
    reopened = open_outbox(path)
    records = reopened.pending()
    assert [r.id for r in records] == ids and [r.sequence for r in records] == [1, 2, 3]
    assert [r.payload["amount"] for r in records] == [500, 1250, 90]
    assert [r.created for r in records] == [T0 + timedelta(seconds=n) for n in (1, 2, 3)]
    assert records[0].kind == "notice" and records[0].payload == notice(500, "000001")
    assert records[0].delivery == DeliveryState(attempts=0, last_error=None, undeliverable=False)
    reopened.acknowledge(ids[1])
    assert [r.id for r in open_outbox(path).pending()] == [ids[0], ids[2]]
    reopened.acknowledge(ids[2])
    fourth = reopened.enqueue("notice", notice(7, "000004"))
    assert fourth.startswith("0000000004-")  # an acknowledged record's number is never handed out again
    assert [r.id for r in open_outbox(path).pending()] == [ids[0], fourth]
    assert str(ids[1]) not in path.read_text(encoding="utf-8")  # acknowledged: gone from the file


def test_each_record_is_signed_over_its_canonical_json_with_the_device_key(path: Path) -> None:
    outbox = open_outbox(path)
    record_id = outbox.enqueue("notice", notice(500, "000001"))
    stored = on_disk(path)["outbox"]["1"]["record"]
    assert stored["id"] == record_id and stored["payload"]["amount"] == 500
    body = {key: value for key, value in stored.items() if key != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    public = Ed25519PublicKey.from_public_bytes(DEVICE.public_key_bytes())
    public.verify(bytes.fromhex(stored["signature"]), canonical)  # raises if not
    [record] = outbox.pending()
    assert record.signed_bytes == canonical and record.signature.hex() == stored["signature"]


def test_the_signing_key_must_be_the_verifying_key(path: Path) -> None:
    with pytest.raises(ConfigError, match="signing key"):
        Outbox(DocumentTables(path, Clock()), DEVICE, OTHER_DEVICE.public_key(), Clock())
    with pytest.raises(ConfigError, match="max_attempts"):
        open_outbox(path, max_attempts=0)


# ----- tampering ---------------------------------------------------------------------------------------


def test_a_record_edited_on_disk_is_set_aside_not_uploaded_not_deleted(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = open_outbox(path)
    ids = [outbox.enqueue("notice", notice(amount, "000001")) for amount in (500, 1250, 90)]

    def raise_the_amount(data: dict[str, Any]) -> None:
        data["outbox"]["2"]["record"]["payload"]["amount"] = 987654

    edit_on_disk(path, raise_the_amount)
    caplog.set_level(logging.DEBUG)
    assert [r.id for r in outbox.pending()] == [ids[0], ids[2]]
    [entry] = outbox.set_aside()
    assert entry.record_id == ids[1] and entry.sequence == 2
    assert "fails its signature check" in entry.reason and ids[1] in entry.reason
    assert entry.set_aside_at.startswith("2026-03-14T15:09:")
    assert entry.found["record"]["payload"]["amount"] == 987654  # kept as it was found
    stored = on_disk(path)
    assert "2" not in stored["outbox"]
    assert [e["found"]["record"]["id"] for e in stored["set_aside"].values()] == [ids[1]]  # still in the file
    assert ids[1] in caplog.text and "987654" not in caplog.text and "refund" not in caplog.text
    # read again (and after a reopen): the same two, and the edited record set aside once
    assert [r.id for r in open_outbox(path).pending()] == [ids[0], ids[2]]
    assert [e.record_id for e in open_outbox(path).set_aside()] == [ids[1]]
    with pytest.raises(StoreError, match="not in the outbox"):
        outbox.acknowledge(ids[1])  # a set-aside record cannot be acknowledged away
    assert len(outbox.set_aside()) == 1


def test_a_record_signed_by_another_device_is_set_aside(path: Path) -> None:
    outbox = open_outbox(path)
    own = outbox.enqueue("notice", notice(500, "000001"))
    foreign = open_outbox(path, signer=OTHER_DEVICE).enqueue("notice", notice(500, "000002"))
    assert [r.id for r in outbox.pending()] == [own]
    [entry] = outbox.set_aside()
    assert entry.record_id == foreign and "signed by another device" in entry.reason


def test_an_edit_re_signed_with_another_key_is_set_aside(path: Path) -> None:
    outbox = open_outbox(path)
    record_id = outbox.enqueue("notice", notice(500, "000001"))

    def forge(data: dict[str, Any]) -> None:
        record = data["outbox"]["1"]["record"]
        record["payload"]["amount"] = 50000
        del record["signature"]
        record["signature"] = OTHER_DEVICE.sign_record(record)["signature"]

    edit_on_disk(path, forge)
    assert outbox.pending() == []
    assert [e.record_id for e in outbox.set_aside()] == [record_id]


def test_a_set_aside_record_keeps_its_number_even_if_the_counter_is_lost(path: Path) -> None:
    outbox = open_outbox(path)
    outbox.enqueue("notice", notice(500, "000001"))
    edit_on_disk(path, lambda data: data["outbox"]["1"]["record"]["payload"].update(amount=1))
    assert outbox.pending() == []
    edit_on_disk(path, lambda data: data.pop("meta"))
    assert outbox.enqueue("notice", notice(600, "000002")).startswith("0000000002-")


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "signature removed": (lambda doc: doc["record"].pop("signature"), "lacks signature"),
    "record not an object": (lambda doc: doc.update(record=[1, 2]), "holds no record"),
    "id of another shape": (lambda doc: doc["record"].update(id="Q-1"), "record id is not one"),
    "filed under another number": (lambda doc: doc["record"].update(sequence=7), "own sequence number"),
    "attempts not a number": (lambda doc: doc.update(attempts="many"), "attempt count"),
    "created not a time": (lambda doc: doc["record"].update(created="yesterday"), "ISO 8601"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_structurally_broken_record_is_set_aside_with_its_reason(path: Path, name: str) -> None:
    outbox = open_outbox(path)
    first = outbox.enqueue("notice", notice(500, "000001"))
    outbox.enqueue("notice", notice(600, "000002"))
    change, reason = MALFORMED[name]
    edit_on_disk(path, lambda data: change(data["outbox"]["2"]))
    assert [r.id for r in outbox.pending()] == [first]
    [entry] = outbox.set_aside()
    assert entry.sequence == 2 and reason in entry.reason and "outbox entry 2 is malformed" in entry.reason
    assert on_disk(path)["set_aside"]["1"]["found"] == {**entry.found}


# ----- damage and power cuts ---------------------------------------------------------------------------


def test_a_damaged_queue_file_is_named_and_preserved(path: Path) -> None:
    outbox = open_outbox(path)
    outbox.enqueue("notice", notice(500, "000001"))
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])  # truncated JSON
    with pytest.raises(DamagedStoreError) as caught:
        open_outbox(path)
    assert str(path) in str(caught.value) and "not JSON" in str(caught.value)
    kept = Path(caught.value.kept_aside)
    assert kept.parent == path.parent and kept.name.startswith("open.json.damaged-")
    assert kept.read_bytes() == content[: len(content) // 2]
    reopened = open_outbox(path)
    assert reopened.pending() == [] and reopened.tables.damaged_files() == [kept]


# A child that enqueues one record and loses power (os._exit, nothing cleaned up) inside
# write_atomically, just before the new file would be renamed over the old one.
CALL_THEN_CUT = """
import os, sys
from datetime import datetime
from pathlib import Path
from firmware.keys.signing import RecordSigner, private_key_from_bytes
from firmware.store.tables import DocumentTables
from firmware.txn.outbox import Outbox
signer = RecordSigner(private_key_from_bytes(bytes(range(32))))
outbox = Outbox(DocumentTables(Path(sys.argv[1]), datetime.now), signer, signer.public_key(), datetime.now)
os.rename = lambda *args, **kwargs: os._exit(137)
outbox.%s
"""


def run_and_cut(path: Path, call: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CALL_THEN_CUT % call, str(path)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 137, result.stderr


def test_a_power_cut_during_enqueue_leaves_the_queue_as_it_was(path: Path) -> None:
    outbox = open_outbox(path)
    ids = [outbox.enqueue("notice", notice(amount, "000001")) for amount in (500, 600)]
    before = path.read_bytes()
    run_and_cut(path, "enqueue('notice', {'amount': 700})")
    assert path.read_bytes() == before
    reopened = open_outbox(path)
    assert [r.id for r in reopened.pending()] == ids
    assert reopened.enqueue("notice", notice(700, "000003")).startswith("0000000003-")
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # the cut's temp file: gone


def test_a_power_cut_while_setting_a_record_aside_loses_nothing(path: Path) -> None:
    outbox = open_outbox(path)
    ids = [outbox.enqueue("notice", notice(amount, "000001")) for amount in (500, 600)]
    edit_on_disk(path, lambda data: data["outbox"]["1"]["record"]["payload"].update(amount=1))
    run_and_cut(path, "pending()")
    assert on_disk(path)["outbox"]["1"]["record"]["payload"]["amount"] == 1  # still there, still edited
    assert [r.id for r in outbox.pending()] == [ids[1]]
    assert [e.record_id for e in outbox.set_aside()] == [ids[0]]


def test_two_writers_of_one_queue_never_share_a_number_or_lose_a_record(path: Path) -> None:
    open_outbox(path)
    made: list[str] = []

    def writer() -> None:
        outbox = open_outbox(path)  # its own storage and lock descriptor, as another process has
        for n in range(15):
            made.append(outbox.enqueue("notice", {"n": n}))

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pending = open_outbox(path).pending()
    assert sorted(r.id for r in pending) == sorted(made) and len(made) == 30
    assert [r.sequence for r in pending] == list(range(1, 31))


# ----- no clear card data ------------------------------------------------------------------------------

# Published test card numbers (card scheme / payment processor test lists): each passes Luhn.
TEST_PANS = {
    "visa 16": "4111111111111111",
    "visa 13": "4222222222222",
    "mastercard": "5555555555554444",
    "amex 15": "378282246310005",
    "unionpay 16": "6200000000000005",
    "unionpay 19": "6205500000000000004",
}
PLACES: dict[str, Callable[[str], dict[str, Any]]] = {
    "top-level field": lambda pan: {"pan": pan},
    "nested field": lambda pan: {"original": {"card": pan, "trace": "000123"}},
    "inside a list": lambda pan: {"lines": ["ok", f"card {pan} refunded"]},
    "track 2 text": lambda pan: {"note": f";{pan}=25121011234567890?"},
    "track 1 text": lambda pan: {"note": f"%B{pan}^ZHANG/SAN^2512101?"},
    "grouped in fours": lambda pan: {"pan": " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))},
    "as a number": lambda pan: {"reference": int(pan)},
}
FIELD_NAMES = {
    "top-level field": "payload.pan",
    "nested field": "payload.original.card",
    "inside a list": "payload.lines[1]",
    "track 2 text": "payload.note",
    "track 1 text": "payload.note",
    "grouped in fours": "payload.pan",
    "as a number": "payload.reference",
}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("card", TEST_PANS)
def test_a_clear_pan_is_refused_by_field_and_never_reaches_disk(path: Path, card: str, place: str) -> None:
    outbox = open_outbox(path)
    outbox.enqueue("notice", notice(500, "000001"))
    before = path.read_bytes()
    pan = TEST_PANS[card]
    with pytest.raises(SensitiveDataError) as caught:
        outbox.enqueue("notice", {"amount": 500, **PLACES[place](pan)})
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, StoreError)
    assert caught.value.field == FIELD_NAMES[place] and FIELD_NAMES[place] in str(caught.value)
    assert pan not in str(caught.value) and pan[-4:] not in str(caught.value)
    assert path.read_bytes() == before  # nothing written at all
    for directory_file in path.parent.iterdir():
        assert pan.encode() not in directory_file.read_bytes()


@pytest.mark.parametrize("name", ["pin", "PIN_block", "pinBlock", "track2", "Track-1", "cvv2"])
def test_fields_named_like_a_pin_or_track_data_are_refused_whatever_they_hold(path: Path, name: str) -> None:
    outbox = open_outbox(path)
    with pytest.raises(SensitiveDataError, match=f"payload.extra.{name} is named like a PIN"):
        outbox.enqueue("notice", {"extra": {name: "masked"}})
    assert not path.exists() or "extra" not in path.read_text(encoding="utf-8")


def test_a_pan_in_a_key_is_refused_without_showing_the_key(path: Path) -> None:
    with pytest.raises(SensitiveDataError) as caught:
        open_outbox(path).enqueue("notice", {"by_card": {"4111111111111111": 1}})
    assert caught.value.field == "payload.by_card (key number 0)" and "4111" not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        MASKED,
        "6222 02** **** 1234",
        "4111111111111112",  # 16 digits failing Luhn
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits: a longer number, not a PAN
        "RRN 123456789012 trace 000123",
        20260314150926,
        12.5,
    ],
)
def test_card_free_values_are_kept(path: Path, value: object) -> None:
    outbox = open_outbox(path)
    outbox.enqueue("notice", {"value": value})
    assert [r.payload["value"] for r in outbox.pending()] == [value]


def test_an_advice_keeps_its_sealed_pan_whatever_digits_its_hex_happens_to_hold(path: Path) -> None:
    # Random ciphertext as hex holds, now and then, a run of 13-19 digits passing Luhn (here one
    # made on purpose): the sealed PAN is held to its shape, as in the journal, not to the digit check.
    sealed = "ab" * 10 + "4111111111111111" + "cd" * 12
    outbox = open_outbox(path)
    outbox.enqueue("advice", {"request": {"trace": 7}, "pan_sealed": sealed})
    assert [r.payload["pan_sealed"] for r in outbox.pending()] == [sealed]


@pytest.mark.parametrize(
    ("sealed", "refusal"),
    [
        ("4111111111111111", SensitiveDataError),  # a clear PAN is clear card data
        ("4111 1111 1111 1111", SensitiveDataError),
        ("AB" * 28, StoreError),  # not the sealed shape (upper case)
        ("ab" * 27, StoreError),  # too short to be a sealed PAN
        (1234, StoreError),
    ],
)
def test_a_pan_sealed_that_is_not_one_is_refused(
    path: Path, sealed: object, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal, match=r"payload\.pan_sealed"):
        open_outbox(path).enqueue("advice", {"pan_sealed": sealed})
    assert not path.exists() or "pan_sealed" not in path.read_text(encoding="utf-8")
    with pytest.raises(SensitiveDataError):  # a clear PAN elsewhere is still refused beside a sealed one
        open_outbox(path).enqueue("advice", {"pan_sealed": "ab" * 28, "card": "4111111111111111"})


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("Notice!", {"a": 1}, "record kind"),
        ("notice", {"a": {1, 2}}, "payload.a holds a set"),
        ("notice", {"a": float("inf")}, "payload.a is not a finite number"),
        ("notice", {"a": {3: "x"}}, "payload.a has a key that is not a string"),
    ],
)
def test_what_the_queue_cannot_store_is_refused_before_anything_is_written(
    path: Path, kind: str, payload: dict[str, Any], message: str
) -> None:
    outbox = open_outbox(path)
    with pytest.raises(StoreError, match=message):
        outbox.enqueue(kind, payload)
    assert not path.exists()


# ----- bounded retries ---------------------------------------------------------------------------------


def test_retries_are_bounded_and_an_undeliverable_record_is_kept(path: Path) -> None:
    outbox = open_outbox(path, max_attempts=3)
    first = outbox.enqueue("reversal", notice(500, "000001"))
    second = outbox.enqueue("notice", notice(600, "000002"))
    assert outbox.mark_attempt(first, "host timeout") == DeliveryState(1, "host timeout", False)
    assert outbox.mark_attempt(first, "connection refused") == DeliveryState(2, "connection refused", False)
    assert [r.id for r in outbox.pending()] == [first, second]
    assert outbox.mark_attempt(first, "MAC of the answer does not verify") == DeliveryState(
        3, "MAC of the answer does not verify", True
    )
    reopened = open_outbox(path, max_attempts=3)
    assert [r.id for r in reopened.pending()] == [second]
    [flagged] = reopened.undeliverable()
    assert flagged.id == first and flagged.delivery == DeliveryState(
        3, "MAC of the answer does not verify", True
    )
    assert flagged.payload == notice(500, "000001")
    assert reopened.mark_attempt(first, "technician retry failed").attempts == 4  # still kept, still flagged
    assert on_disk(path)["outbox"]["1"]["undeliverable"] is True
    reopened.acknowledge(first)  # a later manual upload that the host acknowledged
    assert reopened.undeliverable() == [] and [r.id for r in reopened.pending()] == [second]


def test_three_tries_by_default(path: Path) -> None:
    outbox = open_outbox(path)
    record_id = outbox.enqueue("notice", {"amount": 1})
    states = [outbox.mark_attempt(record_id, "timeout") for _ in range(3)]
    assert [s.undeliverable for s in states] == [False, False, True]
    assert outbox.next_to_send() is None and [r.id for r in outbox.undeliverable()] == [record_id]


def test_a_last_error_shows_a_pan_only_masked(path: Path) -> None:
    outbox = open_outbox(path)
    record_id = outbox.enqueue("notice", {"amount": 1})
    delivery = outbox.mark_attempt(record_id, "declined card 4111111111111111 " + "x" * 500)
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("declined card 411111******1111 ")
    assert len(delivery.last_error) == 200 and b"4111111111111111" not in path.read_bytes()


def test_unknown_record_ids_are_refused(path: Path) -> None:
    outbox = open_outbox(path)
    record_id = outbox.enqueue("notice", {"amount": 1})
    outbox.acknowledge(record_id)
    for bad in (record_id, "not an id", "0000000009-" + "0" * 32):
        with pytest.raises(StoreError):
            outbox.acknowledge(bad)
        with pytest.raises(StoreError):
            outbox.mark_attempt(bad, "timeout")


# ----- the host's verification -------------------------------------------------------------------------

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
IDS = {"41": "00000001", "42": "123456789012345"}


class Terminal:
    """Signs on to the simulated acquirer (the default profile: X9.19, double-length MAK) and sends MACed
    messages."""

    def __init__(self, host: AcquirerHost) -> None:
        self.host = host
        sign_on = {"t": "0800", "11": "000001", **IDS, "60": field60("00", 1, "003"), "63": "001"}
        answer = unpack(self._exchange(pack(sign_on)))
        assert answer["39"] == "00"
        self.mac = KeyMac("x9.19", tdes_decrypt_ecb(TMK, bytes.fromhex(answer["62"])[20:36]))
        self.stan = 100

    def _exchange(self, packed: bytes) -> bytes:
        reply = self.host.handle(packed)
        assert reply.action == "answer"
        return reply.answer

    def send(self, fields: dict[str, str]) -> IsoMessage:
        self.stan += 1
        request = {"11": f"{self.stan:06d}", **IDS, **fields}
        return open_answer(self._exchange(seal(request, self.mac)), self.mac)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    config = RegisteredTerminal(IDS["41"], IDS["42"], TMK, device_public_key=DEVICE.public_key_bytes())
    yield Terminal(AcquirerHost((config,), clock=lambda: T0))


def test_the_sim_host_accepts_a_queued_record_and_refuses_it_tampered(path: Path, terminal: Terminal) -> None:
    outbox = open_outbox(path)
    outbox.enqueue("notice", {"type": "refund", "amount": 500, "trace": "000123", "pan_masked": MASKED})
    [record] = outbox.pending()
    upload = {"t": "0320", "4": "000000000500", "60": field60("00", 1, "201")}
    answer = terminal.send({**upload, "62": signed_record_field(record.signed_bytes, record.signature)})
    assert answer["39"] == "00"
    tampered = record.signed_bytes.replace(b'"amount":500', b'"amount":900')
    assert tampered != record.signed_bytes
    answer = terminal.send({**upload, "62": signed_record_field(tampered, record.signature)})
    assert answer["39"] == "63"
    outbox.acknowledge(record.id)
    assert outbox.pending() == []
