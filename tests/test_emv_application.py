"""GET PROCESSING OPTIONS and READ RECORD (EMV Book 3 10.1-10.3).

Published vectors: [SO1] Stack Overflow q. 30919084 (GPO format 1
'80 0A 1C 00 08 01 03 00 10 01 01 00'); [SO2] Stack Overflow q. 54864327
(GPO format 2 '77 16 82 02 39 00 94 10 ...'); [AHF] LinkedIn "EMV Application
Specification :: Read Application Data" (AFL '080101011001030018010200').
"""

from __future__ import annotations

import pytest

from firmware.emv.application import (
    AflEntry,
    build_pdol_data,
    parse_afl,
    parse_processing_options,
    parse_record,
    read_application,
    read_records,
)
from firmware.emv.application_list import AidEntry, ApplicationList
from firmware.emv.transport import Transport
from firmware.errors import CardDataError, SelectionError, StatusWordError, TlvError
from tests.emv_fakes import (
    MC_AID,
    PUBLISHED_RECORD_SFI1,
    VISA_AID,
    FakeCard,
    FakeReader,
    complete_app,
    h,
    tlv_bytes,
)

TERMINAL_DATA = {0x9F1A: h("0156"), 0x5F2A: h("0156")}


def config(*aids: bytes, use_pse: bool = False) -> ApplicationList:
    return ApplicationList(tuple(AidEntry(aid) for aid in aids), use_pse)


def powered(card: FakeCard) -> Transport:
    transport = Transport(FakeReader(card))
    transport.power_on()
    return transport


def test_published_gpo_format_1() -> None:
    options = parse_processing_options(h("80 0A 1C 00 08 01 03 00 10 01 01 00"))
    assert (options.aip, options.afl, options.response_format) == (h("1C00"), h("0801030010010100"), 0x80)
    assert options.entries == (AflEntry(1, 1, 3, 0), AflEntry(2, 1, 1, 0))
    assert options.data == {0x82: h("1C00"), 0x94: h("0801030010010100")}


def test_published_gpo_format_2() -> None:
    options = parse_processing_options(h("7716820239009410100101011002020018010200200102009000")[:-2])
    assert (options.aip, options.response_format) == (h("3900"), 0x77)
    assert options.entries == (
        AflEntry(2, 1, 1, 1),
        AflEntry(2, 2, 2, 0),
        AflEntry(3, 1, 2, 0),
        AflEntry(4, 1, 2, 0),
    )


def test_published_afl() -> None:
    assert parse_afl(h("080101011001030018010200")) == (
        AflEntry(1, 1, 1, 1),
        AflEntry(2, 1, 3, 0),
        AflEntry(3, 1, 2, 0),
    )
    entry = AflEntry(2, 3, 6, 2)
    assert list(entry.record_numbers) == [3, 4, 5, 6]
    assert [entry.for_oda(n) for n in entry.record_numbers] == [True, True, False, False]


@pytest.mark.parametrize(
    ("afl", "words"),
    [
        (h("080101"), "4-byte"),
        (h("00010100"), "SFI 0"),
        (h("F8010100"), "SFI 31"),
        (h("08000100"), "first record is 0"),
        (h("08030200"), "before first"),
        (h("08010203"), "3 records for ODA out of 2"),
        (h("08010101 18020100"), "entry 2"),
    ],
)
def test_bad_afl(afl: bytes, words: str) -> None:
    with pytest.raises(CardDataError, match=words) as caught:
        parse_afl(afl)
    assert caught.value.tag == 0x94


@pytest.mark.parametrize(
    ("response", "tag"),
    [
        (h("80 01 1C"), 0x80),  # shorter than an AIP
        (h("77 04 82 02 19 80"), 0x94),  # no AFL
        (h("77 06 94 04 08 01 01 00"), 0x82),  # no AIP
        (h("77 0D 82 02 19 80 82 01 00 94 04 08 01 01 00"), 0x82),  # AIP twice
        (h("77 0B 82 03 19 80 00 94 04 08 01 01 00"), 0x82),  # AIP of 3 bytes
        (h("70 04 82 02 19 80"), 0x70),  # neither format
    ],
)
def test_bad_gpo_response(response: bytes, tag: int) -> None:
    with pytest.raises(CardDataError) as caught:
        parse_processing_options(response)
    assert caught.value.tag == tag


def test_truncated_gpo_response_is_a_tlv_error() -> None:
    with pytest.raises(TlvError):
        parse_processing_options(h("77 16 82 02 39 00 94 10 10 01"))


def test_pdol_filled_from_terminal_and_transaction_data() -> None:
    pdol = h("9F1A02 5F2A02 9F3704 9F0206 9F3501")
    data = build_pdol_data(pdol, {**TERMINAL_DATA, 0x9F37: h("11223344"), 0x9F02: h("1000")})
    assert data == h("0156 0156 11223344 000000001000 00")
    assert build_pdol_data(None, TERMINAL_DATA) == b""


