"""`Secret`: a string that never shows itself, and the scrubbing of known secrets from text."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["Secret", "scrub"]


class Secret:
    """A credential. ``str()``, ``repr()`` and formatting show ``'***'``; `reveal()` gives the value.

    >>> key = Secret("abc")
    >>> f"{key}", key.reveal()
    ('***', 'abc')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a string, got {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret (of 4 chars or more) replaced by ``***``.

    An occurrence may be percent-encoded in any mix (URLs, form bodies, a vendor echoing what it
    received): each character matches itself or its %XX form, and a space also matches ``+``.
    """
    for value in sorted({v for v in secrets if len(v) >= 4}, key=len, reverse=True):
        text = _pattern(value).sub("***", text)
    return text


@functools.lru_cache(maxsize=256)
def _pattern(value: str) -> re.Pattern[str]:
    # Encoders differ in what they leave alone (yarl keeps "/" in a query, decodes "=" in a path,
    # form encoding turns " " into "+"), so every character may come either way.
    parts = []
    for char in value:
        options = [re.escape(char), "".join(f"%{byte:02X}" for byte in char.encode())]
        if char == " ":
            options.append(r"\+")
        parts.append("(?:" + "|".join(options) + ")")
    return re.compile("".join(parts), re.IGNORECASE)
