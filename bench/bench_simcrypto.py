"""Simulated card and issuer cryptography cost, as a ratio to one Triple DES call.

Floor (measured in the same run): one cipher call through `cryptography`
(a TDES-ECB encryptor made and fed two blocks), the unit every step below is
built of. A ratio of N means the step costs about N such calls: key
derivations, MACs, parsing and bookkeeping included. Keys are the TEST keys
of sim.cvn; PAN and data are fixed.
"""

from __future__ import annotations

from _harness import best_of
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from sim import cvn
from sim.cardcrypto import CardCrypto
from sim.issuer import Issuer, ScriptRequest, encode_tlv

CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")
CDOL2 = bytes.fromhex("8A02") + CDOL1
TERMINAL = bytes.fromhex("000000001234000000000000015600000480000156250310000A0B0C0D")
AIP = bytes.fromhex("3C00")
PAN = "6228480402564890018"
ROUNDS = 200


def field55(cid: int, cryptogram: bytes, iad: bytes, atc: int) -> bytes:
    items: list[tuple[int, bytes]] = []
    offset = 0
    for tag, length in cvn.TERMINAL_AC_TAGS:
        items.append((tag, TERMINAL[offset : offset + length]))
        offset += length
    items += [(0x9F26, cryptogram), (0x9F27, bytes([cid])), (0x9F10, iad)]
    items += [(0x9F36, atc.to_bytes(2, "big")), (0x82, AIP)]
    return b"".join(encode_tlv(tag, value) for tag, value in items)


class Rig:
    """One card and its issuer, with a running ATC."""

    def __init__(self, number: int) -> None:
        cfg = cvn.example_crypto_config(number)
        self.card = CardCrypto(cfg, PAN, 1, cdol1=CDOL1, cdol2=CDOL2, aip=AIP)
        self.issuer = Issuer({PAN[:6]: cfg})
        self.atc = 0

    def arqc(self) -> bytes:
        self.atc += 1
        self.card.begin_transaction(self.atc)
        result = self.card.generate_ac("ARQC", TERMINAL, self.atc)
        return field55(result.cid, result.cryptogram, result.iad, self.atc)

    def authorise(self, request: bytes, scripts: int = 0) -> bytes:
        if scripts:
            self.issuer.queue_script(PAN, *[ScriptRequest.pin_change("2468")] * scripts)
        answer = self.issuer.authorise(request, PAN, 1, 1234)
        assert answer is not None and answer.arqc_valid
        return answer.scripts


def script_commands(encoded: bytes) -> list[bytes]:
    """The commands (tag 86) of one 71/72 template, in order."""
    offset = 1
    if encoded[offset] & 0x80:
        offset += 1 + (encoded[offset] & 0x7F)
    else:
        offset += 1
    commands = []
    while offset < len(encoded):
        if encoded[offset] == 0x9F:
            offset += 3 + encoded[offset + 2]
            continue
        length = encoded[offset + 1]
        commands.append(encoded[offset + 2 : offset + 2 + length])
        offset += 2 + length
    return commands


def report(number: int, floor: float) -> str:
    rig = Rig(number)
    arqc_time = best_of(3, ROUNDS, rig.arqc)
    request = rig.arqc()
    authorise_time = best_of(3, ROUNDS, lambda: rig.authorise(request))
    script_time = best_of(3, ROUNDS, lambda: rig.authorise(request, 1)) - authorise_time
    commands = iter(script_commands(rig.authorise(request, 3 * ROUNDS)))
    check_time = best_of(3, ROUNDS, lambda: rig.card.check_script_command(next(commands)))
    return (
        f"CVN {number:2d}: card ARQC x{arqc_time / floor:5.1f}"
        f"   issuer ARQC check + ARPC x{authorise_time / floor:5.1f}"
        f"   + PIN change script x{script_time / floor:5.1f}"
        f"   card script check x{check_time / floor:5.1f}"
    )


def main() -> None:
    key = bytes.fromhex(cvn.TEST_IMK_AC)
    block = bytes(16)

    def floor_call() -> bytes:
        encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
        return encryptor.update(block) + encryptor.finalize()

    floor = best_of(5, ROUNDS, floor_call)
    print(f"floor: one TDES call {floor * 1e6:.1f} us")
    for number in sorted(cvn.CRYPTOGRAM_VERSIONS):
        print(report(number, floor))


if __name__ == "__main__":
    main()
