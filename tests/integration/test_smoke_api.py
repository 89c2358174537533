"""Smoke: sign in through the API and ask who I am (MLIT-9.5.1, MN-6b)."""

from support import api_login, bearer


def test_admin_signs_in_with_password_and_totp_and_sees_itself(client, inst):
    data = api_login(client, inst)
    r = client.get("/api/v1/auth/whoami", headers=bearer(data["token"]))
    assert r.status_code == 200
    me = r.json()
    assert me["username"] == "admin"
    assert [x["role"] for x in me["roles"]] == ["admin"]
    assert me["mfa_verified"] is True
