"""OAuth2 client-credentials tokens, cached and refreshed once for all concurrent requests."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable

__all__ = ["TokenCache"]

# The token each task last sent, so a 401 invalidates exactly that token and not a fresher one another
# task already fetched.
_SENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lmsconnect_360learning_token", default=None
)

Fetch = Callable[[], Awaitable[tuple[str, float]]]


class TokenCache:
    """Holds the current access token and fetches a new one when it is due.

    A token is renewed ahead of its expiry (a tenth of its lifetime early, at most a minute), and at once
    when the API answered 401 to it. Renewal happens under a lock and re-checks after acquiring it, so
    any number of concurrent requests that find the token stale trigger one token request.
    """

    def __init__(self, fetch: Fetch, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetched = 0

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        return None

    async def get(self) -> str:
        token = self._fresh()
        if token is None:
            async with self._lock:
                token = self._fresh()
                if token is None:
                    # The lifetime runs from when the server issued the token, which is after we asked:
                    # counting from the request keeps our idea of expiry on the safe side.
                    asked = self._clock()
                    token, lifetime = await self._fetch()
                    self.fetched += 1
                    self._token = token
                    self._renew_at = asked + lifetime - min(60.0, lifetime / 10)
        _SENT.set(token)
        return token

    @staticmethod
    def last_sent() -> str | None:
        """The token the current task sent last."""
        return _SENT.get()

    def invalidate(self, token: str | None) -> None:
        """Forget `token` after a 401, unless a newer one has replaced it already."""
        if token is not None and token == self._token:
            self._token = None
