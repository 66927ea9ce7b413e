"""`Secret`: a string that never shows itself, and the scrubbing of known secrets from text."""

from __future__ import annotations

import bisect
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

    Linear in the length of the text and of the secrets, whatever they hold: the text is decoded once
    into views (as is; %XX decoded; %XX decoded and ``+`` read as a space), each secret is found in each
    view with `str.find`, and the places found are mapped back to the text. (A regular expression with
    a %XX alternative per character took over a minute to compile for a 1 MB API key.)
    """
    values = sorted({v for v in secrets if len(v) >= 4}, key=len, reverse=True)
    if not values or not text:
        return text
    views = [_View.raw(text)]
    if "%" in text:
        views.append(_View.decoded(text, plus_is_space=False))
    if "+" in text:
        views.append(_View.decoded(text, plus_is_space=True))
    spans: list[tuple[int, int]] = []
    for view in views:
        for value in values:
            start = view.text.find(value)
            while start != -1:
                end = start + len(value)
                spans.append((view.original(start), view.original(end)))
                start = view.text.find(value, end)
    if not spans:
        return text
    # Overlapping places (a secret inside another, or found in two views) become one ``***``.
    out: list[str] = []
    done = 0
    current: tuple[int, int] | None = None
    for start, end in sorted(spans):
        if current is not None and start < current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            out.append(text[done : current[0]] + "***")
            done = current[1]
        current = (start, end)
    assert current is not None
    out.append(text[done : current[0]] + "***" + text[current[1] :])
    return "".join(out)


_ENCODED_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


class _View:
    """A decoded form of a text, and the way back from its positions to the text's."""

    __slots__ = ("_length", "_segments", "_starts", "text")

    def __init__(self, text: str, segments: list[tuple[int, int, list[int] | None]], length: int) -> None:
        self.text = text
        # (position in this view, position in the original, per-character original positions of a
        # decoded %XX run, or None for a stretch copied one to one)
        self._segments = segments
        self._starts = [s[0] for s in segments]
        self._length = length

    @classmethod
    def raw(cls, text: str) -> _View:
        return cls(text, [(0, 0, None)], len(text))

    @classmethod
    def decoded(cls, text: str, *, plus_is_space: bool) -> _View:
        pieces: list[str] = []
        segments: list[tuple[int, int, list[int] | None]] = []
        here = done = 0

        def literal(upto: int) -> None:
            nonlocal here
            if upto > done:
                piece = text[done:upto]
                if plus_is_space:
                    piece = piece.replace("+", " ")
                segments.append((here, done, None))
                pieces.append(piece)
                here += len(piece)

        for match in _ENCODED_RUN.finditer(text):
            literal(match.start())
            chars = bytes.fromhex(match.group().replace("%", "")).decode("utf-8", "surrogateescape")
            positions = []
            at = match.start()
            for char in chars:
                positions.append(at)
                # An undecodable byte comes back as one surrogate-escape character: one %XX.
                at += 3 * (1 if "\udc80" <= char <= "\udcff" else len(char.encode()))
            segments.append((here, match.start(), positions))
            pieces.append(chars)
            here += len(chars)
            done = match.end()
        literal(len(text))
        return cls("".join(pieces), segments, len(text))

    def original(self, position: int) -> int:
        """The position in the original text of this view's `position` (a character start, or the end)."""
        if position >= len(self.text):
            return self._length
        index = bisect.bisect_right(self._starts, position) - 1
        start, original, positions = self._segments[index]
        if positions is None:
            return original + (position - start)
        return positions[position - start]
