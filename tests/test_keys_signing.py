"""Record signing: RFC 8032 test vector 1, canonical JSON, tamper detection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.errors import CryptoError, TamperedRecordError, VerificationError
from firmware.keys.signing import (
    RecordSigner,
    canonical_json,
    load_public_key,
    new_signing_key,
    private_key_bytes,
    private_key_from_bytes,
    verify_record,
)

# RFC 8032 section 7.1, TEST 1.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


@pytest.fixture
def signer() -> RecordSigner:
    return RecordSigner(private_key_from_bytes(RFC8032_SECRET))


RECORD: dict[str, Any] = {
    "id": "Q-000123",
    "type": "refund",
    "amount": 1250,
    "applicant": "张三",
    "original": {"trace": "000456", "date": "0315"},
    "pan_masked": "622202******1234",
}


def test_rfc8032_vector_1(signer: RecordSigner) -> None:
    assert signer.public_key_bytes() == RFC8032_PUBLIC
    assert signer.sign_bytes(b"") == RFC8032_SIGNATURE
    load_public_key(RFC8032_PUBLIC).verify(RFC8032_SIGNATURE, b"")


def test_canonical_json_is_sorted_compact_utf8() -> None:
    text = canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}, "signature": "ignored"})
    assert text == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()


def test_canonical_json_does_not_depend_on_insertion_order() -> None:
    reordered = dict(reversed(list(RECORD.items())))
    assert canonical_json(reordered) == canonical_json(RECORD)


def test_sign_then_verify_with_the_registered_public_key(signer: RecordSigner) -> None:
    signed = signer.sign_record(RECORD)
    assert RECORD.get("signature") is None  # the input is not changed
    assert len(bytes.fromhex(signed["signature"])) == 64
    verify_record(signed, load_public_key(signer.public_key_bytes()))
    # Survives a round trip through JSON storage.
    verify_record(json.loads(json.dumps(signed)), signer.public_key())


def test_signature_is_over_the_documented_canonical_form(signer: RecordSigner) -> None:
    signed = signer.sign_record(RECORD)
    body = json.dumps(RECORD, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    load_public_key(RFC8032_PUBLIC).verify(bytes.fromhex(signed["signature"]), body)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(amount=12500),
        lambda r: r.update(applicant="李四"),
        lambda r: r["original"].update(trace="000457"),
        lambda r: r.update(extra=True),
        lambda r: r.pop("type"),
        lambda r: r.update(signature=r["signature"][:-2] + "00"),
    ],
    ids=["amount", "applicant", "nested", "added-field", "removed-field", "signature"],
)
def test_tampered_record_is_rejected_naming_its_id(signer: RecordSigner, change: Any) -> None:
    signed = json.loads(json.dumps(signer.sign_record(RECORD)))
    change(signed)
    with pytest.raises(TamperedRecordError, match="Q-000123"):
        verify_record(signed, signer.public_key())


def test_tampered_record_error_is_also_a_verification_error(signer: RecordSigner) -> None:
    signed = signer.sign_record(RECORD)
    signed["amount"] = 1
    with pytest.raises(VerificationError):
        verify_record(signed, signer.public_key())


def test_record_signed_by_another_device_is_rejected(signer: RecordSigner) -> None:
    other = RecordSigner(new_signing_key(lambda n: bytes(range(n))))
    with pytest.raises(TamperedRecordError, match="another device"):
        verify_record(other.sign_record(RECORD), signer.public_key())


@pytest.mark.parametrize("signature", [None, "zz", "00" * 64, 123])
def test_missing_or_malformed_signature(signer: RecordSigner, signature: object) -> None:
    record = dict(RECORD, signature=signature) if signature is not None else dict(RECORD)
    with pytest.raises(TamperedRecordError, match="Q-000123"):
        verify_record(record, signer.public_key())


def test_refuses_to_sign_twice_or_unserialisable(signer: RecordSigner) -> None:
    with pytest.raises(CryptoError, match="already signed"):
        signer.sign_record(signer.sign_record(RECORD))
    with pytest.raises(CryptoError, match="canonically"):
        signer.sign_record({"id": 1, "amount": float("nan")})
    with pytest.raises(CryptoError, match="canonically"):
        signer.sign_record({"id": 1, "when": object()})



def test_string_without_a_utf8_form_is_the_projects_error(signer: RecordSigner) -> None:
    lone_surrogate = json.loads('"\\ud800"')  # valid JSON text, no UTF-8 encoding
    record = {"id": "Q-1", "applicant": lone_surrogate}
    with pytest.raises(CryptoError, match="canonically"):
        canonical_json(record)
    with pytest.raises(CryptoError, match="canonically"):
        signer.sign_record(record)
    with pytest.raises(TamperedRecordError):
        verify_record({**record, "signature": "00" * 64}, signer.public_key())

def test_key_bytes_round_trip_and_bad_lengths() -> None:
    key = new_signing_key(lambda n: b"\x07" * n)
    assert private_key_bytes(private_key_from_bytes(private_key_bytes(key))) == b"\x07" * 32
    assert isinstance(key, Ed25519PrivateKey)
    for bad in (bytes(31), bytes(33)):
        with pytest.raises(CryptoError):
            load_public_key(bad)
        with pytest.raises(CryptoError):
            private_key_from_bytes(bad)


def test_signer_repr_shows_only_the_public_key(signer: RecordSigner) -> None:
    assert RFC8032_SECRET.hex() not in repr(signer)
    assert RFC8032_PUBLIC.hex() in repr(signer)
