"""The simulator's errors live in one module, `sim.errors`, in one hierarchy
under `SimError`, apart from the firmware's (DESIGN.md: sim/ and firmware/
never import each other)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import sim
from sim import cardcrypto, cvn, emvcrypto, errors, issuer, vpcd


def _sim_modules() -> list[ModuleType]:
    return [importlib.import_module(f"sim.{info.name}") for info in pkgutil.iter_modules(sim.__path__)]


def test_every_public_sim_exception_is_defined_in_sim_errors() -> None:
    defined_elsewhere = sorted(
        f"{module.__name__}.{name}"
        for module in _sim_modules()
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
        and module is not errors
        and not name.startswith("_")  # private control flow (no answer, SIGTERM), never raised to a caller
    )
    assert defined_elsewhere == []


def test_every_sim_error_is_a_sim_error_and_none_is_the_firmwares() -> None:
    for name in errors.__all__:
        error = getattr(errors, name)
        assert issubclass(error, errors.SimError), name
        assert not any(base.__module__.startswith("firmware") for base in error.__mro__), name


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (emvcrypto, "SimCryptoError"),
        (emvcrypto, "CryptoInputError"),
        (cvn, "CryptoConfigError"),
        (issuer, "Field55Error"),
        (cardcrypto, "CardCryptoStatus"),
        (cardcrypto, "WrongLength"),
        (vpcd, "VpcdError"),
    ],
)
def test_the_modules_that_raise_them_still_offer_their_errors(module: ModuleType, name: str) -> None:
    assert name in module.__all__
    assert getattr(module, name) is getattr(errors, name)
