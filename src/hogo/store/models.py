"""Tables. Changes go through an Alembic migration (``store/migrations``); CI fails on drift."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hogo.domain.auditlog import LogEntry, decode
from hogo.store.types import JSONText, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Department(Base):
    """課室: the unit that protection managers and clerks belong to."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    valid_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    lockout_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mfa_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed (AES-256-GCM)
    mfa_pending_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed, until confirmed
    mfa_pending_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)  # TOTP replay protection
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    department: Mapped[Department | None] = relationship(foreign_keys=[department_id], lazy="joined")
    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        lazy="selectin",
        foreign_keys="UserRole.user_id",
    )


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role", "department_id", name="uq_user_roles_grant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(40))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="roles", foreign_keys=[user_id])
    department: Mapped[Department | None] = relationship(lazy="joined")


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_mac: Mapped[str] = mapped_column(String(64))  # HMAC-SHA-256 with an instance key
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuthSession(Base):
    """A login session (web cookie or CLI bearer). Only the token's SHA-256 is stored."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # web | cli
    mfa_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class ApiToken(Base):
    """A scoped, expiring token for machine clients. Shown once; stored as SHA-256."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    scopes: Mapped[list[str]] = mapped_column(JSONText())
    mfa_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuthzEpoch(Base):
    """One row whose ``value`` changes, by database triggers (migration 0010), in every transaction that
    changes what authenticating a request or deciding a record access reads: accounts, their roles and
    departments, sessions and API tokens (not their last-activity times), files and their grants (not
    when a grant was last used). A process may keep those lookups between requests while the value it
    reads in a request's own transaction is the one they were made under (``store/authz_cache.py``)."""

    __tablename__ = "authz_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """One entry of the tamper-evident log (MN-3b, SEC-107(2)(3), SEC-132, SEC-84, ANON-12).

    ``seq`` is the entry's index in the log (0, 1, 2, … without gaps, across every process and node);
    ``entry`` is its canonical encoding (``domain.auditlog``) and ``leaf_hash`` = SHA-256(0x00 ‖ entry),
    the leaf of the RFC 9162 Merkle tree that signed checkpoints commit to. The other columns are a
    search index over the entry; the verifier checks they agree with it. Triggers refuse DELETE, and
    UPDATE except the retention job's removal of an expired payload (leaf hash and seq remain).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_client_event_ts", "client_addr", "event", "ts"),
        Index("ix_audit_events_actor_ts", "actor_id", "ts"),
        Index("ix_audit_events_subject_ts", "subject_user_id", "ts"),
        Index("ix_audit_events_ts", "ts"),
        Index("ix_audit_events_event_ts", "event", "ts"),
        Index("ix_audit_events_file_ts", "file_code", "ts"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(80))
    outcome: Mapped[str | None] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(63))
    subject_user_id: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(String(200))
    file_code: Mapped[str | None] = mapped_column(String(63))
    purpose: Mapped[str | None] = mapped_column(String(200))
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    entry: Mapped[bytes | None] = mapped_column(LargeBinary)  # NULL once its retention has passed
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def logged(self) -> LogEntry | None:
        """The entry as logged (None once expired): the source of truth the columns index."""
        return None if self.entry is None else decode(self.entry)[1]


