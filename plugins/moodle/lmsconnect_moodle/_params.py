"""Moodle's PHP-style array parameters, in both directions.

Moodle's REST server reads its parameters the way PHP parses a form: ``courses[0][fullname]=X`` becomes
``$courses[0]['fullname'] = 'X'``. There is no JSON request body, and every value arrives as a string.
This module is the one place that knows the encoding: the connector encodes with `encode_params`, the
simulator decodes with `decode_params`.

>>> encode_params({"courses": [{"fullname": "Python", "visible": 0}], "options": {"ids": [2]}})
[('courses[0][fullname]', 'Python'), ('courses[0][visible]', '0'), ('options[ids][0]', '2')]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ParamValue", "decode_params", "encode_params", "encode_scalar"]

ParamValue = Any
"""A value `encode_params` accepts: a scalar, or nested mappings and sequences of them."""


def encode_scalar(value: object) -> str:
    """One leaf value as Moodle expects it: booleans as ``1``/``0``, ``None`` as the empty string.

    >>> [encode_scalar(v) for v in (True, False, None, 7, 2.5, "x")]
    ['1', '0', '', '7', '2.5', 'x']
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as a Moodle parameter")


def encode_params(params: Mapping[str, ParamValue]) -> list[tuple[str, str]]:
    """Flatten nested parameters into ordered ``(key, value)`` pairs for a form body.

    Lists get their positions as keys (``values[0]``), mappings their keys (``options[ids]``). An empty
    list or mapping produces no pair at all, which Moodle reads as "parameter missing": the caller must
    leave optional empty arrays out rather than expect Moodle to see an empty array.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        _flatten(key, value, pairs)
    return pairs


def _flatten(prefix: str, value: ParamValue, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}[{key}]", item, out)
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, out)
    else:
        out.append((prefix, encode_scalar(value)))


_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild the nested structure PHP would see from form pairs.

    Containers are dicts keyed by the bracketed names, exactly as PHP arrays: ``values[0]`` gives
    ``{"values": {"0": ...}}``. Whether such a dict is a list is decided later, by the function's
    parameter description (see the simulator's validation), as Moodle does. A later pair overwrites an
    earlier one with the same key, and ``a[]`` appends, both as in PHP.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if match is None:
            root[raw_key] = value
            continue
        name, rest = match.group(1), match.group(2)
        parts = [name, *_PART.findall(rest)]
        node: dict[str, Any] = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if part == "":
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return root
