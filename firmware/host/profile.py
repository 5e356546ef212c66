"""The host profile (`firmware/data/host.json`): MAC algorithm, sign-on key scheme, time limits, retries.

    mac_profile          unionpay-ecb | x9.19 | aes-cmac (the algorithm of the session MAK)
    key_scheme           the sign-on's 60.3: 001 single-length keys, 003 double PIK, 004 with a TDK
    legacy_single_des    optional, default false: accept single-length working keys, a TMK or KBPK
                         whose halves are equal (single DES); needed for 001, and for a host that
                         sends UnionPay's 003 MAK (8 key bytes + 8 zero bytes). Shown by `pos-keys list`.
    connect_timeout_ms   how long a connection may take
    answer_timeout_ms    how long an answer may take once the request is sent
    max_attempts         tries of each reversal, advice and notice before it is flagged (kept)
    backoff_ms           the waits between tries, the last one repeated

A wrong value raises ConfigError naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.config import Section, read_config
from firmware.keys.mac import MacProfile

__all__ = ["HOST_FILE", "HostProfile", "host_profile_from_section", "load_host_profile"]

HOST_FILE: Final = "host.json"
_KEY_SCHEMES: Final = ("001", "003", "004")


@dataclass(frozen=True)
class HostProfile:
    mac_profile: MacProfile
    key_scheme: str
    connect_timeout: float
    answer_timeout: float
    max_attempts: int
    backoff: tuple[float, ...]
    legacy_single_des: bool = False


def host_profile_from_section(section: Section) -> HostProfile:
    section.only(
        "mac_profile",
        "key_scheme",
        "legacy_single_des",
        "connect_timeout_ms",
        "answer_timeout_ms",
        "max_attempts",
        "backoff_ms",
    )
    profile = section.text("mac_profile")
    try:
        mac_profile = MacProfile(profile)
    except ValueError:
        choices = ", ".join(p.value for p in MacProfile)
        raise section.error("mac_profile", f"{profile!r} is not one of {choices}") from None
    scheme = section.text("key_scheme")
    if scheme not in _KEY_SCHEMES:
        raise section.error("key_scheme", f"{scheme!r} is not one of {', '.join(_KEY_SCHEMES)}")
    legacy = section.flag("legacy_single_des", default=False)
    if scheme == "001" and not legacy:
        raise section.error("key_scheme", "001 gives single-DES keys: only with legacy_single_des true")
    backoff: list[int] = []
    for position, wait in enumerate(section.items("backoff_ms", non_empty=True)):
        if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= 600_000:
            raise section.item_error("backoff_ms", position, "must be a wait in ms (0..600000)")
        backoff.append(wait)
    return HostProfile(
        mac_profile=mac_profile,
        key_scheme=scheme,
        connect_timeout=section.integer("connect_timeout_ms", minimum=1, maximum=600_000) / 1000,
        answer_timeout=section.integer("answer_timeout_ms", minimum=1, maximum=600_000) / 1000,
        max_attempts=section.integer("max_attempts", minimum=1, maximum=100),
        backoff=tuple(wait / 1000 for wait in backoff),
        legacy_single_des=legacy,
    )


def load_host_profile(path: Path | str | None = None) -> HostProfile:
    """The profile at `path`, or the shipped `firmware/data/host.json`."""
    return host_profile_from_section(read_config(HOST_FILE, path))
