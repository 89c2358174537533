"""Tables of issue 5 (erasure): deletion records with their signed certificates (消去証明), and the
certificates of contractors attached to them (ANON-10, SEC-50, MN-5d).

A deletion record holds what is needed to finish an interrupted erasure (the record IDs and the key
versions to destroy) and the certificate; neither holds a value of a record (MN-3c)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hogo.store.models import Base
from hogo.store.types import JSONText, UTCDateTime


class DeletionRecord(Base):
    """One erasure or disposal: of records of a file (``record``), a whole file (``file``), or the
    records a retention run found due (``retention``). ``status``: pending (ordered; rows not yet
    purged), purged (rows gone; keys to destroy), complete (keys destroyed, checked, certificate signed)."""

    __tablename__ = "deletion_records"
    __table_args__ = (Index("ix_deletion_records_file", "file_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id"))
    file_code: Mapped[str] = mapped_column(String(63))
    file_name: Mapped[str] = mapped_column(String(200))
    # To finish an interrupted erasure; never in a certificate.
    record_ids: Mapped[list[str]] = mapped_column(JSONText())
    record_count: Mapped[int] = mapped_column(Integer)
    fields: Mapped[list[str]] = mapped_column(JSONText())
    reason: Mapped[str] = mapped_column(String(1000))
    retention_rule: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    versions: Mapped[list[int]] = mapped_column(JSONText())  # key versions to destroy
    ordered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ordered_by: Mapped[str] = mapped_column(String(63))
    confirmed_by: Mapped[str | None] = mapped_column(String(63))  # a second person's confirmation, later
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    certificate: Mapped[str | None] = mapped_column(Text)  # canonical JSON
    signature: Mapped[str | None] = mapped_column(Text)  # signed note over its hash
    confirmation: Mapped[str | None] = mapped_column(Text)  # a second person's confirmation, a signed note


class ContractorCertificate(Base):
    """A contractor's own deletion certificate (ANON-10), linked to the deletion it attests: its
    SHA-256 and the file as given."""

    __tablename__ = "contractor_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deletion_id: Mapped[int] = mapped_column(ForeignKey("deletion_records.id"), index=True)
    contractor: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    attached_by: Mapped[str] = mapped_column(String(63))
    attached_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
