"""The authorization cache of the API's record read (store/authz_cache.py), on SQLite and PostgreSQL.

Lookups that authenticate a request and decide an access are reused between requests only while the
database's ``authz_epoch`` is unchanged, and database triggers change it in every transaction that
changes what those lookups read, whoever writes. So a revoked grant, a removed role, a disabled account
or a revoked session or token takes effect on the next request (SEC-131, SEC-129, ANON-21), also when
the change is made past hogo, directly in the database; and every access, refused ones too, is still
decided and recorded (MN-3b, SEC-107(2)).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Connection, Engine, select, text

from hogo.domain.events import Event
from hogo.services import accounts, auth, grants, guard
from hogo.store import db
from hogo.store.models import ApiToken, AuditEvent, AuthSession, Base
from support import CTX, Instance, Org, bearer, make_org, payroll_over_api

FILE = "payroll-mynumber"
P1 = "源泉徴収票作成事務"
PATH = f"/api/v1/files/{FILE}/records/E1"

# The columns whose change does not change the epoch: written at every sign-in or request, and read by
# no decision (a session's and a token's last activity are checked against the stored row before use).
NOT_WATCHED = {
    "users": {"failed_attempts", "lockout_count", "locked_until", "mfa_last_step", "last_login_at"},
    "auth_sessions": {"last_seen_at"},
    "api_tokens": {"last_used_at"},
    "grants": {"last_used_at"},
}
WATCHED_TABLES = ("departments", "users", "user_roles", "auth_sessions", "api_tokens", "personal_data_files",
                  "grants")


def purpose() -> dict[str, str]:
    return {"X-Hogo-Purpose": quote(P1)}


@pytest.fixture
def org(inst: Instance) -> Org:
    return make_org(inst, define_file=False)


@pytest.fixture
def ready(client, org: Org) -> dict[str, str]:
    return payroll_over_api(client, org, actions=["read", "create"], record=True)


@pytest.fixture
def outsider(org: Org) -> Iterator[Engine]:
    """A second engine on the same database: somebody writing past this hogo (another server, a script,
    a database administrator)."""
    eng = db.make_engine(org.inst.hogo.settings.database_url)
    try:
        yield eng
    finally:
        eng.dispose()


def epoch(conn: Connection) -> int:
    return int(conn.execute(text("SELECT value FROM authz_epoch WHERE id = 1")).scalar_one())


def read(client, token: str) -> Any:
    return client.get(PATH, headers={**bearer(token), **purpose()})


def outcomes(org: Org) -> list[tuple[str, str | None]]:
    with org.inst.hogo.unit_of_work() as s:
        return [(e.outcome, e.reason) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.event.in_([Event.RECORD_READ.value])).order_by(AuditEvent.seq))]


class Lookups:
    """Counts the lookups the cache saves: credentials (with their accounts), files and grants."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.grants = self.files = self.credentials = 0
        real_grants, real_file, real_account = guard.candidate_grants, guard._file_ref, auth._account_from_row

        def grants_(*a: Any) -> Any:
            self.grants += 1
            return real_grants(*a)

        def file_(*a: Any) -> Any:
            self.files += 1
            return real_file(*a)

        def account_(*a: Any) -> Any:
            self.credentials += 1
            return real_account(*a)

        monkeypatch.setattr(guard, "candidate_grants", grants_)
        monkeypatch.setattr(guard, "_file_ref", file_)
        monkeypatch.setattr(auth, "_account_from_row", account_)

    def total(self) -> tuple[int, int, int]:
        return self.credentials, self.files, self.grants


def test_a_repeated_read_looks_nothing_up_again_until_something_changes_SEC_131(client, ready, org: Org,
                                                                               monkeypatch):
    """The cache is used (the second read looks up no credential, file or grant) and is dropped by the
    next change of any of them — here a grant to somebody else, on another file's worth of nothing."""
    pm = org.p("pm.takahashi")  # signing in moves the test clock: the next read notes the session's activity
    seen = Lookups(monkeypatch)
    assert read(client, ready["ito"]).status_code == 200
    # From the cache the session is due to note its activity: the read is decided again, uncached.
    assert seen.total() == (2, 1, 1)
    assert read(client, ready["ito"]).status_code == 200
    assert seen.total() == (3, 2, 2)  # the cache filled
    for _ in range(3):
        assert read(client, ready["ito"]).status_code == 200
    assert seen.total() == (3, 2, 2), "a repeated read looked things up again"
    grants.create_grant(org.inst.hogo, pm, FILE, user="clerk.tanaka", actions=["read"], purposes=[P1], ctx=CTX)
    assert read(client, ready["ito"]).status_code == 200
    assert seen.total() == (4, 3, 3)
    assert outcomes(org) == [("success", None)] * 6


