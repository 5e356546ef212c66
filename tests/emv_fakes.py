"""Fake cards and readers for the EMV reading-path tests (their own tests: test_emv_fakes.py).

The fakes build their answers with their own tiny TLV encoder (`tlv_bytes`)
so that a bug in `firmware.emv.tlv` cannot hide on both sides.

* `ScriptedReader` replays a published APDU trace: it checks every command
  byte for byte and answers the recorded response.
* `FakeCard` is a table-driven contact card (PSE, applications with FCI,
  GPO answer and records) with a T=0 switch that answers '61xx'.
* `FakeReader` holds a card (any callable apdu -> response) and can lose it.

The readers keep the `CardReader` error contract (firmware.emv.reader): a
link failure is an `OSError` (`CardGone`, a `ConnectionError`).

A helper module, not a test module: import it as `tests.emv_fakes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

PSE = b"1PAY.SYS.DDF01"
ATR = bytes.fromhex("3B6800000073C84000009000")


def tlv_bytes(tag: int, value: bytes) -> bytes:
    """Card-side BER-TLV encoding (tags as ints, definite lengths up to 2 bytes)."""
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return tag_bytes + length + value


def h(text: str) -> bytes:
    """Hex with spaces allowed, as published traces print it."""
    return bytes.fromhex("".join(text.split()))


class CardGone(ConnectionError):
    """What a reader raises when its card has left (like sim.errors.CardAbsent)."""


class ScriptedReader:
    """Replays (command, response) pairs; a command that differs fails the test."""

    def __init__(self, script: list[tuple[str, str]], name: str = "Scripted Reader") -> None:
        self.name = name
        self._script = [(h(command), h(response)) for command, response in script]
        self.sent: list[bytes] = []
        self.powered = False

    def power_on(self) -> bytes:
        self.powered = True
        return ATR

    def transmit(self, apdu: bytes) -> bytes:
        index = len(self.sent)
        self.sent.append(apdu)
        assert index < len(self._script), f"unexpected extra command {apdu.hex().upper()}"
        expected, response = self._script[index]
        assert apdu == expected, (
            f"command {index}: sent {apdu.hex().upper()}, expected {expected.hex().upper()}"
        )
        return response

    def power_off(self) -> None:
        self.powered = False

    @property
    def finished(self) -> bool:
        return len(self.sent) == len(self._script)


@dataclass
class FakeApp:
    aid: bytes
    label: bytes = b"FAKE APP"
    priority: int | None = None
    pdol: bytes | None = None
    select_sw: int = 0x9000
    gpo_response: bytes = b""
    gpo_sw: int = 0x9000
    records: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def fci(self) -> bytes:
        proprietary = tlv_bytes(0x50, self.label)
        if self.priority is not None:
            proprietary += tlv_bytes(0x87, bytes([self.priority]))
        if self.pdol is not None:
            proprietary += tlv_bytes(0x9F38, self.pdol)
        return tlv_bytes(0x6F, tlv_bytes(0x84, self.aid) + tlv_bytes(0xA5, proprietary))


@dataclass
class FakeCard:
    """A contact card from tables. `pse_records` None means no PSE (6A82)."""

    apps: list[FakeApp]
    pse_records: list[bytes] | None = None
    pse_sfi: int = 1
    pse_sw: int = 0x9000
    t0: bool = False
    gpo_commands: list[bytes] = field(default_factory=list)
    _selected: FakeApp | str | None = None
    _pending: bytes = b""
    _last_name: bytes = b""
    _last_index: int = -1

    def __call__(self, apdu: bytes) -> bytes:
        data, sw = self._process(apdu)
        if self.t0 and data and apdu[1] != 0xC0:
            self._pending = data
            return bytes([0x61, len(data) & 0xFF])
        return data + sw.to_bytes(2, "big")

    def _process(self, apdu: bytes) -> tuple[bytes, int]:
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == 0xC0:
            pending, self._pending = self._pending, b""
            return (pending, 0x9000) if pending else (b"", 0x6985)
        if ins == 0xA4:
            return self._select(body, next_occurrence=p2 == 0x02)
        if ins == 0xB2:
            return self._read_record(p2 >> 3, p1)
        if ins == 0xA8:
            if not isinstance(self._selected, FakeApp):
                return b"", 0x6985
            self.gpo_commands.append(body)
            return self._selected.gpo_response, self._selected.gpo_sw
        return b"", 0x6D00

    def _select(self, name: bytes, *, next_occurrence: bool) -> tuple[bytes, int]:
        if name == PSE and not next_occurrence:
            if self.pse_records is None:
                return b"", 0x6A82
            self._selected = "pse"
            fci = tlv_bytes(
                0x6F, tlv_bytes(0x84, PSE) + tlv_bytes(0xA5, tlv_bytes(0x88, bytes([self.pse_sfi])))
            )
            return (fci, self.pse_sw) if self.pse_sw in (0x9000, 0x6283) else (b"", self.pse_sw)
        matches = [index for index, app in enumerate(self.apps) if app.aid.startswith(name)]
        if next_occurrence and name == self._last_name:
            matches = [index for index in matches if index > self._last_index]
        if not matches:
            return b"", 0x6A82
        app = self.apps[matches[0]]
        self._last_name, self._last_index = name, matches[0]
        self._selected = app
        return app.fci(), app.select_sw

    def _read_record(self, sfi: int, number: int) -> tuple[bytes, int]:
        if self._selected == "pse":
            if self.pse_records is None or sfi != self.pse_sfi or not 1 <= number <= len(self.pse_records):
                return b"", 0x6A83
            return self.pse_records[number - 1], 0x9000
        if isinstance(self._selected, FakeApp) and (sfi, number) in self._selected.records:
            return self._selected.records[(sfi, number)], 0x9000
        return b"", 0x6A83


class FakeReader:
    """A reader holding a card (apdu -> response callable) that can be taken out."""

    def __init__(self, card: Callable[[bytes], bytes] | None, name: str = "Fake Reader") -> None:
        self.name = name
        self.card = card
        self.power_offs = 0

    def power_on(self) -> bytes:
        if self.card is None:
            raise CardGone("no card in the reader")
        return ATR

    def transmit(self, apdu: bytes) -> bytes:
        if self.card is None:
            raise CardGone("card removed")
        return self.card(apdu)

    def power_off(self) -> None:
        self.power_offs += 1
        if self.card is None:
            raise CardGone("card removed")


def directory_record(*entries: tuple[bytes, bytes, int | None]) -> bytes:
    """A PSE directory record: '70' holding one '61' per (ADF name, label, priority)."""
    body = b""
    for aid, label, priority in entries:
        entry = tlv_bytes(0x4F, aid) + tlv_bytes(0x50, label)
        if priority is not None:
            entry += tlv_bytes(0x87, bytes([priority]))
        body += tlv_bytes(0x61, entry)
    return tlv_bytes(0x70, body)


# A complete application used by several test modules. Record data from the
# published READ RECORD example of "EMV Application Specification :: Read
# Application Data" (Ahmed Hemdan Farghaly, LinkedIn Pulse), PAN 5413330089020094.
VISA_AID = h("A0000000031010")
MC_AID = h("A0000000041010")
PUBLISHED_RECORD_SFI1 = h(
    "70375A0854133300890200945F24032512315F25030401015F3401469F0702FF00"
    "9F0D05FC50A000009F0E0500000000009F0F05F870A49800"
)
CDOLS_RECORD = tlv_bytes(0x8C, h("9F02069F03069F1A0295055F2A029A039C019F3704")) + tlv_bytes(
    0x8D, h("8A029F02069F03069F1A0295055F2A029A039C019F3704")
)
TRACK2 = h("5413330089020094D25122011234567890123F")


def complete_app(aid: bytes = MC_AID, **changes: object) -> FakeApp:
    app = FakeApp(
        aid=aid,
        label=b"MASTERCARD",
        priority=0x01,
        pdol=h("9F1A025F2A029F3704"),
        gpo_response=tlv_bytes(0x77, tlv_bytes(0x82, h("1980")) + tlv_bytes(0x94, h("08010101 10010200"))),
        records={
            (1, 1): PUBLISHED_RECORD_SFI1,
            (2, 1): tlv_bytes(0x70, CDOLS_RECORD),
            (2, 2): tlv_bytes(0x70, tlv_bytes(0x57, TRACK2) + tlv_bytes(0x5F20, b"CARDHOLDER/TEST")),
        },
    )
    for key, value in changes.items():
        setattr(app, key, value)
    return app
