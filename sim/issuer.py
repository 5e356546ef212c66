"""The simulated issuer: checks the card's ARQC, answers with an ARPC and issuer scripts.

Used by the host simulator (and, through the composition root, by the
terminal's ``--online sim``). It reads field 55 with the card side's codec (sim.tlv),
finds the card's issuer master keys by the longest matching PAN prefix,
derives the card's keys as personalisation did (:mod:`sim.cvn`), and:

- verifies the ARQC over the field 55 tags (9F02 9F03 9F1A 95 5F2A 9A 9C 9F37
  82 9F36 9F10, with 9F26 and 9F27);
- decides a response code: the caller's, else the decline rules on the
  amount's last two digits (default: ..05 -> '05', ..12 -> '12', ..51 -> '51'
  insufficient funds, ..54 -> '54', ..55 -> '55' wrong PIN, ..61 -> '61',
  ..91 -> '91'), else '00'. Unknown PAN -> '14'; missing tags -> '30'; an
  ARQC that does not verify -> '05' with no issuer authentication data;
- makes the issuer authentication data (tag 91 value) with the CVN's ARPC
  method: ``ARPC || ARC`` or ``ARPC || CSU``;
- sends the scripts queued for that PAN (:meth:`Issuer.queue_script`), as
  71 / 72 templates each with its 9F18 script identifier, every command
  MAC'd (and a new PIN enciphered) under the card's session keys.

Fault switches (:class:`IssuerFaults`, changeable at any time): ``bad_arpc``
(one bit of the ARPC flipped), ``no_answer`` (:meth:`Issuer.authorise`
returns None: the host should let the request time out), ``bad_script_mac``
(one bit of every script MAC flipped).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from sim import cvn, emvcrypto, tlv
from sim.errors import Field55Error, TlvError

__all__ = [
    "DEFAULT_DECLINE_RULES",
    "Field55Error",
    "Issuer",
    "IssuerAnswer",
    "IssuerFaults",
    "ScriptRequest",
    "encode_tlv",
    "parse_tlv",
]

DEFAULT_DECLINE_RULES: Mapping[int, str] = {
    5: "05",
    12: "12",
    51: "51",
    54: "54",
    55: "55",
    61: "61",
    91: "91",
}

_CRYPTOGRAM_TAGS = (0x9F26, 0x9F27, 0x9F36, 0x9F10, 0x82)


def parse_tlv(data: bytes) -> dict[int, bytes]:
    """A flat BER-TLV list (field 55) as tag -> value; '00' / 'FF' filler between objects is skipped."""
    try:
        return tlv.parse_to_dict(data)
    except TlvError as error:
        raise Field55Error(f"field 55: {error}", error.offset, error.tag) from None


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One BER-TLV data object."""
    return tlv.encode(tag, value)


@dataclass
class IssuerFaults:
    """Switches that make the issuer misbehave, for the terminal's error paths."""

    bad_arpc: bool = False
    no_answer: bool = False
    bad_script_mac: bool = False


@dataclass(frozen=True)
class IssuerAnswer:
    """The issuer's answer: field 39 and the field 55 tags 91 and 71 / 72."""

    response_code: str
    issuer_authentication_data: bytes
    scripts: bytes
    arqc_valid: bool
    script_ids: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ScriptRequest:
    """One issuer script command to send; build it with the class methods."""

    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    cla: int = 0x84
    new_pin: str | None = field(default=None, repr=False)
    current_pin: str | None = field(default=None, repr=False)

    @classmethod
    def application_block(cls) -> ScriptRequest:
        return cls(0x1E)

    @classmethod
    def application_unblock(cls) -> ScriptRequest:
        return cls(0x18)

    @classmethod
    def card_block(cls) -> ScriptRequest:
        return cls(0x16)

    @classmethod
    def pin_unblock(cls) -> ScriptRequest:
        """PIN CHANGE/UNBLOCK with P2 = '00': reset the PIN try counter only."""
        return cls(0x24)

    @classmethod
    def pin_change(cls, new_pin: str, current_pin: str | None = None) -> ScriptRequest:
        """PIN CHANGE/UNBLOCK with P2 = '02' (or '01' when the current PIN is given)."""
        emvcrypto.iso9564_format2_pin_block(new_pin)  # refuses a malformed PIN now, not at send time
        p2 = 0x01 if current_pin is not None else 0x02
        return cls(0x24, p2=p2, new_pin=new_pin, current_pin=current_pin)

    @classmethod
    def put_data(cls, tag: int, value: bytes) -> ScriptRequest:
        """PUT DATA of a one- or two-byte tag, e.g. 9F14 / 9F23 offline limits."""
        if not 0 < tag <= 0xFFFF:
            raise emvcrypto.CryptoInputError(f"PUT DATA takes a tag of one or two bytes, not {tag:X}")
        return cls(0xDA, p1=tag >> 8, p2=tag & 0xFF, data=value, cla=0x04)

    @classmethod
    def update_record(cls, sfi: int, record: int, data: bytes) -> ScriptRequest:
        if not 1 <= sfi <= 30 or not 1 <= record <= 255:
            raise emvcrypto.CryptoInputError(f"no record {record} of SFI {sfi}")
        return cls(0xDC, p1=record, p2=(sfi << 3) | 0x04, data=data, cla=0x04)


