"""Coverage-guided fuzzing (atheris, libFuzzer) of the byte-level parsers; `./build.sh fuzz` runs it.

    python tests/fuzz_atheris.py TARGET [libFuzzer options] [CORPUS_DIR]

Targets: tlv, dol, iso8583, answer_mac, tr31, manifest, config, script, books.
Each input goes to the parser; a PosError is an answer, any other exception
is a crash that libFuzzer writes to its artifact file. `seeds(target)` gives
the well-formed inputs a corpus starts from. The firmware is instrumented at
import, so libFuzzer follows the branches it takes.

"config" is a file the terminal loads (the first byte picks which: identity,
applications, kernel, capk, host, terms, kiosk), read by that file's own
loader; "books" is a `txn/open.json` opened by the Book, which reads every
table (counters, entries, cash refunds, reversals, outbox) with its own parsers.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import atheris
import psec

# Instrumented only when run as the fuzzer: imported (seeds, the suite's checks), the firmware stays as it is.
_INSTRUMENTED = (
    atheris.instrument_imports(include=["firmware"]) if __name__ == "__main__" else contextlib.nullcontext()
)

with _INSTRUMENTED:
    from firmware.app import parse_script
    from firmware.emv import tags, tlv
    from firmware.emv.application_list import load_application_list
    from firmware.emv.capk import load_capk_store
    from firmware.emv.kernel_config import load_kernel_config
    from firmware.errors import PosError
    from firmware.host.mac import KeyMac, open_answer, seal
    from firmware.host.profile import load_host_profile
    from firmware.host.spec import unpack
    from firmware.identity import load_identity
    from firmware.keys.mac import MacProfile
    from firmware.keys.tr31 import unwrap_tmk
    from firmware.kiosk_config import load_kiosk_settings
    from firmware.txn.terms import load_terms
    from firmware.update.manifest import parse_manifest
    from tests.flash_fixtures import DEVELOPMENT, EPOCH, TARGET
    from tests.fuzz_targets import open_batch_file, read_whole_book

MAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
KBPK = bytes(range(16))  # TEST key
TMK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # TEST key


def _tlv(data: bytes) -> None:
    list(tlv.flatten(data))
    tlv.find(data, 0x9F02)


def _dol(data: bytes) -> None:
    tlv.build_dol(tlv.parse_dol(data), {0x9F02: bytes(6)}, tags.format_of)


def _answer_mac(data: bytes) -> None:
    open_answer(data, KeyMac(MacProfile.UNIONPAY_ECB, MAK))


def _tr31(data: bytes) -> None:
    unwrap_tmk(KBPK, data.decode("latin-1"))


CONFIG_LOADERS: list[tuple[str, Callable[[Path], object]]] = [
    ("identity.json", load_identity),
    ("applications.json", load_application_list),
    ("kernel.json", load_kernel_config),
    ("capk.json", load_capk_store),
    ("host.json", load_host_profile),
    ("terms.json", load_terms),
    ("kiosk.json", load_kiosk_settings),
]


def _config(data: bytes) -> None:
    if not data:
        return
    name, load = CONFIG_LOADERS[data[0] % len(CONFIG_LOADERS)]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        path.write_bytes(data[1:])
        load(path)


def _script(data: bytes) -> None:
    parse_script(data.decode("utf-8", "replace"))


def _books(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "open.json").write_bytes(data)
        read_whole_book(Path(scratch))


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
    shipped = [
        bytes([number]) + resources.files("firmware.data").joinpath(name).read_bytes()
        for number, (name, _load) in enumerate(CONFIG_LOADERS)
    ]
    return {
        "tlv": [bytes.fromhex("6F1A840E315041592E5359532E4444463031A5088801015F2D027A68")],
        "dol": [bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")],
        "iso8583": [seal(answer, KeyMac(MacProfile.UNIONPAY_ECB, MAK))],
        "answer_mac": [seal(answer, KeyMac(MacProfile.UNIONPAY_ECB, MAK))],
        "tr31": [b"B0096K0TB00N0000" + b"0" * 80, psec.tr31.wrap(KBPK, "B0000K0TD00N0000", TMK).encode()],
        "manifest": [
            json.dumps({"format": 1, "product": "pos-terminal", "version": "1.0.0", "files": []}).encode(),
            json.dumps(
                {
                    "format": 1,
                    "product": "pos-terminal",
                    "version": "2.0.0",
                    "arch": TARGET.arch,
                    "python": TARGET.python,
                    "build_time": EPOCH,
                    "signing_key": {"id": DEVELOPMENT.id, "development": True},
                    "files": [
                        {"path": "firmware/__init__.py", "size": 16, "sha256": "ab" * 32, "mode": 0o644}
                    ],
                    "payload": {"size": 100, "sha256": "cd" * 32},
                }
            ).encode(),
        ],
        "config": shipped,
        "script": [b"ENTER\n1\nWAIT 500\nCARD INSERT visa-credit\nEXPECT x\nSHOT a\n"],
        "books": [b'{"meta": {"1": {"batch": 1, "next_trace": 1}}, "entries": {}}', open_batch_file()],
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