def test_a_grant_revoked_past_hogo_denies_the_next_read_and_is_recorded_SEC_131_MN_3b(client, ready, org: Org,
                                                                                      outsider: Engine):
    assert read(client, ready["ito"]).status_code == 200
    with outsider.begin() as conn:
        conn.execute(text("UPDATE grants SET revoked_at = :now WHERE id = :id"),
                     {"now": org.inst.clock.now().isoformat(), "id": ready["grant"]})
    r = read(client, ready["ito"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "denied_no_grant"
    assert outcomes(org)[-2:] == [("success", None), ("denied", "no_grant")]


def test_a_role_removed_takes_its_role_grants_with_it_SEC_131(client, ready, org: Org, outsider: Engine):
    hogo, pm = org.inst.hogo, org.p("pm.takahashi")
    grants.create_grant(hogo, pm, FILE, role="clerk", actions=["read"], purposes=[P1], ctx=CTX)
    tanaka = org.token("clerk.tanaka")
    assert read(client, tanaka).status_code == 200  # a clerk of any department, by the role grant
    assert read(client, tanaka).status_code == 200
    with outsider.begin() as conn:
        conn.execute(text("DELETE FROM user_roles WHERE user_id = (SELECT id FROM users WHERE username = :u)"),
                     {"u": "clerk.tanaka"})
    r = read(client, tanaka)
    assert r.status_code == 403 and r.json()["error"]["code"] == "denied_no_grant"


def test_a_grant_narrowed_past_hogo_applies_at_once_SEC_131(client, ready, org: Org, outsider: Engine):
    """A changed purpose list: the read's declared purpose is no longer covered."""
    assert read(client, ready["ito"]).status_code == 200
    with outsider.begin() as conn:
        conn.execute(text("UPDATE grants SET purposes = :p WHERE id = :id"),
                     {"p": '["年末調整事務"]', "id": ready["grant"]})
    r = read(client, ready["ito"])
    assert r.status_code == 403 and r.json()["error"]["code"].startswith("denied_")


def test_an_account_disabled_or_a_session_revoked_past_hogo_is_refused_at_once_SEC_129_ANON_21(
        client, ready, org: Org, outsider: Engine):
    assert read(client, ready["ito"]).status_code == 200
    with outsider.begin() as conn:
        conn.execute(text("UPDATE auth_sessions SET revoked_at = :now, revoked_reason = 'admin' "
                          "WHERE user_id = (SELECT id FROM users WHERE username = 'clerk.ito')"),
                     {"now": org.inst.clock.now().isoformat()})
    assert read(client, ready["ito"]).status_code == 401
    again = org.token("clerk.ito")
    assert read(client, again).status_code == 200
    with outsider.begin() as conn:
        conn.execute(text("UPDATE users SET disabled_at = :now WHERE username = 'clerk.ito'"),
                     {"now": org.inst.clock.now().isoformat()})
    r = read(client, again)
    assert r.status_code == 401


def test_activity_is_noted_and_the_idle_timeout_holds_while_reads_come_from_the_cache_ANON_21(
        client, ready, org: Org):
    """The last-activity column is not watched (it changes on every request): a session read from the
    cache whose activity is due to be noted is authenticated again on its stored row, which is then
    written — so the idle timeout counts from the last request, not from the first."""
    hogo, clock = org.inst.hogo, org.inst.clock
    idle = hogo.settings.session_idle_timeout_s
    assert read(client, ready["ito"]).status_code == 200
    for _ in range(3):  # each step within the idle timeout, together past it
        clock.advance(seconds=idle * 0.6)
        assert read(client, ready["ito"]).status_code == 200
        assert read(client, ready["ito"]).status_code == 200
    with hogo.unit_of_work() as s:
        seen = s.scalar(select(AuthSession.last_seen_at).where(AuthSession.revoked_at.is_(None))
                        .order_by(AuthSession.last_seen_at.desc()).limit(1))
    assert seen == clock.now()
    clock.advance(seconds=idle + 1)
    r = read(client, ready["ito"])
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "idle_timeout"


def test_an_api_token_revoked_is_refused_at_once_and_its_use_is_noted_SEC_129(client, ready, org: Org):
    hogo, clock = org.inst.hogo, org.inst.clock
    session = org.p("clerk.ito")
    made = auth.create_api_token(hogo, session, name="batch", scopes=["data:record:read"],
                                 expires_at=clock.now() + dt.timedelta(days=7), ctx=CTX)
    assert read(client, made.token).status_code == 200
    clock.advance(seconds=auth.LAST_SEEN_GRANULARITY_S + 1)
    assert read(client, made.token).status_code == 200
    with hogo.unit_of_work() as s:
        assert s.scalar(select(ApiToken.last_used_at).where(ApiToken.id == made.id)) == clock.now()
    auth.revoke_api_token(hogo, session, made.id, CTX)
    r = read(client, made.token)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"


def test_every_column_a_decision_reads_is_watched_and_sign_ins_are_not_SEC_131(ready, org: Org,
                                                                             outsider: Engine):
    """Per table of the cached lookups: an UPDATE of any column (as the models have them now, so that a
    column added later without its trigger fails here) changes the epoch, except the few written on
    every sign-in or request; INSERT and DELETE change it (a new session or token excepted)."""
    hogo = org.inst.hogo
    auth.create_api_token(hogo, org.p("clerk.ito"), name="cols", scopes=["data:record:read"],
                          expires_at=org.inst.clock.now() + dt.timedelta(days=1), ctx=CTX)
    unwatched_seen: dict[str, set[str]] = {}
    with outsider.connect() as conn:
        for table in WATCHED_TABLES:
            with conn.begin():  # rows to fire SQLite's (row) triggers
                assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() > 0, table
            for column in Base.metadata.tables[table].columns:
                with conn.begin():
                    before = epoch(conn)
                    conn.execute(text(f"UPDATE {table} SET {column.name} = {column.name}"))
                    changed = epoch(conn) != before
                if not changed:
                    unwatched_seen.setdefault(table, set()).add(column.name)
        assert unwatched_seen == NOT_WATCHED
        with conn.begin():
            before = epoch(conn)
            conn.execute(text("DELETE FROM user_roles WHERE role = 'auditor'"))
            assert epoch(conn) != before
    # A sign-in (a new session; the user's sign-in columns) and a grant's use leave the cache alone.
    with outsider.connect() as conn, conn.begin():
        before = epoch(conn)
    org.token("clerk.tanaka")
    with outsider.connect() as conn, conn.begin():
        assert epoch(conn) == before
    # … and a new grant does.
    grants.create_grant(hogo, org.p("pm.takahashi"), FILE, user="clerk.tanaka", actions=["read"], purposes=[P1],
                        ctx=CTX)
    with outsider.connect() as conn, conn.begin():
        assert epoch(conn) != before


def test_refusals_and_unknown_records_from_the_cache_are_recorded_as_before_MN_3b(client, ready, org: Org):
    """The cached path writes nothing itself: a refusal is recorded in a worker thread, a read of a
    missing record is recorded with the others."""
    tanaka = org.token("clerk.tanaka")
    assert read(client, tanaka).status_code == 403
    assert read(client, tanaka).status_code == 403
    r = client.get(f"/api/v1/files/{FILE}/records/NOPE", headers={**bearer(ready["ito"]), **purpose()})
    assert r.status_code == 404
    with org.inst.hogo.unit_of_work() as s:
        rows = s.execute(select(AuditEvent.actor_name, AuditEvent.outcome, AuditEvent.reason)
                         .where(AuditEvent.event == Event.RECORD_READ.value).order_by(AuditEvent.seq)).all()
    assert [tuple(r) for r in rows] == [("clerk.tanaka", "denied", "no_grant"),
                                       ("clerk.tanaka", "denied", "no_grant"),
                                       ("clerk.ito", "failure", "not_found")]


def test_a_disabled_account_is_refused_through_the_cache_with_its_role_grants_SEC_129(client, ready, org: Org):
    hogo = org.inst.hogo
    assert read(client, ready["ito"]).status_code == 200
    accounts.revoke_role(hogo, org.admin, "clerk.ito", "clerk", ctx=CTX)
    assert read(client, ready["ito"]).status_code == 200  # a user grant needs no role
    accounts.disable_user(hogo, org.admin, "clerk.ito", reason="left", ctx=CTX)
    assert read(client, ready["ito"]).status_code == 401
