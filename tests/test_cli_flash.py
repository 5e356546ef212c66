"""`pos-flash`: the technician's commands, one-line refusals, exit codes."""

from __future__ import annotations

import io
from pathlib import Path

from firmware.cli.flash import main
from tests.flash_fixtures import EPOCH, PRODUCTION, TARGET, build, small_source


def run(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    root = ["--root", str(tmp_path / "root"), "--data-dir", str(tmp_path / "data")]
    code = main([*root, *args], env=env or {}, stdout=out, stderr=err, target=TARGET)
    return code, out.getvalue(), err.getvalue()


def test_trust_verify_install_boot_mark_good_status_rollback(tmp_path: Path) -> None:
    source = small_source(tmp_path / "src")
    v1, v2 = build(source, tmp_path / "d1", "1.0.0"), build(source, tmp_path / "d2", "1.1.0")
    code, _, err = run(["verify", str(v1)], tmp_path)
    assert code == 1 and err.startswith("pos-flash: refused: unknown-key: ") and err.count("\n") == 1
    assert run(["trust", PRODUCTION.public_hex], tmp_path)[0] == 0
    code, out, _ = run(["verify", str(v1)], tmp_path)
    assert code == 0 and out.startswith("ok: ") and "production key" in out
    assert run(["install", str(v1)], tmp_path)[1].startswith("installed 1.0.0 into slot a")
    code, _, err = run(["install", str(v1)], tmp_path)
    assert (
        code == 1 and err == "pos-flash: refused: not-newer: image 1.0.0 is not above the installed 1.0.0\n"
    )
    assert "starts on trial" in run(["install", str(v2), "--max-boots", "2"], tmp_path)[1]
    assert "trial start 1 of 2" in run(["boot"], tmp_path)[1]
    assert "on trial, start 1 of 2" in run(["status"], tmp_path)[1]
    assert "trial ended" in run(["mark-good"], tmp_path)[1]
    code, out, _ = run(["status"], tmp_path)
    assert "slot b: 1.1.0  <- current, good" in out and "highest version installed 1.1.0" in out
    code, _, err = run(["rollback"], tmp_path)
    assert code == 1 and "marked good" in err
    assert "migration 1 (update directory) done" in run(["migrate"], tmp_path)[1]
    assert run(["migrate"], tmp_path)[1] == "nothing to migrate\n"


def test_automatic_rollback_is_reported_at_boot(tmp_path: Path) -> None:
    source = small_source(tmp_path / "src")
    run(["trust", PRODUCTION.public_hex], tmp_path)
    run(["install", str(build(source, tmp_path / "d1", "1.0.0"))], tmp_path)
    run(["install", str(build(source, tmp_path / "d2", "2.0.0")), "--max-boots", "1"], tmp_path)
    assert run(["boot"], tmp_path)[1].startswith("start slot b (2.0.0, trial start 1 of 1)")
    code, out, err = run(["boot"], tmp_path)
    assert code == 0 and out.startswith("start slot a (1.0.0)") and "rolled back to slot a" in err


def test_build_needs_the_build_time_and_takes_the_key_from_the_environment(tmp_path: Path) -> None:
    source = small_source(tmp_path / "src")
    args = [
        "build",
        "--version",
        "1.0.0",
        "--no-deps",
        "--source",
        str(source),
        "--out",
        str(tmp_path / "dist"),
    ]
    code, _, err = run(args, tmp_path)
    assert code == 1 and "SOURCE_DATE_EPOCH" in err
    env = {"SOURCE_DATE_EPOCH": str(EPOCH), "POS_IMAGE_KEY": PRODUCTION.private.private_bytes_raw().hex()}
    code, out, _ = run([*args, "--arch", "x86_64", "--python", "3.11"], tmp_path, env)
    assert code == 0 and f"production key {PRODUCTION.id}" in out
    assert (tmp_path / "dist" / "pos-terminal-1.0.0-x86_64.img").read_bytes() == build(
        source, tmp_path / "again", "1.0.0"
    ).read_bytes()
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    code, out, _ = run([*args, "--version", "1.0.1"], tmp_path, env)
    assert code == 0 and "DEVELOPMENT key" in out and (source / "var" / "image-dev-key.pem").is_file()


def test_a_bad_command_line_exits_2(tmp_path: Path) -> None:
    code, _, err = run(["flash-everything"], tmp_path)
    assert code == 2 and err.startswith("pos-flash: usage error:")
