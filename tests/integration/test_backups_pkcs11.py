"""Backups of an instance whose KEK is in an HSM (PKCS#11, SoftHSM2): the backup's content key is wrapped
by the token's non-extractable KEK, so the backup verifies and restores only where that token is
(ANON-19, SEC-151)."""

from __future__ import annotations

import json
from pathlib import Path

from test_pkcs11 import hsm_settings, token  # noqa: F401 - fixtures

from hogo.bootstrap import build
from hogo.clock import FakeClock
from hogo.config import Settings
from hogo.services import audit_access, backups, instance
from support import ADMIN, ADMIN_PASSWORD


def test_backup_content_key_is_wrapped_by_the_hsm_kek_ANON_19_SEC_151(hsm_settings: Settings,  # noqa: F811
                                                                       tmp_path: Path):
    settings = hsm_settings.with_(data_dir=tmp_path / "data")
    clock = FakeClock()
    instance.init_instance(settings, admin=ADMIN, admin_password=ADMIN_PASSWORD, clock=clock)
    hogo = build(settings, clock=clock)
    try:
        made = backups.create_backup(hogo, None, [tmp_path / "bk"])
        directory = Path(made["targets"][0])
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["content_key"]["provider"] == "pkcs11"
        assert manifest["content_key"]["kek_id"] == hogo.key_provider.kek_id
        assert backups.verify_backup(hogo, None, directory=directory)["ok"]
        hogo.close()
        backups.restore_backup(hogo, directory, confirm=True)
        assert audit_access.verify(hogo, None).ok
    finally:
        hogo.close()
