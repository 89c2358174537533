"""Tables of issue 5 (takeouts): the take-out register (持出管理簿, SEC-47..49, MN-5c, MN-6d, ANON-7, ANON-22,
SEC-145, SEC-147, SEC-26..27).

One row per take-out or provision (提供): what leaves (file, fields, record selection), why (purpose), to
whom (recipient, destination, outside the viewing scope or not), how (transport: download, media with its
ID, transmission), until when (the date by which the copy is returned or disposed of), the file's marks as
they were at the request, the approval request that decides it, and what became of it (taken out,
overdue, returned or disposed of — confirmed by someone other than the taker). No record value is kept
here; a recipient's public key is public, and a passphrase is never stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hogo.store.models import Base
from hogo.store.types import JSONText, UTCDateTime


class Takeout(Base):
    """持出し・提供の記録: requested → approved | rejected | cancelled → taken_out → overdue? →
    returned | disposed (or expired: approved but never taken out before its due date)."""

    __tablename__ = "takeouts"
    __table_args__ = (
        Index("ix_takeouts_status_due", "status", "due_at"),
        Index("ix_takeouts_requester", "requester_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id"), unique=True)
    status: Mapped[str] = mapped_column(String(12))
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id"))
    file_code: Mapped[str] = mapped_column(String(63))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requester_name: Mapped[str] = mapped_column(String(63))
    department: Mapped[str] = mapped_column(String(32))  # the file's department (whose manager confirms)
    fields: Mapped[list[str]] = mapped_column(JSONText())
    selection: Mapped[dict[str, Any] | None] = mapped_column(JSONText())  # None: every record the grants cover
    purpose: Mapped[str] = mapped_column(String(200))
    recipient: Mapped[str] = mapped_column(String(200))  # who receives it (person, organisation)
    recipient_mode: Mapped[str] = mapped_column(String(12))  # public_key | passphrase
    recipient_key: Mapped[str | None] = mapped_column(Text)  # the recipient's public key text (public_key mode)
    outside_scope: Mapped[bool] = mapped_column(Boolean, default=False)  # provision outside the viewing scope
    destination: Mapped[str] = mapped_column(String(200))
    transport: Mapped[str] = mapped_column(String(14))  # download | media | transmission
    media_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the first instant after the due date
    due_date: Mapped[str] = mapped_column(String(16))  # the due date as written, in the organisation's zone
    marks: Mapped[dict[str, Any]] = mapped_column(JSONText())  # the file's marks at the request (handling.Marks)
    note: Mapped[str | None] = mapped_column(String(1000))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)  # taken without prior approval (SEC-27(1))
    report_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # the after-the-fact report
    report_alerted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    taken_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    package_id: Mapped[str | None] = mapped_column(String(80))  # the last package made for it
    package_sha256: Mapped[str | None] = mapped_column(String(64))
    record_count: Mapped[int | None] = mapped_column(Integer)
    overdue_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    overdue_alert_id: Mapped[int | None] = mapped_column(Integer)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    # The taker says the copy came back or was disposed of; someone else confirms it (SEC-19).
    declared: Mapped[str | None] = mapped_column(String(10))  # returned | disposed
    declared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    declared_note: Mapped[str | None] = mapped_column(String(1000))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_by_name: Mapped[str | None] = mapped_column(String(63))
    confirm_note: Mapped[str | None] = mapped_column(String(1000))