class AuditRecordRef(Base):
    """Which records (persons) each entry touched: ``audit search --record`` without scanning entries."""

    __tablename__ = "audit_record_refs"
    __table_args__ = (Index("ix_audit_record_refs_lookup", "file_code", "record_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_code: Mapped[str] = mapped_column(String(63))


class AuditHead(Base):
    """The log's size. Appenders increment it in their transaction: the row lock on PostgreSQL (the
    database lock on SQLite) makes every appender, in every process and node, take the next indices
    in turn, so the log stays one line without gaps or forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)


class AuditNode(Base):
    """Roots of complete subtrees at every 8th level (8, 16, 24 …): with the leaves, any node of the
    tree costs at most 255 hashes, so proofs over ten million entries take milliseconds."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """Signed checkpoints (origin, tree size, root; Ed25519 signed note, C2SP tlog-checkpoint)."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text)
    anchored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuditGate(Base):
    """Opened only inside the retention job's transaction: the triggers let an UPDATE of
    ``audit_events`` through only while it is open (and only one that removes payloads)."""

    __tablename__ = "audit_gate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    open: Mapped[bool] = mapped_column(Boolean, default=False)


# ------------------------------------------------------------------ personal-data files (issue 3)


class PersonalDataFile(Base):
    """個人情報ファイル / 特定個人情報ファイル. The spec of each version is in ``file_versions``;
    ledger items (MN-3c) are columns here so registers can be computed without reading specs."""

    __tablename__ = "personal_data_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    responsible_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer)
    data_key_version: Mapped[int] = mapped_column(Integer)  # the current data key (records may lag)
    confidentiality: Mapped[int] = mapped_column(Integer)
    integrity: Mapped[int] = mapped_column(Integer)
    availability: Mapped[int] = mapped_column(Integer)
    restrictions: Mapped[list[str]] = mapped_column(JSONText())
    spec: Mapped[dict[str, Any]] = mapped_column(JSONText())  # the current version's spec
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Issue 5 (erasure): when the file's keys were destroyed and its records purged; the entry stays.
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class FileVersion(Base):
    """Every definition of a file, kept (a file's definition changes are versioned and recorded)."""

    __tablename__ = "file_versions"
    __table_args__ = (UniqueConstraint("file_id", "version", name="uq_file_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONText())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class FileKey(Base):
    """Where wrapped file keys were kept before issue 5. Empty now: keys live in the key store beside the
    KEK (crypto/keystore.py), and rows an older instance left here move there at startup."""

    __tablename__ = "file_keys"
    __table_args__ = (UniqueConstraint("file_id", "purpose", "version", name="uq_file_keys_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(10))  # data | index
    version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(20))
    kek_id: Mapped[str] = mapped_column(String(100))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Record(Base):
    """One person's (本人) record in a file; its values are one blob of per-field ciphertexts."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("file_id", "record_id", name="uq_records_record_id"),
        Index("ix_records_file_key_version", "file_id", "key_version"),
        Index("ix_records_dispose_after", "file_id", "dispose_after"),  # issue 5 (retention)
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id"))
    record_id: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(100))  # plain, non-identifying (grant scopes)
    key_version: Mapped[int] = mapped_column(Integer)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by_id: Mapped[int | None] = mapped_column(Integer)
    # Issue 5 (retention): the day after which the record is due for disposal (None: no due date yet).
    dispose_after: Mapped[dt.date | None] = mapped_column(Date)


class RecordIndex(Base):
    """Keyed blind index (HMAC-SHA-256) of indexed fields: exact match without decrypting."""

    __tablename__ = "record_index"
    __table_args__ = (Index("ix_record_index_lookup", "file_id", "field", "digest"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    file_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(63))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)


class FileGrant(Base):
    """アクセス権限: actions × fields × purposes × records × time, to a user or a role (SEC-130)."""

    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_file_user", "file_id", "user_id"),
        Index("ix_grants_file_role", "file_id", "role"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str | None] = mapped_column(String(40))
    role_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    actions: Mapped[list[str]] = mapped_column(JSONText())
    fields: Mapped[list[str] | None] = mapped_column(JSONText())
    purposes: Mapped[list[str]] = mapped_column(JSONText())
    segments: Mapped[list[str] | None] = mapped_column(JSONText())
    valid_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(500))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


# ------------------------------------------------------------- log analysis and alerts (issue 4)


class AnalysisConfig(Base):
    """The analysis rules' thresholds, one row per version (SEC-84: every change kept and logged).
    ANON-13: the setting itself is checked periodically; ``review_due_at`` says by when."""

    __tablename__ = "analysis_configs"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONText())
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_by_name: Mapped[str | None] = mapped_column(String(63))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(Integer)
    reviewed_by_name: Mapped[str | None] = mapped_column(String(63))
    review_note: Mapped[str | None] = mapped_column(String(500))
    review_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AnalysisState(Base):
    """One row: how far the log has been analysed (``high_water``, a log index) and which run holds
    the lease. Runs claim the lease under the row lock, so two processes never analyse at once."""

    __tablename__ = "analysis_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    high_water: Mapped[int] = mapped_column(BigInteger)
    lease_run_id: Mapped[int | None] = mapped_column(Integer)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AnalysisRun(Base):
    """One analysis of log entries ``from_seq`` … ``to_seq`` (MN-6c, SEC-132: analysed periodically)."""

    __tablename__ = "analysis_runs"
    __table_args__ = (Index("ix_analysis_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(10))  # schedule | manual
    status: Mapped[str] = mapped_column(String(12))  # running | done | failed | superseded
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    from_seq: Mapped[int] = mapped_column(BigInteger)
    to_seq: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(Integer, default=0)
    config_version: Mapped[int] = mapped_column(Integer)
    alerts_raised: Mapped[int] = mapped_column(Integer, default=0)
    alerts_updated: Mapped[int] = mapped_column(Integer, default=0)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(63))
    error: Mapped[str | None] = mapped_column(String(200))


class Alert(Base):
    """A finding of the analysis for a person to act on (ANON-13, SEC-107(2)): open → acknowledged →
    closed. ``dedup_key`` makes raising idempotent; ``params`` fill the rule's text in either language."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_status_opened", "status", "opened_at"),
        Index("ix_alerts_rule_subject", "rule", "subject_key", "window_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    rule: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))  # low | medium | high
    status: Mapped[str] = mapped_column(String(14))  # open | acknowledged | closed
    subject_key: Mapped[str] = mapped_column(String(150))
    subject_user_id: Mapped[int | None] = mapped_column(Integer)
    subject_name: Mapped[str | None] = mapped_column(String(63))
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    params: Mapped[dict[str, Any]] = mapped_column(JSONText())
    event_count: Mapped[int] = mapped_column(Integer)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(Integer)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(Integer)
    acknowledged_by_name: Mapped[str | None] = mapped_column(String(63))
    ack_note: Mapped[str | None] = mapped_column(String(1000))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(Integer)
    closed_by_name: Mapped[str | None] = mapped_column(String(63))
    resolution: Mapped[str | None] = mapped_column(String(1000))
    # Off-host notification: delivered to every sink (notified_at), or the sinks still to retry.
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0)
    notify_pending: Mapped[list[str] | None] = mapped_column(JSONText())
    notify_error: Mapped[str | None] = mapped_column(String(500))


class AlertEvent(Base):
    """The log entries behind an alert (the first ``analysis.MAX_LINKS`` of them)."""

    __tablename__ = "alert_events"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True,
                                          autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


# ------------------------------------------------------------- approvals and corrections (issue 5)


class ApprovalRequest(Base):
    """A request that others must approve (SEC-19): of a ``kind`` (``correction``; later ``takeout``)
    that declares the approval steps it needs. ``steps`` holds each step's current approver level
    (role, department) and its escalations; ``payload`` is kind-specific data sealed under the file's
    data key (a correction's new values: never plaintext here). ``fields`` names fields, never values."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        Index("ix_approval_requests_status_created", "status", "created_at"),
        Index("ix_approval_requests_requester", "requester_id", "created_at"),
        Index("ix_approval_requests_subject", "file_code", "record_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12))  # pending | approved | rejected | applied | failed | cancelled
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requester_name: Mapped[str] = mapped_column(String(63))
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the person it is about, if a user
    file_id: Mapped[int | None] = mapped_column(ForeignKey("personal_data_files.id"))
    file_code: Mapped[str | None] = mapped_column(String(63))
    record_id: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    fields: Mapped[list[str]] = mapped_column(JSONText())
    base_revision: Mapped[int | None] = mapped_column(Integer)
    payload_binding: Mapped[str | None] = mapped_column(String(80))  # what the sealed payload is bound to
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONText())
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ApprovalDecision(Base):
    """One approver's decision on one step of a request (who, when, approve or reject, why, and at
    which level: the step's own or, after an escalation, the superior's)."""

    __tablename__ = "approval_decisions"
    __table_args__ = (UniqueConstraint("request_id", "step", name="uq_approval_decisions_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(10))  # approve | reject
    role: Mapped[str] = mapped_column(String(40))
    department: Mapped[str | None] = mapped_column(String(32))
    approver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approver_name: Mapped[str] = mapped_column(String(63))
    reason: Mapped[str | None] = mapped_column(String(1000))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RecordVersion(Base):
    """A record's previous version, kept when a correction replaces it (ANON-8: before and after):
    the blob exactly as it was (encrypted as records are), its revision, and which request replaced it."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("file_id", "record_id", "revision", name="uq_record_versions_revision"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("personal_data_files.id"))
    record_id: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str | None] = mapped_column(String(100))
    key_version: Mapped[int] = mapped_column(Integer)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    replaced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    replaced_by_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("approval_requests.id"))


# Tables of later changes live in their own modules (each registers with Base.metadata on import).
from hogo.store import models_backups, models_erasure, models_marks, models_takeouts  # noqa: E402,F401
