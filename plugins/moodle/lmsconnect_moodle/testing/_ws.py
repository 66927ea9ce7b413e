"""The web-service layer of the simulator: Moodle's exceptions and its parameter validation.

Moodle validates every call against the function's parameter description before running it
(``external_api::validate_parameters``); this module reproduces that, including the nesting of its
debug messages (``enrolments => Invalid parameter value detected (...): ...``), because the recordings
show clients only ever see those messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "ACCESS_DEBUG",
    "Bool",
    "Float",
    "Int",
    "Multiple",
    "ParamType",
    "Single",
    "Text",
    "WSError",
    "invalid_parameter",
    "missing_record",
    "validate",
]

ACCESS_DEBUG: Final = (
    "Access to the function {function}() is not allowed.\n"
    "                     There could be multiple reasons for this:\n"
    "                     1. The service linked to the user token does not contain the function.\n"
    "                     2. The service is user-restricted and the user is not listed.\n"
    "                     3. The service is IP-restricted and the user IP is not listed.\n"
    "                     4. The service is time-restricted and the time has expired.\n"
    "                     5. The token is time-restricted and the time has expired.\n"
    "                     6. The service requires a specific capability which the user does not have.\n"
    "                     7. The function is called with username/password (no user token is sent)\n"
    "                     and none of the services has the function to allow the user.\n"
    "                     These settings can be found in Administration > Site administration\n"
    "                     > Server > Web services > External services and Manage tokens."
)


class WSError(Exception):
    """A Moodle exception as the REST server reports it: HTTP 200 with an ``exception`` body.

    ``message`` is what a site without debugging shows; ``debug_message``/``debuginfo`` what a site with
    debugging on shows instead (Moodle appends the debug info to the message and adds ``debuginfo``).
    """

    def __init__(
        self,
        exception: str,
        errorcode: str,
        message: str,
        *,
        debuginfo: str | None = None,
        debug_errorcode: str | None = None,
        debug_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.exception = exception
        self.errorcode = errorcode
        self.message = message
        self.debuginfo = debuginfo
        self.debug_errorcode = debug_errorcode
        self.debug_message = debug_message

    def body(self, *, debug: bool) -> dict[str, Any]:
        if not debug:
            return {"exception": self.exception, "errorcode": self.errorcode, "message": self.message}
        message = self.debug_message
        if message is None:
            message = f"{self.message} ({self.debuginfo})" if self.debuginfo else self.message
        body: dict[str, Any] = {
            "exception": self.exception,
            "errorcode": self.debug_errorcode or self.errorcode,
            "message": message,
        }
        if self.debuginfo is not None:
            body["debuginfo"] = self.debuginfo
        return body


def moodle_exception(errorcode: str, message: str, debuginfo: str | None = None) -> WSError:
    return WSError("core\\exception\\moodle_exception", errorcode, message, debuginfo=debuginfo)


def invalid_parameter(debuginfo: str) -> WSError:
    return WSError(
        "core\\exception\\invalid_parameter_exception",
        "invalidparameter",
        "Invalid parameter value detected",
        debuginfo=debuginfo,
    )


def missing_record(table: str, where: str, params: list[Any]) -> WSError:
    """``dml_missing_record_exception``: generic without debugging, the SQL with it (see the recordings)."""
    rendered = "".join(f"  {i} => {p},\n" for i, p in enumerate(params))
    sql = f"SELECT * FROM {{{table}}} WHERE {where}\n[array (\n{rendered})]"
    return WSError(
        "dml_missing_record_exception",
        "invalidrecordunknown",
        "Can't find data record in database.",
        debuginfo=sql,
        debug_errorcode="invalidrecord",
        debug_message=f"Can't find data record in database table {table}. ({sql})",
    )


class _Invalid(Exception):
    """Internal: one level of a validation failure, carrying Moodle's debug text."""

    def __init__(self, debuginfo: str) -> None:
        super().__init__(debuginfo)
        self.debuginfo = debuginfo

    @property
    def message(self) -> str:
        return f"Invalid parameter value detected ({self.debuginfo})"


_REQUIRED: Final = object()
_OPTIONAL: Final = object()


@attrs.frozen
class ParamType:
    """Base of the parameter description types; ``default`` is ``_REQUIRED``, ``_OPTIONAL`` or a value."""

    default: Any = _REQUIRED

    def check(self, value: Any) -> Any:
        raise NotImplementedError


_INT: Final = re.compile(r"^-?\d+$")
_FLOAT: Final = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _scalar_repr(value: Any) -> str:
    return "array" if isinstance(value, Mapping) else str(value)


@attrs.frozen
class Int(ParamType):
    def check(self, value: Any) -> Any:
        if isinstance(value, str) and _INT.match(value):
            return int(value)
        raise _Invalid(
            f'Invalid external api parameter: the value is "{_scalar_repr(value)}", '
            'the server was expecting "int" type'
        )


@attrs.frozen
class Float(ParamType):
    def check(self, value: Any) -> Any:
        if isinstance(value, str) and _FLOAT.match(value):
            number = float(value)
            return int(number) if number.is_integer() else number
        raise _Invalid(
            f'Invalid external api parameter: the value is "{_scalar_repr(value)}", '
            'the server was expecting "float" type'
        )


@attrs.frozen
class Bool(ParamType):
    def check(self, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ("0", "1", "true", "false", ""):
            return value.lower() in ("1", "true")
        raise _Invalid(
            f'Invalid external api parameter: the value is "{_scalar_repr(value)}", '
            'the server was expecting "bool" type'
        )


@attrs.frozen
class Text(ParamType):
    def check(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        raise _Invalid(
            f'Invalid external api parameter: the value is "{_scalar_repr(value)}", '
            'the server was expecting "raw" type'
        )


@attrs.frozen
class Multiple(ParamType):
    item: ParamType = attrs.field(default=Text(), kw_only=True)

    def check(self, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Invalid(f"Only arrays accepted. The bad value is: '{value}'")
        return [self.item.check(v) for v in value.values()]


@attrs.frozen
class Single(ParamType):
    keys: Mapping[str, ParamType] = attrs.field(factory=dict, kw_only=True)

    def check(self, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Invalid("Only arrays accepted. The bad value is: '" + str(value) + "'")
        result: dict[str, Any] = {}
        for key, desc in self.keys.items():
            if key not in value:
                if desc.default is _REQUIRED:
                    raise _Invalid(f"Missing required key in single structure: {key}")
                if desc.default is not _OPTIONAL:
                    result[key] = desc.default
                continue
            try:
                result[key] = desc.check(value[key])
            except _Invalid as exc:
                raise _Invalid(f"{key} => {exc.message}: {exc.debuginfo}") from None
        unexpected = [k for k in value if k not in self.keys]
        if unexpected:
            raise _Invalid(f"Unexpected keys ({', '.join(unexpected)}) detected in parameter array.")
        return result


OPTIONAL: Final = _OPTIONAL


def validate(description: Single, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate decoded request parameters; raise the `WSError` Moodle would raise."""
    try:
        result: dict[str, Any] = description.check(params)
    except _Invalid as exc:
        raise invalid_parameter(exc.debuginfo) from None
    return result
