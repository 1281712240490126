"""The error tree of the public API, one place for every code in API.md.

    PostwireError                 (code, HTTP status)
    ├── InvalidEmail              invalid_email         400
    ├── EmptyValue                empty_value           400
    ├── InvalidValue              invalid_value         400
    ├── MissingMacros             missing_macros        400
    ├── SizeExceeded              size_exceeded         400
    ├── NotAvailable              not_available         400
    ├── AuthorizationFailed       authorization_failed  401
    ├── InvalidPermission         invalid_permission    403
    ├── AccessDenied              access_denied         403
    ├── NotFound                  not_found             404
    ├── AlreadyExists             already_exists        409
    ├── QuotaExceeded             quota_exceeded        429
    └── InternalError             internal_error        500

Domain code raises these; the HTTP edge turns them into the envelope
(``postwire_common.http.envelope``). Nothing else maps errors to HTTP.
"""

from __future__ import annotations

from typing import ClassVar


class PostwireError(Exception):
    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidEmail(PostwireError):
    code = "invalid_email"
    http_status = 400


class EmptyValue(PostwireError):
    code = "empty_value"
    http_status = 400


class InvalidValue(PostwireError):
    code = "invalid_value"
    http_status = 400


class MissingMacros(PostwireError):
    code = "missing_macros"
    http_status = 400


class SizeExceeded(PostwireError):
    code = "size_exceeded"
    http_status = 400


class NotAvailable(PostwireError):
    code = "not_available"
    http_status = 400


class AuthorizationFailed(PostwireError):
    code = "authorization_failed"
    http_status = 401


class InvalidPermission(PostwireError):
    code = "invalid_permission"
    http_status = 403


class AccessDenied(PostwireError):
    code = "access_denied"
    http_status = 403


class NotFound(PostwireError):
    code = "not_found"
    http_status = 404


class AlreadyExists(PostwireError):
    code = "already_exists"
    http_status = 409


class QuotaExceeded(PostwireError):
    code = "quota_exceeded"
    http_status = 429

    def __init__(self, description: str, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class InternalError(PostwireError):
    code = "internal_error"
    http_status = 500


ERRORS: tuple[type[PostwireError], ...] = (
    InvalidEmail,
    EmptyValue,
    InvalidValue,
    MissingMacros,
    SizeExceeded,
    NotAvailable,
    AuthorizationFailed,
    InvalidPermission,
    AccessDenied,
    NotFound,
    AlreadyExists,
    QuotaExceeded,
    InternalError,
)
