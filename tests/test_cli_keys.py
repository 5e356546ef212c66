"""`pos-keys`: provision, load-tmk, list, public-key; one-line errors, no key bytes printed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import psec
import pytest

from firmware.cli.keys import main
from firmware.keys.layout import KeyLayout, open_key_store, open_record_signer
from tests.power_cut import ARM_POWER_CUT

# A payShield 10k K0 key block (collected in openemv/tr31's tests) and its KBPK.
K0_BLOCK = "B0080K0TN00N00001C414014375212C24995E405B5EE052CB92B67F455EA2680F6751088F9F1C228"
K0_KBPK = "EFE0853B256B583D868F251CE99EA1D9"
K0_KEY = "5DB50B454F8389ADCE573BE50861F2BF"
P0_BLOCK = "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E"
P0_KBPK = "DD7515F2BFC17F85CE48F3CA25CB21F6"


def run(
    args: list[str], data_dir: Path, stdin: str = "", env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--data-dir", str(data_dir), *args], env=env or {}, stdin=io.StringIO(stdin), stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    code, _, err = run(["provision"], directory)
    assert code == 0, err
    return directory


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_provision_creates_device_and_signing_keys(tmp_path: Path) -> None:
    code, out, err = run(["provision"], tmp_path / "d")
    assert (code, err) == (0, "")
    store = open_key_store(KeyLayout.under(tmp_path / "d"))
    public = open_record_signer(store).public_key_bytes().hex()
    assert f"record signing public key: {public}" in out
    assert [info.name for info in store.list()] == ["SIGNING"]


def test_provision_refuses_to_overwrite(data_dir: Path) -> None:
    before = (data_dir / "device.key").read_bytes()
    code, out, err = run(["provision"], data_dir)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "refusing to overwrite" in err
    assert (data_dir / "device.key").read_bytes() == before


def test_public_key_matches_the_signer(data_dir: Path) -> None:
    code, out, _ = run(["public-key"], data_dir)
    store = open_key_store(KeyLayout.under(data_dir))
    assert code == 0 and out.strip() == open_record_signer(store).public_key_bytes().hex()


def test_load_tmk_then_list_shows_kcv_only(data_dir: Path, tmp_path: Path) -> None:
    block = write(tmp_path / "tmk.tr31", K0_BLOCK + "\n")
    kbpk = write(tmp_path / "kbpk.hex", K0_KBPK.lower() + "\n")
    code, out, err = run(["load-tmk", "--block", block, "--kbpk-file", kbpk], data_dir)
    assert (code, err) == (0, "")
    assert "KCV 5C9405" in out
    assert open_key_store(KeyLayout.under(data_dir)).get("TMK").hex().upper() == K0_KEY
    code, out, _ = run(["list"], data_dir)
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines] == ["SIGNING", "TMK"]
    assert "tdes" in lines[1] and "v1" in lines[1] and lines[1].endswith("KCV 5C9405")
    assert K0_KEY not in out.upper()


def test_unversioned_blocks_from_stdin_replace_each_other(data_dir: Path, tmp_path: Path) -> None:
    # Key version "00": the key is not versioned, so there is no older or newer to tell apart.
    kbpk = write(tmp_path / "kbpk.hex", K0_KBPK)
    for expected in ("key version 00: v1", "key version 00: v2"):
        code, out, err = run(["load-tmk", "--block", "-", "--kbpk-file", kbpk], data_dir, stdin=K0_BLOCK)
        assert code == 0, err
        assert expected in out


VERSIONED_KBPK = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")  # TEST key


def versioned_block(key_version: str, tmk: bytes) -> str:
    return str(psec.tr31.wrap(VERSIONED_KBPK, f"B0000K0TD{key_version}N0000", tmk))


def test_older_tmk_blocks_are_not_re_injected(data_dir: Path, tmp_path: Path) -> None:
    kbpk = write(tmp_path / "kbpk.hex", VERSIONED_KBPK.hex())
    tmks = {version: bytes([int(version, 16) * 0x11]) * 8 + bytes(range(8)) for version in ("01", "02", "03")}

    def load(key_version: str) -> tuple[int, str, str]:
        block = versioned_block(key_version, tmks.get(key_version, bytes(range(16))))
        return run(["load-tmk", "--block", "-", "--kbpk-file", kbpk], data_dir, stdin=block)

    code, out, err = load("02")
    assert code == 0 and "key version 02: v1" in out, err
    for replayed, message in (("01", "not newer"), ("02", "not newer"), ("00", "no key version")):
        code, out, err = load(replayed)
        assert code == 1 and out == "" and message in err and err.count("\n") == 1
    store = open_key_store(KeyLayout.under(data_dir))
    assert store.get("TMK") == tmks["02"]
    assert (store.info("TMK").version, store.info("TMK").block_version) == (1, "02")
    code, out, err = load("03")
    assert code == 0 and "key version 03: v2" in out, err
    assert open_key_store(KeyLayout.under(data_dir)).get("TMK") == tmks["03"]


def test_key_component_is_not_loaded_as_the_tmk(data_dir: Path, tmp_path: Path) -> None:
    kbpk = write(tmp_path / "kbpk.hex", VERSIONED_KBPK.hex())
    block = versioned_block("c1", bytes(range(16)))
    code, out, err = run(["load-tmk", "--block", "-", "--kbpk-file", kbpk], data_dir, stdin=block)
    assert code == 1 and out == "" and "component" in err
    assert "TMK" not in open_key_store(KeyLayout.under(data_dir))


@pytest.mark.parametrize(
    ("block", "kbpk", "message"),
    [
        (K0_BLOCK, "11" * 8 + "22" * 8, "MAC does not verify"),
        (K0_BLOCK, "00" * 16, "KBPK is its first two halves are equal"),
        (P0_BLOCK, P0_KBPK, "not a terminal master key"),
        (K0_BLOCK, "XYZ", "as hex"),
        (K0_BLOCK, "00" * 10, "expected 16, 24 or 32"),
        ("A0072P0TE00E0000F5161ED902807AF26F1D62263644BD24192FDB3193C730301CEE8701", K0_KBPK, "not accepted"),
    ],
)
def test_load_tmk_errors_are_one_line(
    data_dir: Path, tmp_path: Path, block: str, kbpk: str, message: str
) -> None:
    args = ["load-tmk", "--block", write(tmp_path / "b", block), "--kbpk-file", write(tmp_path / "k", kbpk)]
    code, out, err = run(args, data_dir)
    assert code == 1 and out == ""
    assert err.startswith("pos-keys: error: ") and err.count("\n") == 1 and message in err
    assert "TMK" not in open_key_store(KeyLayout.under(data_dir))


def test_missing_block_file(data_dir: Path, tmp_path: Path) -> None:
    code, _, err = run(["load-tmk", "--block", str(tmp_path / "none"), "--kbpk-file", "x"], data_dir)
    assert code == 1 and err.count("\n") == 1


def test_not_provisioned_is_one_clear_line(tmp_path: Path) -> None:
    for command in (["list"], ["public-key"]):
        code, out, err = run(command, tmp_path / "empty")
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and "not provisioned" in err and "pos-keys provision" in err


def test_wrong_device_key_is_one_clear_line(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    code, _, _ = run(["--device-key", str(other), "public-key"], tmp_path / "elsewhere")
    assert code == 1
    assert run(["provision"], tmp_path / "second")[0] == 0
    code, _, err = run(["--device-key", str(tmp_path / "second" / "device.key"), "list"], data_dir)
    assert code == 1 and "another device key" in err and err.count("\n") == 1


def test_data_dir_and_device_key_from_the_environment(tmp_path: Path) -> None:
    env = {"POS_DATA_DIR": str(tmp_path / "env-data"), "POS_DEVICE_KEY": str(tmp_path / "secure" / "dk")}
    out, err = io.StringIO(), io.StringIO()
    assert main(["provision"], env=env, stdout=out, stderr=err) == 0, err.getvalue()
    assert (tmp_path / "secure" / "dk").exists()
    assert (tmp_path / "env-data" / "keys" / "keystore.json").exists()
    assert not (tmp_path / "env-data" / "device.key").exists()


def test_usage_error_is_one_line_exit_2(tmp_path: Path) -> None:
    for args in (["frobnicate"], ["load-tmk", "--block", "x"], []):
        code, _, err = run(args, tmp_path)
        assert code == 2 and err.count("\n") == 1 and err.startswith("pos-keys: usage error")


def test_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, POS_DATA_DIR=str(tmp_path / "nothing"))
    pos_keys = "import sys, firmware.__main__ as m; sys.exit(m.keys_main(sys.argv[1:]))"  # the console script
    result = subprocess.run(
        [sys.executable, "-c", pos_keys, "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# Runs `pos-keys provision` and loses power (os._exit, nothing cleaned up) just before the
# CUT-th call that makes something durable or moves a name: fsync, rename, replace, link, unlink.
POWER_CUT = ARM_POWER_CUT + """
import sys
arm_power_cut(int(sys.argv[1]))
from firmware.cli.keys import main
sys.exit(main(["--data-dir", sys.argv[2], "provision"]))
"""


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def test_power_cut_anywhere_in_provision_leaves_no_key_copy_and_can_be_completed(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    for cut_at in range(1, 40):
        data = tmp_path / f"cut{cut_at}" / "data"
        result = subprocess.run(
            [sys.executable, "-c", POWER_CUT, str(cut_at), str(data)],
            cwd=repo, capture_output=True, text=True, check=False, timeout=60,
        )
        if result.returncode == 0:
            break  # provision ran to the end before the cut came
        assert result.returncode == 137, result.stderr
        where = f"power cut before durable step {cut_at}"
        for path in files_under(data):  # a second link would survive deleting device.key
            assert path.stat().st_nlink == 1, f"{where}: {path.name} has {path.stat().st_nlink} links"
        code, out, err = run(["provision"], data)
        assert code == 0 or "already provisioned" in err, f"{where}: {err}"
        code, out, err = run(["public-key"], data)
        assert code == 0 and len(out.strip()) == 64, f"{where}: {err}"
        leftovers = [path.name for path in files_under(data) if path.name.endswith(".tmp")]
        assert not leftovers, f"{where}: {leftovers}"
        assert all(path.stat().st_nlink == 1 for path in files_under(data))
    else:
        pytest.fail("provision never ran to its end")
    assert cut_at > 3  # the cuts did land inside provision


def test_provision_completes_a_run_cut_after_the_device_key(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    assert run(["provision"], fresh)[0] == 0
    # the cut came before the signing key was stored: neither the key store nor its anti-rollback record
    (fresh / "keys" / "keystore.json").unlink()
    (fresh / "keys" / "monotonic.json").unlink()
    device_key = (fresh / "device.key").read_bytes()
    code, out, err = run(["provision"], fresh)
    assert (code, err) == (0, "") and "completed" in out
    assert (fresh / "device.key").read_bytes() == device_key
    store = open_key_store(KeyLayout.under(fresh))
    assert f"record signing public key: {open_record_signer(store).public_key_bytes().hex()}" in out
    code, _, err = run(["provision"], fresh)
    assert code == 1 and "already provisioned" in err and "refusing to overwrite" in err
