"""The store's card-data filter: how often random data is refused by chance (false refusals), and its cost.

Random values of the sizes the terminal keeps: a SHA-256 hash (32 bytes), a
sealed PAN (12-byte nonce + 16..19 PAN bytes + 16-byte tag: 44..47), an
Ed25519 signature (64), field 55 (100..255), written as lower-case hex,
upper-case hex, base64 and URL-safe base64 without padding; N values of each
(default 100,000; `bench_sensitive.py 1000000` for more). Also, for the
record, how often the old rule (any Luhn-valid run of 13 to 19 digits in the
text) refused random hex. Exits 1 if any value was refused.
"""

from __future__ import annotations

import base64
import random
import re
import sys
import time

from firmware.errors import SensitiveDataError
from firmware.store.sensitive import check_storable, luhn_valid

SIZES = (32, 44, 47, 64, 100, 180, 255)
ENCODINGS = {
    "hex": lambda data: data.hex(),
    "HEX": lambda data: data.hex().upper(),
    "base64": lambda data: base64.b64encode(data).decode(),
    "base64url": lambda data: base64.urlsafe_b64encode(data).decode().rstrip("="),
}
_OLD_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def main(count: int) -> int:
    rng = random.Random("bench-sensitive")
    refused_any = False
    for name, encode in ENCODINGS.items():
        refused = old_rule = 0
        start = time.perf_counter()
        for index in range(count):
            text = encode(rng.randbytes(SIZES[index % len(SIZES)]))
            try:
                check_storable({"value": text}, "doc")
            except SensitiveDataError:
                refused += 1
            old_rule += any(luhn_valid(m.group()) for m in _OLD_RUN.finditer(text))
        elapsed = time.perf_counter() - start
        refused_any = refused_any or refused > 0
        print(
            f"{name:<10} {count} values: {refused} refused ({refused / count:.6%}); "
            f"old digit-run rule {old_rule} ({old_rule / count:.3%}); {elapsed / count * 1e6:.0f} us a value"
        )
    return 1 if refused_any else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
