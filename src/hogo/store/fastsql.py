"""Prebuilt SELECTs for the hottest read paths (authenticating a request, reading a record), run on the
driver's cursor of a SQLAlchemy connection.

SQLAlchemy's execution machinery (events, compiled-cache lookup, parameter processing, the Result)
costs a small indexed lookup about ten times what SQLite takes to answer it. A ``FastSelect``
compiles its statement once per dialect, with the same bind and result processors SQLAlchemy uses
(so values come back as ``Connection.execute`` returns them: aware datetimes, parsed JSON …), and
runs it on the connection's current transaction. Only for statements without expanding parameters.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


@dataclasses.dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # positional drivers (SQLite): the parameters in order; None: named
    binds: Mapping[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]


class FastSelect:
    def __init__(self, stmt: Select[*tuple[Any, ...]]) -> None:
        self.stmt = stmt
        keys = [str(c.key) for c in stmt.selected_columns]
        self.row: Any = collections.namedtuple("Row", keys)  # type: ignore[misc]  # attributes as a Result's Row
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, dialect: Dialect) -> _Compiled:
        got = self._compiled.get(dialect.name)
        if got is not None:
            return got
        with self._lock:
            compiled = self.stmt.compile(dialect=dialect)
            if compiled.literal_execute_params or compiled.post_compile_params:
                raise TypeError("FastSelect takes statements without expanding parameters")
            names = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
            binds = {k: v for k, v in compiled._bind_processors.items() if callable(v)}
            results = tuple(c.type._cached_result_processor(dialect, None) for c in self.stmt.selected_columns)
            got = self._compiled[dialect.name] = _Compiled(compiled.string, names, binds, results)
            return got

    def _run(self, conn: Connection, params: Mapping[str, Any], one: bool) -> list[Any]:
        c = self._for(conn.dialect)
        values = {k: (p(v) if (p := c.binds.get(k)) is not None else v) for k, v in params.items()}
        args: Any = tuple(values[n] for n in c.names) if c.names is not None else values
        dbapi_conn = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(c.sql, args)
            raw = cursor.fetchmany(2) if one else cursor.fetchall()
        except conn.dialect.loaded_dbapi.Error as exc:
            # As Connection.execute would: a lost connection leaves the pool; the error is SQLAlchemy's
            # (the same types callers handle), and never shows the parameters (hashes, record IDs).
            if conn.dialect.is_disconnect(exc, dbapi_conn, cursor):
                conn.invalidate(exc)
            raise DBAPIError.instance(c.sql, args, exc, conn.dialect.loaded_dbapi.Error, hide_parameters=True,
                                      dialect=conn.dialect) from exc
        finally:
            cursor.close()
        procs = c.results
        make = self.row._make
        return [make([v if p is None else p(v) for p, v in zip(procs, r, strict=True)]) for r in raw]

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        rows = self._run(conn, params, True)
        if len(rows) > 1:
            raise ValueError("multiple rows where one was expected")
        return rows[0] if rows else None

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        return self._run(conn, params, False)
