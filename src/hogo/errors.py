"""One error tree for every adapter.

Each error carries a stable machine-readable ``code`` (for API clients and scripts), an HTTP
status, a human message, and where it enforces a rule, the requirement ID from
``shared/REQUIREMENTS.md``. Messages never contain secrets (passwords, tokens, My Numbers).

    HogoError
    ├── ValidationFailed       422  bad input, names the field and the reason
    ├── AuthenticationFailed   401  credentials wrong, unknown user or account locked (one answer)
    │   ├── MfaRequired        401  password right, a TOTP / recovery code is needed
    │   └── SessionExpired     401  idle timeout, absolute lifetime, revoked, account disabled
    ├── Forbidden              403  authenticated but not allowed (default deny)
    │   └── StepRequired       403  password change or MFA enrolment must come first
    ├── NotFound               404
    ├── Conflict               409
    ├── RateLimited            429
    └── ConfigurationError     startup refused (missing or default secrets …)
"""

from __future__ import annotations

from typing import Any


class HogoError(Exception):
    status = 400
    code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        requirement: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.requirement = requirement
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.requirement:
            body["requirement"] = self.requirement
        if self.details:
            body["details"] = self.details
        return body


class ValidationFailed(HogoError):
    status = 422
    code = "validation_failed"

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        details = kw.pop("details", None) or {}
        if field is not None:
            details = {"field": field, **details}
        super().__init__(message, details=details, **kw)
        self.field = field


class AuthenticationFailed(HogoError):
    status = 401
    code = "authentication_failed"


class MfaRequired(AuthenticationFailed):
    code = "mfa_required"


class SessionExpired(AuthenticationFailed):
    code = "session_expired"


class Forbidden(HogoError):
    status = 403
    code = "forbidden"


class StepRequired(Forbidden):
    """The session may only change its password / enrol MFA until that step is done."""

    code = "step_required"


class NotFound(HogoError):
    status = 404
    code = "not_found"


class Conflict(HogoError):
    status = 409
    code = "conflict"


class Unreadable(HogoError):
    """A stored value cannot be opened: its key has been destroyed (erased; e.g. a database restored from a
    backup older than an erasure) or the ciphertext has been changed or moved (tampering). Never data."""

    status = 500
    code = "record_unreadable"


class RateLimited(HogoError):
    status = 429
    code = "rate_limited"


class ConfigurationError(HogoError):
    status = 500
    code = "configuration_error"
