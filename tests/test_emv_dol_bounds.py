"""A DOL whose lengths cannot fit one command is refused before anything is built (PDOL, CDOL, TDOL, DDOL).

A card whose PDOL listed 30 entries of length FFFFFF made the terminal build
500 MB of zeros before GET PROCESSING OPTIONS refused them.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest

from firmware.emv import tags, tlv
from firmware.emv.application import build_pdol_data
from firmware.emv.genac import build_cdol_data, tc_hash_value
from firmware.errors import CardDataError, TlvError

HUGE_DOL = bytes.fromhex("9F0283FFFFFF") * 30
SOURCE = {0x9F02: bytes.fromhex("000000001234"), 0x9F37: bytes(4)}


def _peak_allocation(build: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        with pytest.raises((TlvError, CardDataError)):
            build()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "build",
    [
        lambda: build_pdol_data(HUGE_DOL, SOURCE),
        lambda: build_cdol_data(HUGE_DOL, SOURCE),
        lambda: build_cdol_data(HUGE_DOL, SOURCE, 0x8D),
        lambda: tc_hash_value(HUGE_DOL, SOURCE),
        lambda: tlv.build_dol([(0x9F02, 0xFFFFFF)] * 2, SOURCE, tags.format_of),
    ],
    ids=["PDOL", "CDOL1", "CDOL2", "TDOL", "build_dol"],
)
def test_a_dol_too_large_for_a_command_is_refused_before_building(build: Callable[[], object]) -> None:
    assert _peak_allocation(build) < 1 << 20


def test_parse_dol_names_the_entry_that_overflows() -> None:
    with pytest.raises(TlvError, match=r"more than 255 bytes|at most 255") as caught:
        tlv.parse_dol(bytes.fromhex("9F3704") + bytes.fromhex("9F0281FC"))
    assert caught.value.offset == 3 and caught.value.tag == 0x9F02
    assert tlv.parse_dol(bytes.fromhex("9F0281FB9F3704")) == [(0x9F02, 0xFB), (0x9F37, 4)]  # exactly 255


def test_a_ddol_too_large_is_an_oda_failure() -> None:
    from firmware.emv.oda import _ddol_data

    result = _ddol_data({0x9F49: HUGE_DOL}, {0x9F37: bytes(4)}, None)
    assert not isinstance(result, bytes) and (
        "more than 255 bytes" in str(result) or "at most 255" in str(result)
    )