@dataclass(frozen=True)
class _QueuedScript:
    template: int
    script_id: bytes
    commands: tuple[ScriptRequest, ...]


def _flip_first_bit(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


class Issuer:
    """The issuer behind the simulated host.

    ``key_ranges`` maps a PAN prefix (a BIN, or a whole PAN) to the crypto
    config of the cards in that range (a profile's ``"crypto"`` object).
    """

    def __init__(
        self,
        key_ranges: Mapping[str, Mapping[str, object]],
        *,
        faults: IssuerFaults | None = None,
        decline_rules: Mapping[int, str] | None = None,
        first_script_id: int = 1,
    ) -> None:
        for prefix in key_ranges:
            if not prefix.isdigit():
                raise cvn.CryptoConfigError(f"key range prefix {prefix[:6]!r}... is not digits")
        self._ranges = {prefix: cvn.CryptoConfig.from_mapping(cfg) for prefix, cfg in key_ranges.items()}
        self.faults = faults if faults is not None else IssuerFaults()
        self.decline_rules = dict(DEFAULT_DECLINE_RULES if decline_rules is None else decline_rules)
        self._next_script_id = first_script_id
        self._queued: dict[str, list[_QueuedScript]] = {}
        self._card_keys: dict[tuple[str, int | None], cvn.CardKeys] = {}

    def __repr__(self) -> str:
        return f"Issuer({len(self._ranges)} key ranges, faults={self.faults})"

    def queue_script(self, pan: str, *commands: ScriptRequest, template: int = 0x72) -> bytes:
        """Queue one script (its commands in order) for the card's next authorisation; its 9F18 id."""
        if template not in (0x71, 0x72):
            raise emvcrypto.CryptoInputError(f"a script template is 71 or 72, not {template:X}")
        if not commands:
            raise emvcrypto.CryptoInputError("a script needs at least one command")
        script_id = self._next_script_id.to_bytes(4, "big")
        self._next_script_id += 1
        self._queued.setdefault(pan, []).append(_QueuedScript(template, script_id, commands))
        return script_id

    def pending_scripts(self, pan: str) -> int:
        """How many scripts wait for this PAN's next authorisation."""
        return len(self._queued.get(pan, []))

    def _config_for(self, pan: str) -> cvn.CryptoConfig | None:
        matches = [prefix for prefix in self._ranges if pan.startswith(prefix)]
        return self._ranges[max(matches, key=len)] if matches else None

    def _keys_for(self, config: cvn.CryptoConfig, pan: str, psn: int | None) -> cvn.CardKeys:
        cached = self._card_keys.get((pan, psn))
        if cached is None:
            cached = cvn.derive_card_keys(config, pan, psn)
            self._card_keys[(pan, psn)] = cached
        return cached

    @staticmethod
    def _cryptogram_verifies(
        config: cvn.CryptoConfig, keys: cvn.CardKeys, tags: Mapping[int, bytes], *, arqc_only: bool
    ) -> bool:
        cid = tags[0x9F27]
        if arqc_only and (len(cid) != 1 or cid[0] & 0xC0 != 0x80):
            return False
        iad = tags[0x9F10]
        if cvn.iad_cvn(config.version, iad) != config.version.cvn or len(tags[0x9F36]) != 2:
            return False
        atc = int.from_bytes(tags[0x9F36], "big")
        try:
            expected = cvn.compute_cryptogram(config, keys, tags, tags[0x82], atc, iad)
        except emvcrypto.CryptoInputError:
            return False
        return hmac.compare_digest(expected, tags[0x9F26])

    @staticmethod
    def _missing_tags(tags: Mapping[int, bytes]) -> bool:
        needed = [tag for tag, _ in cvn.TERMINAL_AC_TAGS] + list(_CRYPTOGRAM_TAGS)
        return any(tag not in tags for tag in needed)

    def verify_cryptogram(self, field55: bytes, pan: str, psn: int | None) -> bool:
        """Whether the cryptogram of field 55 (ARQC, TC or AAC) is the card's, e.g. for a TC upload."""
        tags = parse_tlv(field55)
        config = self._config_for(pan)
        if config is None or self._missing_tags(tags):
            return False
        keys = self._keys_for(config, pan, psn)
        return self._cryptogram_verifies(config, keys, tags, arqc_only=False)

    def authorise(
        self, field55: bytes, pan: str, psn: int | None, amount: int, *, response_code: str | None = None
    ) -> IssuerAnswer | None:
        """Answer an online authorisation; None when the ``no_answer`` fault is on.

        ``amount`` is in minor units (field 4); ``response_code`` forces field 39.
        """
        if self.faults.no_answer:
            return None
        tags = parse_tlv(field55)
        config = self._config_for(pan)
        if config is None:
            return IssuerAnswer("14", b"", b"", False)
        if self._missing_tags(tags):
            return IssuerAnswer("30", b"", b"", False)
        keys = self._keys_for(config, pan, psn)
        if not self._cryptogram_verifies(config, keys, tags, arqc_only=True):
            return IssuerAnswer("05", b"", b"", False)
        code = response_code or self.decline_rules.get(amount % 100, "00")
        arqc, atc = tags[0x9F26], int.from_bytes(tags[0x9F36], "big")
        auth_data = cvn.make_issuer_authentication_data(
            config, keys, arqc=arqc, atc=atc, unpredictable_number=tags[0x9F37], response_code=code
        )
        if self.faults.bad_arpc:
            auth_data = _flip_first_bit(auth_data)
        scripts, script_ids = self._scripts_for(config, keys, pan, atc, arqc)
        return IssuerAnswer(code, auth_data, scripts, True, script_ids)

    def _scripts_for(
        self, config: cvn.CryptoConfig, keys: cvn.CardKeys, pan: str, atc: int, arqc: bytes
    ) -> tuple[bytes, tuple[bytes, ...]]:
        queued = self._queued.pop(pan, [])
        # The terminal runs all 71 scripts before the second GENERATE AC, then the 72 ones,
        # which is the order M/Chip counts commands in.
        ordered = [s for s in queued if s.template == 0x71] + [s for s in queued if s.template == 0x72]
        encoded = b""
        index = 0
        for script in ordered:
            body = encode_tlv(0x9F18, script.script_id)
            for request in script.commands:
                body += encode_tlv(0x86, self._script_command(config, keys, atc, arqc, index, request))
                index += 1
            encoded += encode_tlv(script.template, body)
        return encoded, tuple(s.script_id for s in ordered)

    def _script_command(
        self,
        config: cvn.CryptoConfig,
        keys: cvn.CardKeys,
        atc: int,
        arqc: bytes,
        index: int,
        request: ScriptRequest,
    ) -> bytes:
        smi, smc = cvn.sm_session_keys(config, keys, atc=atc, arqc=arqc, index=index)
        data = request.data
        if request.new_pin is not None:
            data = cvn.encipher_pin(config, keys, smc, request.new_pin, request.current_pin)
        lc = len(data) + config.script_mac_length
        if lc > 0xFF:
            raise emvcrypto.CryptoInputError(f"script command data of {len(data)} bytes is too long")
        header = bytes([request.cla, request.ins, request.p1, request.p2, lc])
        cryptogram = cvn.sm_cryptogram(config.version, arqc, index)
        mac = cvn.script_command_mac(config, smi, header=header, atc=atc, cryptogram=cryptogram, data=data)
        if self.faults.bad_script_mac:
            mac = _flip_first_bit(mac)
        return header + data + mac
