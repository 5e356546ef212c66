"""Application selection (EMV Book 1 12): PSE, list of AIDs with partial
matching, priority order, cardholder confirmation, final SELECT.

[JER] javaemvreader ExampleOutput (http://code.google.com/p/javaemvreader/wiki/ExampleOutput):
its published steps 2-4 (SELECT PSE, READ RECORD 1 and 2 of SFI 2) are replayed
byte for byte; the end of the directory (6A83) and the final SELECT are ours.
[SO1] Stack Overflow q. 30919084 (Visa Electron FCI); [AHF] LinkedIn "EMV Application
Specification :: Application selection" (meeza FCI).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from firmware.emv.application_list import AidEntry, ApplicationList
from firmware.emv.selection import (
    ApplicationSelector,
    Candidate,
    order_candidates,
    parse_directory_record,
    parse_fci,
)
from firmware.emv.transport import Transport
from firmware.errors import CardDataError, SelectionError, TlvError
from tests.emv_fakes import (
    MC_AID,
    VISA_AID,
    FakeApp,
    FakeCard,
    FakeReader,
    ScriptedReader,
    directory_record,
    h,
    tlv_bytes,
)

JER_VISA = h("A1 23 45 67 89 10 10")
JER_BANKAXEPT = h("D5 78 00 00 02 10 10")


def config(*aids: bytes | AidEntry, use_pse: bool = True) -> ApplicationList:
    entries = tuple(aid if isinstance(aid, AidEntry) else AidEntry(aid) for aid in aids)
    return ApplicationList(aids=entries, use_pse=use_pse)


def selector_for(card: FakeCard, cfg: ApplicationList, **kwargs: object) -> ApplicationSelector:
    transport = Transport(FakeReader(card))
    transport.power_on()
    return ApplicationSelector(transport, cfg, **kwargs)  # type: ignore[arg-type]


def test_javaemvreader_pse_directory_and_priority() -> None:
    bankaxept_fci = tlv_bytes(
        0x6F, tlv_bytes(0x84, JER_BANKAXEPT) + tlv_bytes(0xA5, tlv_bytes(0x50, b"bankaxept"))
    )
    reader = ScriptedReader(
        [
            (
                "00 A4 04 00 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00",
                "6f 20 84 0e 31 50 41 59 2e 53 59 53 2e 44 44 46 30 31 a5 0e 88 01 02 5f 2d 04 6e 6f 65 6e"
                " 9f 11 01 01 90 00",
            ),
            (
                "00 B2 01 14 00",
                "70 23 61 21 4f 07 a1 23 45 67 89 10 10 50 04 56 49 53 41 9f 12 0c 56 49 53 41 20 43 6c 61"
                " 73 73 69 63 87 01 02 90 00",
            ),
            (
                "00 B2 02 14 00",
                "70 25 61 23 4f 07 d5 78 00 00 02 10 10 50 09 62 61 6e 6b 61 78 65 70 74 9f 12 09 62 61 6e"
                " 6b 61 78 65 70 74 87 01 01 90 00",
            ),
            ("00 B2 03 14 00", "6A 83"),
            ("00 A4 04 00 07 D5 78 00 00 02 10 10 00", bankaxept_fci.hex() + "9000"),
        ]
    )
    transport = Transport(reader)
    selector = ApplicationSelector(transport, config(JER_VISA, JER_BANKAXEPT))
    candidates = selector.build_candidates()
    assert selector.method == "pse"
    assert [(c.aid, c.label, c.preferred_name, c.priority) for c in candidates] == [
        (JER_BANKAXEPT, "bankaxept", "bankaxept", 0x01),
        (JER_VISA, "VISA", "VISA Classic", 0x02),
    ]
    selected = selector.select()
    assert selected.aid == JER_BANKAXEPT and selected.label == "bankaxept"
    assert reader.finished


def test_published_fcis_parse() -> None:
    # [SO1] Visa Electron
    fci = parse_fci(
        h(
            "6F 2C 84 07 A0 00 00 00 03 20 10 A5 21 50 0D 56 49 53 41 20 45 4C 45 43 54 52 4F 4E 87 01 01"
            " 5F 2D 04 62 67 65 6E BF 0C 05 9F 4D 02 0B 0A"
        )
    )
    assert (fci.df_name, fci.label, fci.priority, fci.language_preference) == (
        h("A0000000032010"),
        "VISA ELECTRON",
        1,
        "bgen",
    )
    assert fci.issuer_discretionary_data == h("9F4D020B0A")
    assert fci.data[0x9F4D] == h("0B0A")
    assert fci.pdol is None
    # [AHF] meeza
    meeza = parse_fci(
        h(
            "6F318408A000000732100123A52550056D65657A615F2D046172656E9F1101069F12056D65657A61870101BF0C059F4D02151E"
        )
    )
    assert (meeza.df_name, meeza.label, meeza.preferred_name, meeza.issuer_code_table_index) == (
        h("A000000732100123"),
        "meeza",
        "meeza",
        6,
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (tlv_bytes(0x6F, tlv_bytes(0xA5, b"")), CardDataError),  # no DF name
        (tlv_bytes(0x6F, tlv_bytes(0x84, VISA_AID)), CardDataError),  # no A5
        (tlv_bytes(0x70, b""), TlvError),  # not an FCI
        (h("6F 05 84 07 A0"), TlvError),  # truncated
    ],
)
def test_bad_fci(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_fci(data)


def test_directory_record_skips_entries_without_adf_name() -> None:
    record = tlv_bytes(
        0x70,
        tlv_bytes(0x61, tlv_bytes(0x9D, b"DDF NAME") + tlv_bytes(0x50, b"DDF"))
        + tlv_bytes(0x61, tlv_bytes(0x4F, VISA_AID) + tlv_bytes(0x50, b"VISA")),
    )
    assert [e.adf_name for e in parse_directory_record(record)] == [VISA_AID]


def test_no_pse_falls_back_to_the_list_of_aids() -> None:
    card = FakeCard([FakeApp(VISA_AID)])
    selector = selector_for(card, config(MC_AID, VISA_AID))
    assert [c.aid for c in selector.build_candidates()] == [VISA_AID]
    assert selector.method == "aid-list"
    assert selector.notes == ["PSE not used: no PSE"]


@pytest.mark.parametrize(("sw", "note"), [(0x6283, "PSE blocked"), (0x6F00, "SW 6F00")])
def test_blocked_or_failing_pse_falls_back(sw: int, note: str) -> None:
    card = FakeCard([FakeApp(VISA_AID)], pse_records=[directory_record((VISA_AID, b"VISA", 1))], pse_sw=sw)
    selector = selector_for(card, config(VISA_AID))
    assert [c.source for c in selector.build_candidates()] == ["aid-list"]
    assert note in selector.notes[0]


def test_pse_listing_nothing_supported_falls_back() -> None:
    other = h("A0000000999999")
    card = FakeCard([FakeApp(VISA_AID)], pse_records=[directory_record((other, b"OTHER", 1))])
    selector = selector_for(card, config(VISA_AID))
    assert [(c.aid, c.source) for c in selector.build_candidates()] == [(VISA_AID, "aid-list")]


def test_pse_record_errors_are_skipped() -> None:
    card = FakeCard(
        [FakeApp(VISA_AID)],
        pse_records=[h("6A"), directory_record((VISA_AID, b"VISA", 1))],
    )
    selector = selector_for(card, config(VISA_AID))
    assert [(c.aid, c.source) for c in selector.build_candidates()] == [(VISA_AID, "pse")]
    assert any("record 1" in note for note in selector.notes)


def test_card_blocked_6a81_ends_selection() -> None:
    card = FakeCard([FakeApp(VISA_AID)], pse_records=[], pse_sw=0x6A81)
    with pytest.raises(SelectionError, match="6A81"):
        selector_for(card, config(VISA_AID)).build_candidates()

    def blocked(apdu: bytes) -> bytes:
        return h("6A81")

    transport = Transport(FakeReader(blocked))
    with pytest.raises(SelectionError, match="6A81"):
        ApplicationSelector(transport, config(VISA_AID, use_pse=False)).build_candidates()


def test_partial_matches_follow_next_occurrence() -> None:
    first, second = VISA_AID + h("01"), VISA_AID + h("02")
    card = FakeCard([FakeApp(first, b"ONE"), FakeApp(second, b"TWO")])
    selector = selector_for(card, config(VISA_AID, use_pse=False))
    assert [c.aid for c in selector.build_candidates()] == [first, second]


def test_partial_match_refused_when_the_asi_says_exact() -> None:
    card = FakeCard([FakeApp(VISA_AID + h("01"))])
    selector = selector_for(card, config(AidEntry(VISA_AID, partial_match=False), use_pse=False))
    assert selector.build_candidates() == ()
    with pytest.raises(SelectionError, match="no application"):
        selector.select()


def test_exact_match_found_after_a_refused_partial_one() -> None:
    card = FakeCard([FakeApp(VISA_AID + h("01")), FakeApp(VISA_AID)])
    selector = selector_for(card, config(AidEntry(VISA_AID, partial_match=False), use_pse=False))
    assert [c.aid for c in selector.build_candidates()] == [VISA_AID]


def test_blocked_application_is_not_a_candidate() -> None:
    card = FakeCard([FakeApp(VISA_AID, select_sw=0x6283), FakeApp(MC_AID)])
    selector = selector_for(card, config(VISA_AID, MC_AID, use_pse=False))
    assert [c.aid for c in selector.build_candidates()] == [MC_AID]


def test_priority_order_is_stable_and_unprioritised_last() -> None:
    made = [
        Candidate(h("A000000001"), priority=None),
        Candidate(h("A000000002"), priority=0x03),
        Candidate(h("A000000003"), priority=0x00),
        Candidate(h("A000000004"), priority=0x81),
        Candidate(h("A000000005"), priority=0x03),
    ]
    assert [c.aid[-1] for c in order_candidates(made)] == [4, 2, 5, 1, 3]
    assert made[3].needs_confirmation and not made[1].needs_confirmation


def test_without_a_chooser_the_highest_priority_not_needing_confirmation_wins() -> None:
    card = FakeCard([FakeApp(VISA_AID, priority=0x81), FakeApp(MC_AID, priority=0x02)])
    selected = selector_for(card, config(VISA_AID, MC_AID, use_pse=False)).select()
    assert selected.aid == MC_AID


def test_single_application_needing_confirmation() -> None:
    def card() -> FakeCard:
        return FakeCard([FakeApp(VISA_AID, priority=0x81)])

    with pytest.raises(SelectionError, match="confirmation"):
        selector_for(card(), config(VISA_AID, use_pse=False)).select()

    offered: list[Sequence[Candidate]] = []

    def confirm(candidates: Sequence[Candidate]) -> Candidate | None:
        offered.append(candidates)
        return candidates[0]

    assert selector_for(card(), config(VISA_AID, use_pse=False), choose=confirm).select().aid == VISA_AID
    assert [c.aid for c in offered[0]] == [VISA_AID]
    with pytest.raises(SelectionError, match="did not confirm"):
        selector_for(card(), config(VISA_AID, use_pse=False), choose=lambda c: None).select()


def test_single_application_without_confirmation_does_not_ask() -> None:
    def never(candidates: Sequence[Candidate]) -> Candidate | None:
        raise AssertionError("the cardholder was asked")

    card = FakeCard([FakeApp(VISA_AID, priority=0x01)])
    assert selector_for(card, config(VISA_AID, use_pse=False), choose=never).select().aid == VISA_AID


def test_several_candidates_are_offered_in_priority_order() -> None:
    card = FakeCard([FakeApp(VISA_AID, priority=0x02), FakeApp(MC_AID, priority=0x01)])
    seen: list[bytes] = []

    def pick_last(candidates: Sequence[Candidate]) -> Candidate | None:
        seen.extend(c.aid for c in candidates)
        return candidates[-1]

    selected = selector_for(card, config(VISA_AID, MC_AID, use_pse=False), choose=pick_last).select()
    assert seen == [MC_AID, VISA_AID]
    assert selected.aid == VISA_AID


def test_final_select_failure_removes_the_candidate_and_tries_the_next() -> None:
    # Found through the PSE, but blocked when finally selected.
    card = FakeCard(
        [FakeApp(VISA_AID, select_sw=0x6283), FakeApp(MC_AID)],
        pse_records=[directory_record((VISA_AID, b"VISA", 1), (MC_AID, b"MC", 2))],
    )
    selector = selector_for(card, config(VISA_AID, MC_AID))
    assert selector.select().aid == MC_AID
    assert [c.aid for c in selector.candidates] == [MC_AID]
    assert any("6283" in note for note in selector.notes)


def test_final_select_with_another_df_name_is_refused() -> None:
    card = FakeCard([FakeApp(VISA_AID + h("01"))], pse_records=[directory_record((VISA_AID, b"VISA", 1))])
    with pytest.raises(SelectionError):
        selector_for(card, config(VISA_AID)).select()


def test_chooser_returning_a_stranger_is_refused() -> None:
    card = FakeCard([FakeApp(VISA_AID, priority=1), FakeApp(MC_AID, priority=2)])
    stranger = Candidate(h("A0000000999999"))
    with pytest.raises(SelectionError):
        selector_for(card, config(VISA_AID, MC_AID, use_pse=False), choose=lambda c: stranger).select()


# --- applications the terminal cannot process (no kernel parameters) -------------------------


def only(*aids: bytes) -> object:
    return lambda aid: aid in aids


def test_pse_application_the_terminal_cannot_process_is_not_a_candidate() -> None:
    card = FakeCard(
        [FakeApp(VISA_AID, priority=1), FakeApp(MC_AID, priority=2)],
        pse_records=[directory_record((VISA_AID, b"VISA", 1), (MC_AID, b"MASTERCARD", 2))],
    )
    selector = selector_for(card, config(VISA_AID, MC_AID), processable=only(MC_AID))
    assert [c.aid for c in selector.build_candidates()] == [MC_AID]
    assert selector.select().aid == MC_AID  # the higher-priority Visa is never selected
    assert any("A0000000031010: left out" in note for note in selector.notes)


def test_pse_listing_only_unprocessable_applications_falls_back_to_the_list_of_aids() -> None:
    # Book 1 12.3.2: no application both support in the PSE -> the terminal's list of AIDs
    pse = [directory_record((VISA_AID, b"VISA", 1))]
    card = FakeCard([FakeApp(VISA_AID), FakeApp(MC_AID)], pse_records=pse)
    selector = selector_for(card, config(VISA_AID, MC_AID), processable=only(MC_AID))
    assert [c.aid for c in selector.build_candidates()] == [MC_AID]
    assert selector.method == "aid-list"


@pytest.mark.parametrize("partial", [False, True], ids=["exact", "partial"])
def test_list_of_aids_leaves_out_what_the_terminal_cannot_process(partial: bool) -> None:
    electron = h("A0000000032010") + (b"\x01" if partial else b"")
    card = FakeCard([FakeApp(electron, priority=1), FakeApp(VISA_AID, priority=2)])
    terminal = config(h("A0000000032010"), VISA_AID, use_pse=False)
    selector = selector_for(card, terminal, processable=only(VISA_AID))
    assert [c.aid for c in selector.build_candidates()] == [VISA_AID]
    with pytest.raises(SelectionError):
        selector_for(card, terminal, processable=only()).select()
