"""Fuzzing every JSON file the terminal loads, and the kiosk's key-script files.

Each shipped file of firmware/data (identity, applications, kernel, capk, host,
terms, kiosk) is damaged as a document (near misses of each value, keys
dropped or added) and as bytes (cut, flipped, nested 100 000 deep, a number of
5000 digits), written to a file and read by its loader: the loaded settings or
one ConfigError naming the file, nothing else.

`parse_script` (firmware/app.py) reads random lines and near misses of real
tokens: steps or one ScriptError naming the line; and every step it returns
can be played (a WAIT holds a number of milliseconds `int` reads).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware.app import parse_script
from firmware.config import parse_config
from firmware.emv.application_list import load_application_list
from firmware.emv.capk import load_capk_store
from firmware.emv.kernel_config import load_kernel_config
from firmware.host.profile import load_host_profile
from firmware.identity import load_identity
from firmware.kiosk_config import load_kiosk_settings
from firmware.txn.terms import load_terms
from tests.fuzz_targets import bounded, fuzz_settings, json_bytes, mutated_json, mutated_text

LOADERS: dict[str, Callable[[Path], object]] = {
    "identity.json": load_identity,
    "applications.json": load_application_list,
    "kernel.json": load_kernel_config,
    "capk.json": load_capk_store,
    "host.json": load_host_profile,
    "terms.json": load_terms,
    "kiosk.json": load_kiosk_settings,
}
SHIPPED = {name: resources.files("firmware.data").joinpath(name).read_bytes() for name in LOADERS}


def _damaged(name: str) -> st.SearchStrategy[tuple[str, bytes]]:
    raw = SHIPPED[name]
    as_document = mutated_json(json.loads(raw)).map(json_bytes)
    return st.tuples(st.just(name), as_document | as_document | mutated_text(raw))


config_files = st.sampled_from(sorted(LOADERS)).flatmap(_damaged)


@fuzz_settings(400)
@given(config_files)
def test_every_configuration_file_loads_or_is_refused_naming_the_file(case: tuple[str, bytes]) -> None:
    name, raw = case
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        path.write_bytes(raw)
        outcome = bounded(f"config {name}", lambda: LOADERS[name](path))
    assert not isinstance(outcome, str) or outcome == "ConfigError", outcome


@fuzz_settings(200)
@given(st.binary(max_size=200) | st.sampled_from(list(SHIPPED.values())).flatmap(mutated_text))
def test_any_bytes_are_a_section_or_a_config_error(raw: bytes) -> None:
    outcome = bounded("config parse", lambda: parse_config(raw, "fuzz.json"))
    assert not isinstance(outcome, str) or outcome == "ConfigError", outcome


_TOKENS = ["ENTER", "CANCEL", "CLEAR", "F1", "F4", "UP", "DOWN", "0", "9", "WAIT 500", "SHOT idle",
           "EXPECT 请输入金额", "CARD INSERT visa-credit", "CARD REMOVE", "# c", "WAIT 5 # ms"]  # fmt: skip


_ARGUMENTS = ["500", "0", "²", "١٢", "𝟓", "99999999999999999999", "idle", "..", ".", "a/b", "visa-credit",
              "INSERT visa-credit", "INSERT", "REMOVE", "REMOVE x", "请输入金额", "# c", ""]  # fmt: skip


@st.composite
def script_lines(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    if draw(st.booleans()):  # a verb and an argument, each a near miss
        verb = draw(st.sampled_from(["WAIT", "SHOT", "CARD", "EXPECT", "wait", "ENTER", "F5", "Key"]))
        argument = draw(st.sampled_from(_ARGUMENTS) | st.text(max_size=6))
        return f"{verb}{draw(st.sampled_from([' ', '  ', chr(9), chr(0x3000)]))}{argument}"
    line = draw(st.sampled_from(_TOKENS))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.text(max_size=4)) + line[at + draw(st.integers(0, 2)) :]
    return line


scripts = st.lists(script_lines(), max_size=6).map("\n".join) | st.text(max_size=60)


@fuzz_settings(400)
@given(scripts)
def test_a_key_script_parses_to_playable_steps_or_names_its_line(text: str) -> None:
    def parse() -> int:
        steps = parse_script(text)
        for step in steps:
            if step.verb == "WAIT":
                assert int(step.arg) >= 0
            if step.verb == "SHOT":
                assert "/" not in step.arg
        return len(steps)

    outcome = bounded("kiosk parse_script", parse)
    assert isinstance(outcome, int) or outcome == "ScriptError", outcome
