"""Per-message key work against a floor measured in the same run.

Floor: one bare AES-128 block encryption (a fresh `cryptography` cipher
context per block, as the firmware builds them). Measured: the field-64 MAC
of a 0200-sized message under each host profile, an Ed25519 record signature
and its verification, a format 0 PIN block, and a whole message's worth
(MAC + sign + verify). Figures are ratios to the floor, so they compare
across machines; absolute times are printed alongside for reference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from firmware.keys.mac import MacProfile, compute_mac
from firmware.keys.pinblock import encrypt_pin_block
from firmware.keys.signing import RecordSigner, new_signing_key, verify_record

PAN = "6222020200112233445"  # a test PAN
MESSAGE = bytes(range(256))[:150]  # about the MAC block of a 0200 sale
RECORD = {
    "id": "Q-000123",
    "type": "refund",
    "amount": 1250,
    "pan_masked": "622202*********3445",
    "original": {"trace": "000456", "date": "0315", "rrn": "123456789012"},
    "applicant": {"name": "Zhang San", "contact": "13800000000"},
}


def best_ns_per_call(function: Callable[[], object], budget_s: float = 0.25, rounds: int = 5) -> float:
    calls = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(calls):
            function()
        if time.perf_counter_ns() - start > budget_s * 1e9 / rounds:
            break
        calls *= 2
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def main() -> None:
    aes_key, block = os.urandom(16), os.urandom(16)

    def bare_aes_block() -> bytes:
        return Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor().update(block)

    floor = best_ns_per_call(bare_aes_block)
    mak8, key16 = os.urandom(8), os.urandom(16)
    signer = RecordSigner(new_signing_key(os.urandom))
    public_key = signer.public_key()
    signed = signer.sign_record(RECORD)

    def whole_message() -> None:
        compute_mac(MacProfile.X919, key16, MESSAGE)
        verify_record(signer.sign_record(RECORD), public_key)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("MAC unionpay-ecb (8-byte MAK)", lambda: compute_mac(MacProfile.UNIONPAY_ECB, mak8, MESSAGE)),
        ("MAC unionpay-ecb (16-byte MAK)", lambda: compute_mac(MacProfile.UNIONPAY_ECB, key16, MESSAGE)),
        ("MAC x9.19", lambda: compute_mac(MacProfile.X919, key16, MESSAGE)),
        ("MAC aes-cmac", lambda: compute_mac(MacProfile.AES_CMAC, key16, MESSAGE)),
        ("Ed25519 sign record", lambda: signer.sign_record(RECORD)),
        ("Ed25519 verify record", lambda: verify_record(signed, public_key)),
        ("PIN block format 0", lambda: encrypt_pin_block(key16, "123456", PAN, 0, os.urandom)),
        ("message: x9.19 MAC + sign + verify", whole_message),
    ]
    print(f"floor: bare AES-128 block encryption {floor:,.0f} ns (re-measured next to each case)")
    print(f"{'operation':<38} {'ns/op':>12} {'floor ns':>9} {'x floor':>8}")
    for name, function in cases:
        # The machine is shared: measure the floor right next to each case so both see the same load.
        local_floor = best_ns_per_call(bare_aes_block, budget_s=0.1)
        ns = best_ns_per_call(function)
        print(f"{name:<38} {ns:>12,.0f} {local_floor:>9,.0f} {ns / local_floor:>8.1f}")


if __name__ == "__main__":
    main()
