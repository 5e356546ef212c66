"""Offline data authentication cost, as a ratio to the bare RSA it cannot avoid.

Floor (measured in the same run): the raw public-key operations of the
method (pow(c, e, n) for each certificate and signature) plus SHA-1 over
the same data. The ratio says how much the parsing and the checks around
the RSA cost on top. Keys: CA 1984 bits, issuer 1408, ICC 1024, all e = 3.
Certificates come from the simulator's independent signer (sim.odasign).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date

from _harness import best_of
from cryptography.hazmat.primitives.asymmetric import rsa

from firmware.emv import oda
from firmware.emv.capk import CapkStore, CaPublicKey
from firmware.emv.tvr import Tvr
from sim import odasign

RID = bytes.fromhex("A000000999")
PAN = "4761739001010010"
UN = bytes.fromhex("01020304")
TODAY = date(2026, 6, 1)
STATIC = bytes(range(256)) * 2
ROUNDS = 300


def main() -> None:
    ca = rsa.generate_private_key(public_exponent=3, key_size=1984)
    issuer = rsa.generate_private_key(public_exponent=3, key_size=1408)
    icc = rsa.generate_private_key(public_exponent=3, key_size=1024)
    ca_numbers = ca.public_key().public_numbers()
    issuer_cert = odasign.issuer_certificate(
        ca, issuer.public_key().public_numbers(), odasign.issuer_identifier(PAN), b"\x12\x30", b"\x00\x00\x01"
    )
    icc_cert = odasign.icc_certificate(
        issuer, icc.public_key().public_numbers(), PAN, b"\x12\x29", b"\x00\x00\x01", STATIC
    )
    ssad = odasign.signed_static_data(issuer, b"\xda\xc1", STATIC)
    sdad = odasign.signed_dynamic_data(icc, b"\x08" + bytes(8), UN)
    capks = CapkStore.of(
        [
            CaPublicKey(
                RID,
                1,
                odasign.modulus_bytes(ca_numbers),
                b"\x03",
                date(2099, 12, 31),
                checksum=odasign.ca_key_checksum(RID, 1, ca_numbers),
            )
        ]
    )
    card = {
        0x4F: RID + b"\x10\x10",
        0x5A: bytes.fromhex(PAN),
        0x8F: b"\x01",
        0x90: issuer_cert.certificate,
        0x9F32: issuer_cert.exponent,
        0x93: ssad,
        0x9F46: icc_cert.certificate,
        0x9F47: icc_cert.exponent,
        0x9F49: bytes.fromhex("9F3704"),
    }
    response = bytes([0x80, 0x81, len(sdad)]) + sdad
    ca_n = ca_numbers.n
    issuer_n = issuer.public_key().public_numbers().n
    icc_n = icc.public_key().public_numbers().n
    # (block, modulus, data hashed beside the recovered block) for each method's RSA steps
    sda_steps = [(issuer_cert.certificate, ca_n, b""), (ssad, issuer_n, STATIC)]
    dda_steps = [
        (issuer_cert.certificate, ca_n, b""),
        (icc_cert.certificate, issuer_n, STATIC),
        (sdad, icc_n, UN),
    ]

    def bare(steps: list[tuple[bytes, int, bytes]]) -> Callable[[], None]:
        def run() -> None:
            for block, n, outside in steps:
                recovered = pow(int.from_bytes(block, "big"), 3, n).to_bytes(len(block), "big")
                hashlib.sha1(recovered + outside).digest()

        return run

    def sda() -> None:
        assert oda.perform_sda(capks, card, STATIC, Tvr(), TODAY).ok

    def dda() -> None:
        assert oda.perform_dda(capks, card, STATIC, lambda _: response, {0x9F37: UN}, Tvr(), TODAY).ok

    for name, steps, method in (("SDA", sda_steps, sda), ("DDA", dda_steps, dda)):
        floor = best_of(7, ROUNDS, bare(steps))
        seconds = best_of(7, ROUNDS, method)
        print(
            f"{name}: {seconds * 1e6:6.0f} us per card = {seconds / floor:4.2f} x floor "
            f"(floor: {len(steps)} bare RSA recoveries + SHA-1, {floor * 1e6:.0f} us)"
        )


if __name__ == "__main__":
    main()
