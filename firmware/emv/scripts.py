"""Issuer script processing (EMV Book 3 10.10) and the Issuer Script Results (9F5B).

The host sends scripts as '71' (run before the final GENERATE AC) and '72'
(run after it) templates: an optional script identifier 9F18 and one or
more Issuer Script Commands '86', each a whole command APDU. A command whose
SW1 is not 90, 62 or 63 stops its script; a failed script never fails the
transaction, it sets a TVR bit and shows in 9F5B.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from firmware.emv import tlv
from firmware.emv.apdu import Command
from firmware.errors import ApduError, TlvError

__all__ = [
    "AFTER_FINAL_GENERATE_AC",
    "BEFORE_FINAL_GENERATE_AC",
    "IssuerScript",
    "ScriptResult",
    "ScriptStatus",
    "issuer_script_results",
    "parse_issuer_scripts",
    "parse_script_command",
    "run_script",
]

BEFORE_FINAL_GENERATE_AC = 0x71
AFTER_FINAL_GENERATE_AC = 0x72
_SUCCESS_SW1 = frozenset({0x90, 0x62, 0x63})


class ScriptStatus(enum.IntEnum):
    """High nibble of 9F5B byte 1 (Book 3 Annex A, Issuer Script Results)."""

    NOT_PERFORMED = 0
    FAILED = 1
    SUCCESSFUL = 2


@dataclass(frozen=True)
class IssuerScript:
    template: int
    identifier: bytes
    commands: tuple[bytes, ...]
    # Why the template cannot be run (then it is reported as failed, command 0).
    malformed: str | None = None


@dataclass(frozen=True)
class ScriptResult:
    template: int
    identifier: bytes
    status: ScriptStatus
    failed_command: int = 0  # 1-based sequence number of the command that failed; 0 unspecified
    detail: str = ""

    def encode(self) -> bytes:
        """Five bytes of 9F5B: result and command number, then the script identifier (zeros if none)."""
        sequence = 0 if self.status is not ScriptStatus.FAILED else min(self.failed_command, 0x0F)
        identifier = self.identifier if len(self.identifier) == 4 else bytes(4)
        return bytes([(int(self.status) << 4) | sequence]) + identifier

    def to_dict(self) -> dict[str, object]:
        return {
            "template": f"{self.template:02X}",
            "identifier": self.identifier.hex().upper(),
            "status": self.status.name,
            "failed_command": self.failed_command,
            "detail": self.detail,
        }


def parse_issuer_scripts(data: bytes) -> list[IssuerScript]:
    """Split the host's script data into scripts; a malformed one is kept, marked, never raised."""
    try:
        templates = tlv.parse(data)
    except TlvError as exc:
        return [IssuerScript(BEFORE_FINAL_GENERATE_AC, b"", (), f"issuer script data: {exc}")]
    scripts: list[IssuerScript] = []
    for template in templates:
        if template.tag not in (BEFORE_FINAL_GENERATE_AC, AFTER_FINAL_GENERATE_AC):
            continue
        identifier = b""
        commands: list[bytes] = []
        problem: str | None = None
        try:
            for obj in template.children():
                if obj.tag == 0x9F18:
                    identifier = obj.value
                elif obj.tag == 0x86:
                    commands.append(obj.value)
        except TlvError as exc:
            problem = str(exc)
        if problem is None and len(identifier) not in (0, 4):
            problem = f"script identifier of {len(identifier)} bytes"
        if problem is None and not commands:
            problem = "no issuer script command"
        scripts.append(IssuerScript(template.tag, identifier, tuple(commands), problem))
    return scripts


def parse_script_command(apdu: bytes) -> Command:
    """An Issuer Script Command (86) as a command APDU: header, optional Lc and data, optional Le."""
    if len(apdu) < 4:
        raise ApduError(f"issuer script command of {len(apdu)} bytes")
    cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
    body = apdu[4:]
    if not body:
        return Command("ISSUER SCRIPT", cla, ins, p1, p2)
    if len(body) == 1:
        return Command("ISSUER SCRIPT", cla, ins, p1, p2, b"", body[0])
    lc = body[0]
    if lc == 0 or len(body) not in (1 + lc, 2 + lc):
        raise ApduError(f"issuer script command: Lc {lc} does not match {len(body) - 1} bytes")
    le = body[1 + lc] if len(body) == 2 + lc else None
    return Command("ISSUER SCRIPT", cla, ins, p1, p2, bytes(body[1 : 1 + lc]), le)


def run_script(script: IssuerScript, send: Callable[[Command], int]) -> ScriptResult:
    """Send the script's commands in order until one fails; `send` returns the status word."""
    if script.malformed is not None:
        return ScriptResult(script.template, script.identifier, ScriptStatus.FAILED, 0, script.malformed)
    for number, apdu in enumerate(script.commands, start=1):
        try:
            command = parse_script_command(apdu)
        except ApduError as exc:
            return ScriptResult(script.template, script.identifier, ScriptStatus.FAILED, number, str(exc))
        sw = send(command)
        if sw >> 8 not in _SUCCESS_SW1:
            return ScriptResult(
                script.template, script.identifier, ScriptStatus.FAILED, number, f"SW {sw:04X}"
            )
    return ScriptResult(script.template, script.identifier, ScriptStatus.SUCCESSFUL)


def issuer_script_results(results: Iterable[ScriptResult]) -> bytes:
    """9F5B: five bytes per script, in the order the scripts were processed."""
    return b"".join(result.encode() for result in results)
