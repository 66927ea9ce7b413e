"""The one exception tree of lmsconnect.

Every error raised by lmsconnect or a connector derives from `LMSConnectError`. The branches follow what
the caller can do about it::

    LMSConnectError                      code                        what to do
    ├── ConfigurationError               CONFIG.INVALID              fix the connect() arguments
    │   ├── (a host name that does not  CONFIG.HOST_UNRESOLVED      fix the domain / base URL
    │   │    resolve: ConfigurationError)
    │   └── PluginLoadError              CONFIG.PLUGIN_BROKEN        fix or reinstall the named distribution
    ├── InvalidInput                     INPUT.INVALID               fix the action input (names the field)
    ├── NotSupported                     LMS.NOT_SUPPORTED           check capabilities before calling
    ├── DestructiveActionRefused         LMS.DESTRUCTIVE_REFUSED     connect with allow_destructive=True
    ├── AuthenticationError              REMOTE.AUTHENTICATION       fix the credentials
    ├── PermissionDenied                 REMOTE.PERMISSION_DENIED    grant the named permission/scope
    ├── NotFound                         REMOTE.NOT_FOUND            the record does not exist (any more)
    ├── RateLimited                      REMOTE.RATE_LIMITED         wait `retry_after` seconds, retry
    ├── RemoteError                      REMOTE.ERROR                vendor failed; retry later
    │   └── InvalidRemoteResponse        REMOTE.INVALID_RESPONSE     vendor answered something unparseable
    ├── ActionFailed                     LMS.ACTION_FAILED           read `.result` for the per-item outcome
    └── StoreError (lmsconnect._store)   STORE.ERROR                 the state store failed; check its path
        └── SyncInProgress               STORE.SYNC_IN_PROGRESS      another sync holds the connection; wait

Exceptions carry context (connector slug, action, HTTP status, a trimmed vendor message) and a stable
`code` callers branch on; none of them ever carries a secret — connectors register their secrets with the
transport, which scrubs them from every message it builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._actions import ActionResult

__all__ = [
    "ActionFailed",
    "AuthenticationError",
    "ConfigurationError",
    "DestructiveActionRefused",
    "InvalidInput",
    "InvalidRemoteResponse",
    "LMSConnectError",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "PluginLoadError",
    "RateLimited",
    "RemoteError",
]

_MAX_VENDOR_MESSAGE = 300


def trim(text: str, limit: int = _MAX_VENDOR_MESSAGE) -> str:
    """Shorten a vendor message so an error never dumps a whole response body."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LMSConnectError(Exception):
    """Root of every lmsconnect error.

    >>> try:
    ...     ...
    ... except LMSConnectError as exc:
    ...     if exc.code == "REMOTE.RATE_LIMITED": ...
    """

    code: str = "LMS.ERROR"
    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        connector: str | None = None,
        status: int | None = None,
        vendor_message: str | None = None,
        hint: str | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if hint is not None:
            self.hint = hint
        self.message = message
        self.connector = connector
        self.status = status
        self.vendor_message = trim(vendor_message) if vendor_message else None
        super().__init__(message)

    def __str__(self) -> str:
        parts = []
        if self.connector:
            parts.append(f"[{self.connector}]")
        parts.append(self.message)
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        text = " ".join(parts)
        if self.vendor_message and self.vendor_message not in self.message:
            text += f" — vendor said: {self.vendor_message}"
        if self.hint:
            text += f". {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={str(self)!r})"

    def context(self) -> dict[str, Any]:
        """The machine-readable context of this error (for logs and JSON output)."""
        return {
            "type": type(self).__name__,
            "code": self.code,
            "message": self.message,
            "connector": self.connector,
            "status": self.status,
            "vendor_message": self.vendor_message,
        }


class ConfigurationError(LMSConnectError):
    """The connector cannot be built or reached with the configuration given."""

    code = "CONFIG.INVALID"
    hint = "Fix the arguments passed to lmsconnect.connect()"


class PluginLoadError(ConfigurationError):
    """A connector plugin is installed but could not be loaded."""

    code = "CONFIG.PLUGIN_BROKEN"

    def __init__(self, message: str, *, entry_point: str, distribution: str | None) -> None:
        self.entry_point = entry_point
        self.distribution = distribution
        super().__init__(
            message, hint=f"Fix or reinstall the distribution {distribution or '(unknown)'!r}"
        )


class InvalidInput(LMSConnectError):
    """Action input (or a parameter the vendor rejected) is invalid; `field` names what was wrong."""

    code = "INPUT.INVALID"

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        self.field = field
        super().__init__(message, **kwargs)


class NotSupported(LMSConnectError):
    """The connector's capability table says it cannot do this; the message quotes the table."""

    code = "LMS.NOT_SUPPORTED"
    hint = "Check lms.capabilities before calling"


class DestructiveActionRefused(LMSConnectError):
    """The connection was opened with allow_destructive=False and this action is irreversible."""

    code = "LMS.DESTRUCTIVE_REFUSED"
    hint = "Connect with allow_destructive=True if you accept the irreversible effect"


class AuthenticationError(LMSConnectError):
    """The vendor rejected the credentials."""

    code = "REMOTE.AUTHENTICATION"
    hint = "Check the API key / token / client credentials given to connect()"


class PermissionDenied(LMSConnectError):
    """The credentials are valid but lack a permission; `permission` is the vendor's own name of it."""

    code = "REMOTE.PERMISSION_DENIED"

    def __init__(self, message: str, *, permission: str | None = None, **kwargs: Any) -> None:
        self.permission = permission
        kwargs.setdefault(
            "hint",
            f"Grant {permission!r} to the credentials" if permission else "Grant the missing permission",
        )
        super().__init__(message, **kwargs)


class NotFound(LMSConnectError):
    """The record does not exist in the LMS (or no longer does)."""

    code = "REMOTE.NOT_FOUND"


class RateLimited(LMSConnectError):
    """The vendor's rate limit was hit and retries were exhausted or not allowed."""

    code = "REMOTE.RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        kwargs.setdefault(
            "hint",
            f"Retry after {retry_after:.1f} s" if retry_after is not None else "Wait and retry",
        )
        super().__init__(message, **kwargs)


class RemoteError(LMSConnectError):
    """The vendor failed (5xx, dropped connection, timeout, or an error body we could not classify)."""

    code = "REMOTE.ERROR"
    hint = "Retry later; if it persists, the vendor is having trouble"


class InvalidRemoteResponse(RemoteError):
    """The vendor answered with something that does not have the documented shape."""

    code = "REMOTE.INVALID_RESPONSE"
    hint = "Report it with the connector and vendor version; this connector needs updating"


class ActionFailed(LMSConnectError):
    """An action did not (fully) happen; `result` says per item what did."""

    code = "LMS.ACTION_FAILED"

    def __init__(self, message: str, *, result: ActionResult, **kwargs: Any) -> None:
        self.result = result
        super().__init__(message, **kwargs)
