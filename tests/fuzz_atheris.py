"""Coverage-guided fuzzing (atheris, libFuzzer) of the byte-level parsers; `./build.sh fuzz` runs it.

    python tests/fuzz_atheris.py TARGET [libFuzzer options] [CORPUS_DIR]

Targets: tlv, dol, iso8583, answer_mac, tr31, manifest, config, script, books.
Each input goes to the parser; a PosError is an answer, any other exception
is a crash that libFuzzer writes to its artifact file. `seeds(target)` gives
the well-formed inputs a corpus starts from. The firmware is instrumented at
import, so libFuzzer follows the branches it takes.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["firmware"]):
    from firmware.app import parse_script
    from firmware.config import parse_config
    from firmware.emv import tags, tlv
    from firmware.errors import PosError
    from firmware.host.mac import KeyMac, open_answer, seal
    from firmware.host.spec import unpack
    from firmware.keys.mac import MacProfile
    from firmware.keys.tr31 import unwrap_tmk
    from firmware.store.storage import CrashSafeStorage
    from firmware.update.manifest import parse_manifest

MAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
KBPK = bytes(range(16))  # TEST key


def _tlv(data: bytes) -> None:
    list(tlv.flatten(data))
    tlv.find(data, 0x9F02)


def _dol(data: bytes) -> None:
    tlv.build_dol(tlv.parse_dol(data), {0x9F02: bytes(6)}, tags.format_of)


def _answer_mac(data: bytes) -> None:
    open_answer(data, KeyMac(MacProfile.UNIONPAY_ECB, MAK))


def _tr31(data: bytes) -> None:
    unwrap_tmk(KBPK, data.decode("latin-1"))


def _config(data: bytes) -> None:
    section = parse_config(data, "fuzz.json")
    section.only("a", "b")
    section.integer("a")
    section.sections("b")


def _script(data: bytes) -> None:
    parse_script(data.decode("utf-8", "replace"))


def _books(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "open.json"
        path.write_bytes(data)
        CrashSafeStorage(path, lambda: datetime(2025, 6, 1, tzinfo=UTC)).read()


TARGETS: dict[str, Callable[[bytes], object]] = {
    "tlv": _tlv,
    "dol": _dol,
    "iso8583": unpack,
    "answer_mac": _answer_mac,
    "tr31": _tr31,
    "manifest": parse_manifest,
    "config": _config,
    "script": _script,
    "books": _books,
}


def seeds(target: str) -> list[bytes]:
    """Well-formed inputs for the corpus of `target`."""
    answer = {"t": "0210", "3": "000000", "4": "000000001234", "11": "000042", "37": "000000123456",
              "39": "00", "41": "TERM0001", "42": "123456789012345"}  # fmt: skip
    shipped = [resources.files("firmware.data").joinpath(n).read_bytes() for n in ("host.json", "kiosk.json")]
    return {
        "tlv": [bytes.fromhex("6F1A840E315041592E5359532E4444463031A5088801015F2D027A68")],
        "dol": [bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")],
        "iso8583": [seal(answer, KeyMac(MacProfile.UNIONPAY_ECB, MAK))],
        "answer_mac": [seal(answer, KeyMac(MacProfile.UNIONPAY_ECB, MAK))],
        "tr31": [b"B0096K0TB00N0000" + b"0" * 80],
        "manifest": [
            json.dumps({"format": 1, "product": "pos-terminal", "version": "1.0.0", "files": []}).encode()
        ],
        "config": shipped,
        "script": [b"ENTER\n1\nWAIT 500\nCARD INSERT visa-credit\nEXPECT x\nSHOT a\n"],
        "books": [b'{"meta": {"1": {"batch": 1, "next_trace": 1}}, "entries": {}}'],
    }[target]


def main() -> None:
    target = sys.argv[1]
    run = TARGETS[target]

    def one_input(data: bytes) -> None:
        with contextlib.suppress(PosError):
            run(data)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
