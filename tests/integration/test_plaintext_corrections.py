"""No plaintext of a correction's values at rest or in the logs (ANON-8, ANON-18, MN-3b): requested,
approved and applied, rejected, and still pending corrections leave the values only sealed (the request's
payload, the kept previous version, the record). The scan and the organisation are those of
``test_plaintext_at_rest`` (a real server; every byte of the data directory, its temporary files and the
server's log searched for every value in every encoding), on a few records."""

from __future__ import annotations

import urllib.parse
import uuid
from pathlib import Path

import httpx
from test_plaintext_at_rest import CLERK, FILE, P1, Scanner, csv_bytes, org_server, pg_data_dir, row  # noqa: F401

from live import LiveOrg, LiveServer, sign_in_api

PM = "pm.takahashi"


def test_correction_values_are_never_plaintext_at_rest_or_in_logs_ANON_8_ANON_18(
        org_server: tuple[LiveOrg, LiveServer, Path], database_url: str):  # noqa: F811 (the imported fixture)
    org, server, server_tmp = org_server
    prefix = f"CORR{uuid.uuid4().hex[:8].upper()}-"
    rows = [row(i, prefix) for i in range(6)]
    clerk = sign_in_api(server.url, CLERK, org.password, org.secrets[CLERK])
    pm = sign_in_api(server.url, PM, org.password, org.secrets[PM])
    api = f"{server.url}/api/v1"
    ch = {"Authorization": f"Bearer {clerk}", "X-Hogo-Purpose": urllib.parse.quote(P1)}
    ph = {"Authorization": f"Bearer {pm}"}
    with httpx.Client(timeout=60) as c:
        r = c.post(f"{api}/files/{FILE}/records/import", content=csv_bytes(rows[:3]),
                   headers={**ch, "Content-Type": "text/csv"})
        assert r.status_code == 200 and r.json()["imported"] == 3, r.text
        ids = []
        for target, source in ((0, 3), (1, 4), (2, 5)):
            new = {k: rows[source][k] for k in ("name", "name_kana", "my_number", "address", "phone", "birth_date")}
            r = c.post(f"{api}/files/{FILE}/records/{rows[target]['record_id']}/corrections", headers=ch,
                       json={"values": new, "reason": "本人からの申出"})
            assert r.status_code == 201, r.text
            assert not any(v in r.text for v in new.values())
            ids.append(r.json()["id"])
        r = c.post(f"{api}/approvals/{ids[0]}/approve", headers=ph, json={"reason": "確認済み"})
        assert r.status_code == 200 and r.json()["status"] == "applied", r.text
        r = c.post(f"{api}/approvals/{ids[1]}/reject", headers=ph, json={"reason": "根拠なし"})
        assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
        # ids[2] stays pending: its values are sealed in the request.
        r = c.get(f"{api}/files/{FILE}/records/{rows[0]['record_id']}", headers=ch)
        assert r.json()["values"]["name"] == rows[3]["name"]

    scanner = Scanner(rows)
    roots = [org.data_dir, server_tmp]
    if org.database_url is None:  # the scan reads the database: the record IDs (clear by design) are found
        assert any(prefix.encode() in p.read_bytes() for p in org.data_dir.glob("hogo.db*"))
    findings = scanner.scan(roots)[0] + scanner.scan(pg_data_dir(database_url))[0]
    assert not findings, "plaintext at rest:\n" + "\n".join(findings[:40])
    assert not list(scanner.find(server.log_path.read_bytes()))
    server.stop()
    findings = scanner.scan(roots)[0]
    assert not findings, "plaintext at rest after the server stopped:\n" + "\n".join(findings[:40])