def test_read_application_end_to_end() -> None:
    card = FakeCard([complete_app()])
    transport = powered(card)
    pdol_source = {**TERMINAL_DATA, 0x9F37: h("11223344")}
    data = read_application(transport, config(MC_AID), transaction_data=pdol_source)
    assert card.gpo_commands == [h("83 08 0156 0156 11223344")]
    assert data.selected.aid == MC_AID
    assert (data.options.aip, data.options.pdol_data) == (h("1980"), h("0156015611223344"))
    assert [(r.sfi, r.number, r.for_oda) for r in data.records.records] == [
        (1, 1, True),
        (2, 1, False),
        (2, 2, False),
    ]
    assert data.pan == "5413330089020094"
    assert data.masked_pan == "541333******0094"
    assert data.expiry == "251231"
    assert data.records.missing_mandatory == ()
    assert not data.records.oda_record_invalid
    # ODA input: the value of '70' of SFI 1 record 1 (Book 3 10.3), without tag and length.
    assert data.records.oda_data == PUBLISHED_RECORD_SFI1[2:]
    icc = data.icc_data
    assert icc[0x84] == MC_AID and icc[0x82] == h("1980") and icc[0x5F24] == h("251231")
    assert icc[0x9F38] == h("9F1A025F2A029F3704")


def test_missing_mandatory_data_is_recorded_not_raised() -> None:
    app = complete_app()
    app.records[(2, 1)] = tlv_bytes(0x70, tlv_bytes(0x8C, h("9F0206")))
    data = read_application(powered(FakeCard([app])), config(MC_AID))
    assert data.records.missing_mandatory == (0x8D,)


def test_gpo_6985_drops_the_application_and_selects_again() -> None:
    refusing = complete_app(VISA_AID, priority=0x01, gpo_sw=0x6985, gpo_response=b"")
    accepting = complete_app(MC_AID, priority=0x02)
    card = FakeCard([refusing, accepting])
    data = read_application(powered(card), config(VISA_AID, MC_AID))
    assert data.selected.aid == MC_AID
    assert any("6985" in note for note in data.selection_notes)


def test_gpo_6985_on_the_only_application_ends_selection() -> None:
    card = FakeCard([complete_app(gpo_sw=0x6985, gpo_response=b"")])
    with pytest.raises(SelectionError):
        read_application(powered(card), config(MC_AID))


def test_gpo_other_error_is_a_status_word_error() -> None:
    card = FakeCard([complete_app(gpo_sw=0x6A80, gpo_response=b"")])
    with pytest.raises(StatusWordError) as caught:
        read_application(powered(card), config(MC_AID))
    assert caught.value.sw == 0x6A80


def test_missing_record_ends_the_transaction() -> None:
    app = complete_app()
    del app.records[(2, 2)]
    with pytest.raises(StatusWordError) as caught:
        read_application(powered(FakeCard([app])), config(MC_AID))
    assert caught.value.sw == 0x6A83


def test_duplicate_data_object_across_records() -> None:
    app = complete_app()
    app.records[(2, 2)] = tlv_bytes(0x70, tlv_bytes(0x5A, h("5413330089020094")))
    with pytest.raises(CardDataError, match="SFI 2 record 2") as caught:
        read_application(powered(FakeCard([app])), config(MC_AID))
    assert caught.value.tag == 0x5A


def test_duplicate_inside_one_record() -> None:
    with pytest.raises(CardDataError) as caught:
        parse_record(1, 1, tlv_bytes(0x70, tlv_bytes(0x5F24, h("251231")) * 2))
    assert caught.value.tag == 0x5F24


@pytest.mark.parametrize(
    "data",
    [
        tlv_bytes(0x77, tlv_bytes(0x5A, h("12"))),  # not '70'
        h("70 05 5A 01 12"),  # truncated
        tlv_bytes(0x70, h("5A0112")) + tlv_bytes(0x70, h("9F360101")),  # two templates
        tlv_bytes(0x70, h("5A 05 12")),  # malformed inside
    ],
)
def test_sfi_1_to_10_record_must_be_one_70_template(data: bytes) -> None:
    with pytest.raises(CardDataError, match="SFI 3 record 4"):
        parse_record(3, 4, data)


def test_sfi_11_to_30_records_feed_oda_whole() -> None:
    proprietary = h("DEADBEEF")
    template = tlv_bytes(0x70, tlv_bytes(0x9F4A, h("82")))
    app = complete_app(
        gpo_response=tlv_bytes(
            0x77, tlv_bytes(0x82, h("1980")) + tlv_bytes(0x94, h("08010101 10010200 58010202"))
        ),
    )
    app.records[(11, 1)] = template
    app.records[(11, 2)] = proprietary
    data = read_application(powered(FakeCard([app])), config(MC_AID))
    assert data.records.oda_data == PUBLISHED_RECORD_SFI1[2:] + template + proprietary
    assert data.records.oda_record_invalid  # record 2 of SFI 11 is not a '70' template
    assert data.records.tags[0x9F4A] == h("82")
    record = data.records.records[-1]
    assert (record.sfi, record.tags, record.oda_input) == (11, {}, proprietary)


def test_read_records_follows_the_afl_order() -> None:
    card = FakeCard([complete_app()])
    transport = powered(card)
    read_application(transport, config(MC_AID))
    reads = [entry.command.hex().upper() for entry in transport.trace if entry.name == "READ RECORD"]
    assert reads == ["00B2010C00", "00B2011400", "00B2021400"]
    again = read_records(transport, parse_afl(h("10020200")))
    assert [r.number for r in again.records] == [2]
