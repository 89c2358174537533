"""/api/v1/backups (ANON-19, SEC-51): administrators make, list and verify backups and dispose of expired
ones over the API; others get 403 naming the permission; bad targets get 422 naming the field."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from support import USER_PASSWORD, Instance, active_user, api_login, bearer


def test_backups_over_the_api_for_administrators_only_ANON_19_SEC_51(client: TestClient, inst: Instance,
                                                                      tmp_path: Path):
    admin = bearer(api_login(client, inst)["token"])
    secret = active_user(inst, inst.admin_principal(), "auditor.sato", ["auditor"])
    auditor = bearer(api_login(client, inst, "auditor.sato", USER_PASSWORD, secret)["token"])

    r = client.post("/api/v1/backups", json={"targets": [str(tmp_path / "a"), str(tmp_path / "b")],
                                             "importance": "low"}, headers=admin)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["status"] == "complete" and made["retention_days"] == 7 and len(made["targets"]) == 2
    assert all((Path(t) / "manifest.sig").exists() for t in made["targets"])

    r = client.post("/api/v1/backups", json={"targets": [str(tmp_path / "c")]}, headers=auditor)
    assert r.status_code == 403 and r.json()["error"]["details"]["permission"] == "system:backup:manage"
    r = client.post("/api/v1/backups", json={"targets": ["relative/dir"]}, headers=admin)
    assert r.status_code == 422 and "absolute" in r.json()["error"]["message"]
    r = client.post("/api/v1/backups", json={"targets": [str(inst.hogo.settings.data_dir / "bk")]}, headers=admin)
    assert r.status_code == 422 and "ANON-19" in r.text

    r = client.post(f"/api/v1/backups/{made['id']}/verify", json={"sample": 5}, headers=admin)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    listed = client.get("/api/v1/backups", headers=admin).json()
    assert [(b["id"], b["status"]) for b in listed] == [(made["id"], "verified")]
    assert client.get("/api/v1/backups", headers=auditor).status_code == 403
    assert client.post("/api/v1/backups/nope/verify", headers=admin).status_code == 404

    inst.clock.advance(days=8)
    admin = bearer(api_login(client, inst)["token"])
    r = client.post("/api/v1/backups/dispose-expired", headers=admin)
    assert r.status_code == 200 and [d["id"] for d in r.json()["disposed"]] == [made["id"]]
    assert not any(Path(t).exists() for t in made["targets"])
    assert client.get("/api/v1/backups", headers=admin).json()[0]["status"] == "disposed"


def test_the_log_pages_name_backup_events_in_japanese_ANON_19():
    from hogo.web.audit_routes import MESSAGES  # importing the audit pages adds the backup events' names

    assert MESSAGES["event.system:backup:created"][0] == "バックアップの作成"
    assert MESSAGES["event.system:backup:disposed"][1] == "Backup disposed of"
