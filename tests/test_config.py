"""The shared configuration readers (firmware/config.py): finding a file, typed fields, errors by key."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from firmware.config import Section, parse_config, read_config
from firmware.errors import ConfigError


def section(raw: object) -> Section:
    return Section.of(raw, "sample.json")


def test_typed_fields_and_their_defaults() -> None:
    read = section({"limit": 5000, "tac": "DC4000A800", "on": True, "name": "POS", "day": "2029-12-31"})
    assert read.integer("limit") == 5000
    assert read.binary("tac") == bytes.fromhex("DC4000A800")
    assert read.binary("tac", length=5) == bytes.fromhex("DC4000A800")
    assert read.flag("on") is True
    assert read.text("name", length=3, ascii_only=True) == "POS"
    assert read.day("day") == date(2029, 12, 31)
    # an absent key takes its default; without one it is missing
    assert read.integer("other", default=7) == 7
    assert read.binary("other", default=b"") == b""
    assert read.texts("other", default=[]) == ()
    with pytest.raises(ConfigError, match=r"^sample.json: other: missing$"):
        read.integer("other")


@pytest.mark.parametrize(
    ("raw", "read", "message"),
    [
        ({"n": True}, lambda s: s.integer("n"), "sample.json: n: must be an integer"),  # a bool is no integer
        ({"n": "5"}, lambda s: s.integer("n"), "sample.json: n: must be an integer"),
        ({"n": 100}, lambda s: s.integer("n", maximum=99), "sample.json: n: must be in 0..99, got 100"),
        ({"b": 1}, lambda s: s.flag("b"), "sample.json: b: must be true or false"),
        ({"h": "ABC"}, lambda s: s.binary("h"), "sample.json: h: 'ABC' is not hex"),
        ({"h": "AB"}, lambda s: s.binary("h", length=2), "sample.json: h: must be 2 bytes, got 1"),
        ({"t": "é"}, lambda s: s.text("t", ascii_only=True), "sample.json: t: must be ASCII"),
        ({"d": "31/12/2029"}, lambda s: s.day("d"), "sample.json: d: is not a YYYY-MM-DD date"),
        ({"o": {"x": 1}}, lambda s: s.section("o").flag("x"), "sample.json: o.x: must be true or false"),
        (
            {"l": [{}, {"x": 1}]},
            lambda s: s.sections("l")[1].flag("x"),
            "sample.json: l[1].x: must be true or",
        ),
        ({"l": [{}, 1]}, lambda s: s.sections("l"), "sample.json: l[1]: must be an object"),
        ({"l": ["ab", 1]}, lambda s: s.texts("l"), "sample.json: l[1]: must be a string"),
        ({"k": 1, "_note": "comment"}, lambda s: s.only("j"), "sample.json: unknown key(s) k"),
    ],
)
def test_a_wrong_value_names_the_file_and_the_key(raw: object, read: object, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        read(section(raw))  # type: ignore[operator]
    assert message in str(raised.value)


def test_the_shipped_files_are_found_as_package_data() -> None:
    for name in ("identity.json", "applications.json", "kernel.json", "capk.json"):
        assert read_config(name).file == name


def test_a_path_given_by_the_caller_overrides(tmp_path: Path) -> None:
    path = tmp_path / "kernel.json"
    path.write_text(json.dumps({"terminal_type": 14}), encoding="utf-8")
    for given in (path, str(path)):
        read = read_config("kernel.json", given)
        assert (read.file, read.integer("terminal_type")) == (str(path), 14)
    with pytest.raises(ConfigError, match="cannot read"):
        read_config("kernel.json", tmp_path / "absent.json")
    with pytest.raises(ConfigError, match=r"^sample\.json: not JSON: .* at line 1 column 2$"):
        parse_config("{", "sample.json")
    with pytest.raises(ConfigError, match=r"^sample.json: top level: must be an object$"):
        parse_config("[]", "sample.json")
    with pytest.raises(ConfigError, match=r"^absent.json: cannot read"):
        read_config("absent.json")
