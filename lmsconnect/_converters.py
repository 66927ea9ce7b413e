"""Conversion between unified records / action inputs and plain data, configured in one place.

`make_converter()` returns a fresh converter (no shared mutable global); `configure_converter()` registers:

- ``datetime``: structured from ISO 8601 strings (``Z`` accepted; a date alone means midnight UTC; naive
  values are taken as UTC) or from datetimes, unstructured to ISO 8601 strings in UTC;
- the unified enums (and any other Enum): structured from their value (unknown values of the unified
  ones become ``UNKNOWN``), unstructured to it;
- ``str``, ``int`` and ``bool``: strict (no silent ``5`` → ``"5"``; ``True`` is not an int, nor ``"no"`` a
  bool);
- ``tuple[str, ...]``: also accepts a list or a single string;
- ``list[...]``: only a list (or tuple), structured up to its first misfit: cattrs alone iterates whatever
  it is given (a string, character by character) and keeps every item's error, so a multi-megabyte
  string or array of misfits in a vendor answer cost gigabytes and minutes.

Plugins build their own vendor converter from `make_converter()` and add their hooks to it, and turn
wire payloads into their typed wire records with `structure_wire()`, which makes every misfit an
`InvalidRemoteResponse` naming the endpoint and the field.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote

from ._errors import InvalidRemoteResponse, trim
from ._models import ENUMS

__all__ = ["configure_converter", "make_converter", "parse_datetime", "structure_wire", "wire_excerpt"]

T = TypeVar("T")
_EXCERPT_CHARS = 160


def parse_datetime(value: Any) -> dt.datetime:
    """An aware UTC datetime from an ISO 8601 string, a date, or a datetime (naive means UTC)."""
    if isinstance(value, dt.datetime):
        result = value
    elif isinstance(value, dt.date):
        result = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            result = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or date-time") from None
    else:
        raise TypeError(f"expected an ISO 8601 string or a datetime, got {type(value).__name__}")
    if result.tzinfo is None:
        result = result.replace(tzinfo=dt.timezone.utc)
    return result.astimezone(dt.timezone.utc)


def _is_list(type_: Any) -> bool:
    return type_ is list or typing.get_origin(type_) is list


def _list_of(list_type: Any, converter: cattrs.BaseConverter) -> Callable[[Any, Any], list[Any]]:
    """The ``list[...]`` hook: a list or tuple only, structured up to its first misfit."""
    args = typing.get_args(list_type)
    item_type = args[0] if args else Any
    structure_item = converter.get_structure_hook(item_type)

    def structure(value: Any, _: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(structure_item(item, item_type))
            except Exception as exc:
                # The note cattrs' own list hook adds, so transform_error names the item ("[3].id").
                note = IterableValidationNote(f"Structuring {list_type} @ index {index}", index, item_type)
                setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010 - py3.10
                raise IterableValidationError(f"While structuring {list_type!r}", [exc], list_type) from None
        return items

    return structure


def configure_converter(converter: cattrs.Converter) -> None:
    """Register the unified hooks (listed in the module docstring) on `converter`."""
    converter.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    converter.register_unstructure_hook(
        dt.datetime, lambda v: v.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    )
    converter.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda v, t: t(v)
    )

    def _str_tuple(value: Any, _: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list of strings, got {type(value).__name__}")
        if not all(isinstance(v, str) for v in value):
            raise TypeError("expected a list of strings")
        return tuple(value)

    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _str_tuple)
    converter.register_structure_hook_factory(_is_list, _list_of)

    def _strict_str(value: Any, _: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value

    def _strict_int(value: Any, _: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return value

    def _strict_bool(value: Any, _: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {type(value).__name__}")
        return value

    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    # bool derives from int: without a hook of its own, the `int` hook above would refuse every bool.
    converter.register_structure_hook(bool, _strict_bool)
    # The unified enums derive from str, which comes before Enum in their MRO: without a hook of
    # their own, the `str` hook above would structure them as plain strings.
    for enum_cls in ENUMS:
        converter.register_structure_hook(enum_cls, lambda v, t: t(v))


def make_converter(*, forbid_extra_keys: bool = True) -> cattrs.Converter:
    """A new converter with the unified hooks; detailed validation names the failing field.

    Unknown keys are refused by default (right for our own input and stored data); a plugin's wire
    converter passes ``forbid_extra_keys=False``, since vendors add fields to their answers at any time and
    a field we do not read must not fail a read.
    """
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=forbid_extra_keys)
    configure_converter(converter)
    return converter


def wire_excerpt(raw: Any, scrub: Callable[[str], str] | None = None, limit: int = _EXCERPT_CHARS) -> str:
    """A short, one-line, scrubbed rendering of a vendor value for an error message.

    Cuts before serialising whole (a huge list is not dumped to be thrown away) and scrubs before
    trimming, so a secret cut in half cannot survive.
    """
    if isinstance(raw, (list, tuple)) and len(raw) > 3:
        raw = [*raw[:3], f"... {len(raw) - 3} more"]
    elif isinstance(raw, dict) and len(raw) > 12:
        raw = dict(list(raw.items())[:12]) | {"...": f"{len(raw) - 12} more keys"}
    try:
        text = json.dumps(raw, default=repr, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = f"<{type(raw).__name__}>"
    text = text[: limit * 8]
    if scrub is not None:
        text = scrub(text)
    return trim(text, limit)


def structure_wire(
    converter: cattrs.Converter,
    raw: Any,
    cls: type[T],
    *,
    where: str,
    connector: str | None = None,
    scrub: Callable[[str], str] | None = None,
) -> T:
    """`raw` structured as the wire record `cls`, or `InvalidRemoteResponse` saying where and what.

    >>> structure_wire(converter, {"id": "x"}, UserWire, where="GET /v1/users", connector="talentlms")
    ... # InvalidRemoteResponse: GET /v1/users answered a UserWire that does not fit: $.id: expected ...

    `where` names the endpoint (never a URL with credentials); the message names each failing field with
    cattrs' path syntax and ends with a trimmed, scrubbed excerpt of what came.
    """
    try:
        if attrs.has(cls) and not isinstance(raw, dict):
            raise TypeError(f"expected an object, got {type(raw).__name__}")
        return converter.structure(raw, cls)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path=f"{cls.__name__}")
        detail = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
    if scrub is not None:
        detail = scrub(detail)
    got = wire_excerpt(raw, scrub)
    raise InvalidRemoteResponse(
        f"{where} answered a {cls.__name__} that does not fit: {trim(detail, 300)}; got {got}",
        connector=connector,
    ) from None
