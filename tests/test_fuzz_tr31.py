"""Fuzzing TR-31 key blocks (firmware/keys/tr31.py): headers, optional blocks, key data, MAC, KBPK.

Real blocks (psec, an independent implementation) of versions B and D are
damaged a character or a field at a time, and random text is tried too: a
block either unwraps to the key that went in (when nothing was damaged) or is
refused with a KeyBlockError naming a TR-31 field, within the time and memory
bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psec
from hypothesis import given
from hypothesis import strategies as st

from firmware.errors import KeyBlockError
from firmware.keys.tr31 import check_newer_key_version, parse_header, unwrap_key_block, unwrap_tmk
from tests.fuzz_targets import bounded, bounded_allowing, fuzz_settings

KBPKS = {
    "B": [bytes(range(16)), bytes(range(24))],
    "D": [bytes(range(16)), bytes(range(24)), bytes(range(32))],
}
FIELDS = {
    "key block",
    "version id",
    "length",
    "key usage",
    "algorithm",
    "mode of use",
    "key version number",
    "exportability",
    "number of optional blocks",
    "optional blocks",
    "key data",
    "key length",
    "MAC",
    "KBPK",
}

_ALNUM = st.sampled_from("0123456789ABCDEFGKNTXYZabc")


@st.composite
def real_block(draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[bytes, str, bytes]:
    version = draw(st.sampled_from(["B", "D"]))
    kbpk = draw(st.sampled_from(KBPKS[version]))
    usage = draw(st.sampled_from(["K0", "K1", "D0", "P0"]))
    algorithm = draw(st.sampled_from(["T", "A"]))
    mode = draw(st.sampled_from(["B", "D", "N", "E"]))
    kvn = draw(st.sampled_from(["00", "01", "c1", "99"]))
    key = draw(st.sampled_from([bytes(range(16, 32)), bytes(range(40, 64)), bytes(range(8))]))
    header = f"{version}0000{usage}{algorithm}{mode}{kvn}N0000"
    return kbpk, psec.tr31.wrap(kbpk, header, key), key


@st.composite
def damaged_block(draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[bytes, str, bytes | None]:
    kbpk, block, _ = draw(real_block())
    text = list(block)
    for _ in range(draw(st.integers(1, 3))):
        if len(text) < 16:
            break
        at = draw(st.integers(0, len(text) - 1))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            text[at] = draw(_ALNUM)
        elif kind == 1:
            del text[at:]
        elif kind == 2:
            text[at:at] = list(draw(st.text(min_size=1, max_size=8)))
        elif kind == 3:  # the count of optional blocks and one made up
            text[12:14] = list(draw(st.sampled_from(["01", "02", "99", "0A"])))
            body = draw(st.sampled_from(["KS18" + "0" * 20, "KC0C01", "PB00", "KS0002FFFF", "HM0601", "00"]))
            text[16:16] = list(body)
        elif kind == 4:  # the length field says something else
            text[1:5] = list(f"{draw(st.integers(0, 9999)):04d}")
        else:
            text[at] = draw(st.characters(codec="utf-8"))
    if draw(st.booleans()):
        kbpk = draw(st.sampled_from([b"", bytes(8), bytes(17), *KBPKS["B"], *KBPKS["D"]]))
    return kbpk, "".join(text), None


blocks = (
    st.tuples(st.sampled_from([bytes(16), bytes(32)]), st.text(max_size=120), st.none())
    | damaged_block()
    | real_block()
)


@fuzz_settings(300)
@given(blocks)
def test_key_blocks_unwrap_or_name_the_field_to_blame(case: tuple[bytes, str, bytes | None]) -> None:
    kbpk, block, wrapped = case

    def unwrap() -> tuple[str, bytes]:
        parse_header(block)
        header, key = unwrap_key_block(kbpk, block)
        if wrapped is not None:  # an undamaged block gives back its key
            assert key == wrapped
        unwrap_tmk(kbpk, block)
        return header.key_usage, key

    outcome = bounded_allowing("tr31", unwrap, (KeyBlockError,))
    if isinstance(outcome, tuple):
        usage, _key = outcome
        assert usage == "K0"
    else:
        assert isinstance(outcome, KeyBlockError) and (outcome.field in FIELDS or len(outcome.field) == 2)


@fuzz_settings(200)
@given(st.text(max_size=3), st.none() | st.text(max_size=3))
def test_key_version_order_refuses_only_with_key_block_errors(new: str, installed: str | None) -> None:
    outcome = bounded("tr31 key version", lambda: check_newer_key_version(new, installed))
    assert outcome in (None, "KeyBlockError")
