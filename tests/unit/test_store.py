"""Storage details that protect secrets and times."""

import datetime as dt

import pytest
from sqlalchemy import text

from hogo.store.db import make_engine


def test_sql_errors_never_carry_statement_parameters():
    """A failed statement's message must not include the values bound to it (hashes, personal data)."""
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x TEXT UNIQUE)")
        conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "secret-value-123"})
        with pytest.raises(Exception) as e:
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": "secret-value-123"})
    assert "secret-value-123" not in str(e.value)


def test_utc_columns_refuse_naive_times_and_return_aware_ones(tmp_path):
    from hogo.store.types import UTCDateTime

    col = UTCDateTime()
    with pytest.raises(ValueError):
        col.process_bind_param(dt.datetime(2026, 1, 1), engine_dialect())
    jst = dt.timezone(dt.timedelta(hours=9))
    stored = col.process_bind_param(dt.datetime(2026, 1, 1, 9, tzinfo=jst), engine_dialect())
    assert stored == dt.datetime(2026, 1, 1, 0, 0)
    assert col.process_result_value(stored, engine_dialect()) == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def engine_dialect():
    return make_engine("sqlite://").dialect


def test_settings_file_never_holds_the_database_password(tmp_path):
    from hogo.config import load_settings, write_settings

    s = load_settings(tmp_path, database_url="postgresql+psycopg://hogo:S3cret-pw@db.example:5432/hogo")
    write_settings(s)
    text_ = (tmp_path / "hogo.toml").read_text()
    assert "S3cret-pw" not in text_
    assert 'database_url = "postgresql+psycopg://hogo@db.example:5432/hogo"' in text_


def test_background_checkpointer_moves_the_wal_into_the_database(tmp_path):
    """The server's WAL checkpoints run (PASSIVE, off the request path): the database file takes the
    committed pages and the WAL is reused, rather than every page living in an ever-growing WAL."""
    import time

    from hogo.store.db import BackgroundCheckpointer

    path = tmp_path / "c.db"
    engine = make_engine(f"sqlite:///{path}")
    cp = BackgroundCheckpointer(engine, interval_s=0.05)
    cp.start()
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        size0 = path.stat().st_size
        for _ in range(20):
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(65536))")
        deadline = time.monotonic() + 10
        while path.stat().st_size < size0 + 20 * 65536 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size >= size0 + 20 * 65536, "the WAL was never checkpointed into the database"
    finally:
        cp.stop()
        engine.dispose()
    # stop() truncates the WAL
    wal = tmp_path / "c.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
