"""The event vocabulary (``source:subject:action``) for every recorded event.

MN-3b / SEC-132 / SEC-84: logins, lockouts, MFA, password, role and account changes are recorded.
One enum, so analysis and reports can rely on the names.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    LOGIN_SUCCEEDED = "auth:login:succeeded"
    LOGIN_FAILED = "auth:login:failed"
    LOGIN_RATE_LIMITED = "auth:login:rate_limited"
    ACCOUNT_LOCKED = "auth:account:locked"
    LOGOUT = "auth:session:logout"
    SESSION_EXPIRED = "auth:session:expired"
    PASSWORD_CHANGED = "auth:password:changed"
    PASSWORD_CHANGE_FAILED = "auth:password:change_failed"
    MFA_ENROLMENT_STARTED = "auth:mfa:enrolment_started"
    MFA_ENROLLED = "auth:mfa:enrolled"
    MFA_RESET = "auth:mfa:reset"
    RECOVERY_CODE_USED = "auth:mfa:recovery_code_used"
    TOKEN_CREATED = "auth:token:created"
    TOKEN_REVOKED = "auth:token:revoked"
    USER_CREATED = "account:user:created"
    USER_UPDATED = "account:user:updated"
    USER_DISABLED = "account:user:disabled"
    USER_ENABLED = "account:user:enabled"
    USER_UNLOCKED = "account:user:unlocked"
    USER_PASSWORD_RESET = "account:user:password_reset"
    ROLE_GRANTED = "account:role:granted"
    ROLE_REVOKED = "account:role:revoked"
    DEPARTMENT_CREATED = "account:department:created"
    DEPARTMENT_UPDATED = "account:department:updated"
    # Personal-data files and records (issue 3): every access through the guard, allowed or denied.
    FILE_CREATED = "data:file:created"
    FILE_UPDATED = "data:file:updated"
    GRANT_CREATED = "data:grant:created"
    GRANT_REVOKED = "data:grant:revoked"
    GRANT_DENIED = "data:grant:denied"
    RECORD_READ = "data:record:read"
    RECORD_REVEALED = "data:record:reveal"
    RECORD_SEARCHED = "data:record:search"
    RECORD_CREATED = "data:record:create"
    RECORD_UPDATED = "data:record:update"
    RECORD_DELETED = "data:record:delete"
    RECORDS_IMPORTED = "data:record:import"
    RECORD_VERIFIED = "data:record:verify"  # SEC-133(2): a record's stored version checked against the signed log
    KEY_CREATED = "crypto:key:created"
    KEY_ROTATED = "crypto:key:rotated"
    RECORDS_REENCRYPTED = "crypto:records:reencrypted"  # a batch of a rotation: the new stored versions
    RECORDS_COMMITTED = "crypto:records:committed"  # a file raised to integrity 2: its records' versions as they are
    INSTANCE_INITIALISED = "system:instance:initialised"
    # Take-outs and provisions (issue 5, SEC-47..49, MN-5c, MN-6d, SEC-26..27): the take-out register.
    TAKEOUT_REQUESTED = "takeout:request:created"
    TAKEOUT_APPROVED = "takeout:request:approved"
    TAKEOUT_CLOSED = "takeout:request:closed"  # rejected, cancelled or expired before it was taken out
    TAKEOUT_TAKEN_OUT = "takeout:copy:taken_out"
    TAKEOUT_DECLARED = "takeout:copy:declared"  # the taker says it was returned or disposed of
    TAKEOUT_CONFIRMED = "takeout:copy:confirmed"  # someone else confirms the return or disposal
    TAKEOUT_OVERDUE = "takeout:copy:overdue"
    TAKEOUT_REMINDED = "takeout:copy:reminded"
    TAKEOUT_REPORT_OVERDUE = "takeout:report:overdue"  # an emergency take-out not reported in time
    # Log analysis and its alerts (issue 4): ANON-12, ANON-13, SEC-132, MN-6c; configuration changes SEC-84.
    ANALYSIS_RUN = "audit:analysis:run"
    ANALYSIS_CONFIG_CHANGED = "audit:analysis:config_changed"
    ANALYSIS_CONFIG_REVIEWED = "audit:analysis:config_reviewed"
    ALERT_RAISED = "audit:alert:raised"
    ALERT_UPDATED = "audit:alert:updated"
    ALERT_DELIVERED = "audit:alert:delivered"
    ALERT_ACKNOWLEDGED = "audit:alert:acknowledged"
    ALERT_CLOSED = "audit:alert:closed"
    REPORT_GENERATED = "audit:report:generated"
    # The log itself (issue 4): reading it, proving, verifying, exporting, expiring payloads.
    LOG_READ = "audit:log:read"
    LOG_VERIFIED = "audit:log:verified"
    LOG_EXPORTED = "audit:log:exported"
    LOG_EXPIRED = "audit:log:expired"
    LOG_ANCHOR_FAILED = "audit:log:anchor_failed"
    # Approvals (issue 5, SEC-19): every request, decision, escalation and outcome; corrections (ANON-8).
    APPROVAL_REQUESTED = "approval:request:created"
    APPROVAL_APPROVED = "approval:request:approved"
    APPROVAL_REJECTED = "approval:request:rejected"
    APPROVAL_ESCALATED = "approval:request:escalated"
    APPROVAL_CANCELLED = "approval:request:cancelled"
    APPROVAL_FAILED = "approval:request:failed"
    RECORD_CORRECTED = "data:record:correct"
    # Marks and working copies (issue 5): SEC-46(3) marks revised (or refused), ANON-17 temporary working copies.
    MARKS_CHANGED = "data:file:marks_changed"
    RECORDS_COPIED = "data:record:copy"  # source records read into a working copy (an access to the source)
    WORKCOPY_CREATED = "data:workcopy:created"
    WORKCOPY_READ = "data:workcopy:read"
    WORKCOPY_DISPOSED = "data:workcopy:disposed"
    WORKCOPY_CONFIRMED = "data:workcopy:disposal_confirmed"
    # Guarded bulk export and take-out packages (issue 5, SEC-46..49): one entry per export, listing every record.
    RECORDS_EXPORTED = "data:record:export"
    # Erasure, disposal and deletion certificates (issue 5: ANON-10, SEC-50, MN-5d).
    RECORD_ERASED = "data:record:erase"  # records purged, their bucket re-encrypted, its old key to destroy
    FILE_ERASED = "data:file:erased"  # every key destroyed, every row purged; the ledger entry stays
    KEYS_DESTROYED = "crypto:key:destroyed"
    DELETION_CERTIFIED = "data:deletion:certified"
    DELETION_CONFIRMED = "data:deletion:confirmed"
    CERTIFICATE_ATTACHED = "data:deletion:attached"
    RETENTION_RUN = "data:retention:run"
    # Backups (issue 5: ANON-19, SEC-51, SEC-151(3)): made, failed, verified, restored, disposed; key backups.
    BACKUP_CREATED = "system:backup:created"
    BACKUP_FAILED = "system:backup:failed"
    BACKUP_VERIFIED = "system:backup:verified"
    BACKUP_RESTORED = "system:backup:restored"
    BACKUP_DISPOSED = "system:backup:disposed"
    KEYS_BACKED_UP = "system:keys:backed_up"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"
