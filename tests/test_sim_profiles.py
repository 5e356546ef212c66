"""Card profiles: each one loads, `pos-sim profiles` lists them, the data is plausible, errors are named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sim import tlv
from sim.__main__ import main as pos_sim
from sim.card import load_profile_card
from sim.errors import ProfileError
from sim.profile import PROFILE_DIR, load_profile, profile_from_dict, profile_names, read_profile_json

REQUIRED = {
    "unionpay-debit": ["A000000333010101"],
    "visa-credit": ["A0000000031010"],
    "mastercard-credit": ["A0000000041010"],
    "multi-app": ["A000000333010101", "A000000333010102"],
    "no-pse": ["A0000000031010"],
    "expired": ["A0000000031010"],
    "blocked": ["A0000000041010"],
}
REPO_ROOT = Path(__file__).resolve().parent.parent


def luhn_valid(pan: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(pan)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


@pytest.mark.parametrize("name", profile_names())
def test_every_profile_becomes_a_card(name: str) -> None:
    card = load_profile_card(name)
    assert card.power_on() == card.profile.atr
    assert card.profile.description


def test_the_required_profiles_and_their_aids() -> None:
    for name, aids in REQUIRED.items():
        assert [app.aid.hex().upper() for app in load_profile(name).applications] == aids


def test_pos_sim_profiles_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert pos_sim(["profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = sorted(path.stem for path in PROFILE_DIR.glob("*.json"))
    assert [line.split()[0] for line in lines] == names
    for line, name in zip(lines, names, strict=True):
        assert line.split(None, 1)[1] == json.loads((PROFILE_DIR / f"{name}.json").read_text())["description"]


def test_python_m_sim_profiles_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sim", "profiles"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "visa-credit" in result.stdout


@pytest.mark.parametrize("name", profile_names())
def test_atr_is_well_formed(name: str) -> None:
    atr = load_profile(name).atr
    assert atr[0] == 0x3B
    t1 = load_profile(name).t0 is False
    if t1:  # TCK: XOR of T0..TCK is zero (ISO 7816-3 8.2.5)
        check = 0
        for byte in atr[1:]:
            check ^= byte
        assert check == 0
    else:  # T=0 only: no TD1, so no TCK
        assert not atr[1] & 0x80


@pytest.mark.parametrize("name", profile_names())
def test_card_data_is_plausible(name: str) -> None:
    for app in load_profile(name).applications:
        pan = app.pan
        assert luhn_valid(pan), pan
        assert pan[:1] in "456"
        track2 = app.data(0x57)
        assert track2 is not None and track2.hex().upper().startswith(pan + "D")
        expiry = app.data(0x5F24)
        assert expiry is not None and track2.hex().upper()[len(pan) + 1 : len(pan) + 5] == expiry.hex()[:4]
        assert app.data(0x8E) is not None and app.data(0x9F0D) is not None
        assert app.data(0x9F0E) is not None and app.data(0x9F0F) is not None
        currency = app.data(0x9F42)
        scheme = app.aid[:5].hex().upper()
        assert (
            currency
            == {"A000000333": b"\x01\x56", "A000000003": b"\x08\x40", "A000000004": b"\x09\x78"}[scheme]
        )
        assert app.crypto, "every application makes real cryptograms"
        assert len(app.fci_value(0x50) or b"") > 0


def test_expired_profile_is_expired_and_the_others_are_not() -> None:
    for name in profile_names():
        for app in load_profile(name).applications:
            expiry = app.data(0x5F24)
            assert expiry is not None
            assert (expiry < bytes.fromhex("250101")) == (name == "expired"), name


def test_multi_app_asks_for_cardholder_confirmation() -> None:
    apps = load_profile("multi-app").applications
    assert [app.fci_value(0x87) for app in apps] == [b"\x81", b"\x82"]


def test_unionpay_has_a_pdol_and_visa_does_not() -> None:
    assert tlv.parse_dol(load_profile("unionpay-debit").applications[0].pdol) == [
        (0x9F7A, 1),
        (0x9F02, 6),
        (0x5F2A, 2),
    ]
    assert load_profile("visa-credit").applications[0].pdol == b""


def test_oda_modes_per_scheme() -> None:
    assert load_profile("visa-credit").applications[0].oda == "dda"
    assert load_profile("mastercard-credit").applications[0].oda == "cda"
    assert load_profile("unionpay-debit").applications[0].oda == "sda"


def test_base_profiles_merge() -> None:
    no_pse = load_profile("no-pse")
    assert not no_pse.pse
    assert no_pse.applications[0].records == load_profile("visa-credit").applications[0].records
    assert load_profile("blocked").applications[0].blocked
    assert not load_profile("mastercard-credit").applications[0].blocked


def broken(change: Any) -> dict[str, Any]:
    raw = read_profile_json("visa-credit")
    change(raw)
    return raw


def _set(path: list[Any], value: Any) -> Any:
    def apply(raw: dict[str, Any]) -> None:
        target = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (_set(["colour"], "red"), "", "unknown keys"),
        (_set(["atr"], "3BE800"), "atr", "ATR"),
        (_set(["atr"], "3B680000504F5353494D3031"), "atr", "T=1"),
        (_set(["applications", 0, "aip"], "5C00"), "aip", "does not announce DDA"),
        (_set(["applications", 0, "afl"], "08010500"), "afl", "record 2"),
        (_set(["applications", 0, "ac_format"], 3), "ac_format", "1 or 2"),
        (_set(["applications", 0, "pin"], "12a4"), "pin", "digits"),
        (_set(["applications", 0, "records", 0, "data", "57"], "XYZ"), "records[0]", "not hex"),
        (_set(["applications", 0, "records", 0, "data", "57"], "@secret"), "records[0]", "placeholder"),
        (_set(["faults"], {"explode": True}), "faults", "unknown keys"),
        (
            _set(["faults"], {"tamper_record": {"sfi": 2, "record": 1, "tag": "9F99", "value": "00"}}),
            "tamper_record",
            "no tag",
        ),
        (_set(["applications", 0, "risk", "max_consecutive_offline"], True), "risk", "integer"),
    ],
)
def test_profile_errors_name_the_field(change: Any, field: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        profile_from_dict("broken", broken(change))
    assert field in caught.value.field
    assert message in str(caught.value)


def test_cda_needs_format_2() -> None:
    raw = read_profile_json("mastercard-credit")
    raw["applications"][0]["ac_format"] = 1
    with pytest.raises(ProfileError, match="format 2"):
        profile_from_dict("broken", raw)


def test_missing_crypto_config_is_refused() -> None:
    raw = read_profile_json("visa-credit")
    del raw["applications"][0]["crypto"]
    with pytest.raises(ProfileError, match="crypto"):
        from sim.card import Card

        Card(profile_from_dict("visa-credit", raw))


def test_base_loop_and_unknown_profile(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"base": "b"}))
    (tmp_path / "b.json").write_text(json.dumps({"base": "a"}))
    with pytest.raises(ProfileError, match="loop"):
        load_profile("a", tmp_path)
    with pytest.raises(ProfileError, match="no such profile"):
        load_profile("c", tmp_path)
    with pytest.raises(ProfileError):
        load_profile("../etc/passwd", tmp_path)
