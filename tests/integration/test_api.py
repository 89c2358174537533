"""The REST API over HTTP: error contract, bad input, and the flows of MLIT-9.5.1 / SEC-128 / SEC-129 / SEC-19."""

from __future__ import annotations

import pytest

from support import api_login, bearer


@pytest.fixture
def admin_token(client, inst) -> str:
    token: str = api_login(client, inst)["token"]
    r = client.post("/api/v1/departments", json={"code": "JINJI", "name": "人事課"}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return token


def test_openapi_is_published_under_api_v1(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/auth/login" in paths and "/api/v1/users" in paths


def test_errors_have_a_stable_code_and_a_human_message(client):
    r = client.get("/api/v1/auth/whoami")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.get("/api/v1/auth/whoami", headers=bearer("hgs_forged"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
    r = client.get("/api/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_login_failure_answers_are_identical_for_unknown_user_and_wrong_password_SEC_128(client):
    a = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x-x-x-x-x-x"})
    b = client.post("/api/v1/auth/login", json={"username": "admin", "password": "x-x-x-x-x-x"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_password_right_but_totp_missing_asks_for_it(client, inst):
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": inst.admin_password})
    assert r.status_code == 401 and r.json()["error"]["code"] == "mfa_required"


def test_validation_errors_name_the_field_and_never_echo_values(client, inst):
    secret = "Hunter2-Very-Secret-Value"
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": secret, "remember": True})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_failed"
    assert err["details"]["problems"] == [{"field": "remember", "reason": "unknown field"}]
    assert secret not in r.text
    r = client.post("/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]["message"]
    r = client.post("/api/v1/auth/login", json={"username": "admin"})
    assert r.status_code == 422 and r.json()["error"]["details"]["problems"][0]["field"] == "password"


def test_oversized_bodies_are_refused_before_reading(client, admin_token):
    r = client.post("/api/v1/users", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                    headers={**bearer(admin_token), "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "tanaka", "department": "JINJI", "roles": ["clerk"], "valid_until": "2027-02-30"},
         "valid_until"),
        ({"username": "tanaka", "department": "JINJI", "roles": ["clerk"], "valid_until": "next week"},
         "valid_until"),
        ({"username": "ｔａｎａｋａ", "department": "JINJI", "roles": ["clerk"]}, "username"),
        ({"username": "tanaka", "department": "JINJI", "roles": ["chief"]}, "roles"),
        ({"username": "tanaka", "department": "JINJI", "roles": []}, "roles"),
        ({"username": "tanaka", "department": "JINJI", "roles": ["clerk"], "salary": 1}, "salary"),
    ],
)
def test_bad_user_input_gets_a_clear_error_and_nothing_is_written(client, admin_token, body, field):
    r = client.post("/api/v1/users", json=body, headers=bearer(admin_token))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    fields = {p["field"] for p in err["details"].get("problems", [])} | {err["details"].get("field")}
    assert any(f and f.startswith(field) for f in fields), err
    users = client.get("/api/v1/users", headers=bearer(admin_token)).json()
    assert [u["username"] for u in users] == ["admin"]


def test_full_width_dates_are_read_as_meant(client, admin_token):
    r = client.post("/api/v1/users", headers=bearer(admin_token), json={
        "username": "tanaka", "department": "JINJI", "roles": ["clerk"], "valid_until": "２０２７－０３－３１"})
    assert r.status_code == 201, r.text
    # Through the end of 31 March in Tokyo.
    assert r.json()["user"]["valid_until"].startswith("2027-03-31T15:00:00")


def test_create_user_returns_one_time_password_once_and_new_user_is_held_to_first_steps(client, inst, admin_token):
    r = client.post("/api/v1/users", headers=bearer(admin_token),
                    json={"username": "tanaka", "display_name": "田中 花子", "department": "JINJI", "roles": ["clerk"]})
    assert r.status_code == 201
    otp = r.json()["one_time_password"]
    assert otp not in client.get("/api/v1/users/tanaka", headers=bearer(admin_token)).text
    login = client.post("/api/v1/auth/login", json={"username": "tanaka", "password": otp}).json()
    assert login["pending_steps"] == ["change_password", "enroll_mfa"]
    t = login["token"]
    r = client.get("/api/v1/departments", headers=bearer(t))
    assert r.status_code == 403 and r.json()["error"]["code"] == "step_required"
    assert client.get("/api/v1/auth/whoami", headers=bearer(t)).status_code == 200
    r = client.post("/api/v1/auth/password", headers=bearer(t),
                    json={"old_password": otp, "new_password": "password1234"})
    assert r.status_code == 422 and "commonly used" in r.json()["error"]["message"]
    r = client.post("/api/v1/auth/password", headers=bearer(t),
                    json={"old_password": otp, "new_password": "Sakura-Kumo-Umi-47"})
    assert r.status_code == 204
    enrol = client.post("/api/v1/auth/mfa/enroll", headers=bearer(t)).json()
    r = client.post("/api/v1/auth/mfa/confirm", headers=bearer(t), json={"code": inst.code(enrol["secret"])})
    assert r.status_code == 200 and len(r.json()["recovery_codes"]) == 10
    assert client.get("/api/v1/departments", headers=bearer(t)).status_code == 200


def test_admin_self_grant_is_refused_with_the_rule_named_SEC_19(client, admin_token):
    r = client.post("/api/v1/users/admin/roles", json={"role": "auditor"}, headers=bearer(admin_token))
    assert r.status_code == 403
    assert r.json()["error"] == {
        "code": "self_approval_forbidden",
        "message": "you cannot grant a role to your own account; another administrator must do it",
        "requirement": "SEC-19",
    }


def test_disable_takes_effect_on_the_users_live_token_SEC_129(client, inst, admin_token):
    created = client.post("/api/v1/users", headers=bearer(admin_token),
                          json={"username": "tanaka", "department": "JINJI", "roles": ["clerk"]})
    otp = created.json()["one_time_password"]
    t = client.post("/api/v1/auth/login", json={"username": "tanaka", "password": otp}).json()["token"]
    assert client.get("/api/v1/auth/whoami", headers=bearer(t)).status_code == 200
    r = client.post("/api/v1/users/tanaka/disable", json={"reason": "退職"}, headers=bearer(admin_token))
    assert r.status_code == 200 and r.json()["state"] == "disabled"
    assert client.get("/api/v1/auth/whoami", headers=bearer(t)).status_code == 401


def test_api_token_lifecycle(client, admin_token):
    r = client.post("/api/v1/tokens", headers=bearer(admin_token),
                    json={"name": "人事連携", "scopes": ["account:user:read"], "expires_at": "2026-05-01"})
    assert r.status_code == 201, r.text
    tok = r.json()
    assert client.get("/api/v1/users", headers=bearer(tok["token"])).status_code == 200
    r = client.post("/api/v1/departments", json={"code": "X", "name": "x"}, headers=bearer(tok["token"]))
    assert r.status_code == 403
    listed = client.get("/api/v1/tokens", headers=bearer(admin_token)).json()
    assert listed[0]["id"] == tok["id"] and "token" not in listed[0] and tok["token"] not in str(listed)
    assert client.delete(f"/api/v1/tokens/{tok['id']}", headers=bearer(admin_token)).status_code == 204
    assert client.get("/api/v1/users", headers=bearer(tok["token"])).status_code == 401


def test_logout_revokes(client, admin_token):
    assert client.post("/api/v1/auth/logout", headers=bearer(admin_token)).status_code == 204
    assert client.get("/api/v1/auth/whoami", headers=bearer(admin_token)).status_code == 401


def test_security_headers_and_no_store(client):
    r = client.get("/api/v1/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_sign_ins_are_listed_for_the_user(client, inst, admin_token):
    client.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong-wrong-wrong"})
    rows = client.get("/api/v1/auth/sign-ins", headers=bearer(admin_token)).json()
    assert [r["outcome"] for r in rows[:2]] == ["failure", "success"]


def test_no_request_telemetry_leaves_hogo_even_when_the_environment_asks_for_it(inst, monkeypatch):
    """Paths name files and records: FastAPI's own OpenTelemetry must not export spans or metrics of
    hogo's requests, whatever the environment configures (data flows out only where approved, SEC-46)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from hogo.api.app import create_app

    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    app = create_app(inst.hogo)
    native = getattr(app, "_native_telemetry", None)
    if native is None:  # a FastAPI without native telemetry has nothing to turn off
        assert not hasattr(FastAPI(), "_native_telemetry")
        return
    from opentelemetry import trace

    asked: list[str] = []

    class Recording(trace.NoOpTracerProvider):
        def get_tracer(self, name, *args, **kwargs):  # type: ignore[no-untyped-def]
            asked.append(name)
            return super().get_tracer(name, *args, **kwargs)

    monkeypatch.setattr(trace, "get_tracer_provider", lambda: Recording())
    assert FastAPI()._native_telemetry.enabled(), "the check below must be able to fail"
    assert not native.enabled()
    with TestClient(app, base_url="https://127.0.0.1") as c:
        assert c.get("/api/v1/health").status_code == 200
    assert asked == []


def test_a_server_freezes_what_startup_built_and_a_test_app_does_not(inst):
    """``gc.freeze`` once started (servers: ``hogo serve`` and the uvicorn factory), so that full garbage
    collections stop walking the app's long-lived objects during requests; apps made for tests (many per
    process) leave the collector alone."""
    import gc

    from fastapi.testclient import TestClient

    from hogo.api.app import create_app

    assert gc.get_freeze_count() == 0
    with TestClient(create_app(inst.hogo), base_url="https://127.0.0.1") as c:
        assert c.get("/api/v1/health").status_code == 200
        assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(inst.hogo, freeze_heap=True), base_url="https://127.0.0.1") as c:
            assert c.get("/api/v1/health").status_code == 200
            assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
