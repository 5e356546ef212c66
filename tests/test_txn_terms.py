"""The terms file: the shipped one, a caller's path, and every refusal naming the file and the key."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware.errors import ConfigError
from firmware.txn.model import EvidenceField, ReverseOperation
from firmware.txn.terms import MAX_FILE_BYTES, Language, Text, load_terms, terms_from_dict


def shipped() -> dict[str, Any]:
    text = resources.files("firmware.data").joinpath("terms.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_shipped_terms() -> None:
    terms = load_terms()
    assert terms.reference == "TT-2025.1"
    assert terms.currency == "CNY"
    assert terms.refund.max_days_after_sale == 180
    assert terms.refund.max_per_sale is None  # the sale amount
    assert terms.refund.max_per_day == 5_000_000
    assert terms.cash_refund.allowed
    assert terms.cash_refund.max_amount == 50_000
    assert terms.adjust.tip_max_percent == 20
    assert terms.adjust.completion_tolerance_percent == 15
    assert terms.refund.evidence_required == frozenset(EvidenceField)
    assert terms.of(ReverseOperation.CASH_REFUND) is terms.cash_refund
    assert "3-7" in terms.refund.processing_time.in_language(Language.ZH)
    assert "3-7 working days" in terms.refund.processing_time.in_language(Language.EN)
    assert "immediately" in terms.cash_refund.processing_time.en
    for operation in ReverseOperation:
        text = terms.of(operation).notice
        assert isinstance(text, Text) and text.zh and text.en


def test_a_path_overrides_the_shipped_file(tmp_path: Path) -> None:
    data = shipped()
    data["reference"] = "TT-TEST"
    data["refund"]["max_per_sale"] = "1000.00"
    path = tmp_path / "terms.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    terms = load_terms(path)
    assert terms.reference == "TT-TEST"
    assert terms.refund.max_per_sale == 100_000
    assert load_terms(str(path)) == terms


def changed(path: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(shipped())
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("refund.max_days_after_sale", 180.5, "refund.max_days_after_sale: must be a whole number of days"),
        ("refund.max_days_after_sale", "180", "refund.max_days_after_sale: must be a whole number of days"),
        ("refund.max_days_after_sale", True, "refund.max_days_after_sale: must be a whole number of days"),
        ("refund.max_days_after_sale", -1, "refund.max_days_after_sale: must be 0 to 3660 days"),
        ("refund.max_days_after_sale", 3661, "refund.max_days_after_sale: must be 0 to 3660 days"),
        ("refund.max_days_after_sale", KeyError, "refund.max_days_after_sale: is missing"),
        ("refund.max_per_day", 50000, 'refund.max_per_day: must be an amount written as a string, like "5'),
        ("refund.max_per_day", "500.001", "refund.max_per_day: has more than two decimals"),
        ("refund.max_per_day", "0", "refund.max_per_day: must be more than zero"),
        ("cash_refund.max_amount", None, "cash_refund.max_amount: must be an amount written as a string"),
        ("cash_refund.max_amount", "-1", "cash_refund.max_amount: must not be negative"),
        ("cash_refund.allowed", "yes", "cash_refund.allowed: must be true or false"),
        ("adjust.tip_max_percent", 101, "adjust.tip_max_percent: must be 0 to 100 percent"),
        ("adjust.tip_max_percent", 20.5, "adjust.tip_max_percent: must be a whole number of percent"),
        ("adjust.completion_tolerance_percent", -1, "adjust.completion_tolerance_percent: must be 0 to 100"),
        ("void.window", 1, 'void.window: must be "same_batch": a void cancels a sale of the open batch only'),
        ("void.window", KeyError, "void.window: is missing"),
        ("adjust.window", "any", 'adjust.window: must be "same_batch"'),
        ("void.supervisor", 1, "void.supervisor: must be true or false"),
        ("refund.evidence_required", ["phone"], "refund.evidence_required: unknown evidence field 'phone'"),
        ("refund.evidence_required", "order", "refund.evidence_required: must be a list"),
        ("refund.notice.en", "", "refund.notice.en: must be a text that is not empty"),
        ("refund.notice.zh", "退\x00款", "refund.notice.zh: must be printable"),
        ("refund.notice.fr", "Remboursement", "refund.notice: unknown key(s) fr"),
        ("refund.processing_time", "3-7 days", "refund.processing_time: must be an object"),
        ("refund.max_days", 30, "refund: unknown key(s) max_days"),
        ("cash_refund", KeyError, "terms.json: cash_refund: is missing"),
        ("reference", "", "reference: must be a text that is not empty"),
        ("reference", "R" * 41, "reference: must be printable, at most 40 characters"),
        ("currency", "cny", "currency: must be the three capital letters of ISO 4217"),
        ("extra", {}, "terms.json: unknown key(s) extra"),
    ],
)
def test_bad_terms_name_the_file_and_the_key(path: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        terms_from_dict(changed(path, value))
    assert str(caught.value).startswith("terms.json: ")
    assert message in str(caught.value)


def test_limits_at_their_boundaries_are_accepted() -> None:
    terms = terms_from_dict(changed("refund.max_days_after_sale", 0))
    assert terms.refund.max_days_after_sale == 0
    assert terms_from_dict(changed("adjust.tip_max_percent", 100)).adjust.tip_max_percent == 100
    assert terms_from_dict(changed("refund.max_per_day", None)).refund.max_per_day is None
    assert terms_from_dict(changed("refund.max_per_day", "0.01")).refund.max_per_day == 1


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ConfigError, match=r"nowhere\.json: cannot be read"):
        load_terms(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{"reference": ', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.json: not JSON: .* at line 1 column 15"):
        load_terms(bad)
    bad.write_bytes(b'{"reference": "\xff"}')
    with pytest.raises(ConfigError, match=r"bad\.json: not UTF-8 at byte 15"):
        load_terms(bad)
    bad.write_text('{"reference": "A", "reference": "B"}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.json: duplicate key 'reference'"):
        load_terms(bad)
    bad.write_text(" " * (MAX_FILE_BYTES + 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"bad\.json: more than {MAX_FILE_BYTES} bytes"):
        load_terms(bad)
    with pytest.raises(ConfigError, match=r"other\.json: must be an object"):
        terms_from_dict([], "other.json")
