"""The terms (交易条款) of reverse transactions: a data file, read into frozen dataclasses.

`load_terms(path=None)` reads `path`, or the file shipped as
`firmware/data/terms.json` (found with `importlib.resources`), and returns
`Terms`. Every problem is a `ConfigError` naming the file and the key, e.g.
``terms.json: refund.max_days_after_sale: must be a whole number of days``.
The file is read up to 64 KiB; unknown and duplicate keys are refused, so
a misspelt limit is never silently ignored.

The file (amounts are strings of the currency's major unit, as a person
writes them: "500.00"; percentages and days are whole numbers)::

    reference    printed on every slip and notice, e.g. "TT-2025.1"
    currency     ISO 4217 letters of the amounts in this file, e.g. "CNY"
    void         window: "same_batch", the only value (a sale of a settled
                 batch is given back by a refund, never voided)
    refund       max_days_after_sale; max_per_sale (null: the sale amount);
                 max_per_day (the terminal's total of card and cash refunds,
                 null: no limit)
    cash_refund  allowed; max_amount (one cash refund); max_days_after_sale
    adjust       window: "same_batch" (tip adjust); tip_max_percent (above
                 the sale amount); completion_tolerance_percent (above the
                 pre-authorised amount); completion_max_days_after_preauth

and in each of the four: supervisor (the supervisor password is needed),
evidence_required (a list of `EvidenceField` values), processing_time and
notice (the customer notice: what happens next), each {"zh": ..., "en": ...}.

Nothing here decides anything: `firmware.txn.rules` applies the terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Final

from firmware.errors import AmountError, ConfigError, MalformedFileError
from firmware.store.json_guard import load_json
from firmware.txn.model import EvidenceField, ReverseOperation
from firmware.txn.money import parse_amount

__all__ = [
    "AdjustTerms",
    "CashRefundTerms",
    "Language",
    "OperationTerms",
    "RefundTerms",
    "Terms",
    "Text",
    "load_terms",
    "terms_from_dict",
]

MAX_FILE_BYTES: Final = 64 * 1024
MAX_DAYS: Final = 3660
MAX_TEXT: Final = 500
SAME_BATCH: Final = "same_batch"
_RESOURCE: Final = "terms.json"


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


@dataclass(frozen=True)
class Text:
    """One text in 中文 and English."""

    zh: str
    en: str

    def in_language(self, language: Language) -> str:
        return self.zh if language is Language.ZH else self.en


@dataclass(frozen=True)
class OperationTerms:
    """What every operation's terms say; the terms of a void are nothing more."""

    supervisor: bool
    evidence_required: frozenset[EvidenceField]
    processing_time: Text
    notice: Text


@dataclass(frozen=True)
class RefundTerms(OperationTerms):
    max_days_after_sale: int
    max_per_sale: int | None
    max_per_day: int | None


@dataclass(frozen=True)
class CashRefundTerms(OperationTerms):
    allowed: bool
    max_amount: int
    max_days_after_sale: int


@dataclass(frozen=True)
class AdjustTerms(OperationTerms):
    tip_max_percent: int
    completion_tolerance_percent: int
    completion_max_days_after_preauth: int


@dataclass(frozen=True)
class Terms:
    reference: str
    currency: str
    void: OperationTerms
    refund: RefundTerms
    cash_refund: CashRefundTerms
    adjust: AdjustTerms

    def of(self, operation: ReverseOperation) -> OperationTerms:
        """The terms of one operation."""
        return {
            ReverseOperation.VOID: self.void,
            ReverseOperation.REFUND: self.refund,
            ReverseOperation.CASH_REFUND: self.cash_refund,
            ReverseOperation.ADJUST: self.adjust,
        }[operation]


