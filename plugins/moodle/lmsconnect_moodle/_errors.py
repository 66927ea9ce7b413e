"""Moodle's HTTP-200 exception bodies, mapped into the lmsconnect error tree.

Moodle's REST server answers every failure with HTTP 200 and a body such as::

    {"exception": "webservice_access_exception", "errorcode": "accessexception",
     "message": "Access control exception", "debuginfo": "..."}        # debuginfo only with debugging on

`is_exception` recognises such a body (so it is never taken for data) and `map_exception` turns it into
the error the caller can act on. The Moodle ``errorcode`` stays available as ``error.moodle_errorcode``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from lmsconnect import (
    AuthenticationError,
    InvalidInput,
    InvalidRemoteResponse,
    LMSConnectError,
    NotFound,
    PermissionDenied,
    RemoteError,
)
from lmsconnect.plugin import structure_wire, trim

from ._wire import CONVERTER, ExceptionWire

__all__ = ["errorcode_of", "is_exception", "is_transient", "map_exception"]

_NOT_FOUND: Final = frozenset(
    {
        "invalidrecord",
        "invalidrecordunknown",
        "invalidcourseid",
        "invalidcoursemodule",
        "invaliduser",
        "invaliduserid",
        "coursenotexist",
        "unknowncourseidnumber",
        "usernotenroled",
    }
)
_INVALID: Final = frozenset(
    {
        "invalidparameter",
        "errorinvalidparam",
        "shortnametaken",
        "courseidnumbertaken",
        "errorcatcontextnotvalid",
        "codingerror",
        "invalidnewstate",
    }
)
_PERMISSION: Final = frozenset(
    {
        "nopermissions",
        "accessexception",
        "wsusercannotassign",
        "requireloginerror",
        "cannotviewreport",
        "sitepolicynotagreed",
        "servicerequireslogin",
    }
)
_AUTH: Final = frozenset(
    {"invalidtoken", "usernotfullysetup", "passwordisexpired", "suspended", "restoredaccountsuspended"}
)
_TRANSIENT: Final = frozenset(
    {
        "dmlreadexception",
        "dmlwriteexception",
        "ddlexecuteerror",
        "dbconnectionfailed",
        "dmltransactionexception",
        # A lock wait that timed out (cache or task locks); the same call succeeds when repeated. Seen on a
        # real Moodle 5.0 when completion overrides of one user arrive in parallel.
        "ex_unabletolock",
        "locktimeout",
    }
)


def is_exception(body: Any) -> bool:
    """Whether a decoded answer is Moodle's exception body rather than data.

    No Moodle data has a top-level ``exception`` key, so such a body is never taken for data, even when
    its other keys are missing or odd (`map_exception` says what does not fit).
    """
    return isinstance(body, Mapping) and "exception" in body


def errorcode_of(error: BaseException) -> str | None:
    """The Moodle ``errorcode`` behind an error raised by `map_exception` (None for others)."""
    code = getattr(error, "moodle_errorcode", None)
    return code if isinstance(code, str) else None


def is_transient(error: BaseException) -> bool:
    """Database and lock hiccups Moodle reports as HTTP-200 exceptions: the call was rolled back, so
    repeating it is safe for reads and idempotent writes."""
    return errorcode_of(error) in _TRANSIENT


def map_exception(
    function: str,
    body: Mapping[str, Any],
    *,
    known: bool = True,
    scrub: Callable[[str], str] | None = None,
) -> LMSConnectError:
    """The lmsconnect error for Moodle's exception ``body`` answered to ``function``.

    ``known`` says the function surely exists (one the connector calls): Moodle answers an unknown
    function name with the same ``invalidrecordunknown`` as a missing record, so for a passthrough of an
    arbitrary name the message says both. ``scrub`` removes secrets from the vendor's text before it is
    trimmed. A body whose ``exception``, ``errorcode``, ``message`` or ``debuginfo`` is not text is not
    Moodle's: `InvalidRemoteResponse` naming the function and the field.

    >>> map_exception("core_user_create_users", {"exception": "webservice_access_exception",
    ...     "errorcode": "accessexception", "message": "Access control exception"}).permission
    'core_user_create_users'
    """
    try:
        wire = structure_wire(
            CONVERTER, body, ExceptionWire, where=f"{function} (exception)", connector="moodle", scrub=scrub
        )
    except InvalidRemoteResponse as exc:
        return exc
    # Moodle's error codes are short identifiers and its messages a sentence; a hostile body's are cut, after
    # scrubbing, so no part of a secret survives at the cut.
    clean = scrub or (lambda text: text)
    code = clean(wire.errorcode[:200])[:100]
    message = clean(wire.message[:2000])
    debuginfo = clean(wire.debuginfo[:2000]) if wire.debuginfo else None
    vendor = f"{code}: {message}" + (f" [{debuginfo}]" if debuginfo and debuginfo not in message else "")
    error: LMSConnectError
    if code in _AUTH:
        error = AuthenticationError(
            f"Moodle rejected the web-service token ({code})",
            vendor_message=vendor,
            hint="Check the token (Site administration > Server > Web services > Manage tokens) and that "
            "its user is not suspended",
        )
    elif code == "accessexception":
        error = PermissionDenied(
            f"the token's web service does not include {function} (or its user may not call it)",
            permission=function,
            vendor_message=vendor,
            hint=f"Add {function} to the external service of the token "
            "(Site administration > Server > Web services > External services > Functions)",
        )
    elif code in _PERMISSION:
        error = PermissionDenied(
            f"{function}: Moodle refused the token's user ({code})",
            permission=_capability(message) or function,
            vendor_message=vendor,
        )
    elif (
        code == "invalidrecordunknown"
        and wire.exception == "dml_missing_record_exception"
        and not known
    ):
        error = NotFound(
            f"{function}: no such record — or no such web-service function (Moodle answers an unknown "
            "function name the same way)",
            vendor_message=vendor,
        )
    elif code in _NOT_FOUND or wire.exception.startswith("dml_missing_record"):
        error = NotFound(f"{function}: the record does not exist in Moodle", vendor_message=vendor)
    elif code in _INVALID or "invalid_parameter" in wire.exception:
        error = InvalidInput(
            f"{function}: Moodle rejected a parameter ({trim(message, 300)})", vendor_message=vendor
        )
    else:
        error = RemoteError(f"{function} failed in Moodle ({code})", vendor_message=vendor)
    setattr(error, "moodle_errorcode", code)  # noqa: B010 - a plain attribute on the core classes
    return error


def _capability(message: str) -> str | None:
    # "Sorry, but you do not currently have permissions to do that (Enrol users)." names the capability.
    if message.endswith(")") and "(" in message:
        return message[message.rindex("(") + 1 : -1]
    return None
