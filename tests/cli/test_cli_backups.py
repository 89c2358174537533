"""``hogo backup`` against a real server, then locally (ANON-19, SEC-51, SEC-151(3)): the administrator
makes and verifies a backup through the server; a restore refuses while the server runs; stopped, the
restore brings the records back and the log verifies; a tampered backup exits 10 with the reason; the
key material is backed up on its own, sealed by a passphrase read from a file, never the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_data_support import FILE, ITO, MN1, P1, DataOrg, start_org
from cli_support import ADMIN, Cli

from hogo.services import runlock


@pytest.fixture
def org(cli: Cli, tmp_path: Path) -> Iterator[DataOrg]:
    o = start_org(cli, tmp_path)
    try:
        o.define_file()
        o.grant()
        o.login(ADMIN)
        yield o
    finally:
        o.server.stop()


def test_backup_verify_restore_through_the_cli_ANON_19_SEC_51(org: DataOrg, tmp_path: Path):
    cli = org.cli
    cli.json("record", "create", FILE, "--purpose", P1, "--set", "employee_no=E0001", "--set", "name=伊藤 翔",
                   "--set", f"my_number={MN1}", "--set", "department=KYUYO", as_=ITO)
    made = cli.json("backup", "create", "--out", str(tmp_path / "bk1"), "--out", str(tmp_path / "bk2"),
                    "--importance", "high")
    assert made["status"] == "complete" and made["retention_days"] == 90 and len(made["targets"]) == 2
    assert cli("backup", "create", "--out", str(tmp_path / "x"), as_=ITO).exit_code == 4  # administrators only
    listed = cli.json("backup", "list")
    assert [b["id"] for b in listed] == [made["id"]]
    checked = cli.json("backup", "verify", made["id"])
    assert checked["ok"] and checked["records"]["decrypted"] == 1
    assert cli.json("backup", "list")[0]["status"] == "verified"

    data_dir = org.server.data_dir
    assert runlock.running_server(data_dir)  # the server marks its data directory
    busy = cli.json("backup", "restore", "--from", made["targets"][0], "--data-dir", str(data_dir), "--yes",
                    expect=6)
    assert busy["error"]["code"] == "server_running"

    org.server.stop()
    assert not runlock.running_server(data_dir)
    unconfirmed = cli.json("backup", "restore", "--from", made["targets"][1], "--data-dir", str(data_dir), expect=7)
    assert unconfirmed["error"]["code"] == "confirmation_required"

    # Tampered: exit 10, the chunk named, nothing restored.
    bad = tmp_path / "bad"
    bad.mkdir()
    src = Path(made["targets"][0])
    for name in ("manifest.json", "manifest.sig"):
        (bad / name).write_bytes((src / name).read_bytes())
    data = bytearray((src / "data.enc").read_bytes())
    data[100] ^= 0xFF
    (bad / "data.enc").write_bytes(bytes(data))
    refused = cli.json("backup", "restore", "--from", str(bad), "--data-dir", str(data_dir), "--yes", expect=10)
    assert refused["error"]["code"] == "backup_tampered" and "chunk 1 of" in refused["error"]["message"]

    done = cli.json("backup", "restore", "--from", made["targets"][1], "--data-dir", str(data_dir), "--yes")
    assert done["backup_id"] == made["id"]
    verified = cli.json("audit", "verify", "--data-dir", str(data_dir))
    assert verified["ok"] is True
    local = cli.json("backup", "verify", "--from", made["targets"][0], "--data-dir", str(data_dir))
    assert local["ok"] and local["records"]["decrypted"] == 1


def test_key_material_backup_is_separate_and_sealed_by_a_passphrase_from_a_file_SEC_151(
        org: DataOrg, tmp_path: Path):
    cli = org.cli
    data_dir = org.server.data_dir
    secret = cli.write("backup-passphrase", "betsu-no-kagi-hokan-2026\n")
    made = cli.json("backup", "keys", "--out", str(tmp_path / "keys-bk"), "--data-dir", str(data_dir),
                    "--backup-passphrase-file", secret)
    assert made["kind"] == "keys" and made["retention_days"] == 7
    directory = Path(made["targets"][0])
    assert "betsu-no-kagi" not in "".join(p.read_bytes().decode("latin-1") for p in directory.iterdir())
    assert [b["id"] for b in cli.json("backup", "list")] == [made["id"]]
    org.server.stop()
    lost = tmp_path / "restored"
    lost.mkdir()
    (lost / "hogo.toml").write_text("", encoding="utf-8")
    got = cli.json("backup", "restore-keys", "--from", str(directory), "--data-dir", str(lost), "--yes",
                   "--backup-passphrase-file", secret)
    # Every file of the keys directory (the key store too, where there is one), whatever it holds.
    kept = {p.relative_to(data_dir / "keys").as_posix() for p in (data_dir / "keys").rglob("*")
            if p.is_file() and not p.name.endswith(("-journal", "-wal", "-shm"))}
    assert "master.key" in got["files"] and set(got["files"]) == kept and not got["signature_checked"]
    assert (lost / "keys" / "master.key").read_bytes() == (data_dir / "keys" / "master.key").read_bytes()
