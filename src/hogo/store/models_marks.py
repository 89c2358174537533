"""Tables of issue 5 (marks): the history of every change of a file's marks (SEC-46(3)) and temporary
working copies with their sealed data (ANON-17)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hogo.store.models import Base
from hogo.store.types import JSONText, UTCDateTime


class MarksChange(Base):
    """One revision of a file's classification and restrictions: before and after (``Marks.to_dict``),
    the definition version it produced, who changed it on which basis (decider, successor, superior),
    why and when. Never deleted: the marks' history is part of the file's ledger."""

    __tablename__ = "marks_changes"
    __table_args__ = (Index("ix_marks_changes_file", "file_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id"))
    file_code: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)  # the file definition version with the new marks
    before: Mapped[dict[str, Any]] = mapped_column(JSONText())
    after: Mapped[dict[str, Any]] = mapped_column(JSONText())
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_by_name: Mapped[str] = mapped_column(String(63))
    basis: Mapped[str] = mapped_column(String(20))  # decider | successor | superior
    reason: Mapped[str] = mapped_column(String(1000))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WorkingCopy(Base):
    """A temporary working copy (作業用の一時的な複製, ANON-17): which file, fields and how many records,
    for whom, for which purpose, until when, with the marks it carries (the strictest of its sources).
    Its data is sealed under its own data key, wrapped by the key provider and kept in the key store beside
    the KEK (never in the database, so no database backup opens a disposed copy); disposal destroys the key
    and deletes the data, and keeps this row as the disposal record, which the file's protection manager
    confirms. ``where_fields`` names the fields the selection used, never values."""

    __tablename__ = "working_copies"
    __table_args__ = (
        Index("ix_working_copies_status_expires", "status", "expires_at"),
        Index("ix_working_copies_holder", "holder_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id"))
    file_code: Mapped[str] = mapped_column(String(63))
    department: Mapped[str] = mapped_column(String(32))  # the source file's department when copied
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    holder_name: Mapped[str] = mapped_column(String(63))
    purpose: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[str]] = mapped_column(JSONText())
    where_fields: Mapped[list[str]] = mapped_column(JSONText())
    records: Mapped[int] = mapped_column(Integer)
    marks: Mapped[dict[str, Any]] = mapped_column(JSONText())
    status: Mapped[str] = mapped_column(String(12))  # live | disposed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    key_provider: Mapped[str | None] = mapped_column(String(20))
    kek_id: Mapped[str | None] = mapped_column(String(100))
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disposed_by: Mapped[str | None] = mapped_column(String(63))  # a username, or "system" (expiry)
    disposal_reason: Mapped[str | None] = mapped_column(String(20))  # expired | on_demand
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirmed_by: Mapped[str | None] = mapped_column(String(63))
    confirmation_note: Mapped[str | None] = mapped_column(String(1000))


class WorkingCopyData(Base):
    """The sealed rows of a live working copy (AES-256-GCM under the copy's own key); deleted at disposal."""

    __tablename__ = "working_copy_data"

    copy_id: Mapped[str] = mapped_column(ForeignKey("working_copies.id", ondelete="CASCADE"), primary_key=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
