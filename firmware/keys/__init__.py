"""Keys, MACs, PIN blocks, DUKPT, record signing and passwords.

Modules:
    blockcipher  DES/TDES/AES ECB and CBC, CMAC (over `cryptography`, no deprecated key sizes)
    kcv          key check values (TDES, AES-CMAC, Ed25519 fingerprint)
    device       the device key that seals everything at rest
    store        KeyStore: named keys sealed with AES-GCM, crash-safe, all-or-nothing batches
    working_keys the keys a UnionPay sign-on brings: field 62 parsing, under the TMK, KCV checks
    mac          UnionPay ECB MAC, ANSI X9.19 retail MAC, AES-CMAC
    pinblock     ISO 9564 formats 0, 3 and 4
    dukpt        TDES (X9.24-1) and AES (X9.24-3) DUKPT, terminal and host side
    dukpt_state  the DUKPT device at rest: registers and counter sealed, a counter spent before use
    dukpt_load   the DUKPT initial key from a TR-31 B1 block (KS / IK), only its registers kept
    tr31         TR-31 key blocks B and D; TMK acceptance rules, key version order
    tmk          installing the TMK from a key block (no component, no older version)
    signing      Ed25519 record signing over canonical JSON
    passwords    scrypt password hashes with lock-out and factory passwords
    layout, cli  where the files live; the `pos-keys` command

Keys live in memory only as long as an operation needs them; at rest they are
sealed under the device key. Nothing here logs or prints key bytes, PINs or
PANs: keys are shown only as their check value (KCV).
"""
