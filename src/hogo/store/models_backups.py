"""Tables of issue 5 (backups): the catalog of backups (ANON-19, SEC-51, SEC-151(3)).

One row per backup that completed: a row is written only after every target holds the published
backup, so a crash mid-backup leaves no entry. It records where (targets), how (method), when,
how big, until when it is kept (SEC-51(2)), its verifications, and its disposal (SEC-51(3)).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hogo.store.models import Base
from hogo.store.types import JSONText, UTCDateTime


class Backup(Base):
    __tablename__ = "backups"
    __table_args__ = (Index("ix_backups_status_expires", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # also the backup's directory name
    kind: Mapped[str] = mapped_column(String(10))  # database | keys
    engine: Mapped[str] = mapped_column(String(20))  # sqlite | postgresql | - (keys)
    method: Mapped[str] = mapped_column(String(200))
    schema_revision: Mapped[str | None] = mapped_column(String(32))
    importance: Mapped[str] = mapped_column(String(20))  # SEC-51(1): retention follows importance
    size_bytes: Mapped[int] = mapped_column(BigInteger)  # ciphertext
    sha256: Mapped[str] = mapped_column(String(64))  # of the signed manifest
    targets: Mapped[list[str]] = mapped_column(JSONText())  # SEC-51(2): the places it is kept
    log_size: Mapped[int | None] = mapped_column(BigInteger)  # entries of the log it holds
    status: Mapped[str] = mapped_column(String(20))  # complete | verified | failed | disposed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    retention_days: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disposal: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
