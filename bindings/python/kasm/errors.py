"""One exception hierarchy for every failure the C++ library reports.

Each class matches one ``kasm::ErrorCode``; the instance carries the stable ``code`` name (for
example ``"not_found"``) and the library's ``message``. Catch :class:`KasmError` for all of them.
"""

from __future__ import annotations

from typing import Dict, Type

from . import _core

__all__ = [
    "KasmError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "Aborted",
    "ResourceExhausted",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
    "DeadlineExceeded",
    "DataLoss",
    "InternalError",
    "error_for_code",
]


class KasmError(Exception):
    """Base of every kasm error. ``code`` is the ErrorCode name, ``message`` the library's text."""

    code: str = "internal"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def http_status(self) -> int:
        """The HTTP status the kasm HTTP APIs answer this error with."""
        return _core.http_status_of(self.code)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgument(KasmError, ValueError):
    """The caller passed a bad value; the message names the field."""

    code = "invalid_argument"


class NotFound(KasmError, LookupError):
    """An id or name that does not exist."""

    code = "not_found"


class AlreadyExists(KasmError):
    """A create that clashes with an existing id or unique name."""

    code = "already_exists"


class FailedPrecondition(KasmError):
    """The system is not in a state that allows the call (also: using a closed object)."""

    code = "failed_precondition"


class Aborted(KasmError):
    """A compare-and-set lost a race; re-read and retry."""

    code = "aborted"


class ResourceExhausted(KasmError):
    """No capacity, a limit or a licence cap was reached."""

    code = "resource_exhausted"


class PermissionDenied(KasmError):
    """Authenticated but not allowed (or a feature the licence does not include)."""

    code = "permission_denied"


class Unauthenticated(KasmError):
    """Missing, bad or expired credentials."""

    code = "unauthenticated"


class Unavailable(KasmError):
    """A dependency (database, Docker daemon, agent) cannot be reached; retry later."""

    code = "unavailable"


class DeadlineExceeded(KasmError):
    """A call did not finish in time."""

    code = "deadline_exceeded"


class DataLoss(KasmError):
    """Stored data is corrupt or unreadable."""

    code = "data_loss"


class InternalError(KasmError):
    """A bug in kasm: an invariant was broken."""

    code = "internal"


_BY_CODE: Dict[str, Type[KasmError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Aborted,
        ResourceExhausted,
        PermissionDenied,
        Unauthenticated,
        Unavailable,
        DeadlineExceeded,
        DataLoss,
        InternalError,
    )
}


def error_for_code(code: str, message: str) -> KasmError:
    """The exception instance for an ErrorCode name (unknown names give a plain KasmError)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return KasmError(message, code=code)
    return cls(message)


# Every error raised by the C++ shims goes through this factory.
_core._set_error_factory(error_for_code)
