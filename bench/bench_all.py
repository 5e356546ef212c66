"""Every figure of the benchmarks in one table: what, time, floor, ratio.

    python bench/bench_all.py [--markdown] [--only NAME ...]

Runs each bench/bench_*.py as it is (how each one measures is its own
business), shows its output, reads its figures out of that output and prints
one table: the figure, its time, the floor it is held against (measured by
that benchmark in the same run) and the ratio. A benchmark that needs pcscd
with the vpcd reader and finds none shows as not run. Then the machine the
run was made on (nproc, CPU model, the disk under var/).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
_TIME = r"([\d,]+(?:\.\d+)?)\s*(ns|us|ms|s)\b"
_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


@dataclass(frozen=True)
class Row:
    bench: str
    what: str
    seconds: float | None  # or, with `unit`, the figure in that unit (% of a core, MB)
    floor: float | None
    ratio: float | None
    unit: str = "s"


def _seconds(number: str, unit: str) -> float:
    return float(number.replace(",", "")) * _UNIT[unit]


def _shown(seconds: float | None, unit: str = "s") -> str:
    if seconds is None:
        return "-"
    if unit != "s":
        return f"{seconds:.3g} {unit}"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _columns(bench: str, lines: list[str], header: str, unit: float, label: str) -> list[Row]:
    """Rows of a benchmark's own table: `header` names its heading line; times in `unit` seconds."""
    rows: list[Row] = []
    inside = False
    for line in lines:
        if header in line:
            inside = True
            continue
        if not inside:
            continue
        cells = line.split()
        numbers = []
        for cell in cells:
            try:
                numbers.append(float(cell.replace(",", "")))
            except ValueError:
                numbers.append(None)
        if len(cells) < 4 or numbers[-1] is None:
            if rows:
                inside = False
            continue
        rows.append(_table_row(bench, cells, numbers, unit, label))
    return rows


def _table_row(bench: str, cells: list[str], numbers: list[float | None], unit: float, label: str) -> Row:
    if bench == "bench_keys":  # operation ns/op floor x
        name = " ".join(cells[:-3])
        return Row(bench, name, (numbers[-3] or 0) * unit, (numbers[-2] or 0) * unit, numbers[-1])
    if bench == "bench_store":  # records KB enqueue floor x
        return Row(
            bench,
            f"enqueue, {cells[0]} records",
            (numbers[2] or 0) * unit,
            (numbers[3] or 0) * unit,
            numbers[4],
        )
    # bench_book: past KB what book floor x floor+dir x
    return Row(
        bench, f"{cells[2]}, {cells[0]} past", (numbers[3] or 0) * unit, (numbers[4] or 0) * unit, numbers[5]
    )


def _figures(bench: str, output: str) -> list[Row]:
    lines = output.splitlines()
    if bench == "bench_keys":
        return _columns(bench, lines, "ns/op", 1e-9, "")
    if bench == "bench_store":
        return _columns(bench, lines, "enqueue ms", 1e-3, "")
    if bench == "bench_book":
        return _columns(bench, lines, "book ms", 1e-3, "")
    if bench == "bench_simcrypto":
        floor_match = re.search(r"floor: one TDES call " + _TIME, output)
        floor = _seconds(*floor_match.groups()) if floor_match else None
        rows = []
        for line in lines:
            if line.startswith("CVN"):
                cvn = line.split(":")[0]
                for what, ratio in re.findall(r"([A-Za-z][A-Za-z +]+?) x\s*([\d.]+)", line.split(":", 1)[1]):
                    value = float(ratio)
                    rows.append(
                        Row(bench, f"{cvn} {what.strip()}", value * floor if floor else None, floor, value)
                    )
        return rows
    if bench == "bench_kiosk":
        return _kiosk(bench, lines)
    if bench == "bench_txn":
        return _txn(bench, lines)
    if bench == "bench_oda":
        rows = []
        for line in lines:
            found = re.match(r"(.+?): +([\d.]+) us per card = +([\d.]+) x floor .*?([\d.]+) us\)", line)
            if found:
                rows.append(
                    Row(bench, found[1], float(found[2]) * 1e-6, float(found[4]) * 1e-6, float(found[3]))
                )
        return rows
    return _generic(bench, lines)


_KIOSK: Final = re.compile(
    r"(?P<what>\S.*?)\s{2,}(?P<value>[\d.]+)(?:/[\d.]+)?\s*(?P<unit>ms|%|MB)\s+floor\s+(?P<floor>[\d.]+)"
    r"\s*(?P=unit)\s+target\s+(?P<target>\S+ \S+)\s+(?P<verdict>ok|MISSED)"
)


def _kiosk(bench: str, lines: list[str]) -> list[Row]:
    """`what  VALUE unit  floor F unit  target T  ok|MISSED`; times in ms, CPU in %, memory in MB."""
    rows = []
    for line in lines:
        found = _KIOSK.match(line.strip())
        if found is None:
            continue
        value, floor = float(found["value"]), float(found["floor"])
        unit = found["unit"]
        scale = 1e-3 if unit == "ms" else 1.0
        verdict = "" if found["verdict"] == "ok" else ", target missed"
        rows.append(
            Row(
                bench,
                f"{found['what'].replace(' / max', '')} (target {found['target']}{verdict})",
                value * scale,
                floor * scale,
                value / floor if floor else None,
                "s" if unit == "ms" else unit,
            )
        )
    return rows


