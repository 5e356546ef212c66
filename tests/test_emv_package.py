"""The `firmware.emv` package docstring is the newcomer's map: it names where
to start and only modules that exist."""

from __future__ import annotations

import importlib.util
import re

import firmware.emv


def _listed_modules() -> list[str]:
    doc = firmware.emv.__doc__ or ""
    return re.findall(r"^    ([a-z_]+) {2,}\S", doc, flags=re.MULTILINE)


def test_the_docstring_says_where_to_start() -> None:
    doc = firmware.emv.__doc__ or ""
    assert "run_transaction" in doc and "CardReader" in doc


def test_every_module_the_docstring_lists_exists() -> None:
    listed = _listed_modules()
    assert {"tlv", "reader", "transport", "selection", "kernel", "oda", "capk", "mask"} <= set(listed)
    missing = [name for name in listed if importlib.util.find_spec(f"firmware.emv.{name}") is None]
    assert missing == []
