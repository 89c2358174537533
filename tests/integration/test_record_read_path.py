"""The API's record read (one thread hop, one read transaction, lookups on the driver's cursor, the answer
made once): the same answer and the same guarantees as before — every request authenticated as of now
(SEC-131, ANON-21), every access decided on the grants as of now and recorded, refusals too (MN-3b,
SEC-107(2)), the purpose declared (SEC-45), My Numbers masked (MN-6a)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import bindparam, select

from hogo.api.data_routes import RecordOut
from hogo.crypto import token_digest
from hogo.domain.events import Event
from hogo.services import accounts, auth, grants, guard
from hogo.store.fastsql import FastSelect
from hogo.store.models import AuditEvent
from support import CTX, Instance, Org, bearer, make_org, payroll_over_api
from support import my_number as mn

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
SPEC = Path(__file__).resolve().parents[1] / "data" / "payroll-spec.yaml"


def purpose(p: str = P1) -> dict[str, str]:
    return {"X-Hogo-Purpose": quote(p)}


@pytest.fixture
def org(inst: Instance) -> Org:
    return make_org(inst, define_file=False)


@pytest.fixture
def ready(client, org: Org) -> dict[str, str]:
    return payroll_over_api(client, org, actions=["read", "create"], record=True)


def access_events(org: Org, event: Event = Event.RECORD_READ) -> list[AuditEvent]:
    with org.inst.hogo.unit_of_work() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == event.value)
                               .order_by(AuditEvent.seq)))


def test_the_answer_is_the_bytes_of_a_record_out_MN_6a(client, ready, org: Org):
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers={**bearer(ready["ito"]), **purpose()})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    view = guard.read_record(org.inst.hogo, org.p("clerk.ito"), FILE, "E1", purpose=P1, ctx=CTX)
    assert r.content == RecordOut.model_validate(view).model_dump_json().encode()
    body = r.json()
    assert body["masked"] == ["my_number"] and body["values"]["my_number"] == "********" + mn(7)[-4:]
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"


def test_a_revoked_session_is_refused_at_once_SEC_131_ANON_21(client, ready):
    h = {**bearer(ready["ito"]), **purpose()}
    assert client.get(f"/api/v1/files/{FILE}/records/E1", headers=h).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer(ready["ito"])).status_code == 204
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers=h)
    assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"


def test_a_disabled_account_is_refused_at_once_SEC_129(client, ready, org: Org):
    h = {**bearer(ready["ito"]), **purpose()}
    assert client.get(f"/api/v1/files/{FILE}/records/E1", headers=h).status_code == 200
    accounts.disable_user(org.inst.hogo, org.admin, "clerk.ito", reason="left", ctx=CTX)
    assert client.get(f"/api/v1/files/{FILE}/records/E1", headers=h).status_code == 401


def test_the_idle_timeout_applies_to_record_reads_ANON_21(client, ready, org: Org):
    h = {**bearer(ready["ito"]), **purpose()}
    org.inst.clock.advance(seconds=org.inst.hogo.settings.session_idle_timeout_s + 1)
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers=h)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "idle_timeout"


def test_a_revoked_grant_denies_the_next_read_and_the_refusal_is_recorded_SEC_131_MN_3b(client, ready, org: Org):
    h = {**bearer(ready["ito"]), **purpose()}
    assert client.get(f"/api/v1/files/{FILE}/records/E1", headers=h).status_code == 200
    grants.revoke_grant(org.inst.hogo, org.p("pm.takahashi"), ready["grant"], ctx=CTX)
    r = client.get(f"/api/v1/files/{FILE}/records/E1", headers=h)
    assert r.status_code == 403 and r.json()["error"]["code"] == "denied_no_grant"
    outcomes = [(e.outcome, e.reason) for e in access_events(org)]
    assert outcomes[-2:] == [("success", None), ("denied", "no_grant")]


def test_unauthenticated_and_undeclared_purpose_answers_are_unchanged_SEC_45(client, ready):
    path = f"/api/v1/files/{FILE}/records/E1"
    r = client.get(path, headers=purpose())
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    assert r.headers["www-authenticate"] == 'Bearer realm="hogo"'
    r = client.get(path, headers={**bearer("hgs_not-a-session"), **purpose()})
    assert r.status_code == 401
    r = client.get(path, headers=bearer(ready["ito"]))
    assert r.status_code == 422 and r.json()["error"]["requirement"] == "SEC-45"
    r = client.get(f"/api/v1/files/{FILE}/records/NOPE", headers={**bearer(ready["ito"]), **purpose()})
    assert r.status_code == 404 and r.json()["error"]["code"] == "record_not_found"
    r = client.get("/api/v1/files/no-such-file/records/E1", headers={**bearer(ready["ito"]), **purpose()})
    assert r.status_code == 404 and r.json()["error"]["code"] == "file_not_found"


def test_fast_selects_return_what_sqlalchemy_returns(ready, org: Org):
    """store/fastsql.py: the same values (aware datetimes, parsed JSON, bytes) as Connection.execute."""
    hogo = org.inst.hogo
    cases = [
        (auth._SESSION_BY_DIGEST, {"digest": token_digest(ready["ito"])}),
        (guard._FILE_REF, {"code": FILE}),
        (guard._FILE_REF, {"code": "nothing"}),
    ]
    with hogo.reading() as conn:
        file_id = conn.execute(guard._FILE_REF, {"code": FILE}).one().id
        cases.append((guard._RECORD_FOR_READ, {"file_id": file_id, "record_id": "E1"}))
        user_id = conn.execute(auth._SESSION_BY_DIGEST, {"digest": token_digest(ready["ito"])}).one().user_id
        for stmt, params in cases:
            want = conn.execute(stmt, params).one_or_none()
            got = FastSelect(stmt).one_or_none(conn, params)
            assert (None if want is None else tuple(want)) == (None if got is None else tuple(got))
            if got is not None:
                assert got._fields == tuple(want._fields)
        want_roles = [tuple(r) for r in conn.execute(auth._ROLES_OF_USER, {"user_id": user_id}).all()]
        assert want_roles and [tuple(r) for r in FastSelect(auth._ROLES_OF_USER).all(conn, {"user_id": user_id})
                               ] == want_roles


def test_candidate_grants_are_the_users_and_their_roles_live_grants_SEC_131(ready, org: Org):
    """grants.candidate_grants (a statement per number of roles, on the driver's cursor) finds what the
    expanding-IN statement finds: the user's own grants and their roles', never a revoked one."""
    from sqlalchemy import bindparam

    from hogo.store.models import FileGrant

    hogo = org.inst.hogo
    pm = org.p("pm.takahashi")
    grants.create_grant(hogo, pm, FILE, role="clerk@KYUYO", actions=["read"], purposes=[P1], ctx=CTX)
    gone = grants.create_grant(hogo, pm, FILE, role="clerk@KYUYO", actions=["create"], purposes=[P1], ctx=CTX)
    grants.revoke_grant(hogo, pm, gone.id, ctx=CTX)
    reference = grants._LIVE_GRANTS.where((FileGrant.user_id == bindparam("user_id"))
                                          | FileGrant.role.in_(bindparam("roles", expanding=True)))
    with hogo.reading() as conn:
        file_id = conn.execute(guard._FILE_REF, {"code": FILE}).one().id
        for who in ("clerk.ito", "clerk.tanaka", "pm.takahashi", "auditor.watanabe"):
            p = org.p(who)
            roles = sorted({g.role.value for g in p.roles})
            want = conn.execute(reference, {"file_id": file_id, "user_id": p.user_id, "roles": roles}).all()
            got = grants.candidate_grants(conn, file_id, p)
            assert sorted(g.id for g in got) == sorted(r.id for r in want)
            assert gone.id not in {g.id for g in got}
        assert len(grants.candidate_grants(conn, file_id, org.p("clerk.ito"))) == 2  # own + clerk@KYUYO


def test_parameter_limits_answer_as_before_after_authentication_SEC_45(client, ready):
    """The read's parameters are checked by hand (data_routes._read_params): the same limits and 422
    problems as when FastAPI checked them, in its order, and a request that does not authenticate is
    still answered 401 first; the OpenAPI document still lists them."""
    path = f"/api/v1/files/{FILE}/records/E1"
    many = [("reveal", "my_number")] * 21
    r = client.get(path, params=many, headers={**bearer(ready["ito"]), **purpose()})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "reveal: List should have at most 20 items after validation, not 21"
    r = client.get(path, params={"purpose": "x" * 201}, headers=bearer(ready["ito"]))
    assert r.json()["error"]["message"] == "purpose: String should have at most 200 characters"
    r = client.get(path, params=[("purpose", "x" * 201), *many],
                   headers={**bearer(ready["ito"]), "X-Hogo-Purpose": "y" * 2401})
    assert r.status_code == 422 and [p["field"] for p in r.json()["error"]["details"]["problems"]] == [
        "purpose", "reveal", "header.X-Hogo-Purpose"]
    assert r.json()["error"]["details"]["problems"][2]["reason"] == "String should have at most 2400 characters"
    r = client.get(path, params=many, headers={**bearer("hgs_not-a-session"), **purpose()})
    assert r.status_code == 401
    r = client.get(path, params=many, headers=purpose())
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    # Within the limits: the last ``purpose`` wins; the header is preferred to the query.
    r = client.get(path, params=[("purpose", "営業活動"), ("purpose", P1)], headers=bearer(ready["ito"]))
    assert r.status_code == 200, r.text
    r = client.get(path, params={"purpose": "営業活動"}, headers={**bearer(ready["ito"]), **purpose()})
    assert r.status_code == 200, r.text
    params = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/files/{code}/records/{record_id}"][
        "get"]["parameters"]
    assert [(p["name"], p["in"]) for p in params] == [("code", "path"), ("record_id", "path"), ("purpose", "query"),
                                                      ("reveal", "query"), ("X-Hogo-Purpose", "header")]
    assert params[2]["schema"]["anyOf"][0]["maxLength"] == 200 and params[3]["schema"]["anyOf"][0]["maxItems"] == 20


def test_a_fresh_process_reads_with_nothing_cached_MN_6a(client, ready, org: Org):
    """The read's transaction is a bare connection: the file's spec and keys, when this process has not
    loaded them yet, are read in it (an ORM session bound to it; the key store), and the answer is the same."""
    h = {**bearer(ready["ito"]), **purpose()}
    first = client.get(f"/api/v1/files/{FILE}/records/E1", headers=h)
    assert first.status_code == 200
    org.inst.hogo.spec_cache.clear()
    org.inst.hogo.file_keys.clear()
    again = client.get(f"/api/v1/files/{FILE}/records/E1", headers=h)
    assert again.status_code == 200 and again.content == first.content
    assert org.inst.hogo.spec_cache and org.inst.hogo.file_keys


def test_a_failing_fast_select_raises_sqlalchemys_error_without_parameters(org: Org):
    """A database error on the driver's cursor is reported as Connection.execute reports it (a DBAPIError),
    and, as the engine's ``hide_parameters``, without the statement's parameters."""
    from sqlalchemy import column, literal_column, table
    from sqlalchemy.exc import DBAPIError

    stmt = select(literal_column("1").label("one")).select_from(table("no_such_table")).where(
        column("digest") == bindparam("digest"))
    with pytest.raises(DBAPIError) as e, org.inst.hogo.reading() as conn:
        FastSelect(stmt).all(conn, {"digest": "secret-digest-value"})
    assert "secret-digest-value" not in str(e.value)
