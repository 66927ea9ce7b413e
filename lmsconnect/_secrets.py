"""`Secret`: a string that never shows itself, and the scrubbing of known secrets from text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

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
    """`text` with every occurrence of each secret (of 4 chars or more) replaced by ``***``."""
    forms: set[str] = set()
    for value in secrets:
        if len(value) >= 4:
            # URLs and form bodies carry the secret percent-encoded.
            forms.update({value, quote(value, safe=""), quote_plus(value, safe="")})
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text
