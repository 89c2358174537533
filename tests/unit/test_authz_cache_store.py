"""store/authz_cache.py on its own: lookups are kept only under the epoch they were made under (SEC-131:
a change of rights applies to the next request)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, text

from hogo.store import authz_cache
from hogo.store.authz_cache import AuthzCache


@pytest.fixture
def conn() -> Iterator[Connection]:
    eng = create_engine("sqlite://")
    with eng.connect() as c:
        c.execute(text("CREATE TABLE authz_epoch (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)"))
        c.execute(text("INSERT INTO authz_epoch VALUES (1, 7)"))
        yield c
    eng.dispose()


def set_epoch(conn: Connection, value: int) -> None:
    conn.execute(text("UPDATE authz_epoch SET value = :v WHERE id = 1"), {"v": value})


def test_a_lookup_is_kept_while_the_epoch_stays_and_dropped_when_it_changes_SEC_131(conn: Connection):
    cache, loads = AuthzCache(), []

    def load(tag: str) -> str:
        loads.append(tag)
        return tag

    assert cache.snapshot(conn).get("k", lambda: load("a")) == "a"
    assert cache.snapshot(conn).get("k", lambda: load("b")) == "a"
    set_epoch(conn, 8)
    assert cache.snapshot(conn).get("k", lambda: load("c")) == "c"
    set_epoch(conn, 7)  # an older snapshot, or a restored backup: not the state the entries were made in
    assert cache.snapshot(conn).get("k", lambda: load("d")) == "d"
    assert loads == ["a", "c", "d"]


def test_a_failed_lookup_is_not_kept_and_forget_drops_one_entry(conn: Connection):
    cache = AuthzCache()
    snap = cache.snapshot(conn)

    def refuse() -> str:
        raise LookupError("unknown")

    with pytest.raises(LookupError):
        snap.get("k", refuse)
    assert snap.get("k", lambda: "found") == "found"
    assert snap.get("j", lambda: "other") == "other"
    cache.forget("k")
    assert cache.snapshot(conn).get("k", lambda: "again") == "again"
    assert cache.snapshot(conn).get("j", lambda: "not used") == "other"


def test_without_an_epoch_row_nothing_is_reused(conn: Connection):
    conn.execute(text("DELETE FROM authz_epoch"))
    cache = AuthzCache()
    assert cache.snapshot(conn).get("k", lambda: 1) == 1
    assert cache.snapshot(conn).get("k", lambda: 2) == 2


def test_the_cache_is_bounded(conn: Connection, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(authz_cache, "MAX_ENTRIES", 3)
    cache = AuthzCache()
    snap = cache.snapshot(conn)
    for i in range(5):
        snap.get(i, lambda i=i: i)
    assert len(snap._entries) == 3
    fresh = cache.snapshot(conn)  # full: starts again
    assert fresh.get(0, lambda: "reloaded") == "reloaded"
