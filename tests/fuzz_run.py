"""The fuzz targets run long: `./build.sh fuzz [--minutes N]` (python -m tests.fuzz_run --minutes N).

The hypothesis targets (every `@given` test of tests/test_fuzz_*.py and
tests/test_emv_fuzz.py) share 60 % of the time equally: each runs round after
round, a round being `--scale` times its in-suite examples (1 by default: small
rounds keep to the time given) with a fresh random seed, until its share is
used up; the atheris targets (tests/fuzz_atheris.py, when atheris is
installed) run coverage-guided, one libFuzzer process each, with a corpus
and crash artifacts under var/fuzz/. Then one line per target: inputs tried,
and what was found (the exception and the falsifying input, or the crash
file). Exit status 1 when anything was found.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "tests.test_fuzz_tlv",
    "tests.test_fuzz_host",
    "tests.test_fuzz_tr31",
    "tests.test_fuzz_image",
    "tests.test_fuzz_config",
    "tests.test_fuzz_books",
    "tests.test_fuzz_service",
    "tests.test_emv_fuzz",
]


def hypothesis_targets() -> dict[str, Callable[[], None]]:
    targets: dict[str, Callable[[], None]] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attribute, test in vars(module).items():
            if attribute.startswith("test_") and hasattr(test, "hypothesis"):
                targets[f"{name.removeprefix('tests.')}::{attribute}"] = test
    return targets


def counting(test: Any, counts: Counter[str], key: str) -> None:
    """Count each example the test runs (hypothesis calls `.hypothesis.inner_test` once per example)."""
    inner = test.hypothesis.inner_test

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return inner(*args, **kwargs)

    test.hypothesis.inner_test = counted


def run_hypothesis(seconds: float) -> tuple[Counter[str], dict[str, str]]:
    targets = hypothesis_targets()
    counts: Counter[str] = Counter()
    found: dict[str, str] = {}
    for key, test in targets.items():
        counting(test, counts, key)
    share = seconds / max(1, len(targets))
    for key, test in targets.items():  # each target its share of the time, at least one round
        end = time.monotonic() + share
        rounds = 0
        while key not in found and (rounds == 0 or time.monotonic() < end):
            rounds += 1
            output = io.StringIO()
            try:
                with redirect_stdout(output):
                    test()
            except Exception as exc:  # what hypothesis found, after shrinking
                # the error first, then its notes: the falsifying example hypothesis attaches to it
                lines = traceback.format_exception_only(type(exc), exc)
                found[key] = ("".join(lines).strip() + "\n" + output.getvalue().strip())[:2000]
        print(f"fuzz: {key}: {counts[key]} inputs in {rounds} round(s)", file=sys.stderr)
    return counts, found


def run_atheris(seconds: float) -> tuple[Counter[str], dict[str, str]]:
    counts: Counter[str] = Counter()
    found: dict[str, str] = {}
    if importlib.util.find_spec("atheris") is None:
        print("fuzz: atheris is not installed: coverage-guided targets skipped", file=sys.stderr)
        return counts, found
    sys.path.insert(0, str(ROOT))
    from tests.fuzz_atheris import TARGETS, seeds

    share = max(5, int(seconds / len(TARGETS)))
    work = ROOT / "var" / "fuzz"
    for target in TARGETS:
        corpus = work / "corpus" / target
        corpus.mkdir(parents=True, exist_ok=True)
        for number, seed in enumerate(seeds(target)):
            (corpus / f"seed-{number}").write_bytes(seed)
        artifacts = work / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, str(ROOT / "tests" / "fuzz_atheris.py"), target,
                   f"-max_total_time={share}", "-timeout=10", "-rss_limit_mb=1024", "-print_final_stats=1",
                   f"-artifact_prefix={artifacts}/{target}-", str(corpus)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"}
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=share + 120, check=False
        )
        executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", done.stderr)
        counts[target] = int(executed.group(1)) if executed else 0
        if done.returncode != 0:
            artifact = re.search(r"Test unit written to (\S+)", done.stderr)
            error = re.search(r"^(\w+Error.*)$", done.stderr, re.MULTILINE)
            found[target] = (
                f"{error.group(1) if error else 'crash'} (input: {artifact.group(1) if artifact else '?'})"
            )
        print(f"fuzz: atheris {target}: {counts[target]} inputs", file=sys.stderr)
    return counts, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh fuzz")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long in all (default 10)")
    parser.add_argument("--scale", type=float, default=1.0, help="examples per round, times the suite's")
    parser.add_argument("--no-atheris", action="store_true")
    args = parser.parse_args(argv)
    os.environ["FUZZ_SCALE"] = str(args.scale)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    total = args.minutes * 60
    started = time.monotonic()
    atheris_share = 0.0 if args.no_atheris else 0.4 * total
    counts, found = run_hypothesis(total - atheris_share)
    if atheris_share:
        more_counts, more_found = run_atheris(atheris_share)
        counts.update({f"atheris::{k}": v for k, v in more_counts.items()})
        found.update({f"atheris::{k}": v for k, v in more_found.items()})
    width = max(len(k) for k in counts) if counts else 10
    print(f"{'target':<{width}}  {'inputs':>9}  found")
    for key in sorted(counts):
        print(f"{key:<{width}}  {counts[key]:>9}  {found[key].splitlines()[0] if key in found else '-'}")
    print(f"{'total':<{width}}  {sum(counts.values()):>9}  {len(found)} target(s) found something")
    print(
        f"fuzz: {len(counts)} targets in {(time.monotonic() - started) / 60:.1f} min ({args.minutes:g} asked)"
    )
    for key, what in sorted(found.items()):
        print(f"\n== {key}\n{what}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