_DRAIN: Final = re.compile(
    r"(?P<kind>\S.*?\))\s+(?P<rate>[\d.]+)\s+(?P<each>[\d.]+)\s+(?P<echo>[\d.]+)\s+[\d.]+$"
)
_SALE: Final = re.compile(
    r"(?P<how>\S.*?)\s*: whole\s+(?P<whole>[\d.]+) ms = card\s+(?P<card>[\d.]+) ms"
    r" .*?host\s+(?P<host>[\d.]+) ms"
)


def _txn(bench: str, lines: list[str]) -> list[Row]:
    """Drain rows (each item against a MAC-checked echo) and the whole sale: in process against the
    time the card and the host took; through pcscd + vpcd against the whole sale in process."""
    rows: list[Row] = []
    in_process: float | None = None
    for line in lines:
        drained = _DRAIN.match(line.strip())
        if drained:
            each, echo = float(drained["each"]) * 1e-3, float(drained["echo"]) * 1e-3
            what = f"drain, one {drained['kind']} ({drained['rate']}/s), floor a MAC-checked echo"
            rows.append(Row(bench, what, each, echo, each / echo))
            continue
        sale = _SALE.match(line.strip())
        if sale:
            whole = float(sale["whole"]) * 1e-3
            if in_process is None:
                in_process = whole
                floor = (float(sale["card"]) + float(sale["host"])) * 1e-3
                what = f"whole sale, {sale['how']}, floor the card's and the host's time"
            else:
                floor = in_process
                what = f"whole sale, {sale['how']}, floor the whole sale in process"
            rows.append(Row(bench, what, whole, floor, whole / floor))
    return rows


def _generic(bench: str, lines: list[str]) -> list[Row]:
    """Lines `label  TIME  RATIOx`, each held against the last `floor` line above it."""
    rows: list[Row] = []
    floor: float | None = None
    floors: dict[str, float] = {}
    section = subsection = ""
    for line in lines:
        timed = re.search(_TIME, line)
        if re.match(r"\S.*:$", line.strip()) and not timed:
            if line.startswith(" "):
                subsection = line.strip().rstrip(":")
            else:
                section, subsection = line.strip().rstrip(":"), ""
        if not timed:
            continue
        seconds = _seconds(*timed.groups())
        label = re.sub(r"\s{2,}.*", "", line[: timed.start()].strip()).strip(" :")
        if "floor" in line.lower() and "x floor" not in line:
            floor = seconds
            floors[label] = seconds
            if "(floor)" not in line and "1.0x" not in line:
                continue
        ratio = re.search(r"([\d.]+)x\b", line[timed.end() :])
        if ratio is None:
            continue
        value = float(ratio[1])
        base = seconds / value if value else floor
        what = ": ".join(part for part in (section, subsection, label) if part)
        rows.append(Row(bench, what, seconds, base, value))
    return rows


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    disk = (
        subprocess.run(
            ["df", "-hT", str(ROOT / "var") if (ROOT / "var").exists() else str(ROOT)],
            capture_output=True,
            text=True,
            check=False,
        )
        .stdout.splitlines()[-1]
        .split()
    )
    rotational = ""
    device = Path(disk[0]).name.rstrip("0123456789") if disk else ""
    flag = Path(f"/sys/block/{device}/queue/rotational")
    if flag.exists():
        rotational = ", rotational" if flag.read_text().strip() == "1" else ", not rotational"
    return (
        f"nproc {os.cpu_count()}, CPU {model}, disk {disk[0]} ({disk[1]}, {disk[2]}{rotational}) "
        f"under {ROOT.name}/var, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_all")
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown (for the README)")
    parser.add_argument("--only", nargs="*", help="these benchmarks only (names without .py)")
    parser.add_argument("--quiet", action="store_true", help="do not show each benchmark's own output")
    args = parser.parse_args(argv)
    benches = sorted(p for p in BENCH.glob("bench_*.py") if p.stem != "bench_all")
    if args.only:
        benches = [p for p in benches if p.stem in args.only]
    rows: list[Row] = []
    missing: list[str] = []
    for path in benches:
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
            env={**os.environ, "PYTHONPATH": f"{ROOT}:{BENCH}"},
        )
        if not args.quiet:
            print(f"== {path.name} ({time.monotonic() - start:.0f} s)\n{done.stdout.rstrip()}", flush=True)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            missing.append(f"{path.stem}: not run ({why[:150]})")
            continue
        rows.extend(_figures(path.stem, done.stdout))
    width = max([len(f"{r.bench[6:]}: {r.what}") for r in rows] + [10])
    if args.markdown:
        print("\n| what | time | floor | ratio |\n|---|---:|---:|---:|")
        for r in rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
            time_shown, floor_shown = _shown(r.seconds, r.unit), _shown(r.floor, r.unit)
            print(f"| {r.bench[6:]}: {r.what} | {time_shown} | {floor_shown} | {ratio} |")
    else:
        print(f"\n{'what':<{width}}  {'time':>10}  {'floor':>10}  {'ratio':>8}")
        for r in rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
            what = f"{r.bench[6:]}: {r.what}"
            print(
                f"{what:<{width}}  {_shown(r.seconds, r.unit):>10}  {_shown(r.floor, r.unit):>10}  {ratio:>8}"
            )
    for line in missing:
        print(line)
    print(f"machine: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
