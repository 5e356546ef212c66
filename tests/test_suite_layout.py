"""The test suite's own layout: shared fakes, builders and vectors live in
helper modules (tests/emv_fakes.py, tests/dukpt_vectors.py, tests/power_cut.py),
imported as `tests.<name>`; a test module never imports another test module,
which pytest would then load twice under two names."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
    return names


def test_no_test_module_imports_another_test_module() -> None:
    offenders = sorted(
        f"{path.name} imports {name}"
        for path in TESTS.glob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[-1].startswith("test_")
    )
    assert offenders == []


def test_helper_modules_import_as_tests_dot_name() -> None:
    for helper in ("emv_fakes", "dukpt_vectors", "power_cut"):
        assert (TESTS / f"{helper}.py").is_file()
        assert importlib.import_module(f"tests.{helper}").__file__ == str(TESTS / f"{helper}.py")