class _Section:
    """The keys of one JSON object, each read once, the rest refused as unknown."""

    def __init__(self, value: object, where: str, source: str) -> None:
        self.source = source
        self.where = where
        if not isinstance(value, dict):
            raise self.error("", "must be an object")
        self.data: dict[str, object] = value
        self.read: set[str] = set()

    def error(self, key: str, problem: str) -> ConfigError:
        path = ".".join(part for part in (self.where, key) if part)
        return ConfigError(f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}")

    def get(self, key: str) -> object:
        if key not in self.data:
            raise self.error(key, "is missing")
        self.read.add(key)
        return self.data[key]

    def section(self, key: str) -> _Section:
        where = f"{self.where}.{key}" if self.where else key
        return _Section(self.get(key), where, self.source)

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def whole(self, key: str, unit: str, maximum: int) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number of {unit}")
        if not 0 <= value <= maximum:
            raise self.error(key, f"must be 0 to {maximum} {unit}")
        return value

    def optional_amount(self, key: str) -> int | None:
        if self.get(key) is None:
            return None
        return self.amount(key)

    def amount(self, key: str) -> int:
        value = self.get(key)
        if not isinstance(value, str):
            raise self.error(key, 'must be an amount written as a string, like "500.00"')
        try:
            return parse_amount(value, key)
        except AmountError as exc:
            raise self.error(key, str(exc).removeprefix(f"{key}: ")) from None

    def text(self, key: str, maximum: int = MAX_TEXT) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a text that is not empty")
        if len(value) > maximum or not value.isprintable():
            raise self.error(key, f"must be printable, at most {maximum} characters")
        return value

    def bilingual(self, key: str) -> Text:
        section = self.section(key)
        text = Text(zh=section.text("zh"), en=section.text("en"))
        section.done()
        return text

    def fields(self, key: str) -> frozenset[EvidenceField]:
        value = self.get(key)
        if not isinstance(value, list):
            raise self.error(key, "must be a list of evidence fields")
        known = {field.value for field in EvidenceField}
        for item in value:
            if not isinstance(item, str) or item not in known:
                raise self.error(key, f"unknown evidence field {item!r} (one of {', '.join(sorted(known))})")
        return frozenset(EvidenceField(item) for item in value)

    def same_batch(self, key: str, why: str) -> None:
        if self.get(key) != SAME_BATCH:
            raise self.error(key, f'must be "{SAME_BATCH}": {why}')

    def common(self) -> tuple[bool, frozenset[EvidenceField], Text, Text]:
        """The fields of `OperationTerms`, in order."""
        return (
            self.boolean("supervisor"),
            self.fields("evidence_required"),
            self.bilingual("processing_time"),
            self.bilingual("notice"),
        )

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise self.error("", f"unknown key(s) {', '.join(unknown)}")


def terms_from_dict(data: object, source: str = _RESOURCE) -> Terms:
    """`Terms` from the parsed JSON of a terms file; `source` names the file in errors."""
    top = _Section(data, "", source)
    reference = top.text("reference", 40)
    currency = top.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isupper()):
        raise top.error("currency", 'must be the three capital letters of ISO 4217, like "CNY"')

    void = top.section("void")
    void.same_batch("window", "a void cancels a sale of the open batch only; after settlement, refund")
    void_terms = OperationTerms(*void.common())
    void.done()

    refund = top.section("refund")
    refund_terms = RefundTerms(
        *refund.common(),
        max_days_after_sale=refund.whole("max_days_after_sale", "days", MAX_DAYS),
        max_per_sale=refund.optional_amount("max_per_sale"),
        max_per_day=refund.optional_amount("max_per_day"),
    )
    refund.done()

    cash = top.section("cash_refund")
    cash_terms = CashRefundTerms(
        *cash.common(),
        allowed=cash.boolean("allowed"),
        max_amount=cash.amount("max_amount"),
        max_days_after_sale=cash.whole("max_days_after_sale", "days", MAX_DAYS),
    )
    cash.done()

    adjust = top.section("adjust")
    adjust.same_batch("window", "a tip is adjusted before its sale is settled")
    adjust_terms = AdjustTerms(
        *adjust.common(),
        tip_max_percent=adjust.whole("tip_max_percent", "percent", 100),
        completion_tolerance_percent=adjust.whole("completion_tolerance_percent", "percent", 100),
        completion_max_days_after_preauth=adjust.whole("completion_max_days_after_preauth", "days", MAX_DAYS),
    )
    adjust.done()
    top.done()
    return Terms(reference, currency, void_terms, refund_terms, cash_terms, adjust_terms)


def _no_duplicates(source: str) -> Callable[[list[tuple[str, object]]], dict[str, object]]:
    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        result: dict[str, object] = {}
        for key, value in pairs:
            if key in result:
                raise ConfigError(f"{source}: duplicate key {key!r}")
            result[key] = value
        return result

    return hook


def load_terms(path: Path | str | None = None) -> Terms:
    """The terms at `path`, or the ones shipped in `firmware/data/terms.json`."""
    source = _RESOURCE if path is None else str(path)
    try:
        if path is None:
            with resources.files("firmware.data").joinpath(_RESOURCE).open("rb") as stream:
                raw = stream.read(MAX_FILE_BYTES + 1)
        else:
            with Path(path).open("rb") as stream:
                raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: more than {MAX_FILE_BYTES} bytes")
    try:
        data = load_json(raw, source, object_pairs_hook=_no_duplicates(source))
    except MalformedFileError as exc:
        raise ConfigError(str(exc)) from exc
    return terms_from_dict(data, source)
