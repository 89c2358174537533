"""Bulk inserts straight to the driver's executemany, for imports (SQLite and PostgreSQL alike).

Values are bound by each column's own type (so times are stored exactly as the ORM stores them);
columns whose value is the same for every row are bound once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import LargeBinary, Table
from sqlalchemy.orm import Session


def insert_many(db: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                constants: Mapping[str, Any] | None = None) -> None:
    if not rows:
        return
    conn = db.connection()
    dialect = conn.dialect
    constants = dict(constants or {})
    bound_constants = []
    for name, value in constants.items():
        proc = table.c[name].type._cached_bind_processor(dialect)
        bound_constants.append(proc(value) if proc else value)
    # Binary values go to the driver as bytes (sqlite3 and psycopg take them as they are): no
    # per-value wrapping in the dialect's Binary.
    procs = [None if isinstance(table.c[name].type, LargeBinary) else table.c[name].type._cached_bind_processor(dialect)
             for name in columns]
    tail = tuple(bound_constants)
    if any(procs):
        # Column by column, each distinct value bound once (an import batch's due dates are mostly one date).
        cols = list(zip(*rows, strict=True))
        for i, proc in enumerate(procs):
            if proc is not None:
                seen: dict[Any, Any] = {}
                try:
                    cols[i] = tuple(seen[v] if v in seen else seen.setdefault(v, proc(v)) for v in cols[i])
                except TypeError:  # unhashable values: each bound on its own
                    cols[i] = tuple(proc(v) for v in cols[i])
        params = [r + tail for r in zip(*cols, strict=True)]
    else:
        params = [tuple(r) + tail for r in rows]
    names = [*columns, *constants]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - names come from the table, not input
           f"VALUES ({', '.join([mark] * len(names))})")
    conn.exec_driver_sql(sql, params)
